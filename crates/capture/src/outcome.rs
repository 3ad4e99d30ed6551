//! How a session ends: completed (card data out) or cancelled.

use ivrpay_card::{CardData, IdempotencyKey, Money, TokenType};

use crate::error::SessionError;
use crate::session::Session;

/// What the completed session asks the gateway to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Authorize and capture this amount.
    Charge(Money),
    /// Tokenize only (the session's amount was zero).
    Tokenize(TokenType),
}

/// A completed session: the card data and what to do with it. The only place capture
/// hands out card data; dropping it wipes the card.
#[derive(Debug)]
#[must_use = "dropping a completed session discards the card data"]
pub struct Completed {
    /// The card (secret fields).
    pub card: CardData,
    /// Charge or tokenize.
    pub operation: Operation,
    /// The payment attempt's key, for every retry at the gateway.
    pub idempotency_key: IdempotencyKey,
    /// The session's description.
    pub description: String,
    /// The session's customer reference.
    pub customer_reference: Option<String>,
}

/// `complete` was refused; the session is handed back unchanged.
#[derive(Debug)]
pub struct Incomplete {
    /// The session, still open.
    pub session: Box<Session>,
    /// Why it cannot complete.
    pub error: SessionError,
}

/// A cancelled session. Everything it had captured has been wiped.
#[derive(Debug)]
pub struct Cancelled {
    /// The key the session had (the payment it was for never reached a gateway).
    pub idempotency_key: IdempotencyKey,
}
