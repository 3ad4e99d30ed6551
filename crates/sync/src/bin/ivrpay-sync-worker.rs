#![allow(clippy::print_stderr, reason = "a command-line driver reports to the terminal")]
//! `ivrpay-sync-worker`: the outbox dispatcher alone, for a node that only delivers (and for
//! the crash tests, which SIGKILL it mid-flight). `ivrpay serve` runs the same dispatcher
//! in-process.
//!
//! ```text
//! ivrpay-sync-worker (--data-dir DIR | --database-url URL [--schema NAME]) [--config FILE]
//! ```
//!
//! Runs until SIGTERM or SIGINT, then stops claiming and finishes what is in flight.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::{Store, StoreConfig};
use ivrpay_sync::{SyncConfig, SyncMetrics, SystemClock};

fn usage() -> ExitCode {
    eprintln!(
        "usage: ivrpay-sync-worker (--data-dir DIR | --database-url URL [--schema NAME]) [--config FILE]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut data_dir, mut url, mut schema, mut config) = (None, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--data-dir", Some(v)) => data_dir = Some(v),
            ("--database-url", Some(v)) => url = Some(v),
            ("--schema", Some(v)) => schema = Some(v),
            ("--config", Some(v)) => config = Some(v),
            _ => return usage(),
        }
    }
    let store_config = match (data_dir, url) {
        (Some(dir), None) => StoreConfig::sqlite_in(std::path::Path::new(&dir)),
        (None, Some(url)) => StoreConfig::Postgres { url, schema, max_connections: 8 },
        _ => return usage(),
    };
    let sync = match config.map(std::fs::read_to_string).transpose() {
        Ok(text) => match SyncConfig::from_toml(text.as_deref().unwrap_or("")) {
            Ok(c) => c.with_env(),
            Err(e) => {
                eprintln!("ivrpay-sync-worker: {e}");
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            eprintln!("ivrpay-sync-worker: config: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("ivrpay-sync-worker: runtime: {e}");
                return ExitCode::from(2);
            }
        };
    match runtime.block_on(run(store_config, sync)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ivrpay-sync-worker: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(
    store_config: StoreConfig,
    sync: SyncConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    use tokio::signal::unix::{SignalKind, signal};
    let store = Store::open(&store_config).await?;
    let metrics = Arc::new(SyncMetrics::default());
    let handle = sync.start(&store, Arc::new(SystemClock), Arc::clone(&metrics)).await?;
    eprintln!("ivrpay-sync-worker: ready");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    handle.stop(Duration::from_secs(30)).await;
    store.close().await;
    Ok(())
}
