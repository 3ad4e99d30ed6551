//! Payment sessions on a call (Twilio's agent-assisted Payments API, research/payments.md
//! §1.1) and refunds.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ivrpay_capture::Field;
use ivrpay_card::{Currency, Money, TokenType};
use ivrpay_service::{FieldView, OpenPayment, PaymentView, RefundPayment, Status};
use ivrpay_store::{PaymentId, RefundRecord, SessionId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Principal;
use crate::calls::visible_call;
use crate::error::{ApiError, Problem};
use crate::input::{ApiJson, IdemKey};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PaymentStatus {
    /// Capturing the card.
    Open,
    /// With the gateway, or its answer is not known yet.
    Processing,
    Succeeded,
    Declined,
    Failed,
    Cancelled,
}

impl From<Status> for PaymentStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Open => PaymentStatus::Open,
            Status::Processing => PaymentStatus::Processing,
            Status::Succeeded => PaymentStatus::Succeeded,
            Status::Declined => PaymentStatus::Declined,
            Status::Failed => PaymentStatus::Failed,
            Status::Cancelled => PaymentStatus::Cancelled,
        }
    }
}

/// One card field as the agent sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PaymentField {
    /// `payment-card-number`, `expiration-date`, `security-code` or `postal-code`.
    #[schema(example = "payment-card-number")]
    pub(crate) field: String,
    /// Bullets and the last four of a complete card number, the expiry in clear, the
    /// security code as bullets. Never a card digit beyond the last four.
    #[schema(example = "•••• •••• •••• 4242")]
    pub(crate) masked: String,
    /// Captured and valid.
    pub(crate) complete: bool,
    /// The last validation error: `invalid-card-number`, `invalid-card-type`,
    /// `invalid-date`, `invalid-security-code`, `invalid-postal-code`, `input-timeout`, ….
    pub(crate) error: Option<String>,
    /// Which attempt at the field, from 1.
    pub(crate) attempt: u8,
}

impl From<FieldView> for PaymentField {
    fn from(f: FieldView) -> Self {
        PaymentField {
            field: f.field.to_owned(),
            masked: f.masked,
            complete: f.complete,
            error: f.error.map(str::to_owned),
            attempt: f.attempt,
        }
    }
}

/// A payment session on a call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Payment {
    /// `sess_…`.
    pub(crate) id: String,
    pub(crate) call_id: Option<String>,
    pub(crate) status: PaymentStatus,
    /// Major units, as a string (`"12.50"`).
    #[schema(example = "12.50")]
    pub(crate) amount: String,
    #[schema(example = "GBP")]
    pub(crate) currency: String,
    pub(crate) description: Option<String>,
    pub(crate) customer_ref: Option<String>,
    /// `one-time`, `reusable` or `payment-method`.
    pub(crate) token_type: String,
    /// Fields still to capture.
    pub(crate) required: Vec<String>,
    /// The field being captured now.
    pub(crate) capturing: Option<String>,
    pub(crate) fields: Vec<PaymentField>,
    /// `visa`, `mastercard`, `amex`, … once the card number says.
    pub(crate) brand: Option<String>,
    pub(crate) last4: Option<String>,
    /// The charge attempt (`pay_…`) once the card went to the gateway.
    pub(crate) charge_id: Option<String>,
    /// The gateway's reference of the charge.
    pub(crate) gateway_ref: Option<String>,
    /// Why the card was declined (`card_declined`, `insufficient_funds`, …).
    pub(crate) decline_code: Option<String>,
    /// The vault token of a tokenize-only session (amount 0).
    pub(crate) token: Option<String>,
    /// Why the session cannot go on, for the agent.
    pub(crate) error: Option<String>,
}

impl From<PaymentView> for Payment {
    fn from(v: PaymentView) -> Self {
        Payment {
            id: v.id.as_str().to_owned(),
            call_id: v.call_id.map(|c| c.as_str().to_owned()),
            status: v.status.into(),
            amount: v.amount,
            currency: v.currency,
            description: v.description,
            customer_ref: v.customer_ref,
            token_type: v.token_type,
            required: v.required.into_iter().map(str::to_owned).collect(),
            capturing: v.capturing.map(str::to_owned),
            fields: v.fields.into_iter().map(PaymentField::from).collect(),
            brand: v.brand,
            last4: v.last4,
            charge_id: v.payment_id,
            gateway_ref: v.gateway_ref,
            decline_code: v.decline_code,
            token: v.token,
            error: v.error,
        }
    }
}

/// `POST /v1/calls/{call_id}/payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePayment {
    /// Major units as a decimal string; `"0"` tokenizes the card without charging.
    #[schema(example = "12.50")]
    amount: String,
    /// ISO 4217.
    #[schema(example = "GBP")]
    currency: String,
    description: Option<String>,
    /// The customer's reference (account, invoice).
    customer_ref: Option<String>,
    /// `one-time`, `reusable` (default) or `payment-method`: the token of a tokenize-only
    /// session.
    token_type: Option<String>,
    /// Collect the billing postal code too (default false).
    postal_code: Option<bool>,
}

fn text_field(
    name: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(ApiError::invalid(name, format!("at most {max} characters")))
        }
        Some(v) if v.chars().any(char::is_control) => {
            Err(ApiError::invalid(name, "no control characters"))
        }
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Where the payment session's resource lives.
fn location(id: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("/v1/payments/{id}")).ok()
}

/// Opens a payment session on a call: the capture of the card number starts at once.
#[utoipa::path(
    post, path = "/v1/calls/{call_id}/payments", tag = "payments",
    params(
        ("call_id" = String, Path, description = "`call_…`"),
        ("Idempotency-Key" = String, Header, description = "One per payment, the same on every retry: a retry opens (or returns) the same session and never charges twice"),
    ),
    request_body = CreatePayment,
    responses(
        (status = 201, description = "The session, capturing", body = Payment),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (or another agent's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The call ended, a payment is already open on it, or the key belongs to another payment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid amount, currency or field; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_payment(
    State(state): State<ApiState>,
    who: Principal,
    Path(call_id): Path<String>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<CreatePayment>,
) -> Result<Response, ApiError> {
    let call = visible_call(&state, &who, &call_id).await?;
    let currency = Currency::from_code(&body.currency.to_ascii_uppercase())
        .map_err(|_| ApiError::invalid("currency", "not an ISO 4217 code this service knows"))?;
    let amount =
        Money::parse_major(&body.amount, currency).map_err(|e| ApiError::invalid("amount", e))?;
    let token_type = match body.token_type.as_deref() {
        None => TokenType::default(),
        Some(t) => TokenType::parse(t).ok_or_else(|| {
            ApiError::invalid("token_type", "one-time, reusable or payment-method")
        })?,
    };
    let request = OpenPayment {
        amount,
        description: text_field("description", body.description, 255)?,
        customer_ref: text_field("customer_ref", body.customer_ref, 128)?,
        token_type,
        postal_code: body.postal_code.unwrap_or(false),
        accepted_brands: None,
        idempotency_key: key,
        first_digit_timeout: None,
    };
    let view = state.service().open_payment(&call.id, request).await?;
    let payment = Payment::from(view);
    let mut response = (StatusCode::CREATED, Json(&payment)).into_response();
    if let Some(location) = location(&payment.id) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A payment the caller may see, with its view.
async fn visible_payment(
    state: &ApiState,
    who: &Principal,
    id: &str,
) -> Result<(SessionId, PaymentView), ApiError> {
    let id = SessionId::parse(id).map_err(|_| ApiError::not_found("payment"))?;
    let view = state.service().payment(&id).await?;
    if who.agent().is_some() {
        let call = view.call_id.as_ref().ok_or_else(|| ApiError::not_found("payment"))?;
        visible_call(state, who, call.as_str())
            .await
            .map_err(|_| ApiError::not_found("payment"))?;
    }
    Ok((id, view))
}

/// One payment session.
#[utoipa::path(
    get, path = "/v1/payments/{payment_id}", tag = "payments",
    params(("payment_id" = String, Path, description = "`sess_…`")),
    responses(
        (status = 200, description = "The session", body = Payment),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (or another agent's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_payment(
    State(state): State<ApiState>,
    who: Principal,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    let (_, view) = visible_payment(&state, &who, &payment_id).await?;
    Ok(Json(view.into()))
}

/// `POST /v1/payments/{payment_id}`: exactly one of `capture` and `status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdatePayment {
    /// Ask the customer for this field (again): `payment-card-number` (or `card-number`),
    /// `expiration-date` (or `expiry`), `security-code`, `postal-code`.
    #[schema(example = "expiration-date")]
    capture: Option<String>,
    /// `complete` charges (or tokenizes) with what was captured; `cancel` ends the session.
    #[schema(example = "complete")]
    status: Option<String>,
}

fn parse_field(name: &str) -> Option<Field> {
    match name {
        "card-number" => Some(Field::CardNumber),
        "expiry" => Some(Field::Expiry),
        other => Field::parse(other),
    }
}

/// Re-asks a field, completes or cancels.
#[utoipa::path(
    post, path = "/v1/payments/{payment_id}", tag = "payments",
    params(
        ("payment_id" = String, Path, description = "`sess_…`"),
        ("Idempotency-Key" = String, Header, description = "A new value per command, the same on its retries"),
    ),
    request_body = UpdatePayment,
    responses(
        (status = 200, description = "The session after the command (after `complete`: the gateway's answer)", body = Payment),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (or another agent's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not open any more, fields still missing, security code asked before the card number, or a field failed too often", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown field or command, a field this session does not collect, or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The gateway refused the request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The gateway did not answer: retry with the same key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn update_payment(
    State(state): State<ApiState>,
    who: Principal,
    Path(payment_id): Path<String>,
    IdemKey(_): IdemKey,
    ApiJson(body): ApiJson<UpdatePayment>,
) -> Result<Json<Payment>, ApiError> {
    let (id, _) = visible_payment(&state, &who, &payment_id).await?;
    let view = match (body.capture, body.status) {
        (Some(field), None) => {
            let field = parse_field(&field).ok_or_else(|| {
                ApiError::invalid(
                    "capture",
                    "payment-card-number, expiration-date, security-code or postal-code",
                )
            })?;
            state.service().capture(&id, field).await?
        }
        (None, Some(status)) => match status.as_str() {
            "complete" => state.service().complete(&id).await?,
            "cancel" => state.service().cancel(&id).await?,
            _ => return Err(ApiError::invalid("status", "complete or cancel")),
        },
        _ => return Err(ApiError::invalid("body", "exactly one of capture and status")),
    };
    Ok(Json(view.into()))
}

/// A refund.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Refund {
    /// `rfd_…`.
    id: String,
    /// The session refunded (`sess_…`).
    payment_id: String,
    /// The charge refunded (`pay_…`).
    charge_id: String,
    #[schema(example = "5.00")]
    amount: String,
    currency: String,
    /// `pending` (the gateway did not answer yet), `succeeded` or `failed`.
    status: String,
    reason: Option<String>,
    gateway_ref: Option<String>,
    error_code: Option<String>,
    created_at: String,
}

fn refund_view(session: &SessionId, r: RefundRecord) -> Refund {
    let amount = Money::from_minor(u64::try_from(r.amount_minor).unwrap_or(0), r.currency.0);
    Refund {
        id: r.id.as_str().to_owned(),
        payment_id: session.as_str().to_owned(),
        charge_id: r.payment_id.as_str().to_owned(),
        amount: amount.to_major_string(),
        currency: r.currency.code().to_owned(),
        status: r.status.as_str().to_owned(),
        reason: r.reason,
        gateway_ref: r.gateway_ref,
        error_code: r.error_code,
        created_at: r.created_at.to_string(),
    }
}

/// `POST /v1/payments/{payment_id}/refunds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRefund {
    /// Major units in the payment's currency; without it, all that is left.
    #[schema(example = "5.00")]
    amount: Option<String>,
    reason: Option<String>,
}

/// Refunds all or part of a succeeded payment (admin keys only).
#[utoipa::path(
    post, path = "/v1/payments/{payment_id}/refunds", tag = "payments",
    params(
        ("payment_id" = String, Path, description = "`sess_…`"),
        ("Idempotency-Key" = String, Header, description = "One per refund, the same on every retry: a retry never refunds twice"),
    ),
    request_body = CreateRefund,
    responses(
        (status = 201, description = "The refund", body = Refund),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment did not succeed, or the key belongs to another refund", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid amount, more than is left, or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The gateway did not answer: retry with the same key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_refund(
    State(state): State<ApiState>,
    who: Principal,
    Path(payment_id): Path<String>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<CreateRefund>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let (session, view) = visible_payment(&state, &who, &payment_id).await?;
    if view.status != Status::Succeeded {
        return Err(ApiError::conflict("only a succeeded payment can be refunded")
            .with_code("invalid-state"));
    }
    let charge = view
        .payment_id
        .as_deref()
        .and_then(|p| PaymentId::parse(p).ok())
        .ok_or_else(|| ApiError::conflict("the payment has no charge to refund"))?;
    let amount = match body.amount {
        Some(text) => {
            let currency = Currency::from_code(&view.currency)
                .map_err(|_| ApiError::internal("a stored currency", &"unknown code"))?;
            Some(Money::parse_major(&text, currency).map_err(|e| ApiError::invalid("amount", e))?)
        }
        None => None,
    };
    if amount.is_some_and(|a| a.is_zero()) {
        return Err(ApiError::invalid("amount", "more than zero"));
    }
    let request = RefundPayment {
        payment: charge,
        amount,
        reason: text_field("reason", body.reason, 255)?,
        idempotency_key: key,
    };
    let record = state.service().refund(request).await?;
    Ok((StatusCode::CREATED, Json(refund_view(&session, record))).into_response())
}

/// The refunds of a payment (admin keys only).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefundList {
    data: Vec<Refund>,
}

/// The refunds of a payment, oldest first (admin keys only).
#[utoipa::path(
    get, path = "/v1/payments/{payment_id}/refunds", tag = "payments",
    params(("payment_id" = String, Path, description = "`sess_…`")),
    responses(
        (status = 200, description = "The refunds", body = RefundList),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_refunds(
    State(state): State<ApiState>,
    who: Principal,
    Path(payment_id): Path<String>,
) -> Result<Json<RefundList>, ApiError> {
    who.require_admin()?;
    let (session, view) = visible_payment(&state, &who, &payment_id).await?;
    let data = match view.payment_id.as_deref().and_then(|p| PaymentId::parse(p).ok()) {
        Some(charge) => state
            .store()
            .refunds_of(state.tenant(), &charge)
            .await?
            .into_iter()
            .map(|r| refund_view(&session, r))
            .collect(),
        None => Vec::new(),
    };
    Ok(Json(RefundList { data }))
}
