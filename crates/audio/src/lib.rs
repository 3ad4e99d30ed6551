//! Sample formats shared by the DTMF engine, the media relay and the offline tools.
//!
//! - [`g711`]: µ-law and A-law companding, bit-exact with the ITU-T reference and cheap enough to
//!   run on every RTP packet.

pub mod g711;
