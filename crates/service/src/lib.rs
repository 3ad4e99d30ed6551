//! # ivrpay-service
//!
//! The application core: what happens to a call between the B2BUA and the business
//! systems. It keeps the calls in progress, runs a payment session per call (the capture
//! state machine fed by the call's keypad digits), completes it through the vault and the
//! gateway into the store, and publishes every step on the tenant's feed.
//!
//! Wired by `ivrpay serve` (SIP events and digits in) and used by the API (agent commands in,
//! views and the feed out).

mod call;
mod clock;
mod error;
mod feed;
mod flow;
mod observe;
mod refund;
mod service;
mod view;

pub use call::OpenPayment;
pub use clock::{Clock, SystemClock};
pub use error::ServiceError;
pub use feed::Feed;
pub use observe::SessionUpdate;
pub use refund::RefundPayment;
pub use service::{IncomingCall, Service, ServiceConfig};
pub use view::{FieldView, PaymentView, Status};
