//! # ivrpay-ivr
//!
//! Card payments with no agent: ivrpay answers the call, prompts the caller through the
//! card number, expiry and security code, charges the card and reads the result back. The
//! same dialogue takes over an agent-assisted call for its card part (a hand-off) and gives
//! the customer back to the agent afterwards.
//!
//! - [`dialogue`]: the dialogue of one call as a sans-IO state machine (prompts, retries
//!   with the right error message, first-digit timeouts that start when a prompt ends,
//!   barge-in, payment-request references), tested on a simulated clock;
//! - [`prompts`] and [`speech`]: the prompt set (built in from `test-audio/prompts/`, or a
//!   profile's own directory) and amounts, numbers and digits as prompts;
//! - [`Ivr`]: the running IVR, which drives each call's dialogue against the payment
//!   service ([`ivrpay_service::Service`], the same sessions, events and webhooks as the
//!   agent flow), the relay (prompts, hold, reconnect) and the SIP side (hang-up);
//! - payment requests ([`CreatePaymentRequest`]): amounts owed, made over the API, that a
//!   caller pays by keying their reference.
//!
//! ## Where the keys go
//!
//! Card keys never pass through here: the relay reports them to the payment session, which
//! tells the dialogue what happened in masked terms only (a field started, failed, was
//! cleared, is complete; brand and last four at most). The only keys the dialogue reads are
//! those of a payment-request reference, which is not card data but is never logged either.

mod error;
mod hub;
mod requests;
mod runner;

pub mod dialogue;
pub mod prompts;
pub mod speech;

pub use error::IvrError;
pub use hub::{CallControl, HandOff, HandOffView, Ivr, IvrConfig, MediaCalls};
pub use requests::{
    CreatePaymentRequest, DEFAULT_EXPIRY, MAX_EXPIRY, PaymentRequestView, new_reference,
    plausible_reference,
};
