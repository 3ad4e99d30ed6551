//! Gateway failures: what went wrong, and whether a retry with the same idempotency key
//! is the right move.

use std::fmt;

/// Why a gateway call did not give an answer (a success or a decline).
///
/// The retry rule (research/payments.md §3): [`GatewayError::is_retryable`] errors are
/// retried with the **same** idempotency key, so a request that did reach the gateway is
/// replayed rather than charged twice; the others are bugs or configuration problems to
/// alert on, never retried. Nothing here carries card data; gateway codes are kept only as
/// short `[a-z0-9_]` strings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayError {
    /// No answer within the deadline: the request may or may not have been executed.
    Timeout,
    /// The connection failed or broke.
    Connection,
    /// The gateway answered 5xx (or Stripe's `api_error`).
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// Too many requests (HTTP 429): back off and retry.
    RateLimited,
    /// The card network had a processing error (Stripe `processing_error`): retryable.
    Processing,
    /// The idempotency key was used before with a different request (HTTP 409, Stripe
    /// `idempotency_error`).
    IdempotencyConflict,
    /// The gateway refused the request as malformed (HTTP 400, `invalid_request_error`).
    InvalidRequest {
        /// The gateway's error code, if it gave one (e.g. `amount_too_large`).
        code: Option<String>,
    },
    /// The API key was refused (HTTP 401/403).
    Authentication,
    /// A refund named a charge the gateway does not know.
    UnknownCharge,
    /// A refund asked for more than is left of the charge.
    RefundExceedsCharge,
    /// The gateway's answer could not be understood.
    Protocol(&'static str),
}

impl GatewayError {
    /// True when the same request, with the same idempotency key, should be tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::Timeout
                | GatewayError::Connection
                | GatewayError::Server { .. }
                | GatewayError::RateLimited
                | GatewayError::Processing
        )
    }

    /// A short machine name, for logs, metrics and the API.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::Timeout => "timeout",
            GatewayError::Connection => "connection",
            GatewayError::Server { .. } => "server_error",
            GatewayError::RateLimited => "rate_limited",
            GatewayError::Processing => "processing_error",
            GatewayError::IdempotencyConflict => "idempotency_conflict",
            GatewayError::InvalidRequest { .. } => "invalid_request",
            GatewayError::Authentication => "authentication",
            GatewayError::UnknownCharge => "unknown_charge",
            GatewayError::RefundExceedsCharge => "refund_exceeds_charge",
            GatewayError::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::Timeout => f.write_str("gateway timed out"),
            GatewayError::Connection => f.write_str("could not reach the gateway"),
            GatewayError::Server { status } => write!(f, "gateway server error (HTTP {status})"),
            GatewayError::RateLimited => f.write_str("gateway rate limit"),
            GatewayError::Processing => f.write_str("card processing error, try again"),
            GatewayError::IdempotencyConflict => {
                f.write_str("idempotency key reused with a different request")
            }
            GatewayError::InvalidRequest { code: Some(code) } => {
                write!(f, "gateway refused the request: {code}")
            }
            GatewayError::InvalidRequest { code: None } => {
                f.write_str("gateway refused the request")
            }
            GatewayError::Authentication => f.write_str("gateway refused the API key"),
            GatewayError::UnknownCharge => f.write_str("unknown charge"),
            GatewayError::RefundExceedsCharge => {
                f.write_str("refund exceeds what is left of the charge")
            }
            GatewayError::Protocol(what) => write!(f, "unexpected gateway answer: {what}"),
        }
    }
}

impl std::error::Error for GatewayError {}

/// Keeps a gateway-supplied code only if it looks like one (`[a-z0-9_]`, at most 64), so
/// that no free text from the wire (which could echo input) reaches logs or errors.
pub(crate) fn sanitize_code(code: &str) -> Option<String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then(|| code.to_string())
}
