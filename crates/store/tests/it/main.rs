#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]

//! The store's integration suite: one test binary (STYLE.md rule 15). Every case runs on
//! both backends: SQLite in a temporary directory and PostgreSQL on a fresh schema of the
//! `DATABASE_URL` server (the PostgreSQL half fails, saying so, when it is unset).
//!
//! - `payments`: result and events in one transaction, idempotent resume, racing results;
//! - `feed`: per-tenant sequence without gaps under concurrent writers, calls and sessions;
//! - `refunds`: partial, full, over-refund and racing refunds;
//! - `deliveries`: claiming, leases, disjoint concurrent claims;
//! - `sync_rows`: per-payment order, attempts and alerts, replay, webhook secrets, journal;
//! - `payment_requests`: IVR payment requests claimed by one call, released, expired, paid;
//! - `admin`: API key hashes, the append-only audit log, the vault's rows, the schema.

// `crate::on_both!`: a case on SQLite and on PostgreSQL.
use ivrpay_testkit::on_both;

mod admin;
mod deliveries;
mod feed;
mod payment_requests;
mod payments;
mod refunds;
mod support;
mod sync_rows;
