//! What the settlement report reads: the payments captured and the refunds made in a time
//! range, timed by their `payment.succeeded` / `refund.succeeded` events (the commit of the
//! gateway's answer, which never changes afterwards, unlike `updated_at`).

use crate::Store;
use crate::backend::on_pool;
use crate::error::StoreError;
use crate::id::TenantId;
use crate::time::Timestamp;

/// A captured payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SettledPayment {
    /// Payment id.
    pub payment_id: String,
    /// When the gateway's success was recorded.
    pub captured_at_ms: i64,
    /// Gross, minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// Card brand.
    pub brand: Option<String>,
    /// Last four digits.
    pub last4: Option<String>,
    /// Connector.
    pub gateway: String,
    /// The gateway's reference.
    pub gateway_ref: Option<String>,
    /// The call it was taken on.
    pub call_id: Option<String>,
    /// Statement text.
    pub description: Option<String>,
}

/// A refund that went through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SettledRefund {
    /// Refund id.
    pub refund_id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// When the gateway's success was recorded.
    pub refunded_at_ms: i64,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// The payment's card brand.
    pub brand: Option<String>,
    /// The payment's last four.
    pub last4: Option<String>,
    /// The gateway's refund reference.
    pub gateway_ref: Option<String>,
}

impl Store {
    /// Payments captured in `[from, to)`, in capture order.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn settled_payments(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SettledPayment>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT p.id AS payment_id, o.created_at_ms AS captured_at_ms, p.amount_minor, p.currency,
                    p.brand, p.last4, p.gateway, p.gateway_ref, p.call_id, p.description
             FROM outbox o JOIN payments p ON p.id = o.subject_id
             WHERE o.tenant_id = $1 AND o.event_type = 'payment.succeeded'
               AND o.created_at_ms >= $2 AND o.created_at_ms < $3
             ORDER BY o.created_at_ms, o.seq",
        )
        .bind(tenant.as_str())
        .bind(from.unix_ms())
        .bind(to.unix_ms())
        .fetch_all(p)
        .await?))
    }

    /// Refunds that succeeded in `[from, to)`, in order.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn settled_refunds(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SettledRefund>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT r.id AS refund_id, r.payment_id, o.created_at_ms AS refunded_at_ms, r.amount_minor,
                    r.currency, p.brand, p.last4, r.gateway_ref
             FROM outbox o JOIN refunds r ON r.id = o.subject_id JOIN payments p ON p.id = r.payment_id
             WHERE o.tenant_id = $1 AND o.event_type = 'refund.succeeded'
               AND o.created_at_ms >= $2 AND o.created_at_ms < $3
             ORDER BY o.created_at_ms, o.seq",
        )
        .bind(tenant.as_str())
        .bind(from.unix_ms())
        .bind(to.unix_ms())
        .fetch_all(p)
        .await?))
    }
}
