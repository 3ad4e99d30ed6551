//! # ivrpay-dtmf
//!
//! The DTMF engine of ivrpay: everything that hears, hides and makes keypad tones, with no
//! I/O, no async and no allocation per frame. The same code runs in the live media relay
//! and in the offline `ivrpay dtmf` tools.
//!
//! - [`Detector`]: the confirming detector (ITU-T Q.24 with margin). Reports each digit
//!   with its start and end sample and its level.
//! - [`Masker`]: hides DTMF from an audio stream from the tone's first sample, using a
//!   liberal *suspect* test and a lookahead delay; reports masked spans and digits.
//! - [`ToneSpec`] / [`key_string`]: tone generation; [`Replacement`]: the agent's flat
//!   "key pressed" tone, silence or comfort noise.
//! - [`rfc4733`]: telephone-event payloads and the tracker that makes one digit of one key
//!   press.
//!
//! ## Run loop
//!
//! ```
//! use ivrpay_dtmf::{Masker, MaskerConfig, MaskerEvent};
//!
//! let mut masker = Masker::new(MaskerConfig::default());
//! let input = [0i16; 160]; // one 20 ms packet of 8 kHz audio
//! let mut output = [0i16; 160];
//! masker.process(&input, &mut output); // output is input delayed by the lookahead, masked
//! while let Some(event) = masker.poll_event() {
//!     match event {
//!         MaskerEvent::Digit(_) => { /* to the capture layer */ }
//!         MaskerEvent::Masked(_) => { /* metrics */ }
//!     }
//! }
//! ```
//!
//! ## Design
//!
//! One filter bank ([`bank`](crate::bank), private) computes single-bin DFTs at the eight DTMF
//! frequencies and at 350/440 Hz over 51-sample half blocks; pairs of halves make the
//! 102-sample decision blocks, one every 6.4 ms, and the phase step between blocks
//! measures each tone's frequency. The detector and the masker's suspect test are two sets
//! of thresholds over the same blocks.
//!
//! Digits are card data: [`Digit`]'s `Debug` does not show the key, and nothing here logs.

mod analysis;
mod bank;
mod delay;
mod detector;
mod digit;
mod generator;
mod history;
pub mod level;
mod masker;
mod replacement;
pub mod rfc4733;

pub use detector::{Detector, DetectorConfig, DetectorEvent, Tone};
pub use digit::{COL_HZ, Digit, ROW_HZ};
pub use generator::{Keying, NotAKey, ToneSpec, key_string, to_i16};
pub use masker::{Masker, MaskerConfig, MaskerEvent, Span};
pub use replacement::{MaskMode, Replacement, UnknownMaskMode};

/// Sample rate of everything in this crate, in Hz.
pub const SAMPLE_RATE: u32 = 8000;
