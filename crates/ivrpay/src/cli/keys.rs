#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "command-line tools talk to the terminal"
)]
//! `ivrpay keys rotate|retire`: master key management for the card vault; `ivrpay keys
//! create`: API keys.
//!
//! All work while `ivrpay serve` runs on the same data: a rotation writes the new key file
//! first and re-wraps data keys one by one, so running nodes keep reading (they reload the
//! key file when they meet a data key wrapped by a key they do not hold); a new API key is
//! usable at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use ivrpay_api::Scope;
use ivrpay_store::{Store, StoreConfig, TenantId, Timestamp};
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
    /// Make a new API key and print it (once: only its hash is stored). `--scope admin` may
    /// do everything; `--scope agent --agent ID` sees that agent's calls, payments and feed.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    store: KeysArgs,
    /// `admin` or `agent`.
    #[arg(long, value_name = "admin|agent")]
    scope: String,
    /// The agent an agent key is bound to (the id the contact centre's answer carries, e.g.
    /// the profile's agent header).
    #[arg(long, value_name = "ID")]
    agent: Option<String>,
    /// A label for the key.
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,
    /// The tenant (as in `[payments] tenant`).
    #[arg(long, env = "IVRPAY_TENANT", value_name = "ID", default_value = "ten_default")]
    tenant: String,
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
        KeysCommand::Create(create) => &create.store,
    };
    // Check the arguments before touching the data.
    let create = match &command {
        KeysCommand::Create(create) => Some((
            Scope::parse(&create.scope, create.agent.as_deref())?,
            TenantId::parse(&create.tenant).map_err(|e| format!("--tenant: {e}"))?,
        )),
        _ => None,
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
    if let (KeysCommand::Create(args), Some((scope, tenant))) = (&command, create) {
        let summary = create_api_key(&store, &tenant, &scope, args.name.as_deref()).await;
        store.close().await;
        return summary;
    }
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
        KeysCommand::Create(_) => serde_json::Value::Null,
        KeysCommand::Retire(_) => {
            let retired = vault.retire_master_keys(now()).await.map_err(|e| e.to_string())?;
            serde_json::json!({ "master_key_id": vault.master_key_id(), "retired_master_key_ids": retired })
        }
    };
    store.close().await;
    Ok(summary)
}

/// Makes the key; the summary holds it (the only time it is shown).
async fn create_api_key(
    store: &Store,
    tenant: &TenantId,
    scope: &Scope,
    name: Option<&str>,
) -> Result<serde_json::Value, String> {
    let name = name.map_or_else(
        || match scope {
            Scope::Admin => "admin".to_owned(),
            Scope::Agent(agent) => format!("agent {agent}"),
        },
        str::to_owned,
    );
    store.ensure_tenant(tenant, tenant.as_str(), now()).await.map_err(|e| e.to_string())?;
    let (id, secret) = ivrpay_api::auth::create_key(store, tenant, scope, &name, "cli", now())
        .await
        .map_err(|e| e.to_string())?;
    let agent = match scope {
        Scope::Agent(agent) => Some(agent.as_str()),
        Scope::Admin => None,
    };
    Ok(serde_json::json!({
        "id": id.as_str(),
        "key": secret,
        "scope": scope.name(),
        "agent": agent,
        "tenant": tenant.as_str(),
    }))
}
