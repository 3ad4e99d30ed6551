//! # ivrpay-sync
//!
//! The downstream sync: the outbox dispatcher and its sinks (webhooks, CRM, receipts by
//! email and SMS, the double-entry ledger) and the daily settlement report.
//!
//! # Design
//!
//! - **The outbox is the queue.** The store writes one delivery row per enabled sink per
//!   event in the transaction of the state change (DESIGN.md §3). Nothing here ever learns
//!   about an event any other way, so a crash anywhere loses nothing: a delivery is either
//!   recorded as delivered or still in the table.
//! - **At least once, stable id.** Workers claim due rows under a lease
//!   ([`Store::claim_deliveries`](ivrpay_store::Store::claim_deliveries): `FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL, one writer on SQLite). A worker that dies mid-flight leaves its rows
//!   leased; when the lease runs out they are sent again. Every attempt of an event carries
//!   the same `webhook-id` (the event id), so receivers de-duplicate on it; the ledger
//!   de-duplicates in the store (one journal entry per event).
//! - **One payment in order.** A delivery waits while an earlier event of the same payment
//!   is still pending for the same sink; other payments' events pass a failing one (no
//!   head-of-line blocking across payments).
//! - **Retries on a schedule** ([`RetrySchedule`]: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
//!   by default, Svix's), each delay with ±20 % jitter so a recovering receiver is not hit by
//!   every retry at once. After [`DispatcherConfig::alert_after`] failures (4) a
//!   `delivery.failing` event joins the outbox in the same transaction as the failure (so it
//!   reaches the feed and the operator's endpoint) and a counter goes up; when the schedule is
//!   spent the delivery is dead-lettered until replayed ([`api`], the CLI).
//! - **Every attempt is recorded**: outcome, response status, the first 4 KiB of the
//!   answer, the error. Attempts are recorded in batches, one transaction each: on SQLite a
//!   commit is a disk sync, and batching is what makes thousands of deliveries a second
//!   possible.
//! - **Sans-IO where it pays**: the schedule, signing, templates, journal entries, receipts
//!   and the report are pure functions with time passed in; the [`Dispatcher`] is the one
//!   driver, owning the clock ([`Clock`]).
//! - **Webhooks** follow Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`, several signatures
//!   during a secret rotation), never follow redirects, and refuse private, loopback and
//!   link-local addresses, checking every address a host resolves to, at connect time
//!   ([`ssrf`]), unless allowed for local development.
//! - **No card data**: events carry brand and last four at most, and so does everything
//!   sent from here. Errors recorded for attempts never quote the payload.

#![cfg_attr(
    not(test),
    warn(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::unreachable)
)]

pub mod api;
mod clock;
pub mod config;
mod csv;
mod dispatcher;
mod error;
pub mod ledger;
mod metrics;
pub mod receipt;
pub mod report;
mod schedule;
pub mod signing;
pub mod sinks;
pub mod ssrf;
pub mod template;

pub use clock::{Clock, SystemClock};
pub use config::{SinkConfig, SyncConfig};
pub use dispatcher::{Dispatcher, DispatcherConfig, DispatcherHandle};
pub use error::SyncError;
pub use metrics::SyncMetrics;
pub use schedule::RetrySchedule;
