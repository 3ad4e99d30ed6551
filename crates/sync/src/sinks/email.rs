//! Email receipts over SMTP (lettre, rustls).
//!
//! ```toml
//! [[sync.sinks]]
//! kind = "email_receipt"
//! name = "receipts"
//! events = ["payment.succeeded", "refund.succeeded"]
//! smtp_host = "smtp.example.com"
//! smtp_port = 587
//! tls = "starttls"            # none | starttls | tls
//! username = "receipts"
//! password_env = "SMTP_PASSWORD"
//! from = "Acme <receipts@acme.example>"
//! to = "{{data.receipt_email}}"
//! subject = "{{receipt.title}} {{receipt.reference}}"
//! ```
//!
//! The body is the receipt's text (brand and last four at most). A payment with no address
//! to send to is delivered as "no recipient": nothing to retry. The `Message-ID` is derived
//! from the event and sink, the same on every retry, so a mail system can drop a duplicate.

use std::time::Duration;

use ivrpay_store::{ClaimedDelivery, SinkRecord, Store, Timestamp};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::{AttemptOutcome, BoxFuture, Sink, context, receipt};
use crate::template::{Escape, render_text};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on loopback, tests).
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The settings of an email receipt sink.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server.
    pub smtp_host: String,
    /// Port (default 587).
    #[serde(default = "submission_port")]
    pub smtp_port: u16,
    /// Connection security (default STARTTLS).
    #[serde(default = "starttls")]
    pub tls: SmtpTls,
    /// SMTP user, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Sender.
    pub from: String,
    /// Recipient template.
    pub to: String,
    /// Subject template.
    #[serde(default = "default_subject")]
    pub subject: String,
}

fn submission_port() -> u16 {
    587
}
fn starttls() -> SmtpTls {
    SmtpTls::Starttls
}
fn default_subject() -> String {
    "{{receipt.title}} {{receipt.reference}}".to_owned()
}

/// Sends receipts by email.
#[derive(Debug)]
pub struct EmailSink {
    config: EmailConfig,
    sink_id: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    store: Store,
}

impl EmailSink {
    pub(crate) fn new(
        record: &SinkRecord,
        store: Store,
        timeout: Duration,
    ) -> Result<Self, String> {
        let config: EmailConfig = serde_json::from_value(record.config.clone())
            .map_err(|e| format!("email sink: {e}"))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = config.smtp_host.as_str();
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("SMTP STARTTLS: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("SMTP TLS: {e}"))?,
        };
        let mut builder = builder.port(config.smtp_port).timeout(Some(timeout));
        if let Some(user) = &config.username {
            let password = match &config.password_env {
                Some(var) => std::env::var(var)
                    .map_err(|_| format!("environment variable {var} is not set"))?,
                None => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from =
            config.from.parse().map_err(|e| format!("email sender {:?}: {e}", config.from))?;
        Ok(Self { transport: builder.build(), from, sink_id: record.id.to_string(), config, store })
    }
}

impl Sink for EmailSink {
    fn deliver<'a>(
        &'a self,
        d: &'a ClaimedDelivery,
        _now: Timestamp,
    ) -> BoxFuture<'a, AttemptOutcome> {
        Box::pin(async move {
            let receipt = receipt(&self.store, d).await;
            let ctx = context(d, Some(&receipt));
            let to = render_text(&self.config.to, &ctx, Escape::None);
            if to.trim().is_empty() {
                return AttemptOutcome::delivered(None, Some("no recipient".to_owned()));
            }
            let Ok(to) = to.parse::<lettre::message::Mailbox>() else {
                return AttemptOutcome::permanent("the recipient is not an email address");
            };
            let subject = render_text(&self.config.subject, &ctx, Escape::None);
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(subject)
                .message_id(Some(format!("<{}.{}@ivrpay>", d.event_id, self.sink_id)))
                .header(ContentType::TEXT_PLAIN)
                .body(receipt.text.clone());
            let message = match message {
                Ok(m) => m,
                Err(e) => return AttemptOutcome::permanent(format!("receipt message: {e}")),
            };
            match self.transport.send(message).await {
                Ok(response) => {
                    let code: Value = response
                        .code()
                        .to_string()
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::Null);
                    AttemptOutcome::delivered(
                        code.as_i64(),
                        Some(response.message().collect::<Vec<_>>().join("\n")),
                    )
                }
                Err(e) => {
                    let status = e.status().and_then(|c| c.to_string().parse::<i64>().ok());
                    let outcome = if e.is_permanent() {
                        AttemptOutcome::permanent(format!("SMTP: {e}"))
                    } else {
                        AttemptOutcome::failed(format!("SMTP: {e}"))
                    };
                    AttemptOutcome { status, ..outcome }
                }
            }
        })
    }
}
