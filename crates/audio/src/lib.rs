//! Sample formats shared by the DTMF engine, the media relay and the offline tools.
//!
//! - [`g711`]: µ-law and A-law companding, bit-exact with the ITU-T reference and cheap enough to
//!   run on every RTP packet.
//! - [`wav`]: reading and writing the WAV files ivrpay's offline tools accept (8 kHz mono,
//!   16-bit PCM, µ-law or A-law), with an error naming the problem for anything else.
//!
//! Everything here is synchronous and free of global state; only [`wav::read_path`] and
//! [`wav::write_path`] touch the file system.

pub mod g711;
pub mod wav;
