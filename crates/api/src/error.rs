//! Errors as `application/problem+json` (RFC 9457): a stable `type`, the HTTP `status`, a
//! `title`, and a `detail` a person can act on. Details never quote card data, stored data
//! or internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ivrpay_capture::SessionError;
use ivrpay_service::ServiceError;
use ivrpay_store::StoreError;
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

/// The problem document every error is answered with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:ivrpay:problem:<slug>`, stable: match on it.
    #[serde(rename = "type")]
    #[schema(example = "urn:ivrpay:problem:not-found")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// A machine-readable refinement (`invalid-card-number-security-code-capture-sequence`,
    /// the field that failed validation, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    code: Option<String>,
    /// `WWW-Authenticate` for 401s.
    challenge: bool,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: String) -> Self {
        ApiError { status, slug, title, detail, code: None, challenge: false }
    }

    pub(crate) fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub(crate) fn into_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid API key",
            detail.into(),
        );
        e.challenge = true;
        e
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed for this key", detail.into())
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", format!("no such {what}"))
    }

    pub(crate) fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict with the current state",
            detail.into(),
        )
    }

    pub(crate) fn invalid(field: &'static str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-error",
            "Invalid request",
            format!("{field}: {problem}"),
        )
        .with_code(field)
    }

    pub(crate) fn unprocessable(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            slug,
            "Request cannot be processed",
            detail.into(),
        )
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail.into())
    }

    pub(crate) fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail.into(),
        )
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
            detail.into(),
        )
    }

    /// A failure inside: logged here, once, and answered without details.
    pub(crate) fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        error!(error = %cause, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "Internal error",
            "internal error; the service logged the cause".to_owned(),
        )
    }

    pub(crate) fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:ivrpay:problem:{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let detail = e.to_string();
        match e {
            ServiceError::UnknownCall => ApiError::not_found("call"),
            ServiceError::UnknownPayment => ApiError::not_found("payment"),
            ServiceError::CallEnded => ApiError::conflict(detail).with_code("call-ended"),
            ServiceError::SessionAlreadyOpen => {
                ApiError::conflict(detail).with_code("session-in-progress")
            }
            ServiceError::NotOpen => ApiError::conflict(detail).with_code("payment-not-open"),
            ServiceError::IdempotencyConflict => {
                ApiError::conflict(detail).with_code("idempotency-conflict")
            }
            ServiceError::InvalidState(_) => ApiError::conflict(detail).with_code("invalid-state"),
            ServiceError::Capture(e) => capture_error(e),
            ServiceError::RefundExceedsPayment => {
                ApiError::unprocessable("refund-exceeds-payment", detail)
                    .with_code("refund-exceeds-payment")
            }
            ServiceError::GatewayUnavailable(_) => ApiError::unavailable(detail),
            ServiceError::GatewayRejected(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "gateway-rejected",
                "The payment gateway refused the request",
                detail,
            ),
            ServiceError::Closed => ApiError::unavailable(detail),
            ServiceError::Store(e) => ApiError::internal("storage failed", &e),
            ServiceError::Vault(e) => ApiError::internal("the vault failed", &e),
            other => ApiError::internal("service error", &other),
        }
    }
}

fn capture_error(e: SessionError) -> ApiError {
    let detail = e.to_string();
    match e {
        SessionError::FieldNotInSession(field) => {
            ApiError::unprocessable("field-not-in-session", detail).with_code(field.name())
        }
        SessionError::CaptureSequence => ApiError::conflict(detail)
            .with_code("invalid-card-number-security-code-capture-sequence"),
        SessionError::Failed(field) => {
            ApiError::conflict(detail).with_code(format!("{}-failed", field.name()))
        }
        SessionError::Incomplete(_) => ApiError::conflict(detail).with_code("fields-missing"),
        other => ApiError::conflict(other.to_string()),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind } => ApiError::not_found(kind),
            other => ApiError::internal("storage failed", &other),
        }
    }
}

impl From<ivrpay_sync::api::ApiError> for ApiError {
    fn from(e: ivrpay_sync::api::ApiError) -> Self {
        use ivrpay_sync::api::ApiError as Sync;
        let detail = e.to_string();
        match e {
            Sync::NotFound { what } => ApiError::not_found(what),
            Sync::Invalid { field, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-error",
                "Invalid request",
                detail,
            )
            .with_code(field),
            Sync::Conflict { .. } => ApiError::conflict(detail),
            Sync::Internal(e) => ApiError::internal("storage failed", &e),
            other => ApiError::internal("sync error", &other),
        }
    }
}

/// Unknown paths.
pub(crate) async fn not_found_fallback() -> ApiError {
    ApiError::not_found("resource at this path")
}

/// A known path with a method it does not take (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed_fallback(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not allowed on this path"),
    )
}
