//! Payment requests for IVR self-service: an amount owed, made over the API before the call,
//! that the caller finds by keying its short numeric reference.
//!
//! A request is `open` until a call claims it (`claimed`, with the call's id: two callers
//! keying the same reference cannot both pay it), then `paid` with its session and payment,
//! or back to `open` when the claiming call ends without paying. It may carry an expiry; an
//! expired request cannot be claimed and is marked `expired` when a new request would reuse
//! its reference. References are unique among open and claimed requests only (a partial
//! unique index), so short references are reused once their request is over.

use crate::Store;
use crate::backend::{Urgency, on_pool, on_tx, write_one};
use crate::currency::{CurrencyCode, minor_to_db, money_from_db};
use crate::error::StoreError;
use crate::id::{CallId, PaymentId, PaymentRequestId, SessionId, TenantId};
use crate::payments::OptId;
use crate::time::Timestamp;
use ivrpay_card::Money;

/// Where a payment request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentRequestStatus {
    /// Waiting for a caller.
    Open,
    /// A call is paying it.
    Claimed,
    /// Paid.
    Paid,
    /// Its expiry passed before it was paid.
    Expired,
}

impl PaymentRequestStatus {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Claimed => "claimed",
            Self::Paid => "paid",
            Self::Expired => "expired",
        }
    }
}

impl TryFrom<String> for PaymentRequestStatus {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        [Self::Open, Self::Claimed, Self::Paid, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(StoreError::Corrupt { what: "payment request status" })
    }
}

/// A payment request to create.
#[derive(Debug, Clone)]
pub struct NewPaymentRequest {
    /// Owner.
    pub tenant_id: TenantId,
    /// The digits the caller keys; unique among the tenant's open and claimed requests.
    pub reference: String,
    /// What to charge.
    pub amount: Money,
    /// Statement text.
    pub description: Option<String>,
    /// The merchant's customer reference.
    pub customer_ref: Option<String>,
    /// After this it cannot be paid.
    pub expires_at: Option<Timestamp>,
}

/// A stored payment request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct PaymentRequestRecord {
    /// Id (`preq_…`).
    #[sqlx(try_from = "String")]
    pub id: PaymentRequestId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// The digits the caller keys.
    pub reference: String,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    #[sqlx(try_from = "String")]
    pub currency: CurrencyCode,
    /// Statement text.
    pub description: Option<String>,
    /// The merchant's customer reference.
    pub customer_ref: Option<String>,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: PaymentRequestStatus,
    /// The call paying it (while claimed) or that paid it.
    #[sqlx(try_from = "Option<String>")]
    pub call_id: OptId<CallId>,
    /// The session that paid it.
    #[sqlx(try_from = "Option<String>")]
    pub session_id: OptId<SessionId>,
    /// The payment, once paid.
    #[sqlx(try_from = "Option<String>")]
    pub payment_id: OptId<PaymentId>,
    /// Expiry, in UTC milliseconds.
    pub expires_at_ms: Option<i64>,
    /// Created.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
    /// Last changed.
    #[sqlx(rename = "updated_at_ms", try_from = "i64")]
    pub updated_at: Timestamp,
}

impl PaymentRequestRecord {
    /// The amount as [`Money`].
    #[must_use]
    pub fn amount(&self) -> Money {
        money_from_db(self.amount_minor, self.currency)
    }
}

macro_rules! request_columns {
    () => {
        "id, tenant_id, reference, amount_minor, currency, description, customer_ref, status,
         call_id, session_id, payment_id, expires_at_ms, created_at_ms, updated_at_ms"
    };
}

impl Store {
    /// Creates a payment request. Open requests of the tenant whose expiry has passed are
    /// marked expired first, which frees their references.
    ///
    /// # Errors
    /// A unique violation ([`StoreError::is_unique_violation`]) when an open or claimed
    /// request has the same reference: pick another and retry.
    pub async fn create_payment_request(
        &self,
        new: &NewPaymentRequest,
        now: Timestamp,
    ) -> Result<PaymentRequestRecord, StoreError> {
        let new = new.clone();
        let amount_minor = minor_to_db(new.amount)?;
        let id = PaymentRequestId::generate(now);
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                on_tx!(tx, c => sqlx::query(
                    "UPDATE payment_requests SET status = 'expired', updated_at_ms = $2
                     WHERE tenant_id = $1 AND status = 'open' AND expires_at_ms <= $2"
                )
                .bind(new.tenant_id.as_str())
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                Ok(on_tx!(tx, c => sqlx::query_as(concat!(
                    "INSERT INTO payment_requests (id, tenant_id, reference, amount_minor, currency,
                         description, customer_ref, status, expires_at_ms, created_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $9) RETURNING ",
                    request_columns!()
                ))
                .bind(id.as_str())
                .bind(new.tenant_id.as_str())
                .bind(new.reference.as_str())
                .bind(amount_minor)
                .bind(new.amount.currency().code())
                .bind(new.description.as_deref())
                .bind(new.customer_ref.as_deref())
                .bind(new.expires_at.map(Timestamp::unix_ms))
                .bind(now.unix_ms())
                .fetch_one(&mut **c)
                .await?))
            })
        })
        .await
    }

    /// A payment request by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn payment_request(
        &self,
        tenant: &TenantId,
        id: &PaymentRequestId,
    ) -> Result<PaymentRequestRecord, StoreError> {
        let found: Option<PaymentRequestRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", request_columns!(), " FROM payment_requests WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "payment request" })
    }

    /// The open, unexpired request with this reference, claimed for `call` in the same
    /// statement; `None` when there is none (unknown, expired, paid, or claimed by another
    /// call).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn claim_payment_request(
        &self,
        tenant: &TenantId,
        reference: &str,
        call: &CallId,
        now: Timestamp,
    ) -> Result<Option<PaymentRequestRecord>, StoreError> {
        let (tenant, reference, call) = (tenant.clone(), reference.to_owned(), call.clone());
        self.write_statement(move |tx| {
            Box::pin(async move {
                Ok(on_tx!(tx, c => sqlx::query_as(concat!(
                    "UPDATE payment_requests SET status = 'claimed', call_id = $3, updated_at_ms = $4
                     WHERE tenant_id = $1 AND reference = $2 AND status = 'open'
                       AND (expires_at_ms IS NULL OR expires_at_ms > $4)
                     RETURNING ", request_columns!()
                ))
                .bind(tenant.as_str())
                .bind(&reference)
                .bind(call.as_str())
                .bind(now.unix_ms())
                .fetch_optional(&mut **c)
                .await?))
            })
        })
        .await
    }

    /// Gives a request `call` claimed back (the call ended without paying it): open again,
    /// or expired if its expiry has passed meanwhile. A request not claimed by that call is
    /// left as it is; returns whether one was released.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn release_payment_request(
        &self,
        tenant: &TenantId,
        id: &PaymentRequestId,
        call: &CallId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (tenant, id, call) = (tenant.clone(), id.clone(), call.clone());
        let changed = write_one!(
            self,
            sqlx::query(
                "UPDATE payment_requests
                 SET status = CASE WHEN expires_at_ms <= $4 THEN 'expired' ELSE 'open' END,
                     call_id = NULL, updated_at_ms = $4
                 WHERE tenant_id = $1 AND id = $2 AND status = 'claimed' AND call_id = $3"
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(call.as_str())
            .bind(now.unix_ms())
        )
        .await?;
        Ok(changed == 1)
    }

    /// Marks a request `call` claimed as paid by `session` (its payment succeeded).
    ///
    /// # Errors
    /// [`StoreError::InvalidState`] when the request is not claimed by that call.
    pub async fn settle_payment_request(
        &self,
        tenant: &TenantId,
        id: &PaymentRequestId,
        call: &CallId,
        session: &SessionId,
        payment: Option<&PaymentId>,
        now: Timestamp,
    ) -> Result<PaymentRequestRecord, StoreError> {
        let (tenant, id, call) = (tenant.clone(), id.clone(), call.clone());
        let (session, payment) = (session.clone(), payment.cloned());
        let paid: Option<PaymentRequestRecord> = self
            .write_statement(move |tx| {
                Box::pin(async move {
                    Ok(on_tx!(tx, c => sqlx::query_as(concat!(
                        "UPDATE payment_requests SET status = 'paid', session_id = $4, payment_id = $5,
                             updated_at_ms = $6
                         WHERE tenant_id = $1 AND id = $2 AND status = 'claimed' AND call_id = $3
                         RETURNING ", request_columns!()
                    ))
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(call.as_str())
                    .bind(session.as_str())
                    .bind(payment.as_ref().map(PaymentId::as_str))
                    .bind(now.unix_ms())
                    .fetch_optional(&mut **c)
                    .await?))
                })
            })
            .await?;
        paid.ok_or(StoreError::InvalidState {
            operation: "settle a request this call has not claimed",
        })
    }
}
