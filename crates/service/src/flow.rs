//! Completing a session: the card goes to the vault and the gateway, the result to the store.
//!
//! The order makes a crash harmless at every point (see the store's "Driving a payment"):
//!
//! 1. the vault encrypts the PAN and gives a token (no CVV ever reaches it);
//! 2. the store records the token and the attempt in one transaction *before* the gateway
//!    call, keyed by the session's idempotency key; the attempt's id is the gateway's
//!    idempotency key;
//! 3. the gateway charges (the card is wiped as soon as it answers);
//! 4. the store records the answer with its events in one transaction.
//!
//! A crash before 2 charged nothing. A crash after 2 left a pending attempt: the retry with
//! the same idempotency key resumes it and sends the same gateway key, so the gateway replays
//! its first answer instead of charging twice. An unanswered gateway call records nothing and
//! leaves the attempt pending for the same reason.

use ivrpay_capture::Completed;
use ivrpay_card::{IdempotencyKey, TokenType};
use ivrpay_payments::{Answer, GatewayError, PaymentAttempt, Submission};
use ivrpay_store::{
    BegunPayment, CardSummary, NewPayment, PaymentOutcome, PaymentRecord, SessionRecord, TokenId,
};
use tracing::warn;

use crate::error::ServiceError;
use crate::service::Context;

/// How a completion ended.
#[derive(Debug)]
pub(crate) enum Finished {
    /// The gateway answered (or had answered before, for a resumed key): the stored result.
    Payment(PaymentRecord),
    /// A zero-amount session: the card's token.
    Token(TokenId),
    /// The gateway could not be reached: nothing recorded, the attempt stays pending; a retry
    /// with the same key (re-entering the card) resolves it.
    Unanswered { payment: PaymentRecord, error: String },
}

/// `feed_events` writes the session's feed events up to `payment.processing`: it runs while
/// the card's token and the attempt are written (on SQLite the writes share a commit, one
/// wait for the disk before the charge), and is done before the gateway is called, so the
/// feed always has `payment.processing` before the result.
pub(crate) async fn complete(
    ctx: &Context,
    session: &SessionRecord,
    completed: Completed,
    feed_events: impl std::future::Future<Output = ()>,
) -> Result<Finished, ServiceError> {
    let Completed { card, operation, idempotency_key, description, customer_reference } = completed;
    let now = ctx.clock.now();
    let amount = match operation {
        ivrpay_capture::Operation::Tokenize(token_type) => {
            // Nothing to charge: the token is the result.
            let tokenize = ctx.vault.tokenize(
                &ctx.config.tenant,
                &card.pan,
                card.expiry,
                token_type,
                None,
                now,
            );
            let (token, ()) = tokio::join!(tokenize, feed_events);
            drop(card);
            let token = token?;
            ctx.store
                .complete_session_with_token(
                    &ctx.config.tenant,
                    &session.id,
                    &token.id,
                    ctx.clock.now(),
                )
                .await?;
            return Ok(Finished::Token(token.id));
        }
        ivrpay_capture::Operation::Charge(amount) => amount,
    };
    // A charge's token is written with its attempt (below), not on its own.
    let sealed = ctx
        .vault
        .seal(&ctx.config.tenant, &card.pan, card.expiry, TokenType::OneTime, None, now)
        .await?;
    let token = sealed.token;
    let summary = CardSummary::new(token.brand.map_or("unknown", |b| b.name()), &token.last4)?;
    let new = NewPayment {
        tenant_id: ctx.config.tenant.clone(),
        idempotency_key: idempotency_key.clone(),
        amount,
        description: Some(description.clone()).filter(|d| !d.is_empty()),
        session_id: Some(session.id.clone()),
        call_id: session.call_id.as_ref().cloned(),
        token_id: Some(token.id.clone()),
        card: Some(summary),
        gateway: ctx.config.gateway_name.clone(),
    };
    // The token and the attempt are one commit, and the feed events share it on SQLite.
    let begin = ctx.store.begin_payment_with_token(&new, &sealed.row, ctx.clock.now());
    let (begun, ()) = tokio::join!(begin, feed_events);
    let pending = match begun? {
        // This key has its answer already: report it, charge nothing.
        BegunPayment::Finished(record) => return Ok(Finished::Payment(record)),
        BegunPayment::Pending(pending) => pending,
    };
    // The attempt's id is what the gateway de-duplicates on: the same on every retry.
    let gateway_key = IdempotencyKey::new(pending.gateway_idempotency_key()).map_err(|_| {
        ServiceError::Store(ivrpay_store::StoreError::Corrupt { what: "payment id" })
    })?;
    let attempt =
        PaymentAttempt::charge(gateway_key, amount, card, description, customer_reference);
    let outcome = match attempt.submit_with_retries(ctx.gateway.as_ref(), &ctx.config.retry).await {
        Submission::Answered(Answer::Charged(charged)) => {
            PaymentOutcome::Succeeded { gateway_ref: charged.charge_id }
        }
        Submission::Answered(Answer::Declined(decline)) => PaymentOutcome::Declined {
            gateway_ref: None,
            // The merchant's record keeps the gateway's own code; the agent sees a safe one.
            code: decline.gateway_code.clone().unwrap_or_else(|| decline.code.name().to_owned()),
            message: Some(decline.code.agent_message().to_owned()),
        },
        Submission::Answered(Answer::Tokenized(_)) => PaymentOutcome::Failed {
            gateway_ref: None,
            code: "unexpected_token".to_owned(),
            message: None,
        },
        Submission::Rejected(error) => {
            PaymentOutcome::Failed { gateway_ref: None, code: error_code(&error), message: None }
        }
        Submission::Unanswered { attempt, error: GatewayError::Processing } => {
            // The network answered every try with a processing error: nothing was charged,
            // and the agent can try again as a new payment.
            drop(attempt);
            PaymentOutcome::Failed {
                gateway_ref: None,
                code: GatewayError::Processing.kind().to_owned(),
                message: Some(
                    "the card network could not process the payment: try again".to_owned(),
                ),
            }
        }
        Submission::Unanswered { attempt, error } => {
            // The charge may or may not exist. Wipe the card now; the pending attempt waits
            // for a retry with the same key, which finds the charge instead of repeating it.
            drop(attempt);
            warn!(payment = %pending.id().as_str(), error = %error, "gateway did not answer; payment left pending");
            return Ok(Finished::Unanswered {
                payment: pending.record().clone(),
                error: error_code(&error),
            });
        }
    };
    let record = ctx.store.record_payment_result(pending, &outcome, ctx.clock.now()).await?;
    Ok(Finished::Payment(record))
}

fn error_code(error: &GatewayError) -> String {
    error.kind().to_owned()
}
