//! The vault's rows: wrapped data keys and tokens.
//!
//! The store holds only what the vault hands it: ciphertext, wrapped keys, keyed
//! fingerprints, brand, last four and expiry. It has no key and does no cryptography; it
//! cannot turn a token back into a PAN.

use crate::Store;
use crate::backend::{Tx, Urgency, on_pool, on_tx, write_one};
use crate::error::StoreError;
use crate::id::{DataKeyId, TenantId, TokenId};
use crate::time::Timestamp;

/// What a data key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyPurpose {
    /// Encrypts PANs (AES-256-GCM).
    Pan,
    /// Keys the PAN fingerprint (HMAC-SHA256). Never rotated, so fingerprints stay stable.
    Fingerprint,
}

impl KeyPurpose {
    /// The stored text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pan => "pan",
            Self::Fingerprint => "fingerprint",
        }
    }
}

impl TryFrom<String> for KeyPurpose {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "pan" => Ok(Self::Pan),
            "fingerprint" => Ok(Self::Fingerprint),
            _ => Err(StoreError::Corrupt { what: "key purpose" }),
        }
    }
}

/// A data key as stored: wrapped (encrypted) by a master key.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DataKeyRow {
    /// Id.
    #[sqlx(try_from = "String")]
    pub id: DataKeyId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// What it keys.
    #[sqlx(try_from = "String")]
    pub purpose: KeyPurpose,
    /// The master key that wraps it (ids only; master keys never enter the database).
    pub master_key_id: String,
    /// The wrapped key bytes (nonce, ciphertext and tag).
    pub wrapped_key: Vec<u8>,
    /// Whether new data is written under it.
    pub active: bool,
    /// Created.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
}

impl std::fmt::Debug for DataKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("purpose", &self.purpose)
            .field("master_key_id", &self.master_key_id)
            .field("wrapped_key", &format_args!("[{} bytes]", self.wrapped_key.len()))
            .field("active", &self.active)
            .finish()
    }
}

macro_rules! data_key_columns {
    () => {
        "id, tenant_id, purpose, master_key_id, wrapped_key, active, created_at_ms"
    };
}

/// A token as stored.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    /// The token.
    #[sqlx(try_from = "String")]
    pub id: TokenId,
    /// Owner.
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    /// The data key the PAN is encrypted under.
    #[sqlx(try_from = "String")]
    pub data_key_id: DataKeyId,
    /// Nonce, AES-256-GCM ciphertext and tag of the PAN.
    pub pan_ciphertext: Vec<u8>,
    /// HMAC-SHA256 of the PAN under the tenant's fingerprint key.
    pub fingerprint: Vec<u8>,
    /// Card brand.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month, 1 to 12.
    pub exp_month: i64,
    /// Expiry year, four digits.
    pub exp_year: i64,
    /// `one-time`, `reusable`, …
    pub token_type: String,
    /// Created.
    #[sqlx(rename = "created_at_ms", try_from = "i64")]
    pub created_at: Timestamp,
    /// When the token stops working, if ever.
    pub expires_at_ms: Option<i64>,
    /// When a one-time token was used.
    pub used_at_ms: Option<i64>,
}

impl std::fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("data_key_id", &self.data_key_id)
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .finish_non_exhaustive()
    }
}

macro_rules! token_columns {
    () => {
        "id, tenant_id, data_key_id, pan_ciphertext, fingerprint, brand, last4, exp_month,
         exp_year, token_type, created_at_ms, expires_at_ms, used_at_ms"
    };
}

impl Store {
    /// Inserts a data key unless the tenant already has an active one for that purpose, and
    /// returns the active one: when two nodes race to create a tenant's first key, both end
    /// up using the winner's.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn insert_data_key_if_absent(
        &self,
        row: &DataKeyRow,
    ) -> Result<DataKeyRow, StoreError> {
        let key = row.clone();
        write_one!(
            self,
            sqlx::query(
                "INSERT INTO data_keys (id, tenant_id, purpose, master_key_id, wrapped_key, active, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6)
                 ON CONFLICT (tenant_id, purpose) WHERE active DO NOTHING",
            )
            .bind(key.id.as_str())
            .bind(key.tenant_id.as_str())
            .bind(key.purpose.as_str())
            .bind(&key.master_key_id)
            .bind(&key.wrapped_key)
            .bind(key.created_at.unix_ms())
        )
        .await?;
        self.active_data_key(&row.tenant_id, row.purpose)
            .await?
            .ok_or(StoreError::NotFound { kind: "data key" })
    }

    /// The tenant's active data key for `purpose`.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn active_data_key(
        &self,
        tenant: &TenantId,
        purpose: KeyPurpose,
    ) -> Result<Option<DataKeyRow>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", data_key_columns!(), " FROM data_keys WHERE tenant_id = $1 AND purpose = $2 AND active"
        ))
        .bind(tenant.as_str())
        .bind(purpose.as_str())
        .fetch_optional(p)
        .await?))
    }

    /// A data key by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub async fn data_key(&self, id: &DataKeyId) -> Result<DataKeyRow, StoreError> {
        let found: Option<DataKeyRow> = on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", data_key_columns!(), " FROM data_keys WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(p)
        .await?);
        found.ok_or(StoreError::NotFound { kind: "data key" })
    }

    /// Up to `limit` data keys not wrapped by `master_key_id`: the work list of a rotation.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn data_keys_not_wrapped_by(
        &self,
        master_key_id: &str,
        limit: u32,
    ) -> Result<Vec<DataKeyRow>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", data_key_columns!(), " FROM data_keys WHERE master_key_id <> $1 ORDER BY id LIMIT $2"
        ))
        .bind(master_key_id)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await?))
    }

    /// Replaces a data key's wrapping if it is still wrapped by `old_master` (compare and
    /// set, so two rotations never overwrite each other). Returns whether it changed.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn rewrap_data_key(
        &self,
        id: &DataKeyId,
        old_master: &str,
        new_master: &str,
        new_wrapped: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (id, old_master, new_master) =
            (id.clone(), old_master.to_owned(), new_master.to_owned());
        let new_wrapped = new_wrapped.to_vec();
        let changed = write_one!(
            self,
            sqlx::query(
                "UPDATE data_keys SET master_key_id = $3, wrapped_key = $4, rewrapped_at_ms = $5
                 WHERE id = $1 AND master_key_id = $2",
            )
            .bind(id.as_str())
            .bind(&old_master)
            .bind(&new_master)
            .bind(&new_wrapped)
            .bind(now.unix_ms())
        )
        .await?;
        Ok(changed == 1)
    }

    /// How many data keys each master key wraps, by master key id.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn data_key_count_by_master(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT master_key_id, COUNT(*) FROM data_keys GROUP BY master_key_id ORDER BY master_key_id",
        )
        .fetch_all(p)
        .await?))
    }

    /// Stores a token.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn insert_token(&self, row: &TokenRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move { insert_token_in(tx, &row).await })
        })
        .await
    }

    /// A tenant's token.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn token(
        &self,
        tenant: &TenantId,
        id: &TokenId,
    ) -> Result<Option<TokenRow>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(concat!(
            "SELECT ", token_columns!(), " FROM tokens WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(p)
        .await?))
    }

    /// The tenant's tokens with this fingerprint, oldest first: the same card seen before.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn tokens_by_fingerprint(
        &self,
        tenant: &TenantId,
        fingerprint: &[u8],
    ) -> Result<Vec<TokenId>, StoreError> {
        let ids: Vec<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM tokens WHERE tenant_id = $1 AND fingerprint = $2 ORDER BY created_at_ms, id",
        )
        .bind(tenant.as_str())
        .bind(fingerprint)
        .fetch_all(p)
        .await?);
        ids.into_iter()
            .map(|id| TokenId::try_from(id).map_err(|_| StoreError::Corrupt { what: "token id" }))
            .collect()
    }

    /// The tenant's earliest token with this fingerprint: was this card seen before?
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn first_token_by_fingerprint(
        &self,
        tenant: &TenantId,
        fingerprint: &[u8],
    ) -> Result<Option<TokenId>, StoreError> {
        let id: Option<String> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM tokens WHERE tenant_id = $1 AND fingerprint = $2 ORDER BY created_at_ms, id LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(fingerprint)
        .fetch_optional(p)
        .await?);
        id.map(|id| TokenId::try_from(id).map_err(|_| StoreError::Corrupt { what: "token id" }))
            .transpose()
    }

    /// Marks a token used (for one-time tokens). Returns false if it was used already.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn mark_token_used(
        &self,
        tenant: &TenantId,
        id: &TokenId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        let changed = write_one!(
            self,
            sqlx::query(
                "UPDATE tokens SET used_at_ms = $3
                 WHERE tenant_id = $1 AND id = $2 AND used_at_ms IS NULL",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(now.unix_ms())
        )
        .await?;
        Ok(changed == 1)
    }

    /// Deletes a token (its ciphertext is overwritten on SQLite: `secure_delete`). Returns
    /// whether it existed. Payments that referenced it keep their brand and last four.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn delete_token(&self, tenant: &TenantId, id: &TokenId) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                on_tx!(tx, c => sqlx::query(
                    "UPDATE payments SET token_id = NULL WHERE tenant_id = $1 AND token_id = $2",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut **c)
                .await?.rows_affected());
                on_tx!(tx, c => sqlx::query(
                    "UPDATE payment_sessions SET token_id = NULL WHERE tenant_id = $1 AND token_id = $2",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut **c)
                .await?.rows_affected());
                let changed = on_tx!(tx, c => sqlx::query(
                    "DELETE FROM tokens WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut **c)
                .await?
                .rows_affected());
                Ok(changed == 1)
            })
        })
        .await
    }
}

/// Writes a token inside `tx` (on its own, or with the payment that uses it).
pub(crate) async fn insert_token_in(tx: &mut Tx, row: &TokenRow) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
            "INSERT INTO tokens (id, tenant_id, data_key_id, pan_ciphertext, fingerprint, brand, last4,
                 exp_month, exp_year, token_type, created_at_ms, expires_at_ms, used_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)",
        )
        .bind(row.id.as_str())
        .bind(row.tenant_id.as_str())
        .bind(row.data_key_id.as_str())
        .bind(&row.pan_ciphertext)
        .bind(&row.fingerprint)
        .bind(&row.brand)
        .bind(&row.last4)
        .bind(row.exp_month)
        .bind(row.exp_year)
        .bind(&row.token_type)
        .bind(row.created_at.unix_ms())
        .bind(row.expires_at_ms)
        .execute(&mut **c)
        .await?
        .rows_affected());
    Ok(())
}
