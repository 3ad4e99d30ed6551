//! The transactional outbox, which is also the per-tenant event feed.
//!
//! Every state change that anyone downstream cares about writes one outbox row **inside the
//! transaction of the change** (DESIGN.md §3), plus one delivery row per enabled sink that
//! subscribes to its type. Nothing here is public for writing: the only way to create an
//! event is through an operation such as
//! [`Store::record_payment_result`](crate::Store::record_payment_result), so a result can
//! never be committed without its events, nor an event without its result.
//!
//! `seq` is taken by incrementing the tenant's counter in the same transaction. The counter's
//! row stays locked until commit, so a second writer gets the next number only after the first
//! has committed: readers never see seq N+1 before N, and a desktop that resumes from
//! `since=N` misses nothing.

use serde_json::Value;
use sqlx::types::Json;

use crate::Store;
use crate::backend::{Tx, Urgency, on_pool, write_one};
use crate::error::StoreError;
use crate::id::{EventId, SinkId, TenantId};
use crate::time::Timestamp;

/// What happened. The text form (`payment.succeeded`) is what webhooks and the feed carry.
///
/// Most types are written by the operation that changes the state they report (a payment
/// result, a refund, a call's start, answer and end). The feed-only types (`capture.*`,
/// `payment.processing`) report progress that changes no stored row; they are written with
/// [`Store::record_events`], which refuses every other type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// A call reached the B2BUA.
    CallStarted,
    /// The agent answered.
    CallAnswered,
    /// A call ended.
    CallEnded,
    /// A payment session was opened on a call.
    PaymentCreated,
    /// The capture of a field began (first time or asked again). Like every `capture.*`
    /// event, it goes to the feed, and to sinks only when they name it (see
    /// [`EventType::in_wildcard`]).
    CaptureStarted,
    /// A key was pressed in a field (masked value only).
    CaptureProgress,
    /// A field was captured and is valid.
    CaptureFieldCompleted,
    /// A field failed validation (with the error type).
    CaptureFieldInvalid,
    /// The card is with the gateway.
    PaymentProcessing,
    /// The gateway charged the card.
    PaymentSucceeded,
    /// The card was declined (the gateway's answer was final: no charge).
    PaymentDeclined,
    /// The payment failed for a reason other than a decline (no charge).
    PaymentFailed,
    /// The agent or caller cancelled the session.
    PaymentCancelled,
    /// A zero-amount session ended with a token.
    PaymentTokenized,
    /// A refund went through.
    RefundSucceeded,
    /// A refund was refused.
    RefundFailed,
    /// A delivery to a sink failed several times in a row (the sync's alert). Sinks that
    /// subscribe to `*` do not get it: only those that name it (an operator's endpoint), so a
    /// failing sink is not fed alerts about itself.
    DeliveryFailing,
}

impl EventType {
    /// Every type, for parsing and for sinks that list what they want.
    pub const ALL: [Self; 17] = [
        Self::CallStarted,
        Self::CallAnswered,
        Self::CallEnded,
        Self::PaymentCreated,
        Self::CaptureStarted,
        Self::CaptureProgress,
        Self::CaptureFieldCompleted,
        Self::CaptureFieldInvalid,
        Self::PaymentProcessing,
        Self::PaymentSucceeded,
        Self::PaymentDeclined,
        Self::PaymentFailed,
        Self::PaymentCancelled,
        Self::PaymentTokenized,
        Self::RefundSucceeded,
        Self::RefundFailed,
        Self::DeliveryFailing,
    ];

    /// The dotted name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CallStarted => "call.started",
            Self::CallAnswered => "call.answered",
            Self::CallEnded => "call.ended",
            Self::PaymentCreated => "payment.created",
            Self::CaptureStarted => "capture.started",
            Self::CaptureProgress => "capture.progress",
            Self::CaptureFieldCompleted => "capture.field_completed",
            Self::CaptureFieldInvalid => "capture.field_invalid",
            Self::PaymentProcessing => "payment.processing",
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentDeclined => "payment.declined",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentCancelled => "payment.cancelled",
            Self::PaymentTokenized => "payment.tokenized",
            Self::RefundSucceeded => "refund.succeeded",
            Self::RefundFailed => "refund.failed",
            Self::DeliveryFailing => "delivery.failing",
        }
    }

    /// Whether a sink that subscribes to `*` gets events of this type. Not for the
    /// keystroke-level `capture.*` events: a payment makes about thirty of them, which the
    /// agent's feed shows live but which a CRM, a ledger or a receipt sender has no use for
    /// (and which would multiply the deliveries and the endpoints' load by five); a sink
    /// that wants them names them. Not for `delivery.failing` either (see its docs).
    #[must_use]
    pub const fn in_wildcard(self) -> bool {
        !matches!(
            self,
            Self::CaptureStarted
                | Self::CaptureProgress
                | Self::CaptureFieldCompleted
                | Self::CaptureFieldInvalid
                | Self::DeliveryFailing
        )
    }

    /// Whether the type reports progress without a state change of its own (written with
    /// [`Store::record_events`]).
    #[must_use]
    pub const fn is_feed_only(self) -> bool {
        matches!(
            self,
            Self::CaptureStarted
                | Self::CaptureProgress
                | Self::CaptureFieldCompleted
                | Self::CaptureFieldInvalid
                | Self::PaymentProcessing
        )
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for EventType {
    type Error = StoreError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or(StoreError::Corrupt { what: "event type" })
    }
}

/// One outbox row: an event as the feed and every sink see it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRecord {
    /// Stable id: the `webhook-id` on every delivery attempt, the receivers' dedup key.
    #[sqlx(try_from = "String")]
    pub id: EventId,
    /// Whose event.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// Position in the tenant's feed, from 1, without gaps.
    pub seq: i64,
    /// What happened.
    #[sqlx(try_from = "String")]
    pub event_type: EventType,
    /// The id of the call, session, payment or refund it is about.
    pub subject_id: String,
    /// The event's data (no card data beyond brand and last four).
    #[sqlx(json)]
    pub payload: Value,
    /// When it was committed.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
}

/// The key that orders deliveries: events with the same key reach each sink in `seq` order
/// (one payment's `payment.*`, `refund.*` and `session.*` events share its id).
fn order_key<'a>(event_type: EventType, subject_id: &'a str, payload: &'a Value) -> &'a str {
    let payment = payload.get("payment_id").and_then(Value::as_str);
    match event_type {
        EventType::PaymentSucceeded | EventType::PaymentDeclined | EventType::PaymentFailed => {
            subject_id
        }
        EventType::DeliveryFailing => subject_id,
        _ => payment.unwrap_or(subject_id),
    }
}

macro_rules! event_columns {
    () => {
        "id, tenant_id, seq, event_type, subject_id, payload, created_at_ms"
    };
}

/// Writes the event and its deliveries inside `tx`. Crate-private on purpose (see the module
/// docs).
///
/// A delivery's id is made of its event's and its sink's, `dlv_<event>-<sink>`: unique as
/// the pair is, and time-ordered as event ids are, so a new delivery goes at the end of the
/// id index. A random id would land on a random page of it, one more page written to the
/// log per delivery (on SQLite the largest part of a payment's writes).
pub(crate) async fn emit(
    tx: &mut Tx,
    tenant: &TenantId,
    event_type: EventType,
    subject_id: &str,
    payload: Value,
    now: Timestamp,
) -> Result<EventRecord, StoreError> {
    let id = EventId::generate(now);
    let order_key = order_key(event_type, subject_id, &payload);
    // Every statement is a round trip (on SQLite, a hop to the connection's thread, which
    // costs more than the statement), and on PostgreSQL the tenant's row stays locked from
    // the sequence bump to the commit. PostgreSQL: the bump and the outbox row are one
    // statement, the deliveries one more. SQLite: the three statements travel as one query
    // string, one hop (sqlx runs them in turn on the same arguments, by number).
    let seq: Option<i64> = match tx {
        Tx::Postgres(c) => {
            let seq: Option<i64> = sqlx::query_scalar(
                "WITH bumped AS (
                 UPDATE tenants SET event_seq = event_seq + 1 WHERE id = $2 RETURNING event_seq)
             INSERT INTO outbox (id, tenant_id, seq, event_type, subject_id, payload, created_at_ms)
             SELECT $1, $2, bumped.event_seq, $3, $4, $5, $6 FROM bumped
             RETURNING seq",
            )
            .bind(id.as_str())
            .bind(tenant.as_str())
            .bind(event_type.as_str())
            .bind(subject_id)
            .bind(Json(&payload))
            .bind(now.unix_ms())
            .fetch_optional(&mut **c)
            .await?;
            if let Some(seq) = seq {
                // One delivery per enabled sink that subscribes to this type: by name, or by
                // "*" if the type is in it ($7, see `EventType::in_wildcard`). Ids: see above.
                sqlx::query(
                    "INSERT INTO deliveries (id, tenant_id, event_id, sink_id, status, attempts,
                                     next_attempt_at_ms, created_at_ms, updated_at_ms,
                                     order_key, event_seq)
                     SELECT 'dlv_' || substr($2, 5) || '-' || substr(s.id, 5), $1, $2, s.id, 'pending', 0, $4, $4, $4, $5, $6
                     FROM sinks s
                     WHERE s.tenant_id = $1 AND s.enabled
                       AND ((s.event_types ? '*' AND $7) OR s.event_types ? $3)",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(event_type.as_str())
                .bind(now.unix_ms())
                .bind(order_key)
                .bind(seq)
                .bind(event_type.in_wildcard())
                .execute(&mut **c)
                .await?;
            }
            seq
        }
        // The outbox row and its deliveries read the bumped `seq` back from the tenant's
        // row; with no such tenant all three statements touch nothing.
        Tx::Sqlite(c) => sqlx::query_scalar(
            "UPDATE tenants SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq;
             INSERT INTO outbox (id, tenant_id, seq, event_type, subject_id, payload, created_at_ms)
             SELECT $2, t.id, t.event_seq, $3, $4, $5, $6 FROM tenants t WHERE t.id = $1;
             INSERT INTO deliveries (id, tenant_id, event_id, sink_id, status, attempts,
                                     next_attempt_at_ms, created_at_ms, updated_at_ms,
                                     order_key, event_seq)
             SELECT 'dlv_' || substr($2, 5) || '-' || substr(s.id, 5), $1, $2, s.id, 'pending', 0, $6, $6, $6, $7, t.event_seq
             FROM sinks s JOIN tenants t ON t.id = $1
             WHERE s.tenant_id = $1 AND s.enabled
               AND EXISTS (SELECT 1 FROM json_each(s.event_types) j
                           WHERE j.value = $3 OR (j.value = '*' AND $8))",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(event_type.as_str())
        .bind(subject_id)
        .bind(Json(&payload))
        .bind(now.unix_ms())
        .bind(order_key)
        .bind(event_type.in_wildcard())
        .fetch_all(&mut **c)
        .await?
        .into_iter()
        .next(),
    };
    let seq = seq.ok_or(StoreError::NotFound { kind: "tenant" })?;
    let event = EventRecord {
        id,
        tenant_id: tenant.clone(),
        seq,
        event_type,
        subject_id: subject_id.to_owned(),
        payload,
        created_at: now,
    };
    Ok(event)
}

/// Feed-only events ready to write, column by column, with their payloads as JSON text.
/// Made before the batch goes to the writer thread (see [`Store::write`]), which
/// every write waits for: building, serialising and dropping JSON values there cost as much
/// as the statements.
struct EventBatch {
    ids: Vec<EventId>,
    types: Vec<&'static str>,
    subjects: Vec<String>,
    payloads: Vec<String>,
    order_keys: Vec<String>,
    /// Whether a `*` sink takes the event (see [`EventType::in_wildcard`]).
    wildcard: Vec<bool>,
}

/// The most events one SQLite statement writes (six binds each; a longer batch takes one
/// statement per chunk). Each length up to this is its own query string, prepared once.
const SQLITE_CHUNK: usize = 32;

impl EventBatch {
    fn new(events: &[FeedEvent], now: Timestamp) -> EventBatch {
        EventBatch {
            ids: events.iter().map(|_| EventId::generate(now)).collect(),
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            subjects: events.iter().map(|e| e.subject_id.clone()).collect(),
            payloads: events.iter().map(|e| e.payload.to_string()).collect(),
            order_keys: events
                .iter()
                .map(|e| order_key(e.event_type, &e.subject_id, &e.payload).to_owned())
                .collect(),
            wildcard: events.iter().map(|e| e.event_type.in_wildcard()).collect(),
        }
    }

    fn len(&self) -> i64 {
        // A batch comes from a slice in memory: its length fits.
        i64::try_from(self.ids.len()).unwrap_or(i64::MAX)
    }

    /// The records of `events` once written, the last of them numbered `last`.
    fn records(
        self,
        tenant: &TenantId,
        events: &[FeedEvent],
        last: i64,
        now: Timestamp,
    ) -> Vec<EventRecord> {
        let first = last - self.len() + 1;
        events
            .iter()
            .zip(self.ids)
            .zip(first..)
            .map(|((event, id), seq)| EventRecord {
                id,
                tenant_id: tenant.clone(),
                seq,
                event_type: event.event_type,
                subject_id: event.subject_id.clone(),
                payload: event.payload.clone(),
                created_at: now,
            })
            .collect()
    }
}

/// The SQLite query string for a chunk of `n` events: the first chunk of a batch bumps the
/// tenant's counter by the whole batch, a later one reads it. Built once per length and
/// kept, not on every batch (on the writer's core, which every write waits for).
fn sqlite_chunk_sql(n: usize, first_chunk: bool) -> &'static str {
    static BY_LENGTH: std::sync::OnceLock<Vec<[String; 2]>> = std::sync::OnceLock::new();
    let by_length = BY_LENGTH.get_or_init(|| {
        (1..=SQLITE_CHUNK)
            .map(|n| {
                let body = sqlite_chunk_statements(n);
                [
                    format!(
                        "UPDATE tenants SET event_seq = event_seq + $2 WHERE id = $1 \
                         RETURNING event_seq;\n{body}"
                    ),
                    format!("SELECT event_seq FROM tenants WHERE id = $1;\n{body}"),
                ]
            })
            .collect()
    });
    &by_length[n - 1][usize::from(!first_chunk)]
}

/// The SQLite statements that write `n` events of a batch (from its event `$4`) and their
/// deliveries, from VALUES lists: JSON arrays cost SQLite a parse, and a lookup per field and
/// row, that took half the time of the whole write. `$1` tenant, `$2` the batch's length,
/// `$3` now, `$4` the chunk's first event; then six binds per event: id, type, subject,
/// payload, order key, wildcard. The tenant's counter is already bumped by the whole batch;
/// event `k` of the chunk gets `counter - $2 + 1 + $4 + k`.
fn sqlite_chunk_statements(n: usize) -> String {
    let bind = |event: usize, field: usize| format!("${}", 5 + 6 * event + field);
    let rows = |fields: &[usize]| {
        (0..n)
            .map(|k| {
                let values: Vec<String> = fields.iter().map(|&f| bind(k, f)).collect();
                format!("({}, {k})", values.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "INSERT INTO outbox (id, tenant_id, seq, event_type, subject_id, payload, created_at_ms)
         SELECT v.column1, t.id, t.event_seq - $2 + 1 + $4 + v.column5, v.column2, v.column3,
                v.column4, $3
         FROM tenants t, (VALUES {outbox}) v WHERE t.id = $1;
         INSERT INTO deliveries (id, tenant_id, event_id, sink_id, status, attempts,
                                 next_attempt_at_ms, created_at_ms, updated_at_ms,
                                 order_key, event_seq)
         SELECT 'dlv_' || substr(v.column1, 5) || '-' || substr(s.id, 5), $1, v.column1, s.id,
                'pending', 0, $3, $3, $3, v.column3, t.event_seq - $2 + 1 + $4 + v.column5
         FROM tenants t, (VALUES {keys}) v
         JOIN sinks s ON s.tenant_id = $1 AND s.enabled
         WHERE t.id = $1
           AND EXISTS (SELECT 1 FROM json_each(s.event_types) j
                       WHERE j.value = v.column2 OR (j.value = '*' AND v.column4))",
        outbox = rows(&[0, 1, 2, 3]),
        keys = rows(&[0, 1, 4, 5]),
    )
}

/// Writes a batch of events and their deliveries inside `tx`, in order; returns the last
/// event's number. The tenant's counter is bumped once for the whole batch.
/// - PostgreSQL: the bump, then one statement for the outbox rows (a writable CTE) and the
///   deliveries (their foreign keys are checked at the end of the statement), from arrays.
/// - SQLite: the bump travels with the first chunk's statements, one hop per chunk.
async fn emit_many(
    tx: &mut Tx,
    tenant: &TenantId,
    batch: &EventBatch,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let count = batch.len();
    let last: Option<i64> = match tx {
        Tx::Postgres(c) => {
            let last: Option<i64> = sqlx::query_scalar(
                "UPDATE tenants SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq",
            )
            .bind(tenant.as_str())
            .bind(count)
            .fetch_optional(&mut **c)
            .await?;
            if let Some(last) = last {
                let ids: Vec<&str> = batch.ids.iter().map(EventId::as_str).collect();
                sqlx::query(
                    "WITH e AS (
                         SELECT * FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[],
                                              $9::text[], $10::bool[])
                         WITH ORDINALITY AS e(id, type, subject, payload, order_key, wildcard, i)),
                     written AS (
                         INSERT INTO outbox (id, tenant_id, seq, event_type, subject_id, payload,
                                             created_at_ms)
                         SELECT e.id, $1, $2 - $4 + e.i, e.type, e.subject, e.payload::jsonb, $3
                         FROM e)
                     INSERT INTO deliveries (id, tenant_id, event_id, sink_id, status, attempts,
                                             next_attempt_at_ms, created_at_ms, updated_at_ms,
                                             order_key, event_seq)
                     SELECT 'dlv_' || substr(e.id, 5) || '-' || substr(s.id, 5), $1, e.id, s.id,
                            'pending', 0, $3, $3, $3, e.order_key, $2 - $4 + e.i
                     FROM e JOIN sinks s ON s.tenant_id = $1 AND s.enabled
                     WHERE (s.event_types ? '*' AND e.wildcard) OR s.event_types ? e.type",
                )
                .bind(tenant.as_str())
                .bind(last)
                .bind(now.unix_ms())
                .bind(count)
                .bind(&ids)
                .bind(&batch.types)
                .bind(&batch.subjects)
                .bind(&batch.payloads)
                .bind(&batch.order_keys)
                .bind(&batch.wildcard)
                .execute(&mut **c)
                .await?;
            }
            last
        }
        Tx::Sqlite(c) => {
            let mut last = None;
            for (chunk, first) in (0..batch.ids.len()).step_by(SQLITE_CHUNK).enumerate() {
                let end = (first + SQLITE_CHUNK).min(batch.ids.len());
                let mut query = sqlx::query_scalar(sqlite_chunk_sql(end - first, chunk == 0))
                    .bind(tenant.as_str())
                    .bind(count)
                    .bind(now.unix_ms())
                    .bind(i64::try_from(first).unwrap_or(i64::MAX));
                for i in first..end {
                    query = query
                        .bind(batch.ids[i].as_str())
                        .bind(batch.types[i])
                        .bind(batch.subjects[i].as_str())
                        .bind(batch.payloads[i].as_str())
                        .bind(batch.order_keys[i].as_str())
                        .bind(batch.wildcard[i]);
                }
                let seq: Option<i64> = query.fetch_all(&mut **c).await?.into_iter().next();
                // With no such tenant the statements touch nothing and return no row.
                let Some(seq) = seq else { break };
                last = Some(seq);
            }
            last
        }
    };
    last.ok_or(StoreError::NotFound { kind: "tenant" })
}

/// A feed-only event to record (see [`EventType::is_feed_only`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The call or session it is about.
    pub subject_id: String,
    /// Its data (no card data beyond brand and last four).
    pub payload: Value,
}

impl Store {
    /// Appends feed-only events (progress that changes no stored row) to the tenant's feed
    /// and outbox, in order, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::InvalidState`] when an event's type is not feed-only (state changes
    /// write their own events); [`StoreError::Database`] on failure (nothing is written).
    pub async fn record_events(
        &self,
        tenant: &TenantId,
        events: &[FeedEvent],
        now: Timestamp,
    ) -> Result<Vec<EventRecord>, StoreError> {
        if events.iter().any(|e| !e.event_type.is_feed_only()) {
            return Err(StoreError::InvalidState {
                operation: "record a state-change event on its own",
            });
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let batch = EventBatch::new(events, now);
        let owner = tenant.clone();
        let (batch, last) = self
            .write(Urgency::Urgent, move |tx| {
                Box::pin(async move {
                    let last = emit_many(tx, &owner, &batch, now).await?;
                    Ok((batch, last))
                })
            })
            .await?;
        Ok(batch.records(tenant, events, last, now))
    }
}

/// A configured downstream target.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSink {
    /// Owner.
    pub tenant_id: TenantId,
    /// `webhook`, `crm`, `receipt`, `ledger`, …
    pub kind: String,
    /// A label for operators.
    pub name: String,
    /// Event types it receives; `["*"]` for every type in the wildcard (all but the
    /// keystroke-level `capture.*` and `delivery.failing`, see [`EventType::in_wildcard`]).
    pub event_types: Vec<String>,
    /// Kind-specific, non-secret settings.
    pub config: Value,
}

impl Store {
    /// Creates the tenant when it does not exist yet (idempotent).
    ///
    /// # Errors
    /// [`StoreError::Database`] when the statement fails.
    pub async fn ensure_tenant(
        &self,
        id: &TenantId,
        name: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (id, name) = (id.clone(), name.to_owned());
        write_one!(
            self,
            sqlx::query(
                "INSERT INTO tenants (id, name, event_seq, created_at_ms) VALUES ($1, $2, 0, $3)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(&name)
            .bind(now.unix_ms())
        )
        .await?;
        Ok(())
    }

    /// The tenant's events with `seq > since`, oldest first, at most `limit`: the feed a
    /// desktop resumes from.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the query fails.
    pub async fn events_since(
        &self,
        tenant: &TenantId,
        since: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", event_columns!(),
            " FROM outbox WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(tenant.as_str())
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await?))
    }

    /// The `seq` of the tenant's last committed event (0 for none): where a live feed starts.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown tenant; [`StoreError::Database`] on failure.
    pub async fn latest_seq(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let seq: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT event_seq FROM tenants WHERE id = $1"
        )
        .bind(tenant.as_str())
        .fetch_optional(p)
        .await?);
        seq.ok_or(StoreError::NotFound { kind: "tenant" })
    }

    /// Events not yet handed to the multi-node event bus, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the query fails.
    pub async fn unpublished_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", event_columns!(),
            " FROM outbox WHERE published_at_ms IS NULL ORDER BY created_at_ms, tenant_id, seq LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await?))
    }

    /// Marks an event as handed to the event bus.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the statement fails.
    pub async fn mark_published(&self, event: &EventId, now: Timestamp) -> Result<(), StoreError> {
        let event = event.clone();
        write_one!(
            self,
            sqlx::query("UPDATE outbox SET published_at_ms = $2 WHERE id = $1")
                .bind(event.as_str())
                .bind(now.unix_ms())
        )
        .await?;
        Ok(())
    }

    /// Adds a sink; every later event of a type it subscribes to gets a delivery row for it.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the statement fails.
    pub async fn add_sink(&self, sink: &NewSink, now: Timestamp) -> Result<SinkId, StoreError> {
        let sink = sink.clone();
        let id = SinkId::generate(now);
        let sink_id = id.clone();
        write_one!(
            self,
            sqlx::query(
                "INSERT INTO sinks (id, tenant_id, kind, name, event_types, config, enabled, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7)",
            )
            .bind(sink_id.as_str())
            .bind(sink.tenant_id.as_str())
            .bind(&sink.kind)
            .bind(&sink.name)
            .bind(Json(&sink.event_types))
            .bind(Json(&sink.config))
            .bind(now.unix_ms())
        )
        .await?;
        Ok(id)
    }

    /// Enables or disables a sink (disabled sinks get no new deliveries).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown sink.
    pub async fn set_sink_enabled(&self, sink: &SinkId, enabled: bool) -> Result<(), StoreError> {
        let sink = sink.clone();
        let done = write_one!(
            self,
            sqlx::query("UPDATE sinks SET enabled = $2 WHERE id = $1")
                .bind(sink.as_str())
                .bind(enabled)
        )
        .await?;
        if done == 0 {
            return Err(StoreError::NotFound { kind: "sink" });
        }
        Ok(())
    }
}
