//! The SIP crate's suites, one binary.
//!
//! - `sim`: the B2BUA core under a simulated clock, driven with scripted SIP messages from a
//!   customer and an agent (deterministic: no sockets, no sleeping);
//! - `ivr`: calls an IVR profile answers itself (customer leg only), hung up by either side;
//! - `wire`: message parsing and printing, the SDP rewrite.

#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]

mod flows;
mod ivr;
mod sim;
mod wire;
