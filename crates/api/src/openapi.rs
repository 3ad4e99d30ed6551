//! The OpenAPI 3.1 document (`GET /v1/openapi.json`) and the router it describes.
//!
//! Every route is registered here through `utoipa_axum::routes!` from its handler's
//! `#[utoipa::path]` annotation, so a route cannot exist without its entry in the document
//! nor the other way round.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiState, calls, desktop, feed, health, ivr, payments, sync_routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ivrpay",
        description = "Telephony payments with DTMF masking: calls through the B2BUA, agent-assisted payment sessions (after Twilio's Payments API), refunds, the live event feed, webhook endpoints, deliveries and the settlement report.\n\nAuthenticate with `Authorization: Bearer <key>` (admin keys, or agent keys bound to one agent). Every POST needs an `Idempotency-Key`. Errors are `application/problem+json`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Bearer),
    tags(
        (name = "calls", description = "Calls through ivrpay"),
        (name = "payments", description = "Agent-assisted payment sessions, refunds, hand-off to the IVR, payment requests for the IVR"),
        (name = "feed", description = "Live events: WebSocket and server-sent events"),
        (name = "keys", description = "The caller's API key"),
        (name = "webhooks", description = "Webhook endpoints (admin)"),
        (name = "deliveries", description = "Outbox deliveries to sinks (admin)"),
        (name = "reports", description = "Reports (admin)"),
        (name = "operations", description = "Health, metrics, this document"),
        (name = "desktop", description = "The agent-desktop page"),
    ),
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every route, with the document.
pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(calls::list_calls))
        .routes(routes!(calls::get_call))
        .routes(routes!(calls::me))
        .routes(routes!(payments::create_payment))
        .routes(routes!(payments::get_payment, payments::update_payment))
        .routes(routes!(payments::create_refund, payments::list_refunds))
        .routes(routes!(ivr::hand_off))
        .routes(routes!(ivr::create_payment_request))
        .routes(routes!(ivr::get_payment_request))
        .routes(routes!(feed::websocket))
        .routes(routes!(feed::call_events))
        .routes(routes!(sync_routes::create_endpoint, sync_routes::list_endpoints))
        .routes(routes!(sync_routes::get_endpoint, sync_routes::delete_endpoint))
        .routes(routes!(sync_routes::rotate_secret))
        .routes(routes!(sync_routes::list_deliveries))
        .routes(routes!(sync_routes::get_delivery))
        .routes(routes!(sync_routes::retry_delivery))
        .routes(routes!(sync_routes::replay))
        .routes(routes!(sync_routes::settlement))
        .routes(routes!(health::healthz))
        .routes(routes!(health::metrics))
        .routes(routes!(desktop::page))
        .routes(routes!(desktop::script))
        .routes(routes!(desktop::style))
        .routes(routes!(document))
}

/// This document.
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub(crate) async fn document(State(state): State<ApiState>) -> impl IntoResponse {
    let text = state.inner.document.get().cloned().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], text)
}

/// The document as JSON text (for tools and tests that do not run the server).
#[must_use]
pub fn document_json() -> String {
    let (_, document) = routes().split_for_parts();
    document.to_pretty_json().unwrap_or_default()
}
