//! The IVR's routes: `POST /v1/calls/{call_id}/ivr` (hand the customer of an agent-assisted
//! call to the IVR for the card payment) and payment requests (`POST /v1/payment-requests`,
//! `GET /v1/payment-requests/{id}`), which a self-service caller pays by keying the
//! reference. The logic is `ivrpay_ivr`'s; this is the edge.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ivrpay_ivr::{CreatePaymentRequest, HandOff, Ivr, IvrError, PaymentRequestView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Principal;
use crate::calls::visible_call;
use crate::error::{ApiError, Problem};
use crate::input::{ApiJson, IdemKey};
use crate::payments::Payment;

fn ivr(state: &ApiState) -> Result<&Ivr, ApiError> {
    state.ivr().ok_or_else(|| ApiError::unavailable("the IVR is not running in this process"))
}

impl From<IvrError> for ApiError {
    fn from(e: IvrError) -> Self {
        let detail = e.to_string();
        match e {
            IvrError::UnknownCall => ApiError::not_found("call"),
            IvrError::UnknownPaymentRequest => ApiError::not_found("payment request"),
            IvrError::CallEnded => ApiError::conflict(detail).with_code("call-ended"),
            IvrError::NotAnswered => ApiError::conflict(detail).with_code("call-not-answered"),
            IvrError::AlreadyInIvr => ApiError::conflict(detail).with_code("call-in-ivr"),
            IvrError::Invalid(problem) => {
                ApiError::unprocessable("validation-error", problem).with_code("body")
            }
            IvrError::Service(e) => e.into(),
            IvrError::Store(e) => e.into(),
            other => ApiError::internal("IVR error", &other),
        }
    }
}

/// `POST /v1/calls/{call_id}/ivr`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateHandOff {
    /// Major units as a decimal string; `"0"` tokenizes the card without charging.
    #[schema(example = "12.50")]
    amount: String,
    /// ISO 4217.
    #[schema(example = "GBP")]
    currency: String,
    description: Option<String>,
    /// The customer's reference (account, invoice).
    customer_ref: Option<String>,
    /// Ask for the billing postal code too (default false).
    postal_code: Option<bool>,
    /// Brands accepted, space-separated (default `visa mastercard amex`).
    #[schema(example = "visa mastercard")]
    accepted_brands: Option<String>,
}

/// The customer is in the IVR.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HandOffStarted {
    pub(crate) call_id: String,
    /// The payment session the IVR collects the card for; follow it on the feed or at
    /// `/v1/payments/{id}`.
    pub(crate) payment: Payment,
}

/// Sends the customer to the IVR for the card payment: the agent hears a hold announcement
/// (or silence, per profile) and none of the customer's keys, the IVR prompts the customer
/// through the card, charges it and reads the result back, then reconnects the customer to
/// the agent. The session's progress and result are on the feed as for any payment.
#[utoipa::path(
    post, path = "/v1/calls/{call_id}/ivr", tag = "payments",
    params(
        ("call_id" = String, Path, description = "`call_…`"),
        ("Idempotency-Key" = String, Header, description = "The payment session's key: a retry opens (or returns) the same session and never charges twice"),
    ),
    request_body = CreateHandOff,
    responses(
        (status = 202, description = "The customer is in the IVR; the session is capturing", body = HandOffStarted),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (or another agent's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The call ended, is not answered, is in the IVR already, or a payment is open on it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid amount, currency or brands", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The IVR is not running", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn hand_off(
    State(state): State<ApiState>,
    who: Principal,
    Path(call_id): Path<String>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<CreateHandOff>,
) -> Result<Response, ApiError> {
    let call = visible_call(&state, &who, &call_id).await?;
    let request = HandOff {
        amount: body.amount,
        currency: body.currency.to_ascii_uppercase(),
        description: body.description.filter(|d| !d.trim().is_empty()),
        customer_ref: body.customer_ref.filter(|c| !c.trim().is_empty()),
        idempotency_key: Some(key.as_str().to_owned()),
        postal_code: body.postal_code.unwrap_or(false),
        accepted_brands: body.accepted_brands,
    };
    let started = ivr(&state)?.hand_off(&call.id, request).await?;
    let body = HandOffStarted { call_id: started.call_id, payment: started.payment.into() };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `POST /v1/payment-requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPaymentRequest {
    /// Major units as a decimal string, more than zero.
    #[schema(example = "40.00")]
    amount: String,
    /// ISO 4217.
    #[schema(example = "GBP")]
    currency: String,
    description: Option<String>,
    /// The merchant's customer or invoice reference.
    customer_ref: Option<String>,
    /// Seconds until it can no longer be paid (60 to 7776000; default 604800, 7 days).
    #[schema(example = 86400)]
    expires_in: Option<u64>,
}

/// An amount owed that a caller pays in the IVR by keying `reference`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentRequest {
    /// `preq_…`.
    id: String,
    /// Seven digits (the last a check digit) the caller keys after calling the IVR.
    #[schema(example = "4821674")]
    reference: String,
    #[schema(example = "40.00")]
    amount: String,
    #[schema(example = "GBP")]
    currency: String,
    description: Option<String>,
    customer_ref: Option<String>,
    /// `open`, `claimed` (a caller is paying it), `paid` or `expired`.
    #[schema(example = "open")]
    status: String,
    /// RFC 3339.
    expires_at: Option<String>,
    /// The payment session (`sess_…`) that paid it.
    payment_id: Option<String>,
    /// The charge (`pay_…`).
    charge_id: Option<String>,
    /// The call paying it, or that paid it.
    call_id: Option<String>,
    /// RFC 3339.
    created_at: String,
}

impl From<PaymentRequestView> for PaymentRequest {
    fn from(v: PaymentRequestView) -> Self {
        PaymentRequest {
            id: v.id,
            reference: v.reference,
            amount: v.amount,
            currency: v.currency,
            description: v.description,
            customer_ref: v.customer_ref,
            status: v.status,
            expires_at: v.expires_at,
            payment_id: v.session_id,
            charge_id: v.payment_id,
            call_id: v.call_id,
            created_at: v.created_at,
        }
    }
}

/// Creates a payment request (admin): the caller dials the IVR with no amount on the call,
/// keys the reference, and pays the amount.
#[utoipa::path(
    post, path = "/v1/payment-requests", tag = "payments",
    params(("Idempotency-Key" = String, Header, description = "A new value per request, the same on its retries")),
    request_body = NewPaymentRequest,
    responses(
        (status = 201, description = "The request, open, with its reference", body = PaymentRequest),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid amount, currency, texts or expiry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The IVR is not running", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_payment_request(
    State(state): State<ApiState>,
    who: Principal,
    IdemKey(_): IdemKey,
    ApiJson(body): ApiJson<NewPaymentRequest>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let request = CreatePaymentRequest {
        amount: body.amount,
        currency: body.currency.to_ascii_uppercase(),
        description: body.description.filter(|d| !d.trim().is_empty()),
        customer_ref: body.customer_ref.filter(|c| !c.trim().is_empty()),
        expires_in: body.expires_in,
    };
    let created = PaymentRequest::from(ivr(&state)?.create_payment_request(&request).await?);
    let mut response = (StatusCode::CREATED, Json(&created)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/payment-requests/{}", created.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// One payment request (admin).
#[utoipa::path(
    get, path = "/v1/payment-requests/{request_id}", tag = "payments",
    params(("request_id" = String, Path, description = "`preq_…`")),
    responses(
        (status = 200, description = "The request", body = PaymentRequest),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The IVR is not running", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_payment_request(
    State(state): State<ApiState>,
    who: Principal,
    Path(request_id): Path<String>,
) -> Result<Json<PaymentRequest>, ApiError> {
    who.require_admin()?;
    Ok(Json(ivr(&state)?.payment_request(&request_id).await?.into()))
}
