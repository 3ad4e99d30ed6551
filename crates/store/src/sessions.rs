//! Payment sessions and calls: the rows behind the agent's view.
//!
//! Per-digit progress is not stored (it lives in memory and on the live feed); what is stored
//! is each state change of a session, with its event.

use serde_json::json;

use crate::Store;
use crate::backend::{Tx, Urgency, on_pool, on_tx};
use crate::currency::{CurrencyCode, minor_to_db, money_from_db};
use crate::error::StoreError;
use crate::events::{EventType, emit};
use crate::id::{CallId, PaymentId, SessionId, TenantId, TokenId};
use crate::payments::OptId;
use crate::time::Timestamp;
use ivrpay_card::{IdempotencyKey, Money, TokenType};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionStatus {
    /// Capturing.
    Open,
    /// Charged or tokenized.
    Completed,
    /// Cancelled by the agent or the caller.
    Cancelled,
}

impl SessionStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl TryFrom<String> for SessionStatus {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        [Self::Open, Self::Completed, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(StoreError::Corrupt { what: "session status" })
    }
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Owner.
    pub tenant_id: TenantId,
    /// The call it runs on, if any.
    pub call_id: Option<CallId>,
    /// Unique per tenant.
    pub idempotency_key: IdempotencyKey,
    /// Zero means tokenize only.
    pub amount: Money,
    /// Statement text.
    pub description: Option<String>,
    /// The merchant's customer reference.
    pub customer_ref: Option<String>,
    /// What kind of token a tokenize-only session makes.
    pub token_type: TokenType,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct SessionRecord {
    /// Id.
    #[sqlx(try_from = "String")]
    pub id: SessionId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// Call.
    #[sqlx(try_from = "Option<String>")]
    pub call_id: OptId<CallId>,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    #[sqlx(try_from = "String")]
    pub currency: CurrencyCode,
    /// Statement text.
    pub description: Option<String>,
    /// Customer reference.
    pub customer_ref: Option<String>,
    /// Token type asked for.
    pub token_type: String,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: SessionStatus,
    /// The token, when the session tokenized.
    #[sqlx(try_from = "Option<String>")]
    pub token_id: OptId<TokenId>,
    /// The payment, when the session charged.
    #[sqlx(try_from = "Option<String>")]
    pub payment_id: OptId<PaymentId>,
    /// Opened.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
    /// Last changed.
    #[sqlx(rename = "updated_at_ms", try_from = "i64")]
    pub updated_at: Timestamp,
}

impl SessionRecord {
    /// The amount as [`Money`].
    #[must_use]
    pub fn amount(&self) -> Money {
        money_from_db(self.amount_minor, self.currency)
    }
}

macro_rules! session_columns {
    () => {
        "id, tenant_id, call_id, idempotency_key, amount_minor, currency, description,
         customer_ref, token_type, status, token_id, payment_id, created_at_ms, updated_at_ms"
    };
}

/// A stored call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct CallRecord {
    /// Id.
    #[sqlx(try_from = "String")]
    pub id: CallId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// The SIP Call-ID of leg A.
    pub sip_call_id: String,
    /// The SIP profile that routed it.
    pub profile: String,
    /// Answered.
    #[sqlx(rename = "started_at_ms", try_from = "i64")]
    pub started_at: Timestamp,
    /// Hung up.
    pub ended_at_ms: Option<i64>,
    /// Why it ended (`bye`, `cancel`, `timeout`).
    pub end_reason: Option<String>,
    /// The agent handling it, once known.
    pub agent: Option<String>,
    /// When the agent answered.
    pub answered_at_ms: Option<i64>,
    /// The caller's and the called number as the B2BUA saw them (personal data).
    pub caller: Option<String>,
    pub called: Option<String>,
    /// The ivrpay node that carries it.
    pub node: String,
}

/// A call to record.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// The id the B2BUA gave the call.
    pub id: CallId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The SIP Call-ID of leg A.
    pub sip_call_id: String,
    /// The SIP profile that routed it.
    pub profile: String,
    /// The agent, when the router named one already.
    pub agent: Option<String>,
    /// The caller's and the called number.
    pub caller: Option<String>,
    pub called: Option<String>,
    /// The ivrpay node that carries it (its media and SIP dialog live there).
    pub node: String,
}

macro_rules! call_columns {
    () => {
        "id, tenant_id, sip_call_id, profile, started_at_ms, ended_at_ms, end_reason, agent,
         answered_at_ms, caller, called, node"
    };
}

/// Marks a session completed (with its token or payment) and, for a token, emits
/// `payment.tokenized`;
/// a session that is no longer open is left as it is.
pub(crate) async fn complete_in_tx(
    tx: &mut Tx,
    tenant: &TenantId,
    session: &SessionId,
    token: Option<&TokenId>,
    payment: Option<&PaymentId>,
    now: Timestamp,
) -> Result<Option<SessionRecord>, StoreError> {
    let updated: Option<SessionRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
        "UPDATE payment_sessions SET status = 'completed', token_id = COALESCE($3, token_id),
             payment_id = COALESCE($4, payment_id), updated_at_ms = $5
         WHERE tenant_id = $1 AND id = $2 AND status = 'open' RETURNING ", session_columns!()
    ))
    .bind(tenant.as_str())
    .bind(session.as_str())
    .bind(token.map(TokenId::as_str))
    .bind(payment.map(PaymentId::as_str))
    .bind(now.unix_ms())
    .fetch_optional(&mut **c)
    .await?);
    // A charged session's news is its payment's event; a token is news of its own.
    if let (Some(record), None) = (&updated, payment) {
        let payload = serde_json::to_value(record).unwrap_or_default();
        emit(tx, tenant, EventType::PaymentTokenized, session.as_str(), payload, now).await?;
    }
    Ok(updated)
}

/// Moves an open session whose call has ended to `new`'s call (see [`Store::open_session`]).
async fn resume_on_call(
    tx: &mut Tx,
    existing: SessionRecord,
    new: &NewSession,
    now: Timestamp,
) -> Result<SessionRecord, StoreError> {
    let conflict = StoreError::IdempotencyConflict { kind: "session" };
    if existing.status != SessionStatus::Open {
        return Err(conflict);
    }
    let moved: Option<SessionRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
        "UPDATE payment_sessions SET call_id = $3, updated_at_ms = $4
         WHERE tenant_id = $1 AND id = $2 AND status = 'open'
           AND (call_id IS NULL OR call_id IN (SELECT id FROM calls WHERE tenant_id = $1 AND ended_at_ms IS NOT NULL))
         RETURNING ", session_columns!()
    ))
    .bind(existing.tenant_id.as_str())
    .bind(existing.id.as_str())
    .bind(new.call_id.as_ref().map(CallId::as_str))
    .bind(now.unix_ms())
    .fetch_optional(&mut **c)
    .await?);
    moved.ok_or(conflict)
}

impl Store {
    /// Opens a session, or returns the one opened earlier with the same idempotency key.
    ///
    /// A session still open on a call that ended (the call dropped, or its node restarted
    /// mid-payment) moves to the new call: the customer who calls back finishes the same
    /// payment, under the same key, so a charge the gateway made before the drop is found
    /// rather than made again.
    ///
    /// # Errors
    /// [`StoreError::IdempotencyConflict`] when the key was used with another amount or
    /// currency, or by a session on a call still in progress or a session that is over on
    /// another call.
    pub async fn open_session(
        &self,
        new: &NewSession,
        now: Timestamp,
    ) -> Result<SessionRecord, StoreError> {
        let new = new.clone();
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let amount_minor = minor_to_db(new.amount)?;
                let id = SessionId::generate(now);
                let inserted: Option<SessionRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "INSERT INTO payment_sessions (id, tenant_id, call_id, idempotency_key, amount_minor,
                         currency, description, customer_ref, token_type, status, created_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $10)
                     ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING ", session_columns!()
                ))
                .bind(id.as_str())
                .bind(new.tenant_id.as_str())
                .bind(new.call_id.as_ref().map(CallId::as_str))
                .bind(new.idempotency_key.as_str())
                .bind(amount_minor)
                .bind(new.amount.currency().code())
                .bind(new.description.as_deref())
                .bind(new.customer_ref.as_deref())
                .bind(new.token_type.name())
                .bind(now.unix_ms())
                .fetch_optional(&mut **c)
                .await?);
                let record = if let Some(record) = inserted {
                    let payload = serde_json::to_value(&record).unwrap_or_default();
                    emit(
                        tx,
                        &new.tenant_id,
                        EventType::PaymentCreated,
                        record.id.as_str(),
                        payload,
                        now,
                    )
                    .await?;
                    record
                } else {
                    let existing: SessionRecord = on_tx!(tx, c => sqlx::query_as(concat!(
                        "SELECT ", session_columns!(), " FROM payment_sessions WHERE tenant_id = $1 AND idempotency_key = $2"
                    ))
                    .bind(new.tenant_id.as_str())
                    .bind(new.idempotency_key.as_str())
                    .fetch_one(&mut **c)
                    .await?);
                    if existing.amount() != new.amount {
                        return Err(StoreError::IdempotencyConflict { kind: "session" });
                    }
                    if existing.call_id.as_ref() == new.call_id.as_ref() {
                        existing
                    } else {
                        resume_on_call(tx, existing, &new, now).await?
                    }
                };
                Ok(record)
            })
        })
        .await
    }

    /// Completes a tokenize-only session with its token (a charging session completes by
    /// itself when its payment succeeds).
    ///
    /// # Errors
    /// [`StoreError::InvalidState`] when the session is not open.
    pub async fn complete_session_with_token(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        token: &TokenId,
        now: Timestamp,
    ) -> Result<SessionRecord, StoreError> {
        let (tenant, session, token) = (tenant.clone(), session.clone(), token.clone());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let done = complete_in_tx(tx, &tenant, &session, Some(&token), None, now).await?;
                done.ok_or(StoreError::InvalidState {
                    operation: "complete a session that is not open",
                })
            })
        })
        .await
    }

    /// Cancels an open session and emits `session.cancelled`.
    ///
    /// # Errors
    /// [`StoreError::InvalidState`] when the session is not open.
    pub async fn cancel_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        now: Timestamp,
    ) -> Result<SessionRecord, StoreError> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let updated: Option<SessionRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "UPDATE payment_sessions SET status = 'cancelled', updated_at_ms = $3
                     WHERE tenant_id = $1 AND id = $2 AND status = 'open' RETURNING ", session_columns!()
                ))
                .bind(tenant.as_str())
                .bind(session.as_str())
                .bind(now.unix_ms())
                .fetch_optional(&mut **c)
                .await?);
                let record = updated
                    .ok_or(StoreError::InvalidState { operation: "cancel a session that is not open" })?;
                let payload = serde_json::to_value(&record).unwrap_or_default();
                emit(tx, &tenant, EventType::PaymentCancelled, session.as_str(), payload, now).await?;
                Ok(record)
            })
        })
        .await
    }

    /// A session by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the tenant has no such session.
    pub async fn session(
        &self,
        tenant: &TenantId,
        id: &SessionId,
    ) -> Result<SessionRecord, StoreError> {
        let found: Option<SessionRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", session_columns!(), " FROM payment_sessions WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "session" })
    }

    /// Records a call the B2BUA took, under the id it gave the call (`X-Ivrpay-Call-Id`), and
    /// announces `call.started`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure (also when the id exists).
    pub async fn start_call(
        &self,
        new: &NewCall,
        now: Timestamp,
    ) -> Result<CallRecord, StoreError> {
        let new = new.clone();
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let record: CallRecord = on_tx!(tx, c => sqlx::query_as(concat!(
                    "INSERT INTO calls (id, tenant_id, sip_call_id, profile, started_at_ms, agent, caller, called, node)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ", call_columns!()
                ))
                .bind(new.id.as_str())
                .bind(new.tenant_id.as_str())
                .bind(&new.sip_call_id)
                .bind(&new.profile)
                .bind(now.unix_ms())
                .bind(new.agent.as_deref())
                .bind(new.caller.as_deref())
                .bind(new.called.as_deref())
                .bind(&new.node)
                .fetch_one(&mut **c)
                .await?);
                let payload = json!({
                    "call_id": record.id, "profile": record.profile, "agent": record.agent, "started_at": now.unix_ms(),
                });
                emit(tx, &new.tenant_id, EventType::CallStarted, new.id.as_str(), payload, now)
                    .await?;
                Ok(record)
            })
        })
        .await
    }

    /// Marks the call answered (by `agent`, when known) and announces `call.answered`. A call
    /// answered already is returned as it is.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown call; [`StoreError::Database`] on failure.
    pub async fn answer_call(
        &self,
        tenant: &TenantId,
        call: &CallId,
        agent: Option<&str>,
        now: Timestamp,
    ) -> Result<CallRecord, StoreError> {
        let (owner, id) = (tenant.clone(), call.clone());
        let agent = agent.map(str::to_owned);
        let answered = self
            .write(Urgency::Normal, move |tx| {
                Box::pin(async move {
                    let updated: Option<CallRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                        "UPDATE calls SET answered_at_ms = $3, agent = COALESCE($4, agent)
                         WHERE tenant_id = $1 AND id = $2 AND answered_at_ms IS NULL RETURNING ", call_columns!()
                    ))
                    .bind(owner.as_str())
                    .bind(id.as_str())
                    .bind(now.unix_ms())
                    .bind(agent.as_deref())
                    .fetch_optional(&mut **c)
                    .await?);
                    if let Some(record) = &updated {
                        let payload = json!({
                            "call_id": record.id, "agent": record.agent, "answered_at": now.unix_ms(),
                        });
                        emit(tx, &owner, EventType::CallAnswered, id.as_str(), payload, now).await?;
                    }
                    Ok(updated)
                })
            })
            .await?;
        match answered {
            Some(record) => Ok(record),
            None => self.call(tenant, call).await,
        }
    }

    /// One call.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`] on failure.
    pub async fn call(&self, tenant: &TenantId, call: &CallId) -> Result<CallRecord, StoreError> {
        let found: Option<CallRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", call_columns!(), " FROM calls WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(call.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "call" })
    }

    /// Calls, newest first: only those in progress when `active`, only `agent`'s when given,
    /// starting after the cursor (the last id of the previous page), at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn calls(
        &self,
        tenant: &TenantId,
        active: bool,
        agent: Option<&str>,
        before: Option<&CallId>,
        limit: u32,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let found: Vec<CallRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", call_columns!(), " FROM calls
             WHERE tenant_id = $1 AND ($2 = 0 OR ended_at_ms IS NULL)
               AND ($3 IS NULL OR agent = $3) AND ($4 IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(tenant.as_str())
        .bind(i64::from(active))
        .bind(agent)
        .bind(before.map(CallId::as_str))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await?);
        Ok(found)
    }

    pub async fn end_call(
        &self,
        tenant: &TenantId,
        call: &CallId,
        reason: &str,
        now: Timestamp,
    ) -> Result<CallRecord, StoreError> {
        let (tenant, call, reason) = (tenant.clone(), call.clone(), reason.to_owned());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let updated: Option<CallRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "UPDATE calls SET ended_at_ms = $3, end_reason = $4
                     WHERE tenant_id = $1 AND id = $2 AND ended_at_ms IS NULL RETURNING ", call_columns!()
                ))
                .bind(tenant.as_str())
                .bind(call.as_str())
                .bind(now.unix_ms())
                .bind(&reason)
                .fetch_optional(&mut **c)
                .await?);
                let record = match updated {
                    Some(record) => {
                        let payload =
                            json!({ "call_id": record.id, "reason": reason, "ended_at": now.unix_ms() });
                        emit(tx, &tenant, EventType::CallEnded, call.as_str(), payload, now).await?;
                        record
                    }
                    None => {
                        let existing: Option<CallRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                            "SELECT ", call_columns!(), " FROM calls WHERE tenant_id = $1 AND id = $2"
                        ))
                        .bind(tenant.as_str())
                        .bind(call.as_str())
                        .fetch_optional(&mut **c)
                        .await?);
                        existing.ok_or(StoreError::NotFound { kind: "call" })?
                    }
                };
                Ok(record)
            })
        })
        .await
    }

    /// Ends the calls `node` left in progress (it crashed or restarted: their media died with
    /// it), announcing `call.ended` for each. Open sessions stay open so that a customer who
    /// calls back can finish the same payment under the same key.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure (nothing changed).
    pub async fn end_calls_of_node(
        &self,
        tenant: &TenantId,
        node: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let (tenant, node, reason) = (tenant.clone(), node.to_owned(), reason.to_owned());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let ended: Vec<CallRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "UPDATE calls SET ended_at_ms = $3, end_reason = $4
                     WHERE tenant_id = $1 AND node = $2 AND ended_at_ms IS NULL RETURNING ", call_columns!()
                ))
                .bind(tenant.as_str())
                .bind(node)
                .bind(now.unix_ms())
                .bind(&reason)
                .fetch_all(&mut **c)
                .await?);
                for record in &ended {
                    let payload =
                        json!({ "call_id": record.id, "reason": reason, "ended_at": now.unix_ms() });
                    emit(tx, &tenant, EventType::CallEnded, record.id.as_str(), payload, now).await?;
                }
                Ok(ended)
            })
        })
        .await
    }
}
