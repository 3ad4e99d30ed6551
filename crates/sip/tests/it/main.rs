//! The SIP crate's suites, one binary.
//!
//! - `sim`: the B2BUA core under a simulated clock, driven with scripted SIP messages from a
//!   customer and an agent (deterministic: no sockets, no sleeping);
//! - `bodies`: the customer leg's body allow-list (every DTMF type consumed, SDP rewritten
//!   inside multipart, the rest refused 415/400; the agent gets single-part SDP only);
//! - `dialogs`: in-dialog requests only from the dialog's peer, with its Call-ID and both
//!   tags (stranger's BYE, INFO, ACK and CANCEL refused; early dialogs);
//! - `ivr`: calls an IVR profile answers itself (customer leg only), hung up by either side;
//! - `wire`: message parsing and printing, the SDP rewrite.

#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]

mod bodies;
mod dialogs;
mod flows;
mod ivr;
mod sim;
mod wire;
