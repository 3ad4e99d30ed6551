//! `ivrpay serve`: the SIP B2BUA, the media relay and the HTTP side, in one process.

mod config;
mod http;
mod ivr;
mod media;
mod payments;
mod state;
mod sync;

use std::process::ExitCode;
use std::sync::Arc;

pub(crate) use config::ServeArgs;
use ivrpay_media::{EngineConfig, MediaEngine, MediaRuntime, RuntimeConfig};
use ivrpay_service::SystemClock;
use ivrpay_sip::b2bua::{CallEvent, CoreConfig, IdSeed};
use ivrpay_sip::transaction::Timers;
use ivrpay_store::{Store, StoreConfig};
use tokio::sync::mpsc;
use tracing::{error, info};

use self::media::{MediaHandles, RelayMedia};
use self::state::AppState;

pub(crate) fn run(args: ServeArgs) -> ExitCode {
    init_logging();
    let config = match args.resolve() {
        Ok(config) => config,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(crate::cli::EXIT_ERROR);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::from(crate::cli::EXIT_ERROR);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(crate::cli::EXIT_ERROR)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IVRPAY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

async fn serve(config: config::ServeConfig) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("data directory {}: {e}", config.data_dir.display()))?;
    let engine = MediaEngine::new(EngineConfig {
        port_min: config.rtp_ports.0,
        port_max: config.rtp_ports.1,
        quarantine: config.rtp_quarantine,
        ..EngineConfig::default()
    })?;
    let relay_threads =
        MediaRuntime::start(RuntimeConfig { tick: config.media_tick, ..RuntimeConfig::default() })
            .map_err(|e| format!("media relay threads: {e}"))?;
    let (media_tx, mut media_events) = mpsc::unbounded_channel();
    let media_handles = MediaHandles::default();
    let (event_tx, mut events) = mpsc::unbounded_channel::<CallEvent>();
    let store_config = match &config.database_url {
        Some(url) => StoreConfig::postgres(url),
        None => StoreConfig::sqlite_in(&config.data_dir),
    };
    // SQLite's writer thread and its connection's thread on one core (see the store's
    // `pinning` module): a write statement's round trip between them is most of its cost.
    #[cfg(target_os = "linux")]
    let opened =
        Store::open_with_writer_setup(&store_config, ivrpay_store::pinning::share_one_core);
    #[cfg(not(target_os = "linux"))]
    let opened = Store::open(&store_config);
    let store = opened.await.map_err(|e| format!("store: {e}"))?;
    let service = payments::start(&config, store.clone()).await?;
    bootstrap_admin_key(&store, service.tenant()).await?;
    let state = Arc::new(AppState::new(engine.clone(), service));
    let (sync, sync_api) = sync::start(&config, &store, Arc::clone(&state.sync)).await?;
    let ivr_profiles = ivr::profiles(&config.profiles);
    let seed = IdSeed::from_os().map_err(|e| format!("random seed for SIP ids: {e}"))?;
    let core = CoreConfig { profiles: config.profiles, timers: Timers::default(), seed };
    let sip = ivrpay_sip::driver::start(
        core,
        RelayMedia::new(engine, relay_threads, media_handles.clone(), media_tx),
        event_tx,
        config.shutdown_grace,
    )
    .await
    .map_err(|e| format!("SIP listen: {e}"))?;
    let ivr = ivr::start(&state.service, ivr_profiles, media_handles, sip.control())?;
    let _ = state.ivr.set(ivr.clone());
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|e| format!("HTTP listen {}: {e}", config.http_listen))?;
    let http_addr = http.local_addr()?;
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = ivrpay_api::ApiConfig {
        heartbeat: config.feed_heartbeat,
        allow_private_webhooks: sync_api.allow_private_webhooks,
        secret_overlap: sync_api.secret_overlap,
    };
    let metrics_state = Arc::clone(&state);
    let api_state = ivrpay_api::ApiState::new(
        state.service.clone(),
        Arc::new(SystemClock),
        api,
        Arc::new(move || http::render_metrics(&metrics_state)),
    );
    api_state.set_ivr(ivr);
    let app = ivrpay_api::router(api_state);
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(http, app)
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await;
    });
    for listen in &sip.listening {
        info!("SIP listening on {listen}");
    }
    info!("HTTP listening on http://{http_addr}");
    info!("ready");
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            Some(event) = events.recv() => state.on_call_event(event),
            Some((call, event)) = media_events.recv() => state.on_media_event(&call, event),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    sip.stop_taking_calls();
    info!("shutting down: no new calls; {} in progress may finish", state.active_calls());
    let draining = Arc::clone(&state);
    let drain = tokio::spawn(async move {
        // Calls in progress go on: their events, keys and prompt ends still count.
        loop {
            tokio::select! {
                Some(event) = events.recv() => draining.on_call_event(event),
                Some((call, event)) = media_events.recv() => draining.on_media_event(&call, event),
                else => break,
            }
        }
    });
    sip.shutdown(config.shutdown_grace).await;
    // The calls' ends were announced; their tasks record them and cancel what was open.
    state.service.end_all("terminated");
    state.service.wait_idle(std::time::Duration::from_secs(5)).await;
    if let Some(sync) = sync {
        sync.stop(config.shutdown_grace).await;
    }
    let _ = http_stop.send(());
    let _ = http_task.await;
    drain.abort();
    store.close().await;
    info!("stopped");
    Ok(())
}

/// On the deployment's first start, the first admin API key: from
/// `IVRPAY_BOOTSTRAP_ADMIN_KEY`, or a random one printed here once (only its hash is kept).
async fn bootstrap_admin_key(
    store: &Store,
    tenant: &ivrpay_store::TenantId,
) -> Result<(), Box<dyn std::error::Error>> {
    use ivrpay_api::Bootstrap;
    use ivrpay_service::Clock as _;
    let preset = std::env::var(ivrpay_api::auth::BOOTSTRAP_ENV).ok();
    match ivrpay_api::auth::bootstrap_admin_key(store, tenant, preset.as_deref(), SystemClock.now())
        .await?
    {
        Bootstrap::Generated { id, secret } => {
            #[allow(
                clippy::print_stdout,
                reason = "the key is shown once, to the operator, not logged"
            )]
            {
                println!(
                    "\nivrpay: created the first admin API key ({}). It is shown this once; only its \
                     hash is stored:\n\n    {secret}\n\nUse it as `Authorization: Bearer <key>`; \
                     make agent keys with `ivrpay keys create --scope agent --agent ID`.\n",
                    id.as_str()
                );
            }
        }
        Bootstrap::FromEnv { id } => {
            info!(key = %id.as_str(), "stored the first admin API key from {}", ivrpay_api::auth::BOOTSTRAP_ENV);
        }
        Bootstrap::Existing => {}
    }
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
}
