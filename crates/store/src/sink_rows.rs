//! Sinks as the sync reads them, and webhook endpoints with their signing secrets.
//!
//! A webhook endpoint is a sink of kind `webhook` plus a `webhook_endpoints` row (its URL)
//! and one or two `webhook_secrets`: during a rotation the old secret stays live until it
//! expires and every request is signed with both, so receivers can switch without a gap.
//! Endpoints are never deleted (their deliveries and attempts stay readable): deleting one
//! disables it and dead-letters what it still had pending.

use serde_json::Value;
use sqlx::types::Json;

use crate::Store;
use crate::backend::{Urgency, on_pool, on_tx, write_one};
use crate::error::StoreError;
use crate::id::{SinkId, TenantId};
use crate::time::Timestamp;

/// A configured sink.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SinkRecord {
    /// Id.
    #[sqlx(try_from = "String")]
    pub id: SinkId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// `webhook`, `crm`, `email_receipt`, `sms_receipt`, `ledger`, …
    pub kind: String,
    /// Operator's label (unique per tenant and kind for configured sinks).
    pub name: String,
    /// Subscribed event types, or `["*"]`.
    #[sqlx(json)]
    pub event_types: Vec<String>,
    /// Kind-specific settings (no secrets: those are named by environment variable).
    #[sqlx(json)]
    pub config: Value,
    /// Whether new events reach it.
    pub enabled: bool,
    /// Created.
    pub created_at_ms: i64,
}

/// A signing secret of a webhook endpoint. `Debug` shows only its prefix.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookSecretRow {
    /// `whsec_<base64>`.
    pub secret: String,
    /// Created.
    pub created_at_ms: i64,
    /// When it stops signing (set when a newer secret replaced it).
    pub expires_at_ms: Option<i64>,
}

impl std::fmt::Debug for WebhookSecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecretRow")
            .field("secret", &"whsec_…")
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// A webhook endpoint with its live secrets (newest first).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpointRecord {
    /// The sink behind it.
    pub sink: SinkRecord,
    /// Where events are POSTed.
    pub url: String,
    /// Why it was disabled (`deleted`), if it was.
    pub disabled_reason: Option<String>,
    /// Secrets that sign requests now (one, or two during a rotation), newest first.
    pub secrets: Vec<WebhookSecretRow>,
}

/// A webhook endpoint to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhookEndpoint {
    /// Owner.
    pub tenant_id: TenantId,
    /// Where to POST.
    pub url: String,
    /// Event types, or `["*"]`.
    pub event_types: Vec<String>,
    /// A label.
    pub description: String,
    /// The first signing secret (`whsec_…`), made by the caller.
    pub secret: String,
}

macro_rules! sink_columns {
    () => {
        "s.id, s.tenant_id, s.kind, s.name, s.event_types, s.config, s.enabled, s.created_at_ms"
    };
}

impl Store {
    /// A sink by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown sink.
    pub async fn sink(&self, id: &SinkId) -> Result<SinkRecord, StoreError> {
        let found: Option<SinkRecord> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", sink_columns!(), " FROM sinks s WHERE s.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "sink" })
    }

    /// A tenant's sinks, enabled or not, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn sinks_of(&self, tenant: &TenantId) -> Result<Vec<SinkRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", sink_columns!(), " FROM sinks s WHERE s.tenant_id = $1 ORDER BY s.created_at_ms, s.id"
        ))
        .bind(tenant.as_str())
        .fetch_all(p)
        .await?))
    }

    /// Changes a sink's subscriptions, settings and state (configured sinks follow the
    /// service configuration at every start).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown sink.
    pub async fn update_sink(
        &self,
        id: &SinkId,
        event_types: &[String],
        config: &Value,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let (id, event_types, config) = (id.clone(), event_types.to_vec(), config.clone());
        let done = write_one!(
            self,
            sqlx::query(
                "UPDATE sinks SET event_types = $2, config = $3, enabled = $4 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(Json(&event_types))
            .bind(Json(&config))
            .bind(enabled)
        )
        .await?;
        if done == 0 {
            return Err(StoreError::NotFound { kind: "sink" });
        }
        Ok(())
    }

    /// Creates a webhook endpoint (sink, URL and first secret in one transaction).
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn add_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        now: Timestamp,
    ) -> Result<SinkId, StoreError> {
        let new = new.clone();
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let id = SinkId::generate(now);
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO sinks (id, tenant_id, kind, name, event_types, config, enabled, created_at_ms)
                     VALUES ($1, $2, 'webhook', $3, $4, $5, TRUE, $6)",
                )
                .bind(id.as_str())
                .bind(new.tenant_id.as_str())
                .bind(&new.description)
                .bind(Json(&new.event_types))
                .bind(Json(serde_json::json!({})))
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO webhook_endpoints (sink_id, url) VALUES ($1, $2)",
                )
                .bind(id.as_str())
                .bind(&new.url)
                .execute(&mut **c)
                .await?
                .rows_affected());
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO webhook_secrets (sink_id, secret, created_at_ms) VALUES ($1, $2, $3)",
                )
                .bind(id.as_str())
                .bind(&new.secret)
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                Ok(id)
            })
        })
        .await
    }

    /// A webhook endpoint with the secrets live at `now`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the sink is not a webhook endpoint.
    pub async fn webhook_endpoint(
        &self,
        id: &SinkId,
        now: Timestamp,
    ) -> Result<WebhookEndpointRecord, StoreError> {
        let sink = self.sink(id).await?;
        let row: Option<(String, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT url, disabled_reason FROM webhook_endpoints WHERE sink_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        let (url, disabled_reason) =
            row.ok_or(StoreError::NotFound { kind: "webhook endpoint" })?;
        let secrets: Vec<WebhookSecretRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT secret, created_at_ms, expires_at_ms FROM webhook_secrets
             WHERE sink_id = $1 AND (expires_at_ms IS NULL OR expires_at_ms > $2)
             ORDER BY created_at_ms DESC",
        )
        .bind(id.as_str())
        .bind(now.unix_ms())
        .fetch_all(p)
        .await?);
        Ok(WebhookEndpointRecord { sink, url, disabled_reason, secrets })
    }

    /// A tenant's webhook endpoints that were not deleted, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn webhook_endpoints(
        &self,
        tenant: &TenantId,
        now: Timestamp,
    ) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
        let ids: Vec<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT s.id FROM sinks s JOIN webhook_endpoints w ON w.sink_id = s.id
             WHERE s.tenant_id = $1 AND w.disabled_reason IS NULL ORDER BY s.created_at_ms, s.id",
        )
        .bind(tenant.as_str())
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id = SinkId::try_from(id).map_err(|_| StoreError::Corrupt { what: "sink id" })?;
            out.push(self.webhook_endpoint(&id, now).await?);
        }
        Ok(out)
    }

    /// Deletes a webhook endpoint: disables it and dead-letters its pending deliveries (the
    /// rows stay for the record). Returns false when it was already deleted.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the tenant has no such endpoint.
    pub async fn delete_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &SinkId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let reason: Option<Option<String>> = on_tx!(tx, c => sqlx::query_scalar(
                    "SELECT w.disabled_reason FROM webhook_endpoints w JOIN sinks s ON s.id = w.sink_id
                     WHERE w.sink_id = $1 AND s.tenant_id = $2",
                )
                .bind(id.as_str())
                .bind(tenant.as_str())
                .fetch_optional(&mut **c)
                .await?);
                match reason {
                    None => return Err(StoreError::NotFound { kind: "webhook endpoint" }),
                    Some(Some(_)) => return Ok(false),
                    Some(None) => {}
                }
                on_tx!(tx, c => sqlx::query("UPDATE sinks SET enabled = FALSE WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut **c)
                    .await?
                    .rows_affected());
                on_tx!(tx, c => sqlx::query(
                    "UPDATE webhook_endpoints SET disabled_reason = 'deleted' WHERE sink_id = $1",
                )
                .bind(id.as_str())
                .execute(&mut **c)
                .await?
                .rows_affected());
                on_tx!(tx, c => sqlx::query(
                    "UPDATE deliveries SET status = 'dead', last_error = 'endpoint deleted', updated_at_ms = $2
                     WHERE sink_id = $1 AND status = 'pending'",
                )
                .bind(id.as_str())
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                Ok(true)
            })
        })
        .await
    }

    /// Adds a new signing secret to an endpoint; its current secrets keep signing until
    /// `old_expire_at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the sink is not a webhook endpoint.
    pub async fn rotate_webhook_secret(
        &self,
        id: &SinkId,
        new_secret: &str,
        old_expire_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (id, new_secret) = (id.clone(), new_secret.to_owned());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                let expired = on_tx!(tx, c => sqlx::query(
                    "UPDATE webhook_secrets SET expires_at_ms = $2
                     WHERE sink_id = $1 AND (expires_at_ms IS NULL OR expires_at_ms > $2)",
                )
                .bind(id.as_str())
                .bind(old_expire_at.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                if expired == 0 {
                    return Err(StoreError::NotFound { kind: "webhook endpoint" });
                }
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO webhook_secrets (sink_id, secret, created_at_ms) VALUES ($1, $2, $3)",
                )
                .bind(id.as_str())
                .bind(new_secret)
                .bind(now.unix_ms())
                .execute(&mut **c)
                .await?
                .rows_affected());
                Ok(())
            })
        })
        .await
    }
}
