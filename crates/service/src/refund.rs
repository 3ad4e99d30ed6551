//! Refunds: recorded before the gateway call, like payments, so a crash or an unanswered
//! call leaves a pending refund that a retry with the same key resolves without refunding
//! twice (the refund's id is the gateway's idempotency key).

use ivrpay_card::{IdempotencyKey, Money};
use ivrpay_payments::{GatewayError, RefundRequest};
use ivrpay_store::{BegunRefund, NewRefund, PaymentId, RefundOutcome, RefundRecord, StoreError};

use crate::error::ServiceError;
use crate::service::Context;

/// A refund to make.
#[derive(Clone, Debug)]
pub struct RefundPayment {
    pub payment: PaymentId,
    /// `None` refunds what is left of the payment.
    pub amount: Option<Money>,
    pub reason: Option<String>,
    /// One key per refund: a retry with the same key never refunds twice.
    pub idempotency_key: IdempotencyKey,
}

pub(crate) async fn refund(
    ctx: &Context,
    request: RefundPayment,
) -> Result<RefundRecord, ServiceError> {
    let tenant = &ctx.config.tenant;
    let payment = ctx.store.payment(tenant, &request.payment).await?;
    let amount = match request.amount {
        Some(amount) => amount,
        None => {
            let left = payment.amount_minor.saturating_sub(payment.refunded_minor);
            let left = u64::try_from(left).map_err(|_| {
                ServiceError::Store(StoreError::Corrupt { what: "refunded amount" })
            })?;
            Money::from_minor(left, payment.amount().currency())
        }
    };
    let new = NewRefund {
        tenant_id: tenant.clone(),
        payment_id: request.payment,
        idempotency_key: request.idempotency_key,
        amount,
        reason: request.reason,
    };
    let pending = match ctx.store.begin_refund(&new, ctx.clock.now()).await? {
        BegunRefund::Finished(record) => return Ok(record),
        BegunRefund::Pending(pending) => pending,
    };
    let charge_id = pending
        .gateway_payment_ref()
        .ok_or(ServiceError::InvalidState("refund a payment the gateway has no reference for"))?
        .to_owned();
    let key = IdempotencyKey::new(pending.gateway_idempotency_key().to_owned())
        .map_err(|_| ServiceError::Store(StoreError::Corrupt { what: "refund id" }))?;
    let gateway_request =
        RefundRequest { idempotency_key: &key, charge_id: &charge_id, amount: Some(amount) };
    let outcome = match send_with_retries(ctx, &gateway_request).await {
        Ok(refunded) => RefundOutcome::Succeeded { gateway_ref: refunded.refund_id },
        Err(error) if error.is_retryable() => {
            return Err(ServiceError::GatewayUnavailable(error.kind()));
        }
        Err(error) => RefundOutcome::Failed {
            code: error.kind().to_owned(),
            message: Some(error.to_string()),
        },
    };
    Ok(ctx.store.record_refund_result(pending, &outcome, ctx.clock.now()).await?)
}

/// The refund request, retried with the same key as the payment policy says.
async fn send_with_retries(
    ctx: &Context,
    request: &RefundRequest<'_>,
) -> Result<ivrpay_payments::Refunded, GatewayError> {
    let policy = &ctx.config.retry;
    let mut pauses = policy.backoff.iter();
    loop {
        let result =
            match tokio::time::timeout(policy.try_timeout, ctx.gateway.refund(request)).await {
                Ok(result) => result,
                Err(_) => Err(GatewayError::Timeout),
            };
        match result {
            Err(error) if error.is_retryable() => match pauses.next() {
                Some(&pause) => tokio::time::sleep(pause).await,
                None => return Err(error),
            },
            done => return done,
        }
    }
}
