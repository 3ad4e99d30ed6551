#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "command-line tools talk to the terminal"
)]
//! `ivrpay keys rotate|retire`: master key management for the card vault.
//!
//! Both work while `ivrpay serve` runs on the same data: a rotation writes the new key file
//! first and re-wraps data keys one by one, so running nodes keep reading (they reload the
//! key file when they meet a data key wrapped by a key they do not hold).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use ivrpay_store::{Store, StoreConfig, Timestamp};
use ivrpay_vault::{MasterKeySource, Vault};

use super::EXIT_ERROR;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a new random master key active and re-wrap every data key under it. Tokens keep
    /// working throughout; the previous keys stay in the key file until `keys retire`.
    /// Prints a JSON summary.
    Rotate(KeysArgs),
    /// Remove from the key file every old master key that no data key uses any more. Run it
    /// once every node has picked up the last rotation. Prints a JSON summary.
    Retire(KeysArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// The data directory (the master key file is DIR/keys/master.keys unless
    /// IVRPAY_MASTER_KEY or IVRPAY_MASTER_KEY_FILE say otherwise).
    #[arg(long, env = "IVRPAY_DATA_DIR", value_name = "DIR", default_value = "ivrpay-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL; without it, the SQLite file under the data directory.
    #[arg(long, env = "IVRPAY_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
}

pub(crate) fn run(command: KeysCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ivrpay: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ivrpay: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[allow(clippy::disallowed_methods, reason = "the CLI is a driver: it owns the wall clock")]
fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

async fn execute(command: KeysCommand) -> Result<serde_json::Value, String> {
    let args = match &command {
        KeysCommand::Rotate(args) | KeysCommand::Retire(args) => args,
    };
    let config = match &args.database_url {
        Some(url) => StoreConfig::postgres(url),
        None => {
            if !args.data_dir.is_dir() {
                return Err(format!("data directory {} does not exist", args.data_dir.display()));
            }
            StoreConfig::sqlite_in(&args.data_dir)
        }
    };
    let store = Store::open(&config).await.map_err(|e| e.to_string())?;
    let vault = Vault::open(store.clone(), MasterKeySource::from_env_or(&args.data_dir))
        .map_err(|e| e.to_string())?;
    let summary = match command {
        KeysCommand::Rotate(_) => {
            let report = vault.rotate(now()).await.map_err(|e| e.to_string())?;
            serde_json::json!({
                "master_key_id": report.new_master_key_id,
                "previous_master_key_ids": report.previous_master_key_ids,
                "rewrapped_data_keys": report.rewrapped,
            })
        }
        KeysCommand::Retire(_) => {
            let retired = vault.retire_master_keys(now()).await.map_err(|e| e.to_string())?;
            serde_json::json!({ "master_key_id": vault.master_key_id(), "retired_master_key_ids": retired })
        }
    };
    store.close().await;
    Ok(summary)
}
