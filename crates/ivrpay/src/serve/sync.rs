//! The downstream sync inside `serve`: the `[sync]` section of `--config` (embedded defaults
//! without one), the store it reads, and the outbox dispatcher, stopped on shutdown.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::Store;
use ivrpay_sync::{DispatcherHandle, SyncConfig, SyncMetrics, SystemClock};
use tracing::info;

use super::config::ServeConfig;

/// The running dispatcher.
#[derive(Debug)]
pub(crate) struct Sync {
    handle: DispatcherHandle,
}

/// What the API needs of the `[sync]` settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiSettings {
    /// Webhook endpoints may point at private and loopback addresses.
    pub(crate) allow_private_webhooks: bool,
    /// How long a rotated webhook secret keeps signing.
    pub(crate) secret_overlap: Duration,
}

/// Starts the dispatcher unless `[sync] enabled = false`.
pub(crate) async fn start(
    config: &ServeConfig,
    store: &Store,
    metrics: Arc<SyncMetrics>,
) -> Result<(Option<Sync>, ApiSettings), String> {
    let text = match &config.config_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--config {}: {e}", path.display()))?,
        None => String::new(),
    };
    let sync = SyncConfig::from_toml(&text).map_err(|e| e.to_string())?.with_env();
    let api = ApiSettings {
        allow_private_webhooks: sync.allow_private_webhooks,
        secret_overlap: Duration::from_secs(sync.secret_overlap_secs),
    };
    if !sync.enabled {
        return Ok((None, api));
    }
    let handle =
        sync.start(store, Arc::new(SystemClock), metrics).await.map_err(|e| e.to_string())?;
    info!("sync: dispatcher running ({} configured sinks)", sync.sinks.len());
    Ok((Some(Sync { handle }), api))
}

impl Sync {
    /// Stops claiming and finishes the deliveries in flight (up to `grace`).
    pub(crate) async fn stop(self, grace: Duration) {
        self.handle.stop(grace).await;
    }
}
