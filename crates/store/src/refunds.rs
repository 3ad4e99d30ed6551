//! Refunds, full and partial, with the same begin/record shape as payments.
//!
//! A refund is checked against the payment under a lock on the payment row (`FOR UPDATE` on
//! PostgreSQL; SQLite's write transaction already excludes other writers): the sum of pending
//! and succeeded refunds never exceeds the amount charged, however many refunds race.

use serde_json::json;

use crate::Store;
use crate::backend::{Tx, Urgency, on_pool, on_tx};
use crate::currency::{CurrencyCode, minor_to_db, money_from_db};
use crate::error::StoreError;
use crate::events::{EventType, emit};
use crate::id::{PaymentId, RefundId, TenantId};
use crate::payments::PaymentStatus;
use crate::time::Timestamp;
use ivrpay_card::{IdempotencyKey, Money};

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundStatus {
    /// Sent (or about to be sent) to the gateway.
    Pending,
    /// Refunded.
    Succeeded,
    /// Refused.
    Failed,
}

impl RefundStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl TryFrom<String> for RefundStatus {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(StoreError::Corrupt { what: "refund status" })
    }
}

/// A refund to attempt.
#[derive(Debug, Clone)]
pub struct NewRefund {
    /// Owner.
    pub tenant_id: TenantId,
    /// The payment to refund.
    pub payment_id: PaymentId,
    /// Unique per tenant.
    pub idempotency_key: IdempotencyKey,
    /// How much (in the payment's currency).
    pub amount: Money,
    /// Why.
    pub reason: Option<String>,
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct RefundRecord {
    /// Id; also the gateway idempotency key.
    #[sqlx(try_from = "String")]
    pub id: RefundId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// Refunded payment.
    #[sqlx(try_from = "String")]
    pub payment_id: PaymentId,
    /// The caller's key.
    pub idempotency_key: String,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    #[sqlx(try_from = "String")]
    pub currency: CurrencyCode,
    /// Why.
    pub reason: Option<String>,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: RefundStatus,
    /// Gateway reference (`re_…`).
    pub gateway_ref: Option<String>,
    /// Error code.
    pub error_code: Option<String>,
    /// Error message.
    pub error_message: Option<String>,
    /// First recorded.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
    /// Last changed.
    #[sqlx(rename = "updated_at_ms", try_from = "i64")]
    pub updated_at: Timestamp,
}

impl RefundRecord {
    /// The amount as [`Money`].
    #[must_use]
    pub fn amount(&self) -> Money {
        money_from_db(self.amount_minor, self.currency)
    }
}

macro_rules! refund_columns {
    () => {
        "id, tenant_id, payment_id, idempotency_key, amount_minor, currency, reason, status,
         gateway_ref, error_code, error_message, created_at_ms, updated_at_ms"
    };
}

/// A refund whose gateway answer is still to be recorded.
#[derive(Debug)]
#[must_use = "a pending refund must be sent to the gateway and its result recorded"]
pub struct PendingRefund {
    record: RefundRecord,
    gateway_payment_ref: Option<String>,
}

impl PendingRefund {
    /// The stored row.
    pub fn record(&self) -> &RefundRecord {
        &self.record
    }

    /// The gateway idempotency key: the refund id, the same on every retry.
    pub fn gateway_idempotency_key(&self) -> &str {
        self.record.id.as_str()
    }

    /// The gateway's reference of the payment being refunded.
    pub fn gateway_payment_ref(&self) -> Option<&str> {
        self.gateway_payment_ref.as_deref()
    }
}

/// What [`Store::begin_refund`] found.
#[derive(Debug)]
#[must_use]
pub enum BegunRefund {
    /// Call the gateway (again) with the refund id as idempotency key.
    Pending(PendingRefund),
    /// The key already has a final result.
    Finished(RefundRecord),
}

/// The gateway's final answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefundOutcome {
    /// Refunded.
    Succeeded {
        /// The gateway's refund reference.
        gateway_ref: String,
    },
    /// Refused.
    Failed {
        /// Error code.
        code: String,
        /// Message.
        message: Option<String>,
    },
}

struct PaymentForRefund {
    status: String,
    amount_minor: i64,
    currency: String,
    gateway_ref: Option<String>,
    committed_minor: i64,
}

async fn payment_for_refund(
    tx: &mut Tx,
    tenant: &TenantId,
    payment: &PaymentId,
) -> Result<Option<PaymentForRefund>, StoreError> {
    // Lock the payment row first (PostgreSQL), then sum its live refunds.
    let row: Option<(String, i64, String, Option<String>)> = match tx {
        Tx::Postgres(c) => {
            sqlx::query_as(
                "SELECT status, amount_minor, currency, gateway_ref FROM payments
             WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            )
            .bind(tenant.as_str())
            .bind(payment.as_str())
            .fetch_optional(&mut **c)
            .await?
        }
        Tx::Sqlite(c) => {
            sqlx::query_as(
                "SELECT status, amount_minor, currency, gateway_ref FROM payments
             WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(payment.as_str())
            .fetch_optional(&mut **c)
            .await?
        }
    };
    let Some((status, amount_minor, currency, gateway_ref)) = row else { return Ok(None) };
    let committed_minor: i64 = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds
         WHERE payment_id = $1 AND status IN ('pending', 'succeeded')",
    )
    .bind(payment.as_str())
    .fetch_one(&mut **c)
    .await?);
    Ok(Some(PaymentForRefund { status, amount_minor, currency, gateway_ref, committed_minor }))
}

impl Store {
    /// Records a refund attempt after checking it against the payment, or finds the one
    /// recorded earlier under the same key.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown payment, [`StoreError::InvalidState`] unless
    /// the payment succeeded, [`StoreError::RefundExceedsPayment`],
    /// [`StoreError::IdempotencyConflict`].
    pub async fn begin_refund(
        &self,
        new: &NewRefund,
        now: Timestamp,
    ) -> Result<BegunRefund, StoreError> {
        let amount_minor = minor_to_db(new.amount)?;
        if amount_minor == 0 {
            return Err(StoreError::InvalidState { operation: "refund a zero amount" });
        }
        let new = new.clone();
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let existing: Option<RefundRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "SELECT ", refund_columns!(), " FROM refunds WHERE tenant_id = $1 AND idempotency_key = $2"
                ))
                .bind(new.tenant_id.as_str())
                .bind(new.idempotency_key.as_str())
                .fetch_optional(&mut **c)
                .await?);
                let payment = payment_for_refund(tx, &new.tenant_id, &new.payment_id)
                    .await?
                    .ok_or(StoreError::NotFound { kind: "payment" })?;
                if let Some(record) = existing {
                    if record.payment_id != new.payment_id || record.amount() != new.amount {
                        return Err(StoreError::IdempotencyConflict { kind: "refund" });
                    }
                    return Ok(match record.status {
                        RefundStatus::Pending => BegunRefund::Pending(PendingRefund {
                            record,
                            gateway_payment_ref: payment.gateway_ref,
                        }),
                        _ => BegunRefund::Finished(record),
                    });
                }
                if payment.status != PaymentStatus::Succeeded.as_str() {
                    return Err(StoreError::InvalidState {
                        operation: "refund a payment that did not succeed",
                    });
                }
                if payment.currency != new.amount.currency().code()
                    || payment.committed_minor.saturating_add(amount_minor) > payment.amount_minor
                {
                    return Err(StoreError::RefundExceedsPayment);
                }
                let id = RefundId::generate(now);
                let record: RefundRecord = on_tx!(tx, c => sqlx::query_as(concat!(
                    "INSERT INTO refunds (id, tenant_id, payment_id, idempotency_key, amount_minor, currency,
                         reason, status, created_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8) RETURNING ", refund_columns!()
                ))
                .bind(id.as_str())
                .bind(new.tenant_id.as_str())
                .bind(new.payment_id.as_str())
                .bind(new.idempotency_key.as_str())
                .bind(amount_minor)
                .bind(new.amount.currency().code())
                .bind(new.reason.as_deref())
                .bind(now.unix_ms())
                .fetch_one(&mut **c)
                .await?);
                Ok(BegunRefund::Pending(PendingRefund { record, gateway_payment_ref: payment.gateway_ref }))
            })
        })
        .await
    }

    /// Records a refund's answer, the payment's refunded total and the event in one
    /// transaction. A result recorded first by someone else stands.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure (nothing written).
    pub async fn record_refund_result(
        &self,
        pending: PendingRefund,
        outcome: &RefundOutcome,
        now: Timestamp,
    ) -> Result<RefundRecord, StoreError> {
        let outcome = outcome.clone();
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let (status, gateway_ref, code, message) = match &outcome {
                    RefundOutcome::Succeeded { gateway_ref } => {
                        (RefundStatus::Succeeded, Some(gateway_ref), None, None)
                    }
                    RefundOutcome::Failed { code, message } => {
                        (RefundStatus::Failed, None, Some(code), message.as_ref())
                    }
                };
                let id = pending.record.id;
                let updated: Option<RefundRecord> = on_tx!(tx, c => sqlx::query_as(concat!(
                    "UPDATE refunds SET status = $2, gateway_ref = $3, error_code = $4, error_message = $5,
                         updated_at_ms = $6
                     WHERE id = $1 AND status = 'pending' RETURNING ", refund_columns!()
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
                    let existing: RefundRecord = on_tx!(tx, c => sqlx::query_as(concat!(
                        "SELECT ", refund_columns!(), " FROM refunds WHERE id = $1"
                    ))
                    .bind(id.as_str())
                    .fetch_one(&mut **c)
                    .await?);
                    return Ok(existing);
                };
                if status == RefundStatus::Succeeded {
                    on_tx!(tx, c => sqlx::query(
                        "UPDATE payments SET refunded_minor = refunded_minor + $2, updated_at_ms = $3 WHERE id = $1",
                    )
                    .bind(record.payment_id.as_str())
                    .bind(record.amount_minor)
                    .bind(now.unix_ms())
                    .execute(&mut **c)
                    .await?.rows_affected());
                }
                let event_type = if status == RefundStatus::Succeeded {
                    EventType::RefundSucceeded
                } else {
                    EventType::RefundFailed
                };
                let payload = serde_json::to_value(&record).unwrap_or_else(|_| json!({}));
                emit(tx, &record.tenant_id, event_type, record.id.as_str(), payload, now).await?;
                Ok(record)
            })
        })
        .await
    }

    /// The refunds of a payment, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn refunds_of(
        &self,
        tenant: &TenantId,
        payment: &PaymentId,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", refund_columns!(), " FROM refunds WHERE tenant_id = $1 AND payment_id = $2 ORDER BY created_at_ms, id"
        ))
        .bind(tenant.as_str())
        .bind(payment.as_str())
        .fetch_all(p)
        .await?))
    }
}
