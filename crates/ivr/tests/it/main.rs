#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]

//! The IVR's suites, one binary.
//!
//! - `dialogue`: the dialogue against the real capture session under a simulated clock, with
//!   prompts as long as the built-in ones (retries, errors, barge-in, timeouts, `*`,
//!   references, hand-off, hang-up);
//! - `prompts`: the built-in prompt set and a profile's own set over it.

mod dialogue;
mod prompts;
mod sim;
