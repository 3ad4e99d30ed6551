//! The downstream sync inside `serve`: the `[sync]` section of `--config` (embedded defaults
//! without one), the store it reads, and the outbox dispatcher, stopped on shutdown.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::{Store, StoreConfig};
use ivrpay_sync::{DispatcherHandle, SyncConfig, SyncMetrics, SystemClock};
use tracing::info;

use super::config::ServeConfig;

/// The running dispatcher and the store it uses.
#[derive(Debug)]
pub(crate) struct Sync {
    store: Store,
    handle: DispatcherHandle,
}

/// Starts the dispatcher unless `[sync] enabled = false`.
pub(crate) async fn start(
    config: &ServeConfig,
    metrics: Arc<SyncMetrics>,
) -> Result<Option<Sync>, String> {
    let text = match &config.config_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--config {}: {e}", path.display()))?,
        None => String::new(),
    };
    let sync = SyncConfig::from_toml(&text).map_err(|e| e.to_string())?.with_env();
    if !sync.enabled {
        return Ok(None);
    }
    let store_config = match &config.database_url {
        Some(url) => StoreConfig::postgres(url),
        None => StoreConfig::sqlite_in(&config.data_dir),
    };
    let store = Store::open(&store_config).await.map_err(|e| e.to_string())?;
    let handle =
        sync.start(&store, Arc::new(SystemClock), metrics).await.map_err(|e| e.to_string())?;
    info!("sync: dispatcher running ({} configured sinks)", sync.sinks.len());
    Ok(Some(Sync { store, handle }))
}

impl Sync {
    /// Stops claiming, finishes the deliveries in flight (up to `grace`), closes the store.
    pub(crate) async fn stop(self, grace: Duration) {
        self.handle.stop(grace).await;
        self.store.close().await;
    }
}
