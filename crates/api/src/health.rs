//! `/healthz` and `/metrics` (Prometheus text: the process's counters, then the API's).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::ApiState;

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", content_type = "application/json", body = Object)),
)]
pub(crate) async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}")
}

/// Prometheus metrics: calls, digits, media relay, sync and API counters.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)),
)]
pub(crate) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let mut out = (state.inner.metrics_source)();
    let m = state.metrics();
    for (name, help, kind, value) in [
        (
            "api_feed_connections",
            "Feed connections open (WebSocket and SSE).",
            "gauge",
            m.feed_connections.load(Ordering::Relaxed),
        ),
        (
            "api_feed_events_sent_total",
            "Events handed to feed connections.",
            "counter",
            m.feed_events_sent.load(Ordering::Relaxed),
        ),
        (
            "api_idempotent_replays_total",
            "POSTs answered from the idempotency cache.",
            "counter",
            m.idempotent_replays.load(Ordering::Relaxed),
        ),
        (
            "api_auth_failures_total",
            "Requests with a missing, unknown or revoked API key.",
            "counter",
            m.auth_failures.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP ivrpay_{name} {help}\n# TYPE ivrpay_{name} {kind}\nivrpay_{name} {value}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
