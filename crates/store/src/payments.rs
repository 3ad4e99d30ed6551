//! Payments: an attempt is recorded before the gateway is called, and its result is recorded
//! together with its events in one transaction.
//!
//! The lifecycle is in the types (STYLE.md rule 4):
//!
//! ```text
//! begin_payment ──▶ Begun::Pending(PendingPayment) ──record_payment_result──▶ PaymentRecord
//!               └─▶ Begun::Finished(PaymentRecord)   (the key was used and has a result)
//! ```
//!
//! A [`PendingPayment`] can only be obtained from [`Store::begin_payment`] and is consumed by
//! [`Store::record_payment_result`], which writes the result, the outbox event and one
//! delivery row per subscribed sink in a single transaction, so there is no way to store one
//! without the other.
//!
//! **No double charge.** The pending row is committed *before* the gateway call and carries
//! the gateway idempotency key (the payment id). If the process dies between the gateway's
//! answer and the commit of the result, the retry with the same idempotency key finds the
//! pending row, calls the gateway again with the same gateway key, and the gateway replays
//! its first answer instead of charging again. When the gateway's answer is unknown (timeout,
//! 5xx after the connector's retries), record nothing: the payment stays pending and the next
//! attempt with the same key resolves it.

use serde_json::Value;

use crate::Store;
use crate::backend::{Urgency, on_pool, on_tx};
use crate::currency::{CurrencyCode, minor_to_db, money_from_db};
use crate::error::StoreError;
use crate::events::{EventType, emit};
use crate::id::{CallId, PaymentId, SessionId, TenantId, TokenId};
use crate::time::Timestamp;
use crate::vault_rows::{TokenRow, insert_token_in};
use ivrpay_card::{IdempotencyKey, MaskedPan, Money};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentStatus {
    /// Recorded; the gateway has not given a final answer yet.
    Pending,
    /// Charged.
    Succeeded,
    /// Declined by the issuer or gateway (no charge).
    Declined,
    /// Failed for another final reason (no charge).
    Failed,
}

impl PaymentStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for PaymentStatus {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        [Self::Pending, Self::Succeeded, Self::Declined, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(StoreError::Corrupt { what: "payment status" })
    }
}

/// Brand and last four digits: all of the card anyone outside the vault may see.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct CardSummary {
    /// `visa`, `mastercard`, `amex`, …
    pub brand: String,
    last4: String,
}

impl CardSummary {
    /// Brand and last four digits.
    ///
    /// # Errors
    /// [`StoreError::InvalidState`] unless `last4` is exactly four ASCII digits (anything
    /// longer could be more of the PAN than PCI DSS 3.4.1 allows).
    pub fn new(brand: &str, last4: &str) -> Result<Self, StoreError> {
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::InvalidState {
                operation: "store more than the last four digits",
            });
        }
        Ok(Self { brand: brand.to_owned(), last4: last4.to_owned() })
    }

    /// The last four digits.
    #[must_use]
    pub fn last4(&self) -> &str {
        &self.last4
    }
}

impl std::fmt::Debug for CardSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ••••{}", self.brand, self.last4)
    }
}

/// A payment to attempt.
#[derive(Debug, Clone)]
pub struct NewPayment {
    /// Owner.
    pub tenant_id: TenantId,
    /// Unique per tenant; the same key always means the same payment.
    pub idempotency_key: IdempotencyKey,
    /// What to charge.
    pub amount: Money,
    /// Shown on statements and receipts.
    pub description: Option<String>,
    /// The session that captured the card, if any.
    pub session_id: Option<SessionId>,
    /// The call, if any.
    pub call_id: Option<CallId>,
    /// The vault token of the card.
    pub token_id: Option<TokenId>,
    /// Brand and last four, for events and reports.
    pub card: Option<CardSummary>,
    /// Which gateway connector (`sandbox`, `stripe`, …).
    pub gateway: String,
}

/// A stored payment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct PaymentRecord {
    /// Id; also the idempotency key sent to the gateway.
    #[sqlx(try_from = "String")]
    pub id: PaymentId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// Session, if any.
    #[sqlx(try_from = "Option<String>")]
    #[serde(skip_serializing_if = "OptId::is_none")]
    pub session_id: OptId<SessionId>,
    /// Call, if any.
    #[sqlx(try_from = "Option<String>")]
    #[serde(skip_serializing_if = "OptId::is_none")]
    pub call_id: OptId<CallId>,
    /// Card token, if any.
    #[sqlx(try_from = "Option<String>")]
    #[serde(skip_serializing_if = "OptId::is_none")]
    pub token_id: OptId<TokenId>,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    #[sqlx(try_from = "String")]
    pub currency: CurrencyCode,
    /// Statement text.
    pub description: Option<String>,
    /// Card brand.
    pub brand: Option<String>,
    /// Card last four.
    pub last4: Option<String>,
    /// Connector name.
    pub gateway: String,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    /// The gateway's reference (`pi_…`).
    pub gateway_ref: Option<String>,
    /// Decline or error code (`insufficient_funds`).
    pub error_code: Option<String>,
    /// The gateway's message, safe to show the agent.
    pub error_message: Option<String>,
    /// Sum of succeeded refunds.
    pub refunded_minor: i64,
    /// First recorded.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
    /// Last changed.
    #[sqlx(rename = "updated_at_ms", try_from = "i64")]
    pub updated_at: Timestamp,
}

impl PaymentRecord {
    /// The amount as [`Money`].
    #[must_use]
    pub fn amount(&self) -> Money {
        money_from_db(self.amount_minor, self.currency)
    }
}

impl From<MaskedPan> for CardSummary {
    fn from(masked: MaskedPan) -> Self {
        Self {
            brand: masked.brand().map_or("unknown", |b| b.name()).to_owned(),
            last4: masked.last4().as_str().to_owned(),
        }
    }
}

/// An optional typed id as decoded from a nullable column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct OptId<T>(pub Option<T>);

impl<T> OptId<T> {
    /// The id, if any.
    #[must_use]
    pub fn as_ref(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// True when there is no id (used by serde's skip).
    #[must_use]
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<T: TryFrom<String>> TryFrom<Option<String>> for OptId<T> {
    type Error = T::Error;
    fn try_from(text: Option<String>) -> Result<Self, Self::Error> {
        text.map(T::try_from).transpose().map(OptId)
    }
}

macro_rules! payment_columns {
    () => {
        "id, tenant_id, idempotency_key, session_id, call_id, token_id, amount_minor, currency,
         description, brand, last4, gateway, status, gateway_ref, error_code, error_message,
         refunded_minor, created_at_ms, updated_at_ms"
    };
}

/// A payment whose gateway answer is still to be recorded. Obtained only from
/// [`Store::begin_payment`]; consumed by [`Store::record_payment_result`].
#[derive(Debug)]
#[must_use = "a pending payment must be sent to the gateway and its result recorded"]
pub struct PendingPayment {
    record: PaymentRecord,
    resumed: bool,
}

impl PendingPayment {
    /// The stored row.
    pub fn record(&self) -> &PaymentRecord {
        &self.record
    }

    /// The payment id.
    pub fn id(&self) -> &PaymentId {
        &self.record.id
    }

    /// The key to send as the gateway's `Idempotency-Key`: the payment id, identical on every
    /// retry of this payment, including after a crash and restart.
    pub fn gateway_idempotency_key(&self) -> &str {
        self.record.id.as_str()
    }

    /// True when the row existed already (a retry after a crash or a lost answer): the gateway
    /// may have charged and will replay its answer for the same key.
    pub fn resumed(&self) -> bool {
        self.resumed
    }
}

/// What [`Store::begin_payment`] found.
#[derive(Debug)]
#[must_use]
pub enum BegunPayment {
    /// Call the gateway (again) with [`PendingPayment::gateway_idempotency_key`].
    Pending(PendingPayment),
    /// The key already has a final result: return it, do not call the gateway.
    Finished(PaymentRecord),
}

/// The gateway's final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentOutcome {
    /// Charged.
    Succeeded {
        /// The gateway's reference.
        gateway_ref: String,
    },
    /// Declined (a card error: tell the agent, no charge).
    Declined {
        /// The gateway's reference, when it created one.
        gateway_ref: Option<String>,
        /// Decline code (`insufficient_funds`).
        code: String,
        /// Message safe to show the agent.
        message: Option<String>,
    },
    /// Failed finally for another reason (no charge).
    Failed {
        /// The gateway's reference, when it created one.
        gateway_ref: Option<String>,
        /// Error code.
        code: String,
        /// Message safe to show the agent.
        message: Option<String>,
    },
}

impl Store {
    /// Records a payment attempt before the gateway is called, or finds the one recorded
    /// earlier under the same idempotency key.
    ///
    /// # Errors
    /// [`StoreError::IdempotencyConflict`] when the key was used for a different amount or
    /// currency; [`StoreError::Database`] on failure.
    pub async fn begin_payment(
        &self,
        new: &NewPayment,
        now: Timestamp,
    ) -> Result<BegunPayment, StoreError> {
        self.begin_payment_with(new, None, now).await
    }

    /// As [`Store::begin_payment`], with the card's new token (`new.token_id` is its id)
    /// written in the same transaction: one commit, one wait for the disk, before the
    /// gateway call instead of two. The token is kept even when the key turns out to have
    /// a payment already (as it would be had it been stored on its own first).
    ///
    /// # Errors
    /// As [`Store::begin_payment`].
    pub async fn begin_payment_with_token(
        &self,
        new: &NewPayment,
        token: &TokenRow,
        now: Timestamp,
    ) -> Result<BegunPayment, StoreError> {
        self.begin_payment_with(new, Some(token.clone()), now).await
    }

    /// The attempt (with the token, if any) in one urgent transaction, or the payment the
    /// key already has.
    async fn begin_payment_with(
        &self,
        new: &NewPayment,
        token: Option<TokenRow>,
        now: Timestamp,
    ) -> Result<BegunPayment, StoreError> {
        let amount_minor = minor_to_db(new.amount)?;
        let id = PaymentId::generate(now);
        let attempt = new.clone();
        // Committed before the gateway call: the attempt is durable first. A conflict means
        // the key was used before: read what is there.
        let inserted: Option<PaymentRecord> = self
            .write(Urgency::Urgent, move |tx| {
                Box::pin(async move {
                    if let Some(token) = &token {
                        insert_token_in(tx, token).await?;
                    }
                    let new = attempt;
                    Ok(on_tx!(tx, c => sqlx::query_as(concat!(
                        "INSERT INTO payments (id, tenant_id, idempotency_key, session_id, call_id, token_id,
                             amount_minor, currency, description, brand, last4, gateway, status,
                             refunded_minor, created_at_ms, updated_at_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0, $13, $13)
                         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING ", payment_columns!()
                    ))
                    .bind(id.as_str())
                    .bind(new.tenant_id.as_str())
                    .bind(new.idempotency_key.as_str())
                    .bind(new.session_id.as_ref().map(SessionId::as_str))
                    .bind(new.call_id.as_ref().map(CallId::as_str))
                    .bind(new.token_id.as_ref().map(TokenId::as_str))
                    .bind(amount_minor)
                    .bind(new.amount.currency().code())
                    .bind(new.description.as_deref())
                    .bind(new.card.as_ref().map(|c| c.brand.as_str()))
                    .bind(new.card.as_ref().map(CardSummary::last4))
                    .bind(&new.gateway)
                    .bind(now.unix_ms())
                    .fetch_optional(&mut **c)
                    .await?))
                })
            })
            .await?;
        let resumed = inserted.is_none();
        let record: PaymentRecord = match inserted {
            Some(record) => record,
            None => self
                .payment_by_key(&new.tenant_id, &new.idempotency_key)
                .await?
                .ok_or(StoreError::NotFound { kind: "payment" })?,
        };
        if record.amount() != new.amount {
            return Err(StoreError::IdempotencyConflict { kind: "payment" });
        }
        Ok(match record.status {
            PaymentStatus::Pending => BegunPayment::Pending(PendingPayment { record, resumed }),
            _ => BegunPayment::Finished(record),
        })
    }

    /// Records the gateway's final answer    /// Records the gateway's final answer, its outbox event and its deliveries in one
    /// transaction, and completes the payment's session: the answer, whatever it is, is the
    /// session's result.
    ///
    /// If another worker recorded a result first, that result stands and is returned (no
    /// second event).
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure; nothing is written then, and the payment stays
    /// pending for a retry.
    pub async fn record_payment_result(
        &self,
        pending: PendingPayment,
        outcome: &PaymentOutcome,
        now: Timestamp,
    ) -> Result<PaymentRecord, StoreError> {
        let outcome = outcome.clone();
        self.write(Urgency::Urgent, move |tx| {
            Box::pin(async move {
                let (status, gateway_ref, code, message) = match &outcome {
                    PaymentOutcome::Succeeded { gateway_ref } => {
                        (PaymentStatus::Succeeded, Some(gateway_ref), None, None)
                    }
                    PaymentOutcome::Declined { gateway_ref, code, message } => {
                        (PaymentStatus::Declined, gateway_ref.as_ref(), Some(code), message.as_ref())
                    }
                    PaymentOutcome::Failed { gateway_ref, code, message } => {
                        (PaymentStatus::Failed, gateway_ref.as_ref(), Some(code), message.as_ref())
                    }
                };
                let id = pending.record.id;
                let updated: Option<PaymentRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "UPDATE payments SET status = $2, gateway_ref = $3, error_code = $4, error_message = $5,
                         updated_at_ms = $6
                     WHERE id = $1 AND status = 'pending' RETURNING ", payment_columns!()
                ))
                .bind(id.as_str())
                .bind(status.as_str())
                .bind(gateway_ref)
                .bind(code)
                .bind(message)
                .bind(now.unix_ms())
                .fetch_optional(&mut **c)
                .await?);
                let Some(record) = updated else {
                    let existing: PaymentRecord = on_tx!(tx, c => sqlx::query_as(concat!(
                        "SELECT ", payment_columns!(), " FROM payments WHERE id = $1"
                    ))
                    .bind(id.as_str())
                    .fetch_one(&mut **c)
                    .await?);
                    return Ok(existing);
                };
                let event_type = match status {
                    PaymentStatus::Succeeded => EventType::PaymentSucceeded,
                    PaymentStatus::Declined => EventType::PaymentDeclined,
                    _ => EventType::PaymentFailed,
                };
                emit(
                    tx,
                    &record.tenant_id,
                    event_type,
                    record.id.as_str(),
                    payment_payload(&record),
                    now,
                )
                .await?;
                // The answer ends the session, whatever it was: the key now names this result, so
                // another card is another session.
                if let Some(session) = record.session_id.as_ref() {
                    crate::sessions::complete_in_tx(
                        tx,
                        &record.tenant_id,
                        session,
                        None,
                        Some(&record.id),
                        now,
                    )
                    .await?;
                }
                Ok(record)
            })
        })
        .await
    }

    /// A payment by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the tenant has no such payment.
    pub async fn payment(
        &self,
        tenant: &TenantId,
        id: &PaymentId,
    ) -> Result<PaymentRecord, StoreError> {
        let found: Option<PaymentRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", payment_columns!(), " FROM payments WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "payment" })
    }

    /// A payment by its idempotency key.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn payment_by_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", payment_columns!(), " FROM payments WHERE tenant_id = $1 AND idempotency_key = $2"
        ))
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(p)
        .await?))
    }
}

/// The event data for a payment: the record as JSON (brand and last four at most).
pub(crate) fn payment_payload(record: &PaymentRecord) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}
