#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]

//! ivrpay-payments integration tests: one test binary (STYLE.md rule 15).
//!
//! - `sandbox`: every test card's outcome, idempotency replay and conflicts, faults,
//!   refunds, the journal across a "restart";
//! - `attempt`: the card lives until the gateway answers; retries keep the key;
//! - `generic`: the generic-pay connector against a real HTTP server on loopback that
//!   implements the protocol (axum, backed by the sandbox);
//! - `stripe`: the Stripe connector against localstripe (PyPI) on loopback.

mod attempt;
mod cards;
mod generic;
mod sandbox;
mod stripe;
