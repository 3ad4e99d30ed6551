#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "command-line tools talk to the terminal"
)]
//! `ivrpay report settlement|ledger` and `ivrpay deliveries list|retry|replay`: the
//! downstream sync's reports and levers, on the same data as a running `ivrpay serve`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};
use ivrpay_store::{DeliveryId, SinkId, Store, StoreConfig, TenantId, Timestamp};
use ivrpay_sync::api::{self, DeliveryQuery, ReportQuery};

use super::EXIT_ERROR;

#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    /// The data directory (its SQLite file).
    #[arg(long, env = "IVRPAY_DATA_DIR", value_name = "DIR", default_value = "ivrpay-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL; without it, the SQLite file under the data directory.
    #[arg(long, env = "IVRPAY_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The tenant.
    #[arg(long, default_value = "ten_default")]
    tenant: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// The settlement report of a UTC day: per currency and brand, count, gross, refunds,
    /// net, with the payment and refund lines.
    Settlement {
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        #[command(flatten)]
        data: DataArgs,
    },
    /// The double-entry journal lines of a UTC day, as CSV.
    Ledger {
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeliveriesCommand {
    /// Lists deliveries as JSON lines (`--status failed` for the dead letters).
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        sink: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Sends one delivery again now (a failed one with a fresh retry schedule).
    Retry {
        /// dlv_…
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replays a sink's failed deliveries created since a time (RFC 3339, YYYY-MM-DD or
    /// Unix milliseconds).
    Replay {
        #[arg(long)]
        sink: String,
        #[arg(long)]
        since: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[allow(clippy::disallowed_methods, reason = "the CLI is a driver: it owns the wall clock")]
fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

fn block_on(work: impl Future<Output = Result<String, String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ivrpay: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(work) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ivrpay: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn open(data: &DataArgs) -> Result<(Store, TenantId), String> {
    let tenant = TenantId::parse(&data.tenant).map_err(|e| format!("--tenant: {e}"))?;
    let config = match &data.database_url {
        Some(url) => StoreConfig::postgres(url),
        None => {
            if !data.data_dir.is_dir() {
                return Err(format!("data directory {} does not exist", data.data_dir.display()));
            }
            StoreConfig::sqlite_in(&data.data_dir)
        }
    };
    Ok((Store::open(&config).await.map_err(|e| e.to_string())?, tenant))
}

pub(crate) fn report(command: ReportCommand) -> ExitCode {
    block_on(async move {
        match command {
            ReportCommand::Settlement { date, format, data } => {
                let (store, tenant) = open(&data).await?;
                let format = Some(
                    match format {
                        Format::Json => "json",
                        Format::Csv => "csv",
                    }
                    .to_owned(),
                );
                let rendered =
                    api::settlement_report(&store, &tenant, &ReportQuery { date, format })
                        .await
                        .map_err(|e| e.to_string())?;
                store.close().await;
                Ok(if rendered.body.ends_with('\n') { rendered.body } else { rendered.body + "\n" })
            }
            ReportCommand::Ledger { date, data } => {
                let (from, to) =
                    ivrpay_sync::report::day_bounds(&date).ok_or("--date: expected YYYY-MM-DD")?;
                let (store, tenant) = open(&data).await?;
                let lines =
                    store.ledger_lines(&tenant, from, to).await.map_err(|e| e.to_string())?;
                store.close().await;
                Ok(ivrpay_sync::ledger::to_csv(&lines))
            }
        }
    })
}

pub(crate) fn deliveries(command: DeliveriesCommand) -> ExitCode {
    block_on(async move {
        match command {
            DeliveriesCommand::List { status, sink, limit, data } => {
                let (store, tenant) = open(&data).await?;
                let query = DeliveryQuery { status, sink, since: None, limit: Some(limit) };
                let list = api::list_deliveries(&store, &tenant, &query)
                    .await
                    .map_err(|e| e.to_string())?;
                store.close().await;
                Ok(list
                    .iter()
                    .map(|d| serde_json::to_string(d).unwrap_or_default() + "\n")
                    .collect())
            }
            DeliveriesCommand::Retry { id, data } => {
                let id = DeliveryId::parse(&id).map_err(|e| e.to_string())?;
                let (store, _) = open(&data).await?;
                // The operator's CLI acts on any tenant's delivery.
                let record =
                    store.retry_delivery(None, &id, now()).await.map_err(|e| e.to_string())?;
                store.close().await;
                Ok(format!("{{\"id\":\"{}\",\"status\":\"{}\"}}\n", record.id, record.status))
            }
            DeliveriesCommand::Replay { sink, since, data } => {
                let sink = SinkId::parse(&sink).map_err(|e| format!("--sink: {e}"))?;
                let since = api::parse_time(&since)
                    .ok_or("--since: RFC 3339 time, YYYY-MM-DD or Unix milliseconds")?;
                let (store, _) = open(&data).await?;
                let n = store
                    .replay_failed(None, &sink, since, now())
                    .await
                    .map_err(|e| e.to_string())?;
                store.close().await;
                Ok(format!("{{\"replayed\":{n}}}\n"))
            }
        }
    })
}
