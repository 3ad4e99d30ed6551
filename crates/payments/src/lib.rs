//! # ivrpay-payments
//!
//! Payment gateways behind one trait. Every payment is MOTO; every call carries an
//! idempotency key; card data arrives as `Secret`s and is wiped when the gateway answers.
//!
//! - [`Gateway`]: `charge` (authorize and capture), `tokenize`, `refund` (full or partial),
//!   boxed futures so the gateway can be a `dyn Gateway` chosen from configuration.
//! - Answers are [`ChargeOutcome`] / [`TokenizeOutcome`] (succeeded or declined with a
//!   [`DeclineCode`]) and [`Refunded`]; failures are [`GatewayError`]s that say whether a
//!   retry with the same key is right ([`GatewayError::is_retryable`]).
//! - [`PaymentAttempt`]: owns the card for one payment attempt and drops (wipes) it as soon
//!   as the gateway answers; an unanswered attempt comes back, card included, for a retry
//!   with the same key ([`Submission`], [`RetryPolicy`]).
//! - Connectors: [`sandbox::Sandbox`] (embedded, the default; Stripe test mode with
//!   idempotency replay, fault injection and an optional crash-proof journal),
//!   [`stripe::Stripe`] (PaymentIntents over HTTP, contract-tested against localstripe),
//!   [`generic::GenericPay`] (Twilio's Generic Pay Connector JSON protocol).

// The card-vault panic lints (STYLE.md rule 7, after hyperswitch-card-vault): card data
// flows through here, so no code path may panic on it.
#![cfg_attr(
    not(test),
    warn(
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::panic_in_result_fn,
        clippy::unwrap_in_result,
        clippy::unreachable,
        clippy::missing_panics_doc
    )
)]

mod attempt;
mod error;
mod gateway;
pub mod generic;
mod http;
mod outcome;
pub mod sandbox;
pub mod stripe;

pub use attempt::{Answer, Intent, PaymentAttempt, RetryPolicy, Submission};
pub use error::GatewayError;
pub use gateway::{ChargeRequest, Gateway, GatewayFuture, RefundRequest, TokenizeRequest};
pub use outcome::{
    ChargeOutcome, Charged, Decline, DeclineCode, Refunded, TokenizeOutcome, Tokenized,
};
