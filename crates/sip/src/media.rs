//! What the B2BUA needs from the media relay, as a trait: the driver implements it with the
//! real relay, tests with a recorder.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ivrpay_dtmf::MaskMode;

use crate::sdp::StreamInfo;

/// ivrpay's call id: `call_` and 20 base-32 characters. It is what the contact centre sees
/// in `X-Ivrpay-Call-Id` and what the agent desktop and the API use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub String);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which side of the call: the relay's own type.
pub use ivrpay_media::Leg;

/// Where the relay accepts a leg's media from before latching: the relay's own type.
pub use ivrpay_media::LatchFrom;

/// Per-call media settings from the profile.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaSettings {
    /// The address the relay's ports are opened on and advertised in SDP.
    pub address: IpAddr,
    pub mask_mode: MaskMode,
    pub lookahead_ms: f32,
    pub latching: bool,
    /// Whom the relay latches onto: the SDP's address, or any port of the leg's SIP peer.
    pub latch_from: LatchFrom,
    /// Only the customer leg: no agent leg (IVR self-service).
    pub customer_only: bool,
}

/// The relay's local RTP addresses of a call (RTCP on the next port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaPorts {
    pub customer: SocketAddr,
    pub agent: Option<SocketAddr>,
}

/// The relay cannot take the call (no free ports): answered with 503.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaUnavailable(pub String);

impl fmt::Display for MediaUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "media relay unavailable: {}", self.0)
    }
}

impl std::error::Error for MediaUnavailable {}

/// The relay, as the B2BUA drives it. Calls are synchronous and quick: opening a call
/// allocates ports, updating sets where media goes.
pub trait MediaControl {
    fn open(
        &mut self,
        call: &CallId,
        settings: &MediaSettings,
    ) -> Result<MediaPorts, MediaUnavailable>;
    /// A leg's SDP (offer or answer) says where its media goes and in which payload types.
    /// `sip_peer` is the IP address the leg's signalling is exchanged with: the customer's
    /// is where its INVITE came from, the agent's its target's (or its 2xx Contact's);
    /// `None` if the leg has no dialog (the relay then accepts the SDP's address only).
    fn update(&mut self, call: &CallId, leg: Leg, stream: &StreamInfo, sip_peer: Option<IpAddr>);
    /// The call ended: stop relaying and free the ports.
    fn close(&mut self, call: &CallId);
}
