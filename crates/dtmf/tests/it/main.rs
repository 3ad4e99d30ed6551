#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::print_stdout, reason = "the suites print the figures for the closing note")]

//! The DTMF engine's integration suites: one test binary (STYLE.md rule 15).
//!
//! - `accuracy`: spandsp's `dtmf_rx_tests` procedures with Q.24-plus-margin pass criteria,
//!   every signal through a G.711 µ-law round trip;
//! - `talkoff`: real speech and music must give no digit;
//! - `leak`: the masker's output must give no digit to independent decoders;
//! - `rfc4733`: the telephone-event tracker;
//! - `streaming`: frame sizes, fill-in, events.

mod accuracy;
mod leak;
mod rfc4733;
mod signal;
mod streaming;
mod talkoff;
