//! The downstream sync's endpoints (admin keys only): routing, authentication and problems
//! here, validation and the work in [`ivrpay_sync::api`]. The schema types below describe
//! the sync's answers for the OpenAPI document.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ivrpay_sync::api::{self as sync, CreateEndpoint, DeliveryQuery, ReplayRequest, ReportQuery};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::Principal;
use crate::error::{ApiError, Problem};
use crate::input::{ApiJson, ApiQuery, IdemKey};

/// `POST /v1/webhook-endpoints`.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the sync's request body for the OpenAPI document")]
pub(crate) struct CreateWebhookEndpoint {
    /// `https://…` (private and loopback addresses only when allowed).
    url: String,
    /// Event types (the feed's), or `["*"]`: every type but the keystroke-level
    /// `capture.*` events and `delivery.failing`, which go only to endpoints that name them.
    #[schema(example = json!(["payment.succeeded", "refund.succeeded"]))]
    events: Vec<String>,
    description: Option<String>,
}

/// A webhook endpoint.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the sync's answer for the OpenAPI document")]
pub(crate) struct WebhookEndpoint {
    /// `snk_…`.
    id: String,
    url: String,
    events: Vec<String>,
    description: String,
    created_at: String,
    /// The signing secret (`whsec_…`): only in the answers to create and rotate.
    secret: Option<String>,
}

/// The tenant's webhook endpoints.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the answer for the OpenAPI document")]
pub(crate) struct WebhookEndpointList {
    data: Vec<WebhookEndpoint>,
}

/// One event's delivery to one sink.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the sync's answer for the OpenAPI document")]
pub(crate) struct Delivery {
    /// `dlv_…`.
    id: String,
    /// The event (its `webhook-id`).
    event_id: String,
    event_type: String,
    sink_id: String,
    /// `pending`, `sending`, `delivered` or `failed` (dead-lettered).
    status: String,
    attempts: i64,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    last_status: Option<i64>,
    created_at: String,
    /// The attempts, for a single delivery.
    #[schema(value_type = Option<Vec<Object>>)]
    attempt_log: Option<Vec<Value>>,
}

/// Deliveries.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the answer for the OpenAPI document")]
pub(crate) struct DeliveryList {
    data: Vec<Delivery>,
}

/// `POST /v1/deliveries/replay`.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the sync's request body for the OpenAPI document")]
pub(crate) struct Replay {
    /// The sink (`snk_…`).
    sink: String,
    /// RFC 3339 or Unix milliseconds: failed deliveries created since then are sent again.
    since: String,
}

/// How many deliveries were replayed.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "describes the answer for the OpenAPI document")]
pub(crate) struct Replayed {
    replayed: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    /// `pending`, `sending`, `delivered` or `failed`.
    status: Option<String>,
    /// A sink id.
    sink: Option<String>,
    /// RFC 3339 or Unix milliseconds.
    since: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettlementQuery {
    /// The day, `YYYY-MM-DD` (UTC).
    date: String,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

#[derive(Serialize)]
struct List<T> {
    data: Vec<T>,
}

const ADMIN: &str = "this endpoint needs an admin key";

fn now(state: &ApiState) -> ivrpay_store::Timestamp {
    state.clock().now()
}

/// Creates a webhook endpoint with a new signing secret.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints", tag = "webhooks",
    params(("Idempotency-Key" = String, Header, description = "A new value per endpoint")),
    request_body = CreateWebhookEndpoint,
    responses(
        (status = 201, description = "The endpoint, with its secret (shown this once)", body = WebhookEndpoint),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad URL or event type", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    IdemKey(_): IdemKey,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<Response, ApiError> {
    who.require_admin().map_err(|_| ApiError::forbidden(ADMIN))?;
    let allow = state.config().allow_private_webhooks;
    let view =
        sync::create_webhook_endpoint(state.store(), state.tenant(), body, allow, now(&state))
            .await?;
    let mut response = (StatusCode::CREATED, Json(&view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/webhook-endpoints/{}", view.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The tenant's webhook endpoints (without secrets).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = WebhookEndpointList),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_endpoints(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let data = sync::list_webhook_endpoints(state.store(), state.tenant(), now(&state)).await?;
    Ok(Json(List { data }).into_response())
}

/// One webhook endpoint (without its secret).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "`snk_…`")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    Path(endpoint_id): Path<String>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let view = sync::get_webhook_endpoint(state.store(), state.tenant(), &endpoint_id, now(&state))
        .await?;
    Ok(Json(view).into_response())
}

/// Deletes a webhook endpoint; its pending deliveries are dead-lettered.
#[utoipa::path(
    delete, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, description = "`snk_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete_endpoint(
    State(state): State<ApiState>,
    who: Principal,
    Path(endpoint_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    sync::delete_webhook_endpoint(state.store(), state.tenant(), &endpoint_id, now(&state)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an endpoint a new secret; the old one keeps signing beside it for a while.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(
        ("endpoint_id" = String, Path, description = "`snk_…`"),
        ("Idempotency-Key" = String, Header, description = "A new value per rotation"),
    ),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookEndpoint),
        (status = 400, description = "No Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn rotate_secret(
    State(state): State<ApiState>,
    who: Principal,
    IdemKey(_): IdemKey,
    Path(endpoint_id): Path<String>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let overlap = state.config().secret_overlap;
    let view = sync::rotate_webhook_secret(
        state.store(),
        state.tenant(),
        &endpoint_id,
        overlap,
        now(&state),
    )
    .await?;
    Ok(Json(view).into_response())
}

/// Deliveries, e.g. the dead-lettered ones (`?status=failed`).
#[utoipa::path(
    get, path = "/v1/deliveries", tag = "deliveries",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "Deliveries, newest first", body = DeliveryList),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad query", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_deliveries(
    State(state): State<ApiState>,
    who: Principal,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let query = DeliveryQuery { status: q.status, sink: q.sink, since: q.since, limit: q.limit };
    let data = sync::list_deliveries(state.store(), state.tenant(), &query).await?;
    Ok(Json(List { data }).into_response())
}

/// One delivery with its attempts.
#[utoipa::path(
    get, path = "/v1/deliveries/{delivery_id}", tag = "deliveries",
    params(("delivery_id" = String, Path, description = "`dlv_…`")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = Delivery),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_delivery(
    State(state): State<ApiState>,
    who: Principal,
    Path(delivery_id): Path<String>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let view = sync::get_delivery(state.store(), state.tenant(), &delivery_id).await?;
    Ok(Json(view).into_response())
}

/// Sends a delivery again now (a dead-lettered one with a fresh schedule).
#[utoipa::path(
    post, path = "/v1/deliveries/{delivery_id}/retry", tag = "deliveries",
    params(
        ("delivery_id" = String, Path, description = "`dlv_…`"),
        ("Idempotency-Key" = String, Header, description = "A new value per retry"),
    ),
    responses(
        (status = 200, description = "The delivery, pending", body = Delivery),
        (status = 400, description = "No Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is being sent right now", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn retry_delivery(
    State(state): State<ApiState>,
    who: Principal,
    IdemKey(_): IdemKey,
    Path(delivery_id): Path<String>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let view =
        sync::retry_delivery(state.store(), state.tenant(), &delivery_id, now(&state)).await?;
    Ok(Json(view).into_response())
}

/// Replays a sink's dead-lettered deliveries since a time.
#[utoipa::path(
    post, path = "/v1/deliveries/replay", tag = "deliveries",
    params(("Idempotency-Key" = String, Header, description = "A new value per replay")),
    request_body = Replay,
    responses(
        (status = 200, description = "How many were replayed", body = Replayed),
        (status = 400, description = "No Idempotency-Key, or a body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sink", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad sink id or time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn replay(
    State(state): State<ApiState>,
    who: Principal,
    IdemKey(_): IdemKey,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let request = ReplayRequest { sink: body.sink, since: body.since };
    Ok(Json(sync::replay_failed(state.store(), state.tenant(), &request, now(&state)).await?))
}

/// The replay body (the sync's [`ReplayRequest`], with unknown fields refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    sink: String,
    since: String,
}

/// The settlement report of a day: per currency and brand, count, gross, refunds, net.
#[utoipa::path(
    get, path = "/v1/reports/settlement", tag = "reports",
    params(SettlementQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV with format=csv)", content(
            (Object = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad date or format", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn settlement(
    State(state): State<ApiState>,
    who: Principal,
    ApiQuery(q): ApiQuery<SettlementQuery>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let query = ReportQuery { date: q.date, format: q.format };
    let rendered = sync::settlement_report(state.store(), state.tenant(), &query).await?;
    Ok(([(header::CONTENT_TYPE, rendered.content_type)], rendered.body).into_response())
}
