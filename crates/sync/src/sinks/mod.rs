//! The sinks: where a delivery goes. Each kind turns one claimed delivery into one attempt
//! and says how it went; the dispatcher decides what happens next.
//!
//! | kind | config (`sinks.config`) | does |
//! |---|---|---|
//! | `webhook` | URL and secrets in their own tables | Standard Webhooks POST ([`webhook`]) |
//! | `crm` | `method`, `url`, `headers`, `headers_env`, `body` templates | the CRM's HTTP API ([`http_template`]) |
//! | `sms_receipt` | same as `crm`; `receipt.text` in the context | an SMS provider's HTTP API |
//! | `email_receipt` | `smtp_host`, `smtp_port`, `tls`, `from`, `to`, `subject` | SMTP ([`email`]) |
//! | `ledger` | `clearing`, `receivable` account names | a journal entry in the store ([`ledger`]) |

pub mod email;
pub mod http_template;
pub mod ledger;
pub mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ivrpay_store::{ClaimedDelivery, SinkId, SinkRecord, Store, Timestamp};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::SyncError;
use crate::receipt::{Receipt, receipt_for};

/// A boxed future (sinks are chosen at run time).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptOutcome {
    /// The sink took it.
    pub ok: bool,
    /// Retrying cannot help (the sink is gone, its configuration cannot work): dead-letter now.
    pub permanent: bool,
    /// Response status (HTTP, or the SMTP reply code).
    pub status: Option<i64>,
    /// The first kilobytes of the answer.
    pub body: Option<String>,
    /// What went wrong (never payload data).
    pub error: Option<String>,
}

impl AttemptOutcome {
    /// Taken.
    #[must_use]
    pub fn delivered(status: Option<i64>, body: Option<String>) -> Self {
        Self { ok: true, status, body, ..Self::default() }
    }

    /// Failed; retried on the schedule.
    #[must_use]
    pub fn failed(error: impl Into<String>) -> Self {
        Self { error: Some(error.into()), ..Self::default() }
    }

    /// Failed for good.
    #[must_use]
    pub fn permanent(error: impl Into<String>) -> Self {
        Self { permanent: true, ..Self::failed(error) }
    }
}

/// A destination.
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// One attempt to deliver `delivery` at `now`.
    fn deliver<'a>(
        &'a self,
        delivery: &'a ClaimedDelivery,
        now: Timestamp,
    ) -> BoxFuture<'a, AttemptOutcome>;
}

/// The most of a response body kept with an attempt.
pub const RESPONSE_EXCERPT: usize = 4096;

/// Settings shared by every sink.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Allow webhooks to private and loopback addresses (local development, tests).
    pub allow_private_webhooks: bool,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// How long a loaded sink (its URL, secrets, settings) is reused before it is read again.
    pub refresh: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            allow_private_webhooks: false,
            timeout: Duration::from_secs(15),
            refresh: Duration::from_secs(5),
        }
    }
}

/// The event as every sink sees it: `{"id", "type", "timestamp", "data"}` (+ `receipt`).
pub(crate) fn context(delivery: &ClaimedDelivery, receipt: Option<&Receipt>) -> Value {
    let mut ctx = json!({
        "id": delivery.event_id.as_str(),
        "type": delivery.event_type.as_str(),
        "timestamp": event_time(delivery),
        "data": delivery.payload,
    });
    if let (Some(r), Value::Object(map)) = (receipt, &mut ctx) {
        map.insert("receipt".to_owned(), r.to_value());
    }
    ctx
}

/// The event's commit time, RFC 3339.
pub(crate) fn event_time(delivery: &ClaimedDelivery) -> String {
    Timestamp::from_unix_ms(delivery.event_created_at_ms).to_string()
}

/// The receipt of a payment or refund event (a refund's card comes from its payment).
pub(crate) async fn receipt(store: &Store, delivery: &ClaimedDelivery) -> Receipt {
    let p = &delivery.payload;
    let mut card = None;
    if delivery.event_type.as_str().starts_with("refund.") {
        let payment = p
            .get("payment_id")
            .and_then(Value::as_str)
            .and_then(|id| ivrpay_store::PaymentId::parse(id).ok());
        if let Some(id) = payment {
            if let Ok(record) = store.payment(&delivery.tenant_id, &id).await {
                card = record.brand.zip(record.last4);
            }
        }
    }
    let card_ref = card.as_ref().map(|(b, l)| (b.as_str(), l.as_str()));
    receipt_for(delivery.event_type.as_str(), p, card_ref, &event_time(delivery))
}

/// The HTTP clients: one for webhooks (SSRF guard unless allowed), one for the operator's
/// own services (CRM, SMS provider), which may well live on a private network.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    pub(crate) webhook: reqwest::Client,
    pub(crate) internal: reqwest::Client,
}

fn client(guarded: bool, timeout: Duration) -> Result<reqwest::Client, SyncError> {
    // The process-wide rustls provider: ring (no cmake, no system OpenSSL), as in payments.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(256)
        .user_agent(concat!("ivrpay-sync/", env!("CARGO_PKG_VERSION")));
    if guarded {
        builder = builder.dns_resolver(Arc::new(crate::ssrf::GuardedResolver));
    }
    builder.build().map_err(|e| SyncError::Transport(format!("HTTP client: {e}")))
}

/// A loaded sink (`None`: deleted) and when it was loaded.
type Cached = (Timestamp, Option<Arc<dyn Sink>>);

/// Builds sinks from their stored rows and keeps them for [`SinkOptions::refresh`].
#[derive(Debug)]
pub struct SinkSet {
    store: Store,
    options: SinkOptions,
    clients: Clients,
    cache: Mutex<HashMap<SinkId, Cached>>,
}

impl SinkSet {
    /// A set reading sinks from `store`.
    ///
    /// # Errors
    /// [`SyncError::Transport`] when the HTTP clients cannot be built.
    pub fn new(store: Store, options: SinkOptions) -> Result<Self, SyncError> {
        let clients = Clients {
            webhook: client(!options.allow_private_webhooks, options.timeout)?,
            internal: client(false, options.timeout)?,
        };
        Ok(Self { store, options, clients, cache: Mutex::new(HashMap::new()) })
    }

    /// The sink of a delivery; `Ok(None)` when it was deleted.
    ///
    /// # Errors
    /// A message when the sink cannot be loaded or built (its configuration is wrong).
    pub async fn get(&self, id: &SinkId, now: Timestamp) -> Result<Option<Arc<dyn Sink>>, String> {
        {
            let cache = self.cache.lock().await;
            if let Some((loaded, sink)) = cache.get(id) {
                if now < loaded.saturating_add(self.options.refresh) {
                    return Ok(sink.clone());
                }
            }
        }
        let record = self.store.sink(id).await.map_err(|e| e.to_string())?;
        let sink = self.build(record, now).await?;
        self.cache.lock().await.insert(id.clone(), (now, sink.clone()));
        Ok(sink)
    }

    async fn build(
        &self,
        record: SinkRecord,
        now: Timestamp,
    ) -> Result<Option<Arc<dyn Sink>>, String> {
        let timeout = self.options.timeout;
        let sink: Arc<dyn Sink> = match record.kind.as_str() {
            "webhook" => {
                let ep = self
                    .store
                    .webhook_endpoint(&record.id, now)
                    .await
                    .map_err(|e| e.to_string())?;
                if ep.disabled_reason.is_some() {
                    return Ok(None);
                }
                Arc::new(webhook::WebhookSink::new(
                    &ep,
                    self.clients.webhook.clone(),
                    self.options.allow_private_webhooks,
                    timeout,
                )?)
            }
            "crm" | "sms_receipt" => Arc::new(http_template::HttpTemplateSink::new(
                &record.config,
                self.store.clone(),
                self.clients.internal.clone(),
                timeout,
            )?),
            "email_receipt" => {
                Arc::new(email::EmailSink::new(&record, self.store.clone(), timeout)?)
            }
            "ledger" => Arc::new(ledger::LedgerSink::new(&record.config, self.store.clone())?),
            other => return Err(format!("unknown sink kind {other:?}")),
        };
        Ok(Some(sink))
    }
}

/// An HTTP answer as an attempt outcome: 2xx is delivered, anything else is retried; the
/// first [`RESPONSE_EXCERPT`] bytes of the body are kept.
pub(crate) async fn http_outcome(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> AttemptOutcome {
    match sent {
        Ok(mut response) => {
            let status = response.status();
            let mut body: Vec<u8> = Vec::new();
            while body.len() < RESPONSE_EXCERPT {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = RESPONSE_EXCERPT - body.len();
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            let text = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
            let code = Some(i64::from(status.as_u16()));
            if status.is_success() {
                AttemptOutcome::delivered(code, text)
            } else {
                AttemptOutcome {
                    status: code,
                    body: text,
                    ..AttemptOutcome::failed(format!("HTTP {}", status.as_u16()))
                }
            }
        }
        Err(e) => AttemptOutcome::failed(describe(&e)),
    }
}

/// A transport error in words, without the URL (it may carry a token) or any payload.
fn describe(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if let Some(refused) = causes.iter().find(|c| c.starts_with("refused: ")) {
        return refused.clone();
    }
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_request() {
        "request"
    } else {
        "transport"
    };
    match causes.last() {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_owned(),
    }
}
