//! Persistence for ivrpay: SQLite (the embedded default, one file under the data directory,
//! WAL mode) and PostgreSQL (for several nodes) behind one [`Store`] handle.
//!
//! # Design
//!
//! - **One interface, two native drivers.** [`Store`] wraps an enum of the two engines, each
//!   variant owning what it needs (SQLite: a reader pool, the writer connection and its
//!   thread; PostgreSQL: a pool); each operation is written once and compiled for both (see
//!   `backend.rs` for why this beats a trait object or sqlx's `Any`). Queries are built at
//!   run time, so `cargo build` needs no database. Each backend has its own migrations,
//!   embedded in the binary and applied by [`Store::open`].
//! - **One write path.** Every write is a body handed to `Store::write` (in `backend.rs`),
//!   the only place a transaction can be begun: on SQLite the whole body runs on the writer
//!   thread as a savepoint of a group commit, on PostgreSQL where it is called. The thread's
//!   core pinning is Linux-only and the binary's choice ([`pinning`]).
//! - **One transaction per state change** (DESIGN.md §3). A payment result, its outbox event
//!   and one delivery row per subscribed sink commit together. The outbox cannot be written
//!   on its own: events are created only inside the operations that change state, and a
//!   result can only be recorded by consuming the [`PendingPayment`] that
//!   [`Store::begin_payment`] returned.
//! - **No double charge.** The attempt is committed before the gateway is called, keyed by the
//!   tenant's idempotency key, and its id is the gateway's idempotency key: a retry after a
//!   crash resumes the same attempt (see [`payments`](crate::Store::begin_payment)).
//! - **The outbox is the feed.** Events carry a per-tenant `seq` without gaps in commit order,
//!   so a desktop resumes with `since=` ([`Store::events_since`]); deliveries are claimed with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL ([`Store::claim_deliveries`]), one payment's
//!   events in order per sink; attempts, alerts and replays are in `delivery_log.rs`, the
//!   journal of the ledger sink in `ledger.rs`, the settlement report's reads in
//!   `settlement.rs` (all used by `crates/sync`).
//! - **No card data.** The vault's rows hold ciphertext, wrapped keys and keyed fingerprints;
//!   nothing stored is a clear PAN or a CVV, and nothing here does cryptography.
//! - Typed, prefixed ids (`pay_…`), money as minor units plus ISO 4217 code, times as UTC
//!   milliseconds passed in by the caller (the store never reads a clock).
//!
//! # Driving a payment
//!
//! ```text
//! store.ensure_tenant(&tenant, name, now)                      once, at start-up
//! store.open_session(&NewSession { .. }, now)                  idempotent per key
//! vault.seal(&tenant, &card.pan, card.expiry, ..)              -> SealedCard (token + row)
//! match store.begin_payment_with_token(&NewPayment { token_id, .. }, &sealed.row, now)
//!                   (the token and the attempt in one transaction; `begin_payment` for a
//!                    token stored earlier)
//!   Finished(record)  -> the key already has its answer: report it, charge nothing
//!   Pending(pending)  -> gateway.charge(idempotency key = pending.gateway_idempotency_key())
//!       final answer  -> store.record_payment_result(pending, &outcome, now)
//!                        (payment row + payment.* event + deliveries + session completed)
//!       no answer     -> record nothing; the same key resumes the same attempt later
//! ```
//!
//! A crash anywhere leaves either no attempt (nothing charged) or a pending attempt whose
//! retry sends the same gateway key, so the gateway replays instead of charging twice.

mod admin;
mod backend;
mod currency;
mod deliveries;
mod delivery_log;
mod error;
mod events;
mod id;
mod ledger;
mod payment_requests;
mod payments;
#[cfg(target_os = "linux")]
pub mod pinning;
mod refunds;
mod sessions;
mod settlement;
mod sink_rows;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod vault_rows;

pub use admin::{ApiKeyHash, ApiKeyRecord, AuditEntry};
pub use backend::{BackendKind, SQLITE_FILE_NAME, SqliteDurability, Store, StoreConfig};
pub use currency::CurrencyCode;
pub use deliveries::{ClaimedDelivery, DeliveryResult, DeliveryState};
pub use delivery_log::{AttemptRecord, DeliveryFilter, DeliveryRecord, FinishedAttempt};
pub use error::StoreError;
pub use events::{EventRecord, EventType, FeedEvent, NewSink};
pub use id::{
    ApiKeyId, CallId, DataKeyId, DeliveryId, EventId, IdError, LedgerEntryId, PaymentId,
    PaymentRequestId, RefundId, SessionId, SinkId, TenantId, TokenId,
};
pub use ivrpay_card::{Currency, IdempotencyKey, Money, TokenType};
pub use ledger::{LedgerLine, NewLedgerEntry, NewLedgerLine};
pub use payment_requests::{NewPaymentRequest, PaymentRequestRecord, PaymentRequestStatus};
pub use payments::{
    BegunPayment, CardSummary, NewPayment, OptId, PaymentOutcome, PaymentRecord, PaymentStatus,
    PendingPayment,
};
pub use refunds::{
    BegunRefund, NewRefund, PendingRefund, RefundOutcome, RefundRecord, RefundStatus,
};
pub use sessions::{CallRecord, NewCall, NewSession, SessionRecord, SessionStatus};
pub use settlement::{SettledPayment, SettledRefund};
pub use sink_rows::{NewWebhookEndpoint, SinkRecord, WebhookEndpointRecord, WebhookSecretRow};
pub use time::Timestamp;
pub use vault_rows::{DataKeyRow, KeyPurpose, TokenRow};
