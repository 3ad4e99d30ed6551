//! What the B2BUA needs from the media relay, as a trait: the driver implements it with the
//! real relay, tests with a recorder.

use std::fmt;
use std::net::SocketAddr;

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

/// Per-call media settings from the profile.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaSettings {
    /// The address the relay's ports are opened on and advertised in SDP.
    pub address: std::net::IpAddr,
    pub mask_mode: MaskMode,
    pub lookahead_ms: f32,
    pub latching: bool,
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
    fn update(&mut self, call: &CallId, leg: Leg, stream: &StreamInfo);
    /// The call ended: stop relaying and free the ports.
    fn close(&mut self, call: &CallId);
}
