//! The `Gateway` trait and its requests.

use std::future::Future;
use std::pin::Pin;

use ivrpay_card::{CardData, IdempotencyKey, Money, TokenType};

use crate::error::GatewayError;
use crate::outcome::{ChargeOutcome, Refunded, TokenizeOutcome};

/// The future a gateway call returns. Boxed, so that `dyn Gateway` works: the gateway is
/// chosen at run time from configuration.
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'a>>;

/// A payment gateway.
///
/// Every payment is a MOTO (mail order / telephone order) payment: the connectors always
/// send the flag, and there is no way to turn it off. Every call carries an idempotency
/// key: the same key with the same request gives the same answer without executing twice;
/// the same key with a different request is [`GatewayError::IdempotencyConflict`].
///
/// Card data reaches a gateway only by reference to a [`CardData`], whose fields are
/// `Secret`s. [`crate::PaymentAttempt`] owns the card and drops (wipes) it as soon as the
/// gateway answers.
pub trait Gateway: Send + Sync {
    /// A short name for logs and metrics (`sandbox`, `stripe`, `generic-pay`).
    fn name(&self) -> &'static str;

    /// Authorize and capture.
    fn charge<'a>(&'a self, request: &'a ChargeRequest<'a>) -> GatewayFuture<'a, ChargeOutcome>;

    /// Store the card at the gateway and return a token, without charging.
    fn tokenize<'a>(
        &'a self,
        request: &'a TokenizeRequest<'a>,
    ) -> GatewayFuture<'a, TokenizeOutcome>;

    /// Refund all or part of an earlier charge.
    fn refund<'a>(&'a self, request: &'a RefundRequest<'a>) -> GatewayFuture<'a, Refunded>;
}

/// An authorize-and-capture.
#[derive(Debug)]
pub struct ChargeRequest<'a> {
    /// The payment attempt's key, the same on every retry.
    pub idempotency_key: &'a IdempotencyKey,
    /// What to charge. Never zero (a zero-amount session tokenizes).
    pub amount: Money,
    /// The card.
    pub card: &'a CardData,
    /// What the payment is for.
    pub description: &'a str,
    /// The business's reference for the customer or invoice.
    pub customer_reference: Option<&'a str>,
}

/// A tokenize-only request.
#[derive(Debug)]
pub struct TokenizeRequest<'a> {
    /// The attempt's key.
    pub idempotency_key: &'a IdempotencyKey,
    /// The card.
    pub card: &'a CardData,
    /// The kind of token wanted.
    pub token_type: TokenType,
    /// The business's reference for the customer.
    pub customer_reference: Option<&'a str>,
}

/// A refund of an earlier charge.
#[derive(Debug)]
pub struct RefundRequest<'a> {
    /// The refund's own key (one per refund, not the charge's key).
    pub idempotency_key: &'a IdempotencyKey,
    /// The gateway's id of the charge ([`crate::Charged::charge_id`]).
    pub charge_id: &'a str,
    /// How much: `None` refunds everything not yet refunded.
    pub amount: Option<Money>,
}
