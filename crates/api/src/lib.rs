//! # ivrpay-api
//!
//! The HTTP side of `ivrpay serve`: the REST API under `/v1`, the live feed (WebSocket and
//! server-sent events), the agent-desktop page, the OpenAPI document, API keys, `/healthz`
//! and `/metrics`.
//!
//! # Design
//!
//! - **A thin edge over the service.** Handlers parse and check input, ask
//!   [`ivrpay_service::Service`] (calls, payment sessions, refunds) or the sync's handler
//!   logic ([`ivrpay_sync::api`]: webhook endpoints, deliveries, the settlement report), and
//!   render the answer. Nothing here changes state on its own, so every guarantee of the
//!   service (one transaction per change, no double charge) holds for the API unchanged.
//! - **The wire format is ours.** Views of the service are mapped into API resources
//!   ([`openapi`] holds them with their schemas), so the service can change without
//!   changing what integrations read.
//! - **Routes and document cannot drift.** Every route is registered through
//!   `utoipa_axum`'s router from its `#[utoipa::path]` annotation: the route and its entry
//!   in `/v1/openapi.json` come from the same line.
//! - **Keys, not sessions.** Callers send `Authorization: Bearer <key>`; the store keeps
//!   only the key's SHA-256 ([`auth`]). A key is `admin` or `agent` bound to one agent id;
//!   an agent key sees only that agent's calls, payments and feed events (others read as
//!   404, not 403, so their existence does not leak). Browsers cannot set headers on a
//!   WebSocket, so the feed also takes the key as the subprotocol `bearer.<key>` beside
//!   `ivrpay.feed.v1`.
//! - **Errors are problems.** Every error is `application/problem+json` (RFC 9457) with a
//!   readable `detail` that never quotes card data or internals; storage failures are
//!   logged once and answered with a plain "internal error".
//! - **Every POST is idempotent by key.** `Idempotency-Key` is required on every POST
//!   ([`idempotency`], after the IETF httpapi draft): the first answer is replayed for the
//!   same key and body (`Idempotent-Replayed: true`), the same key with another body is a 422,
//!   a retry while the first is still running a 409. The money-moving operations are
//!   idempotent in the store as well (the key opens the same session, refunds once), so a
//!   replay after a restart still charges and refunds nothing twice.
//! - **The feed is the outbox.** Events are the store's outbox rows; their `id` is the
//!   tenant's `seq`, which increases without gaps in commit order. A client that resumes with
//!   `since=` (WebSocket) or `Last-Event-ID` (SSE) is first served from the store, then live
//!   from the service's broadcast; any gap in the live sequence (a slow client, a lagging
//!   broadcast) is filled from the store, so every event arrives exactly once and in order
//!   ([`feed`]).
//! - **The desktop holds no card data.** The page renders the service's masked views
//!   (bullets, brand, last four, the expiry in clear as Twilio shows it); its scripts are
//!   served from the same origin under a strict content security policy.

#![cfg_attr(
    not(test),
    warn(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::unreachable)
)]

pub mod auth;
mod calls;
mod desktop;
mod error;
pub mod feed;
mod health;
pub mod idempotency;
mod input;
mod ivr;
pub mod openapi;
mod payments;
mod sync_routes;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use ivrpay_service::{Clock, Service};

pub use auth::{Bootstrap, Scope};
pub use error::Problem;

/// Settings of the HTTP side.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// How often an idle feed connection gets a heartbeat.
    pub heartbeat: Duration,
    /// Webhook endpoints may point at private and loopback addresses (local development).
    pub allow_private_webhooks: bool,
    /// How long a rotated webhook secret keeps signing beside the new one.
    pub secret_overlap: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            heartbeat: Duration::from_secs(15),
            allow_private_webhooks: false,
            secret_overlap: Duration::from_secs(24 * 3600),
        }
    }
}

/// Renders the Prometheus text of the rest of the process (media, SIP, sync counters).
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Counters of the HTTP side, appended to `/metrics`.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    pub(crate) feed_connections: AtomicU64,
    pub(crate) feed_events_sent: AtomicU64,
    pub(crate) idempotent_replays: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    service: Service,
    clock: Arc<dyn Clock>,
    config: ApiConfig,
    pub(crate) metrics_source: MetricsSource,
    metrics: ApiMetrics,
    idempotency: idempotency::Cache,
    /// `/v1/openapi.json`, rendered once by [`router`].
    pub(crate) document: std::sync::OnceLock<String>,
    /// The IVR, for hand-offs and payment requests (its routes answer 503 without it).
    ivr: std::sync::OnceLock<ivrpay_ivr::Ivr>,
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl ApiState {
    /// The state for [`router`]: the service, the clock the API stamps times with, settings,
    /// and the rest of the process's metrics.
    pub fn new(
        service: Service,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
        metrics_source: MetricsSource,
    ) -> ApiState {
        ApiState {
            inner: Arc::new(Inner {
                service,
                clock,
                config,
                metrics_source,
                metrics: ApiMetrics::default(),
                idempotency: idempotency::Cache::default(),
                document: std::sync::OnceLock::new(),
                ivr: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Gives the API the IVR (`POST /v1/calls/{id}/ivr`, payment requests); set once.
    pub fn set_ivr(&self, ivr: ivrpay_ivr::Ivr) {
        let _ = self.inner.ivr.set(ivr);
    }

    pub(crate) fn ivr(&self) -> Option<&ivrpay_ivr::Ivr> {
        self.inner.ivr.get()
    }

    pub(crate) fn service(&self) -> &Service {
        &self.inner.service
    }

    pub(crate) fn store(&self) -> &ivrpay_store::Store {
        self.inner.service.store()
    }

    pub(crate) fn tenant(&self) -> &ivrpay_store::TenantId {
        self.inner.service.tenant()
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub(crate) fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &ApiMetrics {
        &self.inner.metrics
    }

    pub(crate) fn idempotency(&self) -> &idempotency::Cache {
        &self.inner.idempotency
    }
}

/// The whole HTTP side: `/v1/…`, `/v1/openapi.json`, `/desktop`, `/healthz`, `/metrics`.
pub fn router(state: ApiState) -> Router {
    let (routes, document) = openapi::routes().split_for_parts();
    let _ = state.inner.document.set(document.to_pretty_json().unwrap_or_default());
    routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .with_state(state)
}
