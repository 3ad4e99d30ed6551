//! An HTTP API fed by templates: the CRM (record the payment against the customer, update
//! the balance) and the SMS provider (send `receipt.text`). The operator maps the event's
//! fields onto the target's API in the sink's configuration:
//!
//! ```toml
//! [[sync.sinks]]
//! kind = "crm"
//! name = "crm"
//! events = ["payment.succeeded", "refund.succeeded"]
//! method = "POST"
//! url = "https://crm.example/api/customers/{{data.customer_ref}}/payments"
//! headers_env = { authorization = "CRM_AUTHORIZATION" }
//! body = { payment_id = "{{data.id}}", amount_minor = "{{data.amount_minor}}", kind = "{{type}}" }
//! ```
//!
//! Secrets (tokens) are never in the configuration: `headers_env` names environment
//! variables read when the sink is built.

use std::collections::BTreeMap;
use std::time::Duration;

use ivrpay_store::{ClaimedDelivery, Store, Timestamp};
use serde_json::Value;

use super::{AttemptOutcome, BoxFuture, Sink, context, http_outcome, receipt};
use crate::template::{Escape, render_json, render_text};

/// The mapping of one HTTP sink.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMapping {
    /// HTTP method (default POST).
    #[serde(default = "post")]
    pub method: String,
    /// URL template; placeholders are percent-encoded.
    pub url: String,
    /// Header templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose values come from environment variables (tokens).
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// JSON body template; none sends no body.
    #[serde(default)]
    pub body: Option<Value>,
}

fn post() -> String {
    "POST".to_owned()
}

/// A CRM or SMS provider.
#[derive(Debug)]
pub struct HttpTemplateSink {
    mapping: HttpMapping,
    method: reqwest::Method,
    env_headers: Vec<(String, String)>,
    needs_receipt: bool,
    store: Store,
    client: reqwest::Client,
    timeout: Duration,
}

impl HttpTemplateSink {
    pub(crate) fn new(
        config: &Value,
        store: Store,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mapping: HttpMapping = serde_json::from_value(config.clone())
            .map_err(|e| format!("HTTP sink mapping: {e}"))?;
        let method = reqwest::Method::from_bytes(mapping.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("HTTP sink method {:?}", mapping.method))?;
        let mut env_headers = Vec::new();
        for (name, var) in &mapping.headers_env {
            let value = std::env::var(var)
                .map_err(|_| format!("environment variable {var} (header {name}) is not set"))?;
            env_headers.push((name.clone(), value));
        }
        let needs_receipt = config.to_string().contains("receipt.");
        Ok(Self { mapping, method, env_headers, needs_receipt, store, client, timeout })
    }
}

impl Sink for HttpTemplateSink {
    fn deliver<'a>(
        &'a self,
        delivery: &'a ClaimedDelivery,
        _now: Timestamp,
    ) -> BoxFuture<'a, AttemptOutcome> {
        Box::pin(async move {
            let receipt =
                if self.needs_receipt { Some(receipt(&self.store, delivery).await) } else { None };
            let ctx = context(delivery, receipt.as_ref());
            let url = render_text(&self.mapping.url, &ctx, Escape::Url);
            let Ok(url) = reqwest::Url::parse(&url) else {
                return AttemptOutcome::permanent("the URL template does not give a URL");
            };
            let mut request = self.client.request(self.method.clone(), url).timeout(self.timeout);
            for (name, template) in &self.mapping.headers {
                request = request.header(name.as_str(), render_text(template, &ctx, Escape::None));
            }
            for (name, value) in &self.env_headers {
                request = request.header(name.as_str(), value.as_str());
            }
            // The event id lets the target de-duplicate redeliveries, as webhook receivers do.
            request = request.header("idempotency-key", delivery.event_id.as_str());
            if let Some(body) = &self.mapping.body {
                request = request
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&render_json(body, &ctx)).unwrap_or_default());
            }
            http_outcome(request.send().await).await
        })
    }
}
