//! Webhook endpoints: Standard Webhooks POSTs.
//!
//! The body is `{"type", "timestamp", "data"}` serialised once per attempt from the same
//! stored payload (the same bytes on every retry); `webhook-id` is the event id (stable
//! across retries: the receivers' dedup key); `webhook-timestamp` is the attempt's time, as
//! receivers reject signatures older than a few minutes; `webhook-signature` carries one
//! `v1,` signature per live secret.

use std::net::IpAddr;
use std::time::Duration;

use ivrpay_store::{ClaimedDelivery, Timestamp, WebhookEndpointRecord};
use serde_json::json;

use super::{AttemptOutcome, BoxFuture, Sink, event_time, http_outcome};
use crate::signing::{WebhookSecret, signature_header};
use crate::ssrf::{is_forbidden, refusal};

/// One endpoint, with its secrets as of when it was loaded.
#[derive(Debug)]
pub struct WebhookSink {
    url: reqwest::Url,
    secrets: Vec<WebhookSecret>,
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl WebhookSink {
    pub(crate) fn new(
        endpoint: &WebhookEndpointRecord,
        client: reqwest::Client,
        allow_private: bool,
        timeout: Duration,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(&endpoint.url).map_err(|e| format!("endpoint URL: {e}"))?;
        let secrets = endpoint
            .secrets
            .iter()
            .map(|s| WebhookSecret::parse(&s.secret).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { url, secrets, client, allow_private, timeout })
    }

    /// The literal address of the URL's host, if it names one.
    fn literal_ip(&self) -> Option<IpAddr> {
        match self.url.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }
}

/// The body of a webhook: `{"type", "timestamp", "data"}`.
#[must_use]
pub fn body(delivery: &ClaimedDelivery) -> Vec<u8> {
    let envelope = json!({
        "type": delivery.event_type.as_str(),
        "timestamp": event_time(delivery),
        "data": delivery.payload,
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

impl Sink for WebhookSink {
    fn deliver<'a>(
        &'a self,
        delivery: &'a ClaimedDelivery,
        now: Timestamp,
    ) -> BoxFuture<'a, AttemptOutcome> {
        Box::pin(async move {
            if !self.allow_private {
                // A literal address never reaches the resolver: check it here.
                if let Some(ip) = self.literal_ip().filter(|ip| is_forbidden(*ip)) {
                    return AttemptOutcome::failed(refusal(&ip.to_string()));
                }
            }
            if self.secrets.is_empty() {
                return AttemptOutcome::failed("endpoint has no live signing secret");
            }
            let body = body(delivery);
            let id = delivery.event_id.as_str();
            let timestamp = now.unix_ms().div_euclid(1000);
            let signature = signature_header(&self.secrets, id, timestamp, &body);
            let sent = self
                .client
                .post(self.url.clone())
                .timeout(self.timeout)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await;
            http_outcome(sent).await
        })
    }
}
