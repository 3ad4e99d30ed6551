#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::disallowed_methods, reason = "tests take one real Instant as the time origin")]

//! ivrpay-capture integration tests: sessions driven from digit streams. One test binary
//! (STYLE.md rule 15).
//!
//! - `flow`: the default order, brand detection, masking, completion, tokenize;
//! - `errors`: every error type, attempts and the failed state;
//! - `agent`: re-entry, capture sequence, `*` and `#`, fields turned off;
//! - `timeouts`: inter-digit and first-digit timers;
//! - `streams`: pseudo-random key streams never panic and never leak.

mod agent;
mod errors;
mod flow;
mod harness;
mod streams;
mod timeouts;
