//! What can go wrong, in terms an API can answer with.

use std::fmt;

use ivrpay_capture::SessionError;
use ivrpay_store::StoreError;
use ivrpay_vault::VaultError;

/// A service operation that did not happen.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such call (or not this tenant's).
    UnknownCall,
    /// No such payment session.
    UnknownPayment,
    /// The call has ended: nothing can be captured on it.
    CallEnded,
    /// A payment session is already open on the call.
    SessionAlreadyOpen,
    /// The session is not open (completed, cancelled or processing).
    NotOpen,
    /// The capture refused the request (field not in the session, wrong sequence, failed
    /// field, fields missing).
    Capture(SessionError),
    /// The idempotency key was used for a different request.
    IdempotencyConflict,
    /// A refund would exceed what is left of the payment (or is in another currency).
    RefundExceedsPayment,
    /// The operation does not apply to the payment as it stands (refunding a declined one).
    InvalidState(&'static str),
    /// The gateway did not answer after every retry: the attempt stays pending, and retrying
    /// with the same idempotency key resolves it without doing it twice.
    GatewayUnavailable(&'static str),
    /// The gateway refused the request outright (a configuration problem, not the card).
    GatewayRejected(&'static str),
    /// Storage failed; nothing was changed.
    Store(StoreError),
    /// The vault failed; nothing was charged.
    Vault(VaultError),
    /// The service is shutting down.
    Closed,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::UnknownCall => f.write_str("no such call"),
            ServiceError::UnknownPayment => f.write_str("no such payment"),
            ServiceError::CallEnded => f.write_str("the call has ended"),
            ServiceError::SessionAlreadyOpen => {
                f.write_str("a payment is already open on this call")
            }
            ServiceError::NotOpen => f.write_str("the payment is not open"),
            ServiceError::Capture(e) => write!(f, "{e}"),
            ServiceError::IdempotencyConflict => {
                f.write_str("the idempotency key was already used for a different payment")
            }
            ServiceError::RefundExceedsPayment => f.write_str(
                "the refund exceeds what is left of the payment, or its currency differs",
            ),
            ServiceError::InvalidState(operation) => {
                write!(f, "cannot {operation} in its current state")
            }
            ServiceError::GatewayUnavailable(kind) => write!(
                f,
                "the payment gateway did not answer ({kind}); retry with the same idempotency key"
            ),
            ServiceError::GatewayRejected(kind) => {
                write!(f, "the payment gateway refused the request ({kind})")
            }
            ServiceError::Store(e) => write!(f, "storage failed: {e}"),
            ServiceError::Vault(e) => write!(f, "the vault failed: {e}"),
            ServiceError::Closed => f.write_str("the service is shutting down"),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        match e {
            StoreError::IdempotencyConflict { .. } => ServiceError::IdempotencyConflict,
            StoreError::NotFound { kind: "call" } => ServiceError::UnknownCall,
            StoreError::NotFound { .. } => ServiceError::UnknownPayment,
            StoreError::RefundExceedsPayment => ServiceError::RefundExceedsPayment,
            StoreError::InvalidState { operation } => ServiceError::InvalidState(operation),
            e => ServiceError::Store(e),
        }
    }
}

impl From<VaultError> for ServiceError {
    fn from(e: VaultError) -> ServiceError {
        ServiceError::Vault(e)
    }
}
