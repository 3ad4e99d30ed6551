#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(
    clippy::disallowed_methods,
    reason = "these suites run real processes, bounded by the wall clock"
)]

//! ivrpay's integration suites: the real binary, as a user runs it (one test binary).
//!
//! - `dtmf_cli`: the offline DTMF tools on real files;
//! - `calls`: `ivrpay serve` between SIPp processes on loopback: 100 calls, BYE from either
//!   side, CANCEL, a relayed 486, failover after a dead target, hold/resume, a late 180;
//! - `digits`: in-band and RFC 2833 keys from the customer: the agent's audio gives the
//!   independent decoders nothing, no telephone-event reaches it, ivrpay counts every key;
//! - `dialogs`: the test's own sockets as customer, agent and stranger: a stranger's BYE and
//!   INFO get 481 and change nothing; keys in every DTMF body type are counted, never relayed;
//!   SDP inside multipart (the INVITE, a re-INVITE) reaches the agent rewritten, single-part;
//! - `malformed`: a corpus of broken SIP over UDP and TCP while calls run;
//! - `shutdown`: SIGTERM lets the call in progress finish and refuses new ones;
//! - `keys_cli`: `ivrpay keys rotate|retire` on a data directory a vault has used;
//! - `ivr`: IVR self-service (in-band with a wrong card number first, RFC 2833 typed over
//!   the prompts, a hang-up mid-entry), a payment request paid by its reference, and the
//!   hand-off of an agent's call to the IVR and back; what the customer hears is compared
//!   with the prompt set, the agent's recording holds no digit (`ivr_media`: the capture);
//! - `desktop`: the agent desktop in headless Chromium on a real call: the customer keys a
//!   card as in-band DTMF, the page shows masked progress and the result; no card data in
//!   the DOM or the feed;
//! - `peer_configs`: the Kamailio configuration of the load benchmark passes `kamailio -c`.
//!
//! `harness` starts and bounds the processes (SIPp from Debian's `sip-tester`; the scenarios
//! are `benches/sipp/*.xml`).

mod calls;
mod desktop;
mod dialogs;
mod digits;
mod dtmf_cli;
mod harness;
mod ivr;
mod ivr_media;
mod keys_cli;
mod malformed;
mod peer_configs;
mod shutdown;
