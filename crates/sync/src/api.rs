//! The logic of the sync's HTTP endpoints, for the API crate to mount (it owns routing,
//! authentication and problem+json rendering; these functions own validation and the work):
//!
//! | route | function |
//! |---|---|
//! | `POST /v1/webhook-endpoints` `{"url", "events", "description"?}` → 201 | [`create_webhook_endpoint`] (answer has `id` and `secret`) |
//! | `GET /v1/webhook-endpoints` | [`list_webhook_endpoints`] |
//! | `GET /v1/webhook-endpoints/{id}` | [`get_webhook_endpoint`] |
//! | `DELETE /v1/webhook-endpoints/{id}` → 204 | [`delete_webhook_endpoint`] |
//! | `POST /v1/webhook-endpoints/{id}/rotate-secret` | [`rotate_webhook_secret`] |
//! | `GET /v1/deliveries?status=failed&sink=&since=&limit=` | [`list_deliveries`] |
//! | `GET /v1/deliveries/{id}` (with attempts) | [`get_delivery`] |
//! | `POST /v1/deliveries/{id}/retry` | [`retry_delivery`] |
//! | `POST /v1/deliveries/replay` `{"sink", "since"}` | [`replay_failed`] |
//! | `GET /v1/reports/settlement?date=YYYY-MM-DD&format=json\|csv` | [`settlement_report`] |
//!
//! Errors are [`ApiError`]s with an HTTP status and a problem type; their messages never
//! quote stored data.

use std::fmt;
use std::time::Duration;

use ivrpay_store::{
    AttemptRecord, DeliveryFilter, DeliveryId, DeliveryRecord, NewWebhookEndpoint, SinkId, Store,
    StoreError, TenantId, Timestamp, WebhookEndpointRecord,
};
use serde_json::Value;

use crate::report;
use crate::signing::WebhookSecret;
use crate::ssrf::is_forbidden;

/// Why a request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// 404: no such object for this tenant.
    NotFound {
        /// What was looked for.
        what: &'static str,
    },
    /// 422: a field is invalid.
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        problem: String,
    },
    /// 409: the object is not in a state that allows it.
    Conflict {
        /// What could not be done.
        problem: &'static str,
    },
    /// 500: the store failed (details logged by the caller, not shown).
    Internal(StoreError),
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::Invalid { .. } => 422,
            Self::Conflict { .. } => 409,
            Self::Internal(_) => 500,
        }
    }

    /// The problem+json `type`.
    #[must_use]
    pub fn problem_type(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not-found",
            Self::Invalid { .. } => "validation-error",
            Self::Conflict { .. } => "conflict",
            Self::Internal(_) => "internal-error",
        }
    }

    fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid { field, problem: problem.into() }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { what } => write!(f, "{what} not found"),
            Self::Invalid { field, problem } => write!(f, "{field}: {problem}"),
            Self::Conflict { problem } => f.write_str(problem),
            Self::Internal(_) => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind } => Self::NotFound { what: kind },
            StoreError::InvalidState { operation } => Self::Conflict { problem: operation },
            other => Self::Internal(other),
        }
    }
}

/// `POST /v1/webhook-endpoints` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// `https://…` (or `http://`).
    pub url: String,
    /// Event types, or `["*"]` (every type but `capture.*` and `delivery.failing`, which
    /// go only to endpoints that name them).
    pub events: Vec<String>,
    /// A label.
    #[serde(default)]
    pub description: Option<String>,
}

/// A webhook endpoint as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EndpointView {
    /// `snk_…`.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// Subscribed types.
    pub events: Vec<String>,
    /// Label.
    pub description: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// The signing secret: only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(ep: &WebhookEndpointRecord, secret: Option<String>) -> EndpointView {
    EndpointView {
        id: ep.sink.id.to_string(),
        url: ep.url.clone(),
        events: ep.sink.event_types.clone(),
        description: ep.sink.name.clone(),
        created_at: Timestamp::from_unix_ms(ep.sink.created_at_ms).to_string(),
        secret,
    }
}

/// Checks an endpoint URL: http(s), a host, no credentials, at most 2,048 characters, and,
/// unless private addresses are allowed, not a literal private address nor `localhost` (the
/// resolver checks names again at every delivery).
///
/// # Errors
/// [`ApiError::Invalid`] naming `url`.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    if url.len() > 2048 {
        return Err(ApiError::invalid("url", "longer than 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| ApiError::invalid("url", e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::invalid("url", "must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::invalid("url", "must not hold credentials"));
    }
    let private = match parsed.host() {
        None => return Err(ApiError::invalid("url", "has no host")),
        Some(url::Host::Ipv4(ip)) => is_forbidden(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_forbidden(ip.into()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(ApiError::invalid("url", "private and loopback addresses are not allowed"));
    }
    Ok(())
}

/// Creates an endpoint with a new secret.
///
/// # Errors
/// [`ApiError::Invalid`] for a bad URL or event type.
pub async fn create_webhook_endpoint(
    store: &Store,
    tenant: &TenantId,
    request: CreateEndpoint,
    allow_private: bool,
    now: Timestamp,
) -> Result<EndpointView, ApiError> {
    check_url(&request.url, allow_private)?;
    crate::config::validate_events(&request.events).map_err(|p| ApiError::invalid("events", p))?;
    let description = request.description.unwrap_or_default();
    if description.len() > 200 {
        return Err(ApiError::invalid("description", "longer than 200 characters"));
    }
    let secret = WebhookSecret::generate().to_text();
    let new = NewWebhookEndpoint {
        tenant_id: tenant.clone(),
        url: request.url,
        event_types: request.events,
        description,
        secret: secret.clone(),
    };
    let id = store.add_webhook_endpoint(&new, now).await?;
    let ep = store.webhook_endpoint(&id, now).await?;
    Ok(view(&ep, Some(secret)))
}

fn parse_sink(id: &str) -> Result<SinkId, ApiError> {
    SinkId::parse(id).map_err(|_| ApiError::NotFound { what: "webhook endpoint" })
}

async fn owned_endpoint(
    store: &Store,
    tenant: &TenantId,
    id: &str,
    now: Timestamp,
) -> Result<WebhookEndpointRecord, ApiError> {
    let ep = store.webhook_endpoint(&parse_sink(id)?, now).await?;
    if &ep.sink.tenant_id != tenant || ep.disabled_reason.is_some() {
        return Err(ApiError::NotFound { what: "webhook endpoint" });
    }
    Ok(ep)
}

/// The tenant's endpoints (no secrets).
///
/// # Errors
/// [`ApiError::Internal`] when the store fails.
pub async fn list_webhook_endpoints(
    store: &Store,
    tenant: &TenantId,
    now: Timestamp,
) -> Result<Vec<EndpointView>, ApiError> {
    Ok(store.webhook_endpoints(tenant, now).await?.iter().map(|ep| view(ep, None)).collect())
}

/// One endpoint (no secret).
///
/// # Errors
/// [`ApiError::NotFound`] unless the tenant has it.
pub async fn get_webhook_endpoint(
    store: &Store,
    tenant: &TenantId,
    id: &str,
    now: Timestamp,
) -> Result<EndpointView, ApiError> {
    Ok(view(&owned_endpoint(store, tenant, id, now).await?, None))
}

/// Deletes an endpoint (its pending deliveries are dead-lettered).
///
/// # Errors
/// [`ApiError::NotFound`] unless the tenant has it.
pub async fn delete_webhook_endpoint(
    store: &Store,
    tenant: &TenantId,
    id: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    if store.delete_webhook_endpoint(tenant, &parse_sink(id)?, now).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound { what: "webhook endpoint" })
    }
}

/// Gives an endpoint a new secret; the old one keeps signing for `overlap`.
///
/// # Errors
/// [`ApiError::NotFound`] unless the tenant has it.
pub async fn rotate_webhook_secret(
    store: &Store,
    tenant: &TenantId,
    id: &str,
    overlap: Duration,
    now: Timestamp,
) -> Result<EndpointView, ApiError> {
    let ep = owned_endpoint(store, tenant, id, now).await?;
    let secret = WebhookSecret::generate().to_text();
    store.rotate_webhook_secret(&ep.sink.id, &secret, now.saturating_add(overlap), now).await?;
    Ok(view(&ep, Some(secret)))
}

/// `GET /v1/deliveries` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct DeliveryQuery {
    /// `pending`, `sending`, `delivered`, `failed` (dead-lettered).
    pub status: Option<String>,
    /// A sink id.
    pub sink: Option<String>,
    /// RFC 3339 or Unix milliseconds.
    pub since: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// A delivery as the API shows it (the store's `dead` is `failed` here).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeliveryView {
    /// `dlv_…`.
    pub id: String,
    /// The event (its `webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Sink.
    pub sink_id: String,
    /// `pending`, `sending`, `delivered`, `failed`.
    pub status: String,
    /// Attempts in the current schedule.
    pub attempts: i64,
    /// Next attempt (pending only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Last error.
    pub last_error: Option<String>,
    /// Last response status.
    pub last_status: Option<i64>,
    /// Created.
    pub created_at: String,
    /// The attempts, for a single delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptRecord>>,
}

fn api_status(store_status: &str) -> String {
    if store_status == "dead" { "failed".to_owned() } else { store_status.to_owned() }
}

fn delivery_view(d: DeliveryRecord) -> DeliveryView {
    DeliveryView {
        next_attempt_at: (d.status == "pending")
            .then(|| Timestamp::from_unix_ms(d.next_attempt_at_ms).to_string()),
        id: d.id.to_string(),
        event_id: d.event_id,
        event_type: d.event_type,
        sink_id: d.sink_id.to_string(),
        status: api_status(&d.status),
        attempts: d.attempts,
        last_error: d.last_error,
        last_status: d.last_status,
        created_at: Timestamp::from_unix_ms(d.created_at_ms).to_string(),
        attempt_log: None,
    }
}

/// Parses `2026-01-02T03:04:05Z`, `2026-01-02` or Unix milliseconds.
#[must_use]
pub fn parse_time(text: &str) -> Option<Timestamp> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(Timestamp::from_unix_ms(ms));
    }
    let (day, rest) = text.split_at_checked(10)?;
    let (start, _) = report::day_bounds(day)?;
    if rest.is_empty() {
        return Some(start);
    }
    let rest = rest.strip_prefix(['T', ' '])?.strip_suffix('Z')?;
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, "0"));
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 || frac.len() > 9 {
        return None;
    }
    let ms = format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?;
    Some(Timestamp::from_unix_ms(start.unix_ms() + ((h * 60 + m) * 60 + s) * 1000 + ms))
}

/// The tenant's deliveries, e.g. `?status=failed`.
///
/// # Errors
/// [`ApiError::Invalid`] for a bad query.
pub async fn list_deliveries(
    store: &Store,
    tenant: &TenantId,
    query: &DeliveryQuery,
) -> Result<Vec<DeliveryView>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some("failed" | "dead") => Some("dead".to_owned()),
        Some(s @ ("pending" | "sending" | "delivered")) => Some(s.to_owned()),
        Some(_) => {
            return Err(ApiError::invalid("status", "one of pending, sending, delivered, failed"));
        }
    };
    let sink = match &query.sink {
        Some(s) => Some(SinkId::parse(s).map_err(|e| ApiError::invalid("sink", e.to_string()))?),
        None => None,
    };
    let since = match &query.since {
        Some(s) => Some(
            parse_time(s)
                .ok_or_else(|| ApiError::invalid("since", "RFC 3339 time or Unix milliseconds"))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    let filter = DeliveryFilter { status, sink, since, limit };
    Ok(store.list_deliveries(tenant, &filter).await?.into_iter().map(delivery_view).collect())
}

fn parse_delivery(id: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(id).map_err(|_| ApiError::NotFound { what: "delivery" })
}

/// One delivery with its attempts.
///
/// # Errors
/// [`ApiError::NotFound`] unless the tenant has it.
pub async fn get_delivery(
    store: &Store,
    tenant: &TenantId,
    id: &str,
) -> Result<DeliveryView, ApiError> {
    let id = parse_delivery(id)?;
    let record = store.delivery(Some(tenant), &id).await?;
    let mut v = delivery_view(record);
    v.attempt_log = Some(store.attempts_of(&id).await?);
    Ok(v)
}

/// Sends a delivery again now (a failed one with a fresh schedule).
///
/// # Errors
/// [`ApiError::NotFound`] unless the tenant has it; [`ApiError::Conflict`] while it is
/// being sent.
pub async fn retry_delivery(
    store: &Store,
    tenant: &TenantId,
    id: &str,
    now: Timestamp,
) -> Result<DeliveryView, ApiError> {
    Ok(delivery_view(store.retry_delivery(Some(tenant), &parse_delivery(id)?, now).await?))
}

/// `POST /v1/deliveries/replay` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReplayRequest {
    /// The sink.
    pub sink: String,
    /// RFC 3339 or Unix milliseconds.
    pub since: String,
}

/// Replays a sink's failed deliveries since a time; returns how many.
///
/// # Errors
/// [`ApiError::Invalid`] for a bad sink id or time; [`ApiError::NotFound`] for another
/// tenant's sink.
pub async fn replay_failed(
    store: &Store,
    tenant: &TenantId,
    request: &ReplayRequest,
    now: Timestamp,
) -> Result<Value, ApiError> {
    let sink =
        SinkId::parse(&request.sink).map_err(|e| ApiError::invalid("sink", e.to_string()))?;
    let since = parse_time(&request.since)
        .ok_or_else(|| ApiError::invalid("since", "RFC 3339 time or Unix milliseconds"))?;
    if &store.sink(&sink).await?.tenant_id != tenant {
        return Err(ApiError::NotFound { what: "sink" });
    }
    let replayed = store.replay_failed(Some(tenant), &sink, since, now).await?;
    Ok(serde_json::json!({ "replayed": replayed }))
}

/// `GET /v1/reports/settlement` query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReportQuery {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `application/json` or `text/csv; charset=utf-8`.
    pub content_type: &'static str,
    /// The document.
    pub body: String,
}

/// The settlement report of a day.
///
/// # Errors
/// [`ApiError::Invalid`] for a bad date or format.
pub async fn settlement_report(
    store: &Store,
    tenant: &TenantId,
    query: &ReportQuery,
) -> Result<Rendered, ApiError> {
    let (from, to) =
        report::day_bounds(&query.date).ok_or_else(|| ApiError::invalid("date", "YYYY-MM-DD"))?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("format", "json or csv")),
    };
    let payments = store.settled_payments(tenant, from, to).await?;
    let refunds = store.settled_refunds(tenant, from, to).await?;
    let r = report::build(&query.date, tenant.as_str(), payments, refunds);
    Ok(if csv {
        Rendered { content_type: "text/csv; charset=utf-8", body: r.to_csv() }
    } else {
        Rendered { content_type: "application/json", body: r.to_json() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_times() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        for bad in [
            "ftp://x/",
            "http://127.0.0.1/",
            "http://localhost:8080/",
            "http://[::1]/",
            "http://u:p@example.com/",
            "nope",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
        assert_eq!(parse_time("1000"), Some(Timestamp::from_unix_ms(1000)));
        assert_eq!(parse_time("1970-01-02").map(Timestamp::unix_ms), Some(86_400_000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").map(Timestamp::unix_ms), Some(1500));
        assert!(parse_time("1970-01-01T25:00:00Z").is_none());
    }
}
