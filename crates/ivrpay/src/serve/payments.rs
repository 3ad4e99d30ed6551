//! The payment side of `serve`: the `[payments]` section of `--config` (the embedded sandbox
//! gateway without one), the vault and the application core.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_card::Secret;
use ivrpay_payments::generic::{GenericPay, GenericPayConfig};
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_payments::stripe::{Stripe, StripeConfig};
use ivrpay_payments::{Gateway, RetryPolicy};
use ivrpay_service::{Service, ServiceConfig, SystemClock};
use ivrpay_store::{Store, TenantId};
use ivrpay_vault::{MasterKeySource, Vault};
use serde::Deserialize;
use tracing::info;

use super::config::ServeConfig;

/// `[payments]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentsSection {
    /// `sandbox` (default), `stripe` or `generic-pay`.
    #[serde(default = "sandbox")]
    gateway: String,
    /// The tenant payments belong to.
    #[serde(default = "default_tenant")]
    tenant: String,
    /// Seconds the caller may pause between two digits of a field.
    #[serde(default = "five")]
    inter_digit_timeout_secs: u64,
    /// Deadline of each gateway request, in seconds.
    #[serde(default = "ten")]
    gateway_timeout_secs: u64,
    stripe: Option<StripeSection>,
    generic_pay: Option<GenericPaySection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StripeSection {
    #[serde(default = "stripe_api")]
    base_url: String,
    /// The secret key; `IVRPAY_STRIPE_SECRET_KEY` overrides it (keep keys out of files).
    secret_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericPaySection {
    url: String,
    username: Option<String>,
    /// `IVRPAY_GENERIC_PAY_PASSWORD` overrides it.
    password: Option<String>,
}

fn sandbox() -> String {
    "sandbox".to_owned()
}
fn default_tenant() -> String {
    "ten_default".to_owned()
}
fn five() -> u64 {
    5
}
fn ten() -> u64 {
    10
}
fn stripe_api() -> String {
    "https://api.stripe.com".to_owned()
}

impl Default for PaymentsSection {
    fn default() -> Self {
        PaymentsSection {
            gateway: sandbox(),
            tenant: default_tenant(),
            inter_digit_timeout_secs: five(),
            gateway_timeout_secs: ten(),
            stripe: None,
            generic_pay: None,
        }
    }
}

fn section(config: &ServeConfig) -> Result<PaymentsSection, String> {
    let Some(path) = &config.config_file else { return Ok(PaymentsSection::default()) };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    // Other sections belong to other parts of the service; only [payments] is checked here.
    let mut file: toml::Table =
        toml::from_str(&text).map_err(|e| format!("--config {}: {e}", path.display()))?;
    match file.remove("payments") {
        Some(section) => {
            section.try_into().map_err(|e: toml::de::Error| format!("[payments]: {e}"))
        }
        None => Ok(PaymentsSection::default()),
    }
}

fn gateway(section: &PaymentsSection) -> Result<Arc<dyn Gateway>, String> {
    let timeout = Duration::from_secs(section.gateway_timeout_secs);
    match section.gateway.as_str() {
        "sandbox" => Ok(Arc::new(Sandbox::new())),
        "stripe" => {
            let stripe = section
                .stripe
                .as_ref()
                .ok_or("[payments] gateway = \"stripe\" needs [payments.stripe]")?;
            let key = std::env::var("IVRPAY_STRIPE_SECRET_KEY")
                .ok()
                .or_else(|| stripe.secret_key.clone())
                .ok_or("[payments.stripe]: no secret_key and no IVRPAY_STRIPE_SECRET_KEY")?;
            let config = StripeConfig {
                base_url: stripe.base_url.clone(),
                secret_key: Secret::new(key),
                timeout,
            };
            Ok(Arc::new(Stripe::new(config).map_err(|e| format!("[payments.stripe]: {e}"))?))
        }
        "generic-pay" => {
            let generic = section
                .generic_pay
                .as_ref()
                .ok_or("[payments] gateway = \"generic-pay\" needs [payments.generic_pay]")?;
            let password = std::env::var("IVRPAY_GENERIC_PAY_PASSWORD")
                .ok()
                .or_else(|| generic.password.clone());
            let basic_auth = generic
                .username
                .clone()
                .map(|user| (user, Secret::new(password.unwrap_or_default())));
            let config = GenericPayConfig {
                url: generic.url.clone(),
                basic_auth,
                parameters: Default::default(),
                timeout,
            };
            Ok(Arc::new(
                GenericPay::new(config).map_err(|e| format!("[payments.generic_pay]: {e}"))?,
            ))
        }
        other => Err(format!(
            "[payments] gateway = {other:?}: expected \"sandbox\", \"stripe\" or \"generic-pay\""
        )),
    }
}

/// Starts the application core on `store`.
pub(crate) async fn start(config: &ServeConfig, store: Store) -> Result<Service, String> {
    let section = section(config)?;
    let tenant = TenantId::parse(&section.tenant).map_err(|e| format!("[payments] tenant: {e}"))?;
    let gateway = gateway(&section)?;
    let vault = Vault::open(store.clone(), MasterKeySource::from_env_or(&config.data_dir))
        .map_err(|e| format!("vault: {e}"))?;
    let retry = RetryPolicy {
        try_timeout: Duration::from_secs(section.gateway_timeout_secs),
        ..RetryPolicy::default()
    };
    let service_config = ServiceConfig {
        tenant,
        node: config.node.clone(),
        gateway_name: gateway.name().to_owned(),
        retry,
        inter_digit_timeout: Duration::from_secs(section.inter_digit_timeout_secs),
    };
    let service = Service::start(service_config, store, vault, gateway, Arc::new(SystemClock))
        .await
        .map_err(|e| format!("payments: {e}"))?;
    info!("payments: gateway {}, node {}", section.gateway, config.node);
    Ok(service)
}
