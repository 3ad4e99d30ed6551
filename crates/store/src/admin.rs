//! API keys (hashes only) and the append-only audit log.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::types::Json;

use crate::Store;
use crate::backend::{on_pool, on_tx, write_one};
use crate::error::StoreError;
use crate::id::{ApiKeyId, TenantId};
use crate::time::Timestamp;

/// SHA-256 of an API key's secret. API secrets are long random strings, so a plain hash is
/// enough to make a stolen database useless for authenticating (unlike passwords, there is
/// nothing to brute-force).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    /// The hash of `secret`.
    #[must_use]
    pub fn of_secret(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// The hash bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyHash(..)")
    }
}

/// A stored API key (never its secret).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// Id.
    #[sqlx(try_from = "String")]
    pub id: ApiKeyId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// Label.
    pub name: String,
    /// Granted scopes.
    #[sqlx(json)]
    pub scopes: Vec<String>,
    /// Created.
    pub created_at_ms: i64,
    /// Revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// One audit log line.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Position in the log, increasing.
    pub seq: i64,
    /// Tenant concerned, if any (key rotation concerns all).
    pub tenant_id: Option<String>,
    /// When.
    pub at_ms: i64,
    /// Who: `api-key:key_…`, `cli`, `system`.
    pub actor: String,
    /// What: `keys.rotate`, `payment.refund`, …
    pub action: String,
    /// The object acted on.
    pub subject_id: Option<String>,
    /// Details (never card data).
    #[sqlx(json)]
    pub detail: Value,
}

impl Store {
    /// Stores an API key by the hash of its secret.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure (a duplicate hash included).
    pub async fn insert_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        scopes: &[String],
        hash: &ApiKeyHash,
        now: Timestamp,
    ) -> Result<ApiKeyId, StoreError> {
        let (tenant, name, scopes, hash) =
            (tenant.clone(), name.to_owned(), scopes.to_vec(), *hash);
        let id = ApiKeyId::generate(now);
        let key = id.clone();
        write_one!(
            self,
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, secret_hash, scopes, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key.as_str())
            .bind(tenant.as_str())
            .bind(&name)
            .bind(hash.as_bytes().as_slice())
            .bind(Json(&scopes))
            .bind(now.unix_ms())
        )
        .await?;
        Ok(id)
    }

    /// The unrevoked key whose secret hashes to `hash`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn api_key_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT id, tenant_id, name, scopes, created_at_ms, revoked_at_ms FROM api_keys
             WHERE secret_hash = $1 AND revoked_at_ms IS NULL",
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(p)
        .await?))
    }

    /// How many API keys the tenant was ever given, revoked ones included (zero means the
    /// deployment has not made its first admin key yet).
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn api_key_count(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_one(p)
        .await?))
    }

    /// Revokes a key. Returns whether it was live.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn revoke_api_key(&self, id: &ApiKeyId, now: Timestamp) -> Result<bool, StoreError> {
        let id = id.clone();
        let changed = write_one!(
            self,
            sqlx::query(
                "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
            )
            .bind(id.as_str())
            .bind(now.unix_ms())
        )
        .await?;
        Ok(changed == 1)
    }

    /// Appends to the audit log. Rows can never be changed or deleted afterwards: both
    /// backends reject `UPDATE` and `DELETE` on the table with a trigger.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn audit(
        &self,
        tenant: Option<&TenantId>,
        actor: &str,
        action: &str,
        subject_id: Option<&str>,
        detail: &Value,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let (tenant, actor, action) = (tenant.cloned(), actor.to_owned(), action.to_owned());
        let (subject_id, detail) = (subject_id.map(str::to_owned), detail.clone());
        self.write_statement(move |tx| {
            Box::pin(async move {
                Ok(on_tx!(tx, c => sqlx::query_scalar(
                    "INSERT INTO audit_log (tenant_id, at_ms, actor, action, subject_id, detail)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                )
                .bind(tenant.as_ref().map(TenantId::as_str))
                .bind(now.unix_ms())
                .bind(&actor)
                .bind(&action)
                .bind(subject_id.as_deref())
                .bind(Json(&detail))
                .fetch_one(&mut **c)
                .await?))
            })
        })
        .await
    }

    /// Audit entries with `seq > since`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn audit_since(&self, since: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT seq, tenant_id, at_ms, actor, action, subject_id, detail FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await?))
    }
}
