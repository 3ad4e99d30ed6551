//! The `[sync]` section of the service configuration (`ivrpay serve --config FILE`), and
//! how configured sinks become rows of the store.
//!
//! ```toml
//! [sync]
//! tenant = "ten_default"
//! retry_schedule_secs = [5, 300, 1800, 7200, 18000, 36000, 36000]
//! alert_after = 4
//!
//! [[sync.sinks]]
//! kind = "ledger"
//! name = "ledger"
//! events = ["payment.succeeded", "refund.succeeded"]
//! ```
//!
//! Every field has a default, so no file (or a file without `[sync]`) runs the dispatcher on
//! the standard schedule with no configured sinks; webhook endpoints come and go through the
//! API at run time. Configured sinks are matched to stored ones by kind and name at every
//! start: settings follow the file, a sink that left the file is disabled.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::{EventType, NewSink, NewWebhookEndpoint, Store, TenantId, Timestamp};
use serde_json::{Map, Value};

use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::signing::WebhookSecret;
use crate::sinks::{SinkOptions, SinkSet};
use crate::{Clock, RetrySchedule, SyncError, SyncMetrics};

/// The `[sync]` section.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Run the dispatcher in this process.
    pub enabled: bool,
    /// The tenant whose configured sinks these are.
    pub tenant: String,
    /// Deliveries in flight at most.
    pub concurrency: usize,
    /// Rows claimed per round trip at most.
    pub batch: u32,
    /// Idle poll interval.
    pub poll_interval_ms: u64,
    /// Lease of a claimed delivery.
    pub lease_secs: u64,
    /// Timeout of one attempt.
    pub timeout_secs: u64,
    /// Delays after the 1st, 2nd, … failure.
    pub retry_schedule_secs: Vec<u64>,
    /// Failures that raise `delivery.failing`.
    pub alert_after: u32,
    /// Allow webhook endpoints on private and loopback addresses (also
    /// `IVRPAY_ALLOW_PRIVATE_WEBHOOKS=1`).
    pub allow_private_webhooks: bool,
    /// How long a replaced webhook secret keeps signing after a rotation.
    pub secret_overlap_secs: u64,
    /// Configured sinks.
    pub sinks: Vec<SinkConfig>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        let d = DispatcherConfig::default();
        Self {
            enabled: true,
            tenant: "ten_default".to_owned(),
            concurrency: d.concurrency,
            batch: d.batch,
            poll_interval_ms: u64::try_from(d.poll_interval.as_millis()).unwrap_or(250),
            lease_secs: d.lease.as_secs(),
            timeout_secs: 15,
            retry_schedule_secs: RetrySchedule::standard()
                .delays()
                .iter()
                .map(Duration::as_secs)
                .collect(),
            alert_after: d.alert_after,
            allow_private_webhooks: false,
            secret_overlap_secs: 24 * 3600,
            sinks: Vec::new(),
        }
    }
}

/// One configured sink: `kind`, `name`, `events`, and the kind's own settings (see
/// [`crate::sinks`]).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SinkConfig {
    /// `webhook`, `crm`, `sms_receipt`, `email_receipt`, `ledger`.
    pub kind: String,
    /// Unique per kind.
    pub name: String,
    /// Event types, or `["*"]` (every type but `capture.*` and `delivery.failing`, which
    /// go only to sinks that name them).
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// Off: kept but given nothing new.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The kind's settings.
    #[serde(flatten)]
    pub settings: Map<String, Value>,
}

fn all_events() -> Vec<String> {
    vec!["*".to_owned()]
}
fn yes() -> bool {
    true
}

/// The file: only `[sync]` is read here; other sections belong to other parts of the service.
#[derive(Debug, serde::Deserialize)]
struct File {
    #[serde(default)]
    sync: SyncConfig,
}

impl SyncConfig {
    /// Reads `[sync]` from a TOML document.
    ///
    /// # Errors
    /// [`SyncError::Config`] naming the problem.
    pub fn from_toml(text: &str) -> Result<Self, SyncError> {
        let file: File =
            toml::from_str(text).map_err(|e| SyncError::config("sync", e.to_string()))?;
        file.sync.validate()?;
        Ok(file.sync)
    }

    /// Applies environment overrides (`IVRPAY_ALLOW_PRIVATE_WEBHOOKS=1`).
    #[must_use]
    pub fn with_env(mut self) -> Self {
        if std::env::var("IVRPAY_ALLOW_PRIVATE_WEBHOOKS").is_ok_and(|v| v == "1" || v == "true") {
            self.allow_private_webhooks = true;
        }
        self
    }

    /// The tenant id.
    ///
    /// # Errors
    /// [`SyncError::Config`] when it is not `ten_…`.
    pub fn tenant_id(&self) -> Result<TenantId, SyncError> {
        TenantId::parse(&self.tenant).map_err(|e| SyncError::config("sync.tenant", e.to_string()))
    }

    fn validate(&self) -> Result<(), SyncError> {
        self.tenant_id()?;
        if self.concurrency == 0 || self.batch == 0 {
            return Err(SyncError::config("sync.concurrency/batch", "must be at least 1"));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            validate_events(&sink.events)
                .map_err(|p| SyncError::config(format!("sync.sinks[{i}].events"), p))?;
            if !matches!(
                sink.kind.as_str(),
                "webhook" | "crm" | "sms_receipt" | "email_receipt" | "ledger"
            ) {
                return Err(SyncError::config(
                    format!("sync.sinks[{i}].kind"),
                    format!("unknown kind {:?}", sink.kind),
                ));
            }
            if self.sinks[..i].iter().any(|s| s.kind == sink.kind && s.name == sink.name) {
                return Err(SyncError::config(
                    format!("sync.sinks[{i}].name"),
                    "two sinks of one kind share a name",
                ));
            }
        }
        Ok(())
    }

    /// The dispatcher's settings.
    #[must_use]
    pub fn dispatcher(&self) -> DispatcherConfig {
        DispatcherConfig {
            concurrency: self.concurrency,
            batch: self.batch,
            lease: Duration::from_secs(self.lease_secs),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            schedule: RetrySchedule::from_secs(&self.retry_schedule_secs),
            alert_after: self.alert_after,
        }
    }

    /// The sinks' shared settings.
    #[must_use]
    pub fn sink_options(&self) -> SinkOptions {
        SinkOptions {
            allow_private_webhooks: self.allow_private_webhooks,
            timeout: Duration::from_secs(self.timeout_secs),
            ..SinkOptions::default()
        }
    }

    /// Makes the store's sinks follow this configuration: creates the missing ones, updates
    /// the others, disables configured sinks that left the file. Webhook endpoints created
    /// through the API are left alone.
    ///
    /// # Errors
    /// [`SyncError`] when a sink's settings cannot work or the store fails.
    pub async fn apply(&self, store: &Store, now: Timestamp) -> Result<(), SyncError> {
        let tenant = self.tenant_id()?;
        store.ensure_tenant(&tenant, &self.tenant, now).await?;
        let existing = store.sinks_of(&tenant).await?;
        for (i, sink) in self.sinks.iter().enumerate() {
            let setting = format!("sync.sinks[{i}]");
            let mut config = Value::Object(sink.settings.clone());
            if sink.kind == "webhook" {
                let url = config.get("url").and_then(Value::as_str).unwrap_or("").to_owned();
                let secret = match config.get("secret").and_then(Value::as_str) {
                    Some(text) => WebhookSecret::parse(text)
                        .map_err(|e| SyncError::config(&setting, e.to_string()))?,
                    None => WebhookSecret::generate(),
                };
                crate::api::check_url(&url, self.allow_private_webhooks)
                    .map_err(|e| SyncError::config(format!("{setting}.url"), e.to_string()))?;
                if let Some(found) = existing.iter().find(|s| {
                    s.kind == "webhook"
                        && s.name == sink.name
                        && s.config.get("configured").is_some()
                }) {
                    store
                        .update_sink(
                            &found.id,
                            &sink.events,
                            &serde_json::json!({"configured": true}),
                            sink.enabled,
                        )
                        .await?;
                    continue;
                }
                let id = store
                    .add_webhook_endpoint(
                        &NewWebhookEndpoint {
                            tenant_id: tenant.clone(),
                            url,
                            event_types: sink.events.clone(),
                            description: sink.name.clone(),
                            secret: secret.to_text(),
                        },
                        now,
                    )
                    .await?;
                store
                    .update_sink(
                        &id,
                        &sink.events,
                        &serde_json::json!({"configured": true}),
                        sink.enabled,
                    )
                    .await?;
                continue;
            }
            if let Value::Object(map) = &mut config {
                map.insert("configured".to_owned(), Value::Bool(true));
            }
            check_settings(&sink.kind, &config).map_err(|p| SyncError::config(&setting, p))?;
            match existing.iter().find(|s| s.kind == sink.kind && s.name == sink.name) {
                Some(found) => {
                    store.update_sink(&found.id, &sink.events, &config, sink.enabled).await?
                }
                None => {
                    let new = NewSink {
                        tenant_id: tenant.clone(),
                        kind: sink.kind.clone(),
                        name: sink.name.clone(),
                        event_types: sink.events.clone(),
                        config: config.clone(),
                    };
                    let id = store.add_sink(&new, now).await?;
                    if !sink.enabled {
                        store.set_sink_enabled(&id, false).await?;
                    }
                }
            }
        }
        for old in &existing {
            let configured = old.config.get("configured").is_some();
            let listed = self.sinks.iter().any(|s| s.kind == old.kind && s.name == old.name);
            if configured && !listed && old.enabled {
                store.set_sink_enabled(&old.id, false).await?;
            }
        }
        Ok(())
    }

    /// Applies the configuration and starts the dispatcher.
    ///
    /// # Errors
    /// [`SyncError`] when the configuration cannot work or the store fails.
    pub async fn start(
        &self,
        store: &Store,
        clock: Arc<dyn Clock>,
        metrics: Arc<SyncMetrics>,
    ) -> Result<crate::DispatcherHandle, SyncError> {
        self.apply(store, clock.now()).await?;
        let sinks = Arc::new(SinkSet::new(store.clone(), self.sink_options())?);
        Ok(Dispatcher::new(store.clone(), sinks, self.dispatcher(), clock, metrics).spawn())
    }
}

/// Each name is `*` or one of the feed's event types.
pub(crate) fn validate_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("list at least one event type, or \"*\"".to_owned());
    }
    for e in events {
        if e != "*" && !EventType::ALL.iter().any(|t| t.as_str() == e) {
            return Err(format!("unknown event type {e:?}"));
        }
    }
    Ok(())
}

/// Checks a sink's settings parse (the sink itself is built when first used).
fn check_settings(kind: &str, config: &Value) -> Result<(), String> {
    let mut clean = config.clone();
    if let Value::Object(map) = &mut clean {
        map.remove("configured");
    }
    match kind {
        "crm" | "sms_receipt" => {
            serde_json::from_value::<crate::sinks::http_template::HttpMapping>(clean).map(drop)
        }
        "email_receipt" => {
            serde_json::from_value::<crate::sinks::email::EmailConfig>(clean).map(drop)
        }
        "ledger" => serde_json::from_value::<crate::ledger::Accounts>(clean).map(drop),
        _ => Ok(()),
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_file() {
        let none = SyncConfig::from_toml("").expect("empty file");
        assert_eq!(none, SyncConfig::default());
        assert_eq!(none.dispatcher().schedule, RetrySchedule::standard());
        let file = r#"
            [sip]
            whatever = 1
            [sync]
            retry_schedule_secs = [1, 2]
            [[sync.sinks]]
            kind = "crm"
            name = "crm"
            events = ["payment.succeeded"]
            url = "http://crm.local/{{data.id}}"
            body = { amount = "{{data.amount_minor}}" }
        "#;
        let c = SyncConfig::from_toml(file).expect("file");
        assert_eq!(c.retry_schedule_secs, [1, 2]);
        assert_eq!(c.sinks[0].settings["url"], "http://crm.local/{{data.id}}");
        assert!(check_settings("crm", &Value::Object(c.sinks[0].settings.clone())).is_ok());
        let bad = "[[sync.sinks]]\nkind = \"fax\"\nname = \"x\"\n";
        assert!(SyncConfig::from_toml(bad).is_err());
        let bad_event =
            "[[sync.sinks]]\nkind = \"ledger\"\nname = \"x\"\nevents = [\"payment.done\"]\n";
        assert!(SyncConfig::from_toml(bad_event).is_err());
    }
}
