//! The agent-desktop page: `/desktop`, its script and its style, compiled into the binary.
//!
//! The page signs in with an agent key (kept in the tab's session storage only), follows the
//! agent's feed over the WebSocket, and drives payments through the REST API. It renders the
//! service's masked views and nothing else: no card digit beyond the last four can reach the
//! DOM because none ever leaves the service. A strict content security policy allows
//! scripts, styles and connections to this origin only.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("desktop/index.html");
const SCRIPT: &str = include_str!("desktop/app.js");
const STYLE: &str = include_str!("desktop/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
}

/// The agent-desktop page.
#[utoipa::path(
    get, path = "/desktop", tag = "desktop",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub(crate) async fn page() -> impl IntoResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The page's script.
#[utoipa::path(
    get, path = "/desktop/app.js", tag = "desktop",
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String)),
)]
pub(crate) async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The page's style sheet.
#[utoipa::path(
    get, path = "/desktop/app.css", tag = "desktop",
    responses((status = 200, description = "The style sheet", content_type = "text/css", body = String)),
)]
pub(crate) async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}
