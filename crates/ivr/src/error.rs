//! What the IVR's operations (hand-off, payment requests) answer when they cannot run.

use std::fmt;

use ivrpay_service::ServiceError;
use ivrpay_store::StoreError;

/// An IVR operation that did not happen. Messages quote no card data and no stored values.
#[derive(Debug)]
#[non_exhaustive]
pub enum IvrError {
    /// No such call (or not this tenant's).
    UnknownCall,
    /// The call has ended, or its media is gone.
    CallEnded,
    /// The call has not been answered by an agent yet: there is nobody to hand off from.
    NotAnswered,
    /// The call is in the IVR already.
    AlreadyInIvr,
    /// A request field is wrong: which one and why.
    Invalid(String),
    /// No such payment request.
    UnknownPaymentRequest,
    /// The payment service refused (a session already open, an idempotency conflict, …).
    Service(ServiceError),
    /// Storage failed; nothing was changed.
    Store(StoreError),
}

impl fmt::Display for IvrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IvrError::UnknownCall => f.write_str("no such call"),
            IvrError::CallEnded => f.write_str("the call has ended"),
            IvrError::NotAnswered => f.write_str("the call has not been answered by an agent"),
            IvrError::AlreadyInIvr => f.write_str("the call is in the IVR already"),
            IvrError::Invalid(what) => f.write_str(what),
            IvrError::UnknownPaymentRequest => f.write_str("no such payment request"),
            IvrError::Service(e) => write!(f, "{e}"),
            IvrError::Store(e) => write!(f, "storage failed: {e}"),
        }
    }
}

impl std::error::Error for IvrError {}

impl From<ServiceError> for IvrError {
    fn from(e: ServiceError) -> IvrError {
        match e {
            ServiceError::UnknownCall => IvrError::UnknownCall,
            ServiceError::CallEnded => IvrError::CallEnded,
            e => IvrError::Service(e),
        }
    }
}

impl From<StoreError> for IvrError {
    fn from(e: StoreError) -> IvrError {
        match e {
            StoreError::NotFound { kind: "payment request" } => IvrError::UnknownPaymentRequest,
            StoreError::NotFound { kind: "call" } => IvrError::UnknownCall,
            e => IvrError::Store(e),
        }
    }
}
