//! # ivrpay-capture
//!
//! The payment session of one call, as a sans-IO state machine: keypad digits in (from the
//! DTMF detector, RFC 4733 or SIP INFO, all as [`ivrpay_dtmf::Digit`]), masked progress
//! events and finally the card data out. Time is an argument; nothing here does I/O.
//!
//! The behaviour follows Twilio's agent-assisted Payments API (research/payments.md §1.1):
//!
//! - a session has an amount ([`ivrpay_card::Money`], zero to tokenize), description,
//!   customer reference, token type and idempotency key ([`SessionConfig`]);
//! - fields: card number, expiry (`MMYY`), security code, postal code (the last two on or
//!   off per session). By default the session asks for the missing fields in that order
//!   and moves on by itself; the agent may [`Session::capture`] any field again at any
//!   time;
//! - `#` ends a field, `*` clears it; the card number, expiry and security code also end by
//!   themselves at their length;
//! - every key gives a [`Progress`] event: field, `partial`, masked value, brand once known,
//!   `required`, and a [`CaptureError`] when the field fails (`invalid-card-number`,
//!   `invalid-card-type`, `invalid-date`, `invalid-security-code`, `invalid-postal-code`,
//!   `input-timeout`, `invalid-card-number-security-code-capture-sequence`); a field that
//!   fails `max_attempts` times fails the session;
//! - [`Session::complete`] hands over a [`Completed`] (the [`ivrpay_card::CardData`] and the
//!   [`Operation`]: charge, or tokenize for a zero amount); [`Session::cancel`] wipes.
//!
//! ## Run loop
//!
//! ```text
//! digit from the media path  ──▶ session.handle_digit(now, digit)
//! agent presses "card number" ──▶ session.capture(now, Field::CardNumber)
//! timer at poll_timeout()    ──▶ session.handle_timeout(now)
//! after each call: while let Some(e) = session.poll_event() { feed / prompts }
//! agent presses "pay"        ──▶ session.complete() → vault → gateway
//! ```
//!
//! ## What the agent sees
//!
//! Progress events carry no card digit but the last four of a complete card number: while
//! the number is typed the agent sees one bullet per digit (the last four typed so far would
//! be middle digits of the card), the brand as soon as the IIN decides it, then
//! `•••• •••• •••• 4242`. The security code is bullets; the expiry and postal code are in
//! clear, as Twilio shows them.

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

mod config;
mod entry;
mod error;
mod field;
mod outcome;
mod session;

pub use config::SessionConfig;
pub use error::{CaptureError, SessionError};
pub use field::{Field, FieldSet};
pub use outcome::{Cancelled, Completed, Incomplete, Operation};
pub use session::{Event, Progress, Session};
