#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "the suites print their figures")]

//! The sync's integration suite: one test binary (STYLE.md rule 15), against real things
//! only: HTTP receivers on loopback (a Rust one with injectable faults, and a Python one that
//! verifies signatures with the `standardwebhooks` package from PyPI), a real SMTP server
//! (`aiosmtpd` from PyPI), real databases (SQLite in a temporary directory and PostgreSQL on a
//! fresh schema of `DATABASE_URL`), and a real SIGKILL of a process running the dispatcher.
//!
//! - `webhooks`: signatures verified by an independent implementation, secret rotation, the
//!   SSRF guard, the endpoint API;
//! - `faults`: a receiver that times out, answers 500 or refuses connections for a while:
//!   every event arrives, one payment's events in order, duplicates only with the same id;
//!   the alert after 4 failures, dead letters, retry and replay;
//! - `crash`: SIGKILL the worker with deliveries in flight, restart, nothing lost;
//! - `receipts`: email through aiosmtpd, SMS and CRM through HTTP templates;
//! - `ledger`: a day of sandbox payments and refunds: the journal balances, the settlement
//!   report matches the payments.

// `crate::on_both!`: a case on SQLite and on PostgreSQL.
use ivrpay_testkit::on_both;

mod crash;
mod faults;
mod ledger;
mod receipts;
mod support;
mod webhooks;
