//! The delivery history and the operator's levers: every attempt is recorded with its
//! answer, an alert event joins the outbox when a delivery keeps failing, and failed
//! deliveries can be replayed one by one or per sink since a time.
//!
//! [`Store::record_attempts`] finishes a batch of attempts in one transaction: each
//! delivery's new state, its attempt row and (when the dispatcher asks for one) its
//! `delivery.failing` event commit together, so the alert is on the feed exactly when the
//! failure is recorded. Batching is what lets one dispatcher record thousands of attempts a
//! second on SQLite, where every commit is a sync to disk.

use serde_json::Value;

use crate::Store;
use sqlx::types::Json;

use crate::backend::{Tx, Urgency, on_pool, on_tx, write_one};
use crate::deliveries::DeliveryResult;
use crate::error::StoreError;
use crate::events::{EventType, emit};
use crate::id::{DeliveryId, SinkId, TenantId};
use crate::time::Timestamp;

/// One finished attempt, as the dispatcher reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedAttempt {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The attempt number from the claim (the lease: a stale worker's answer is ignored).
    pub attempt: i64,
    /// How it ended and what happens next.
    pub result: DeliveryResult,
    /// The first kilobytes of the receiver's answer, if any.
    pub response_body: Option<String>,
    /// When the attempt started.
    pub started_at: Timestamp,
    /// When it ended (also the time of the state change).
    pub ended_at: Timestamp,
    /// The payload of a `delivery.failing` event to emit with this failure, if the
    /// dispatcher's alert threshold was reached.
    pub alert: Option<Value>,
}

/// A delivery as operators see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    /// Id.
    #[sqlx(try_from = "String")]
    pub id: DeliveryId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// The event (its id is the `webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Where to.
    #[sqlx(try_from = "String")]
    pub sink_id: SinkId,
    /// `pending`, `sending`, `delivered` or `dead` (failed: the schedule is spent).
    pub status: String,
    /// Attempts since it was created or last replayed.
    pub attempts: i64,
    /// Next attempt, for `pending`.
    pub next_attempt_at_ms: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// The last attempt's response status.
    pub last_status: Option<i64>,
    /// Created (with its event).
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AttemptRecord {
    /// The attempt's number for its delivery.
    pub attempt: i64,
    /// `delivered`, `failed`, `dead`, or `late` (the lease had passed to another worker).
    pub outcome: String,
    /// Response status.
    pub response_status: Option<i64>,
    /// The first kilobytes of the response.
    pub response_body: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Started.
    pub started_at_ms: i64,
    /// Ended.
    pub ended_at_ms: i64,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this status (`pending`, `sending`, `delivered`, `dead`).
    pub status: Option<String>,
    /// Only this sink.
    pub sink: Option<SinkId>,
    /// Only deliveries created at or after this time.
    pub since: Option<Timestamp>,
    /// At most this many (oldest first).
    pub limit: u32,
}

macro_rules! delivery_columns {
    () => {
        "d.id, d.tenant_id, d.event_id, o.event_type, d.sink_id, d.status, d.attempts,
         d.next_attempt_at_ms, d.last_error, d.last_status, d.created_at_ms, d.updated_at_ms"
    };
}

impl Store {
    /// Records a batch of finished attempts in one transaction; returns, per attempt, whether
    /// it still held the lease (only those change the delivery and may alert).
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure (nothing is written; the leases run out and the
    /// deliveries are attempted again).
    pub async fn record_attempts(
        &self,
        attempts: &[FinishedAttempt],
    ) -> Result<Vec<bool>, StoreError> {
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let attempts = attempts.to_vec();
        // The batch travels as one JSON array: one UPDATE and one INSERT for the whole
        // batch (two round trips, not two per attempt), on both backends.
        let rows: Vec<Value> = attempts
            .iter()
            .map(|a| {
                let (status, next, error, http) = a.result.columns();
                serde_json::json!({
                    "id": a.delivery_id.as_str(), "tenant": a.tenant_id.as_str(), "attempt": a.attempt,
                    "status": status, "next": next, "error": error, "http": http,
                    "body": a.response_body, "started": a.started_at.unix_ms(), "ended": a.ended_at.unix_ms(),
                })
            })
            .collect();
        let batch = Json(Value::Array(rows.clone()));
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
        let changed: Vec<(String, i64)> = match &mut *tx {
            Tx::Postgres(c) => sqlx::query_as(
                "UPDATE deliveries d SET status = j.status,
                     next_attempt_at_ms = COALESCE(j.next, d.next_attempt_at_ms),
                     last_error = j.error, last_status = j.http, lease_until_ms = NULL, updated_at_ms = j.ended
                 FROM jsonb_to_recordset($1) AS j(id text, attempt bigint, status text, next bigint,
                                                  error text, http bigint, ended bigint)
                 WHERE d.id = j.id AND d.attempts = j.attempt AND d.status = 'sending'
                 RETURNING d.id, d.attempts",
            )
            .bind(&batch)
            .fetch_all(&mut **c)
            .await?,
            // The `+` keeps SQLite off the status index: without statistics it would walk
            // every row in flight and scan the whole batch for each (256 x 256 JSON
            // lookups, about 120 ms a batch), instead of one primary-key lookup per row.
            Tx::Sqlite(c) => sqlx::query_as(
                "UPDATE deliveries SET status = j.status,
                     next_attempt_at_ms = COALESCE(j.next, deliveries.next_attempt_at_ms),
                     last_error = j.error, last_status = j.http, lease_until_ms = NULL, updated_at_ms = j.ended
                 FROM (SELECT value ->> '$.id' AS id, value ->> '$.attempt' AS attempt,
                              value ->> '$.status' AS status, value ->> '$.next' AS next,
                              value ->> '$.error' AS error, value ->> '$.http' AS http,
                              value ->> '$.ended' AS ended
                       FROM json_each($1)) AS j
                 WHERE deliveries.id = j.id AND deliveries.attempts = j.attempt
                   AND +deliveries.status = 'sending'
                 RETURNING deliveries.id, deliveries.attempts",
            )
            .bind(&batch)
            .fetch_all(&mut **c)
            .await?,
        };
        let changed: std::collections::HashSet<(String, i64)> = changed.into_iter().collect();
        let applied: Vec<bool> = attempts
            .iter()
            .map(|a| changed.contains(&(a.delivery_id.as_str().to_owned(), a.attempt)))
            .collect();
        let rows: Vec<Value> = rows
            .into_iter()
            .zip(&applied)
            .map(|(mut row, current)| {
                let outcome = match (current, row["status"].as_str()) {
                    (false, _) => "late",
                    (true, Some("pending")) => "failed",
                    (true, Some(other)) => other,
                    (true, None) => "failed",
                }
                .to_owned();
                row["outcome"] = Value::String(outcome);
                row
            })
            .collect();
        let batch = Json(Value::Array(rows));
        match &mut *tx {
            Tx::Postgres(c) => sqlx::query(
                "INSERT INTO delivery_attempts (delivery_id, tenant_id, attempt, outcome,
                     response_status, response_body, error, started_at_ms, ended_at_ms)
                 SELECT j.id, j.tenant, j.attempt, j.outcome, j.http, j.body, j.error, j.started, j.ended
                 FROM jsonb_to_recordset($1) AS j(id text, tenant text, attempt bigint, outcome text,
                     http bigint, body text, error text, started bigint, ended bigint)",
            )
            .bind(&batch)
            .execute(&mut **c)
            .await?
            .rows_affected(),
            Tx::Sqlite(c) => sqlx::query(
                "INSERT INTO delivery_attempts (delivery_id, tenant_id, attempt, outcome,
                     response_status, response_body, error, started_at_ms, ended_at_ms)
                 SELECT value ->> '$.id', value ->> '$.tenant', value ->> '$.attempt',
                        value ->> '$.outcome', value ->> '$.http', value ->> '$.body',
                        value ->> '$.error', value ->> '$.started', value ->> '$.ended'
                 FROM json_each($1)",
            )
            .bind(&batch)
            .execute(&mut **c)
            .await?
            .rows_affected(),
        };
        for (a, current) in attempts.iter().zip(&applied) {
            if let (true, Some(payload)) = (current, &a.alert) {
                emit(
                    tx,
                    &a.tenant_id,
                    EventType::DeliveryFailing,
                    a.delivery_id.as_str(),
                    payload.clone(),
                    a.ended_at,
                )
                .await?;
            }
        }
        Ok(applied)
            })
        })
        .await
    }

    /// One delivery, optionally checked against the tenant.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such delivery (for that tenant).
    pub async fn delivery(
        &self,
        tenant: Option<&TenantId>,
        id: &DeliveryId,
    ) -> Result<DeliveryRecord, StoreError> {
        let found: Option<DeliveryRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", delivery_columns!(), " FROM deliveries d JOIN outbox o ON o.id = d.event_id
             WHERE d.id = $1 AND ($2 IS NULL OR d.tenant_id = $2)"
        ))
        .bind(id.as_str())
        .bind(tenant.map(TenantId::as_str))
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "delivery" })
    }

    /// A tenant's deliveries matching `filter`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn list_deliveries(
        &self,
        tenant: &TenantId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", delivery_columns!(), " FROM deliveries d JOIN outbox o ON o.id = d.event_id
             WHERE d.tenant_id = $1 AND ($2 IS NULL OR d.status = $2)
               AND ($3 IS NULL OR d.sink_id = $3) AND d.created_at_ms >= $4
             ORDER BY d.created_at_ms, d.id LIMIT $5"
        ))
        .bind(tenant.as_str())
        .bind(filter.status.as_deref())
        .bind(filter.sink.as_ref().map(SinkId::as_str))
        .bind(filter.since.map_or(i64::MIN, Timestamp::unix_ms))
        .bind(i64::from(filter.limit))
        .fetch_all(p)
        .await?))
    }

    /// The attempts of a delivery, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn attempts_of(&self, id: &DeliveryId) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT attempt, outcome, response_status, response_body, error, started_at_ms, ended_at_ms
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(p)
        .await?))
    }

    /// Sends a delivery again now. A dead or delivered one starts a fresh retry schedule; a
    /// pending one keeps its place in the schedule and is only brought forward.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown delivery; [`StoreError::InvalidState`] while
    /// it is being sent.
    pub async fn retry_delivery(
        &self,
        tenant: Option<&TenantId>,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<DeliveryRecord, StoreError> {
        let (owner, delivery) = (tenant.cloned(), id.clone());
        let changed = write_one!(
            self,
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at_ms = $3, updated_at_ms = $3,
                     attempts = CASE WHEN status = 'pending' THEN attempts ELSE 0 END,
                     status = 'pending'
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)
                   AND status IN ('pending', 'dead', 'delivered')",
            )
            .bind(delivery.as_str())
            .bind(owner.as_ref().map(TenantId::as_str))
            .bind(now.unix_ms())
        )
        .await?;
        let record = self.delivery(tenant, id).await?;
        if changed == 0 {
            return Err(StoreError::InvalidState { operation: "retry a delivery being sent" });
        }
        Ok(record)
    }

    /// Replays a sink's failed deliveries created at or after `since`: the dead ones start a
    /// fresh schedule, the failing ones (pending after a failure) are brought forward.
    /// Returns how many were rescheduled.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn replay_failed(
        &self,
        tenant: Option<&TenantId>,
        sink: &SinkId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (tenant, sink) = (tenant.cloned(), sink.clone());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let dead = on_tx!(tx, c => sqlx::query(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = $4,
                         updated_at_ms = $4
                     WHERE sink_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND created_at_ms >= $3
                       AND status = 'dead'",
                )
                .bind(sink.as_str())
                .bind(tenant.as_ref().map(TenantId::as_str))
                .bind(since.unix_ms())
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                let failing = on_tx!(tx, c => sqlx::query(
                    "UPDATE deliveries SET next_attempt_at_ms = $4, updated_at_ms = $4
                     WHERE sink_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND created_at_ms >= $3
                       AND status = 'pending' AND attempts > 0 AND next_attempt_at_ms > $4",
                )
                .bind(sink.as_str())
                .bind(tenant.as_ref().map(TenantId::as_str))
                .bind(since.unix_ms())
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                Ok(dead + failing)
            })
        })
        .await
    }

    /// Counts of all deliveries by status (for metrics and health).
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT status, CAST(COUNT(*) AS BIGINT) FROM deliveries GROUP BY status ORDER BY status",
        )
        .fetch_all(p)
        .await?))
    }
}
