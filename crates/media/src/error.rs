//! Errors of the media layer. None of them carries call audio or digits.

use std::fmt;

/// What went wrong setting up or controlling a call's media.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// Every RTP/RTCP port pair of the configured range is in use or in quarantine.
    PortsExhausted { min: u16, max: u16 },
    /// The configured port range holds no even/odd pair.
    InvalidPortRange { min: u16, max: u16 },
    /// A local socket could not be bound.
    Bind { port: u16, kind: std::io::ErrorKind },
    /// A payload type outside 0-127.
    InvalidPayloadType { payload_type: u8 },
    /// Two codecs or events share one payload type.
    DuplicatePayloadType { payload_type: u8 },
    /// The codec chosen to send on a leg has no payload type.
    SendCodecNotNegotiated,
    /// A packet time the relay does not carry (10 to 60 ms in steps of 10 ms).
    UnsupportedPtime { ms: u16 },
    /// A lookahead longer than 60 ms.
    InvalidLookahead { ms: u16 },
    /// The call's media has been closed.
    Closed,
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::PortsExhausted { min, max } => write!(
                f,
                "no free RTP port pair in {min}-{max}: every pair is in use or in quarantine"
            ),
            MediaError::InvalidPortRange { min, max } => {
                write!(f, "RTP port range {min}-{max} holds no even/odd port pair")
            }
            MediaError::Bind { port, kind } => write!(f, "cannot bind UDP port {port}: {kind}"),
            MediaError::InvalidPayloadType { payload_type } => {
                write!(f, "payload type {payload_type} is outside 0-127")
            }
            MediaError::DuplicatePayloadType { payload_type } => {
                write!(f, "payload type {payload_type} is given to two formats")
            }
            MediaError::SendCodecNotNegotiated => {
                f.write_str("the codec to send has no negotiated payload type")
            }
            MediaError::UnsupportedPtime { ms } => {
                write!(f, "packet time {ms} ms is not supported (10-60 ms in steps of 10)")
            }
            MediaError::InvalidLookahead { ms } => {
                write!(f, "lookahead {ms} ms is longer than the 60 ms maximum")
            }
            MediaError::Closed => f.write_str("the call's media is closed"),
        }
    }
}

impl std::error::Error for MediaError {}
