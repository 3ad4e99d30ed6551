//! Claiming and finishing deliveries: the primitive under the downstream sync (webhooks,
//! CRM, receipts, ledger).
//!
//! A worker claims due rows; each claim sets a lease. A worker that dies leaves its rows
//! `sending` until the lease runs out, then they are due again (at-least-once: receivers
//! de-duplicate on the event id). On PostgreSQL several workers on several nodes claim at
//! once with `FOR UPDATE SKIP LOCKED`, each getting different rows without waiting on each
//! other; on SQLite the claim is one `UPDATE … RETURNING` inside a write transaction, which
//! SQLite runs alone, so two workers can never claim the same row either.

use std::time::Duration;

use serde_json::Value;

use sqlx::AssertSqlSafe;

use crate::Store;
use crate::backend::{Tx, Urgency, on_pool, write_one};
use crate::error::StoreError;
use crate::events::EventType;
use crate::id::{DeliveryId, EventId, SinkId, TenantId};
use crate::time::Timestamp;

/// A delivery handed to a worker, with everything needed to send it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedDelivery {
    /// The delivery.
    #[sqlx(try_from = "String")]
    pub id: DeliveryId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// The event (its id is the receivers' dedup key).
    #[sqlx(try_from = "String")]
    pub event_id: EventId,
    /// Where to.
    #[sqlx(try_from = "String")]
    pub sink_id: SinkId,
    /// Attempts including this one.
    pub attempts: i64,
    /// The event's type.
    #[sqlx(try_from = "String")]
    pub event_type: EventType,
    /// The event's data.
    #[sqlx(json)]
    pub payload: Value,
    /// When the event was committed.
    pub event_created_at_ms: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryResult {
    /// The sink accepted it.
    Delivered {
        /// HTTP status or similar.
        status: Option<i64>,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// When to try again.
        next_attempt_at: Timestamp,
        /// What went wrong (no payload data).
        error: String,
        /// HTTP status, if any.
        status: Option<i64>,
    },
    /// Failed for good (schedule exhausted): dead-lettered until replayed.
    Dead {
        /// What went wrong.
        error: String,
        /// HTTP status, if any.
        status: Option<i64>,
    },
}

impl DeliveryResult {
    /// The delivery's new `status`, `next_attempt_at_ms` (kept when `None`), `last_error`
    /// and `last_status`.
    pub(crate) fn columns(&self) -> (&'static str, Option<i64>, Option<&str>, Option<i64>) {
        match self {
            Self::Delivered { status } => ("delivered", None, None, *status),
            Self::Retry { next_attempt_at, error, status } => {
                ("pending", Some(next_attempt_at.unix_ms()), Some(error.as_str()), *status)
            }
            Self::Dead { error, status } => ("dead", None, Some(error.as_str()), *status),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryState {
    /// `pending`, `sending`, `delivered`, `dead`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Next attempt (for `pending`).
    pub next_attempt_at_ms: i64,
    /// Last error.
    pub last_error: Option<String>,
}

/// The columns of a [`ClaimedDelivery`], from `deliveries d JOIN outbox o`.
macro_rules! claimed_columns {
    () => {
        "d.id, d.tenant_id, d.event_id, d.sink_id, d.attempts, o.event_type, o.payload,
         o.created_at_ms AS event_created_at_ms"
    };
}

/// Not waiting behind an earlier delivery of the same order key to the same sink that is
/// still pending or sending: one payment's events reach each sink in order, while other
/// payments' events pass a failing one. A dead-lettered delivery no longer holds the ones
/// behind it.
macro_rules! in_order {
    () => {
        "(d.order_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM deliveries e
             WHERE e.sink_id = d.sink_id AND e.order_key = d.order_key
               AND e.event_seq < d.event_seq AND e.status IN ('pending', 'sending')))"
    };
}

/// Pending and due, in order of due time (the `deliveries_due` index).
macro_rules! due_in_order {
    () => {
        concat!(
            "d.status = 'pending' AND d.next_attempt_at_ms <= $1 AND ",
            in_order!(),
            " ORDER BY d.next_attempt_at_ms"
        )
    };
}

/// Sending with an expired lease: the worker died or is stuck.
macro_rules! expired_in_order {
    () => {
        concat!("d.status = 'sending' AND d.lease_until_ms <= $1 AND ", in_order!())
    };
}

impl Store {
    /// Claims up to `limit` due deliveries (pending and due, or sending with an expired
    /// lease, and not waiting behind an earlier event of the same payment for the same sink),
    /// leasing them for `lease`. Sorted by event time.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lease_until = now.saturating_add(lease).unix_ms();
        let mut claimed: Vec<ClaimedDelivery> = self
            .write(Urgency::Normal, move |tx| {
                Box::pin(async move {
                        // Two statements, each walking one index in order and stopping at its limit: rows
                // whose lease ran out (rare), then pending rows that are due. One statement with
                // an OR of both would scan and sort every pending row on each claim.
                let mut ids: Vec<String> = Vec::new();
                for (candidates, limit) in [(expired_in_order!(), limit), (due_in_order!(), limit)] {
                    let limit = i64::from(limit) - i64::try_from(ids.len()).unwrap_or(i64::MAX);
                    if limit <= 0 {
                        break;
                    }
                    let found: Vec<String> = match &mut *tx {
                        Tx::Postgres(c) => sqlx::query_scalar(AssertSqlSafe(format!(
                            "UPDATE deliveries SET status = 'sending', lease_until_ms = $2, attempts = attempts + 1,
                                 updated_at_ms = $1
                             WHERE id IN (SELECT d.id FROM deliveries d WHERE {candidates} LIMIT $3 FOR UPDATE SKIP LOCKED)
                             RETURNING id"
                        )))
                        .bind(now.unix_ms())
                        .bind(lease_until)
                        .bind(limit)
                        .fetch_all(&mut **c)
                        .await?,
                        Tx::Sqlite(c) => sqlx::query_scalar(AssertSqlSafe(format!(
                            "UPDATE deliveries SET status = 'sending', lease_until_ms = $2, attempts = attempts + 1,
                                 updated_at_ms = $1
                             WHERE id IN (SELECT d.id FROM deliveries d WHERE {candidates} LIMIT $3)
                             RETURNING id"
                        )))
                        .bind(now.unix_ms())
                        .bind(lease_until)
                        .bind(limit)
                        .fetch_all(&mut **c)
                        .await?,
                    };
                    ids.extend(found);
                }
                // One read for the whole batch (ids as a JSON array: one bind on both backends).
                let ids = serde_json::Value::from(ids);
                let claimed: Vec<ClaimedDelivery> = match &mut *tx {
                    Tx::Postgres(c) => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            claimed_columns!(),
                            " FROM deliveries d JOIN outbox o ON o.id = d.event_id
                         WHERE d.id IN (SELECT jsonb_array_elements_text($1))"
                        ))
                        .bind(sqlx::types::Json(&ids))
                        .fetch_all(&mut **c)
                        .await?
                    }
                    Tx::Sqlite(c) => {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            claimed_columns!(),
                            " FROM deliveries d JOIN outbox o ON o.id = d.event_id
                         WHERE d.id IN (SELECT value FROM json_each($1))"
                        ))
                        .bind(sqlx::types::Json(&ids))
                        .fetch_all(&mut **c)
                        .await?
                    }
                };
                Ok(claimed)
            })
        })
        .await?;
        claimed.sort_by(|a, b| {
            (a.event_created_at_ms, a.id.as_str()).cmp(&(b.event_created_at_ms, b.id.as_str()))
        });
        Ok(claimed)
    }

    /// Records how an attempt ended. Only the lease holder's answer counts: a worker whose
    /// lease ran out and whose row was re-claimed gets `false`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn finish_delivery(
        &self,
        id: &DeliveryId,
        attempts: i64,
        result: &DeliveryResult,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (status, next, error, http) = result.columns();
        let (id, error) = (id.clone(), error.map(str::to_owned));
        let changed = write_one!(
            self,
            sqlx::query(
                "UPDATE deliveries SET status = $3, next_attempt_at_ms = COALESCE($4, next_attempt_at_ms),
                     last_error = $5, last_status = $6, lease_until_ms = NULL, updated_at_ms = $7
                 WHERE id = $1 AND attempts = $2 AND status = 'sending'",
            )
            .bind(id.as_str())
            .bind(attempts)
            .bind(status)
            .bind(next)
            .bind(error.as_deref())
            .bind(http)
            .bind(now.unix_ms())
        )
        .await?;
        Ok(changed == 1)
    }

    /// Where a delivery stands.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown delivery.
    pub async fn delivery_state(&self, id: &DeliveryId) -> Result<DeliveryState, StoreError> {
        let found: Option<DeliveryState> = on_pool!(self, p => sqlx::query_as(
            "SELECT status, attempts, next_attempt_at_ms, last_error FROM deliveries WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "delivery" })
    }

    /// The deliveries of an event, by sink.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn deliveries_of(
        &self,
        event: &EventId,
    ) -> Result<Vec<(DeliveryId, SinkId)>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, sink_id FROM deliveries WHERE event_id = $1 ORDER BY sink_id",
        )
        .bind(event.as_str())
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|(d, s)| match (DeliveryId::try_from(d), SinkId::try_from(s)) {
                (Ok(d), Ok(s)) => Ok((d, s)),
                _ => Err(StoreError::Corrupt { what: "delivery id" }),
            })
            .collect()
    }
}
