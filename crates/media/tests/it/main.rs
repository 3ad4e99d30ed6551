#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::print_stdout, reason = "the suites print the figures for the closing note")]

//! The media relay's integration suites: one test binary (STYLE.md rule 15).
//!
//! - `masking`: in-band and RFC 4733 keys through the relay over real UDP; the agent's audio
//!   must give the independent decoders nothing, and every key is reported once;
//! - `robustness`: loss, reordering, duplicates, packet times, SSRC changes, silence
//!   suppression, payload-type changes, malformed datagrams;
//! - `legs`: latching, RTCP, the agent → customer direction, prompts and hold;
//! - `engine`: ports, quarantine, exhaustion, closing;
//! - `alloc`: the packet path does not allocate (a counting allocator watches it).

#[global_allocator]
static ALLOCATOR: ivrpay_testkit::alloc::Counting = ivrpay_testkit::alloc::Counting;

mod alloc;
mod engine;
mod legs;
mod masking;
mod robustness;
mod support;
