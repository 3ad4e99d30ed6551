//! What a call's media is told from outside: each leg's negotiated SDP and the profile.

use std::net::{IpAddr, SocketAddr};

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::MaskMode;

use crate::error::MediaError;

/// The two legs of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Leg A: the customer (carrier trunk side). Its audio is masked before the agent hears it.
    Customer,
    /// Leg B: the agent (contact-centre side).
    Agent,
}

impl Leg {
    pub fn other(self) -> Leg {
        match self {
            Leg::Customer => Leg::Agent,
            Leg::Agent => Leg::Customer,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Leg::Customer => 0,
            Leg::Agent => 1,
        }
    }
}

/// Which of a leg's two local sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKind {
    Rtp,
    Rtcp,
}

impl SocketKind {
    pub(crate) fn index(self) -> usize {
        match self {
            SocketKind::Rtp => 0,
            SocketKind::Rtcp => 1,
        }
    }
}

/// The audio codecs the relay carries (8 kHz G.711).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    pub fn law(self) -> Law {
        match self {
            Codec::Pcmu => Law::Ulaw,
            Codec::Pcma => Law::Alaw,
        }
    }

    /// The static payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// The payload types negotiated on a leg (from its SDP offer/answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadTypes {
    pub pcmu: Option<u8>,
    pub pcma: Option<u8>,
    /// `telephone-event/8000`, if negotiated.
    pub telephone_event: Option<u8>,
    /// The codec the relay sends on this leg (the first audio format of the answer).
    pub send: Codec,
}

impl PayloadTypes {
    /// One codec on its static payload type, no telephone-event.
    pub fn only(codec: Codec) -> PayloadTypes {
        let mut pts = PayloadTypes { pcmu: None, pcma: None, telephone_event: None, send: codec };
        match codec {
            Codec::Pcmu => pts.pcmu = Some(0),
            Codec::Pcma => pts.pcma = Some(8),
        }
        pts
    }

    /// Adds telephone-event on `payload_type`.
    pub fn with_telephone_event(mut self, payload_type: u8) -> PayloadTypes {
        self.telephone_event = Some(payload_type);
        self
    }

    /// What a payload type carries on this leg.
    pub(crate) fn classify(&self, payload_type: u8) -> Option<Format> {
        if self.pcmu == Some(payload_type) {
            Some(Format::Audio(Codec::Pcmu))
        } else if self.pcma == Some(payload_type) {
            Some(Format::Audio(Codec::Pcma))
        } else if self.telephone_event == Some(payload_type) {
            Some(Format::TelephoneEvent)
        } else {
            None
        }
    }

    pub(crate) fn payload_type_of(&self, codec: Codec) -> Option<u8> {
        match codec {
            Codec::Pcmu => self.pcmu,
            Codec::Pcma => self.pcma,
        }
    }

    /// The payload type and codec the relay sends audio with.
    pub(crate) fn send_format(&self) -> (u8, Codec) {
        // validate() guarantees the send codec has a payload type.
        (self.payload_type_of(self.send).unwrap_or(self.send.static_payload_type()), self.send)
    }

    fn validate(&self) -> Result<(), MediaError> {
        let all = [self.pcmu, self.pcma, self.telephone_event];
        for (i, pt) in all.iter().enumerate() {
            let Some(pt) = *pt else { continue };
            if pt > 127 {
                return Err(MediaError::InvalidPayloadType { payload_type: pt });
            }
            if all[i + 1..].contains(&Some(pt)) {
                return Err(MediaError::DuplicatePayloadType { payload_type: pt });
            }
        }
        if self.payload_type_of(self.send).is_none() {
            return Err(MediaError::SendCodecNotNegotiated);
        }
        Ok(())
    }
}

/// What a payload type carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Audio(Codec),
    TelephoneEvent,
}

/// A leg's far end as its signalling describes it: the SDP, and whom the SDP came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteMedia {
    /// `c=` address and `m=` port.
    pub rtp: SocketAddr,
    /// `a=rtcp:` if present; otherwise RTCP goes to the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux` was negotiated: RTCP shares the RTP port.
    pub rtcp_mux: bool,
    pub payload_types: PayloadTypes,
    /// `a=ptime`, for audio the relay generates on this leg (prompts, hold audio). 20 ms
    /// when the SDP has none.
    pub ptime_ms: u16,
    /// The IP address of the leg's SIP peer (where the INVITE came from, or the agent's
    /// target or Contact). With [`LatchFrom::SignallingPeer`] media from any of its ports is
    /// accepted before latching; `None` when unknown.
    pub signalling_peer: Option<IpAddr>,
}

impl RemoteMedia {
    pub fn new(rtp: SocketAddr, payload_types: PayloadTypes) -> RemoteMedia {
        RemoteMedia {
            rtp,
            rtcp: None,
            rtcp_mux: false,
            payload_types,
            ptime_ms: 20,
            signalling_peer: None,
        }
    }

    /// Where RTCP for this leg goes, per the SDP.
    pub fn rtcp_destination(&self) -> SocketAddr {
        match (self.rtcp_mux, self.rtcp) {
            (true, _) => self.rtp,
            (false, Some(rtcp)) => rtcp,
            (false, None) => SocketAddr::new(self.rtp.ip(), self.rtp.port().wrapping_add(1)),
        }
    }

    /// The address the SDP names for one of the relay's sockets on this leg: where media
    /// for it goes, and comes from, unless latching learns otherwise.
    pub(crate) fn signalled(&self, kind: SocketKind) -> SocketAddr {
        match kind {
            SocketKind::Rtp => self.rtp,
            SocketKind::Rtcp => self.rtcp_destination(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), MediaError> {
        if !(10..=60).contains(&self.ptime_ms) || self.ptime_ms % 10 != 0 {
            return Err(MediaError::UnsupportedPtime { ms: self.ptime_ms });
        }
        self.payload_types.validate()
    }

    /// Samples per packet of generated audio.
    pub(crate) fn ptime_samples(&self) -> usize {
        usize::from(self.ptime_ms) * 8
    }
}

/// Where a leg's media is accepted from before the relay has latched onto a source.
///
/// Whoever can reach the relay's ports can send to them, so the first packet alone proves
/// nothing: a racer that sent first would otherwise hear the agent and key digits into a
/// payment. The rules for moving a latch once made are in `session::latch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LatchFrom {
    /// Only the address the leg's SDP names (`c=`/`m=` for RTP, `a=rtcp` or the next port
    /// for RTCP). Safe against anyone who does not see the signalling.
    #[default]
    Sdp,
    /// Also any port of the leg's SIP peer's IP address ([`RemoteMedia::signalling_peer`]):
    /// for peers behind NAT, whose SDP names an address nobody can send from. Anyone else
    /// behind the same public address can race the peer, within the latching rules.
    SignallingPeer,
}

/// Per-call media settings, from the SIP profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaProfile {
    /// What the agent hears instead of a key: a flat tone (default), silence or noise.
    pub mask_mode: MaskMode,
    /// How long the customer's audio is held back so that masking reaches back to a tone's
    /// first sample. 20 ms (one packet) by default; at most 60 ms. Below about 14 ms a
    /// tone's onset can no longer be masked.
    pub lookahead_ms: u16,
    /// Symmetric RTP: send to wherever a leg's accepted packets come from, and then accept
    /// that address only. When off, media is sent to and accepted from the SDP's address
    /// only.
    pub latching: bool,
    /// With latching on, the sources a leg may latch onto (see [`LatchFrom`]).
    pub latch_from: LatchFrom,
    /// How long a customer packet that arrives after a gap in sequence numbers waits for the
    /// missing ones, so that reordering does not become loss. 0 turns it off.
    pub reorder_window_ms: u16,
    /// When the customer's packets stop (silence suppression, loss), the audio held in the
    /// lookahead is sent this long after the next packet was due.
    pub flush_after_ms: u16,
}

impl Default for MediaProfile {
    fn default() -> Self {
        MediaProfile {
            mask_mode: MaskMode::Tone,
            lookahead_ms: 20,
            latching: true,
            latch_from: LatchFrom::Sdp,
            reorder_window_ms: 20,
            flush_after_ms: 60,
        }
    }
}

impl MediaProfile {
    pub(crate) fn validate(&self) -> Result<(), MediaError> {
        if self.lookahead_ms > 60 {
            return Err(MediaError::InvalidLookahead { ms: self.lookahead_ms });
        }
        Ok(())
    }

    pub(crate) fn lookahead_samples(&self) -> usize {
        usize::from(self.lookahead_ms) * 8
    }
}
