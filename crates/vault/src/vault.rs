//! Tokenization over the store: PAN + expiry in, a random token out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ivrpay_card::{Brand, Expiry, Pan, TokenType};
use ivrpay_store::{
    DataKeyId, DataKeyRow, KeyPurpose, Store, TenantId, Timestamp, TokenId, TokenRow,
};
use zeroize::Zeroizing;

use crate::crypto::{self, KEY_LEN, KeyBytes};
use crate::error::VaultError;
use crate::master::{self, Keyring, MasterKeySource};

/// Data keys re-wrapped per store round trip during a rotation.
const REWRAP_BATCH: u32 = 100;
/// A rotation gives up after this many batches (another rotation running at the same time
/// would otherwise make two processes re-wrap each other's work forever).
const REWRAP_MAX_BATCHES: usize = 10_000;

/// A keyed fingerprint of a PAN: equal for equal PANs of one tenant, useless without the
/// tenant's fingerprint key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The 32 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, for APIs that expose it.
    #[must_use]
    pub fn to_hex(&self) -> String {
        crypto::to_hex(&self.0)
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({}…)", crypto::to_hex(self.0.get(..4).unwrap_or(&[])))
    }
}

/// A new token and what may be shown about its card.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token: random, unrelated to the PAN.
    pub id: TokenId,
    /// Brand by IIN, when known.
    pub brand: Option<Brand>,
    /// The last four digits.
    pub last4: String,
    /// The card's expiry.
    pub expiry: Expiry,
    /// The keyed fingerprint of the PAN.
    pub fingerprint: Fingerprint,
    /// The tenant's earliest token for the same card, if the card was seen before.
    pub seen_before: Option<TokenId>,
}

/// A card encrypted for the store, not stored yet (see [`Vault::seal`]).
#[derive(Debug)]
pub struct SealedCard {
    /// What the caller learns about the card.
    pub token: Token,
    /// The row to write: the PAN only as ciphertext.
    pub row: TokenRow,
}

/// A card read back from the vault for a gateway call. The PAN is a [`Pan`] (a
/// zeroize-on-drop secret): drop this as soon as the gateway has the request.
#[derive(Debug)]
pub struct DetokenizedCard {
    /// The card number.
    pub pan: Pan,
    /// The expiry.
    pub expiry: Expiry,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The new active master key's id.
    pub new_master_key_id: String,
    /// The keys it replaced (still in the keyring, for readers that have not reloaded).
    pub previous_master_key_ids: Vec<String>,
    /// Data keys re-wrapped under the new key.
    pub rewrapped: usize,
}

/// The tokenization vault: envelope encryption of PANs with per-tenant data keys.
///
/// Cheap to share behind an `Arc`; all methods take `&self`. Unwrapped data keys are cached
/// in memory (zeroed when dropped), so tokenize and detokenize cost one AES-GCM operation and
/// one or two store round trips.
pub struct Vault {
    store: Store,
    source: MasterKeySource,
    keyring: RwLock<Arc<Keyring>>,
    keys: Mutex<HashMap<DataKeyId, Arc<KeyBytes>>>,
    active: Mutex<HashMap<(TenantId, KeyPurpose), DataKeyId>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("source", &self.source)
            .field("keyring", &self.keyring_now().ids())
            .finish()
    }
}

fn wrap_aad(id: &DataKeyId, tenant: &TenantId, purpose: KeyPurpose) -> Vec<u8> {
    format!("ivrpay/data-key/v1|{id}|{tenant}|{}", purpose.as_str()).into_bytes()
}

fn pan_aad(token: &TokenId, tenant: &TenantId, data_key: &DataKeyId) -> Vec<u8> {
    format!("ivrpay/pan/v1|{token}|{tenant}|{data_key}").into_bytes()
}

fn to_key(bytes: &[u8]) -> Result<KeyBytes, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(VaultError::Decryption);
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

impl Vault {
    /// Opens the vault: loads (or, for a data directory, creates) the master keys.
    ///
    /// # Errors
    /// [`VaultError`] when the key source is unreadable, malformed or not 0600.
    pub fn open(store: Store, source: MasterKeySource) -> Result<Self, VaultError> {
        let keyring = master::load(&source)?;
        Ok(Self {
            store,
            source,
            keyring: RwLock::new(Arc::new(keyring)),
            keys: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
        })
    }

    /// The id of the active master key.
    #[must_use]
    pub fn master_key_id(&self) -> String {
        self.keyring_now().active().map(|k| k.id().to_owned()).unwrap_or_default()
    }

    /// The ids of every master key in the keyring, active first.
    #[must_use]
    pub fn master_key_ids(&self) -> Vec<String> {
        self.keyring_now().ids()
    }

    fn keyring_now(&self) -> Arc<Keyring> {
        Arc::clone(&self.keyring.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn reload_keyring(&self) -> Result<Arc<Keyring>, VaultError> {
        let fresh = Arc::new(master::load(&self.source)?);
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Unwraps a stored data key, reloading the keyring once if its master key is unknown
    /// (another process rotated).
    fn unwrap_row(&self, row: &DataKeyRow) -> Result<KeyBytes, VaultError> {
        let mut keyring = self.keyring_now();
        if keyring.get(&row.master_key_id).is_none() {
            keyring = self.reload_keyring()?;
        }
        let master = keyring.get(&row.master_key_id).ok_or(VaultError::UnknownMasterKey)?;
        let plain = crypto::open(
            master.key(),
            &wrap_aad(&row.id, &row.tenant_id, row.purpose),
            &row.wrapped_key,
        )?;
        to_key(&plain)
    }

    fn cached(&self, id: &DataKeyId) -> Option<Arc<KeyBytes>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    fn remember(&self, id: &DataKeyId, key: KeyBytes) -> Arc<KeyBytes> {
        let key = Arc::new(key);
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::clone(&key));
        key
    }

    async fn key_by_id(&self, id: &DataKeyId) -> Result<Arc<KeyBytes>, VaultError> {
        if let Some(key) = self.cached(id) {
            return Ok(key);
        }
        let row = self.store.data_key(id).await?;
        let key = self.unwrap_row(&row)?;
        Ok(self.remember(id, key))
    }

    /// The tenant's active data key for `purpose`, created (wrapped by the active master
    /// key) on first use.
    async fn active_key(
        &self,
        tenant: &TenantId,
        purpose: KeyPurpose,
        now: Timestamp,
    ) -> Result<(DataKeyId, Arc<KeyBytes>), VaultError> {
        let cached_id = self
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.clone(), purpose))
            .cloned();
        if let Some(id) = cached_id {
            let key = self.key_by_id(&id).await?;
            return Ok((id, key));
        }
        let row = match self.store.active_data_key(tenant, purpose).await? {
            Some(row) => row,
            None => {
                // A rotation may have happened in another process: wrap with the newest key.
                let keyring = self.reload_keyring()?;
                let master = keyring.active().ok_or(VaultError::BadMasterKey)?;
                let id = DataKeyId::generate(now);
                let key = crypto::random_key()?;
                let wrapped =
                    crypto::seal(master.key(), &wrap_aad(&id, tenant, purpose), key.as_slice())?;
                let row = DataKeyRow {
                    id,
                    tenant_id: tenant.clone(),
                    purpose,
                    master_key_id: master.id().to_owned(),
                    wrapped_key: wrapped,
                    active: true,
                    created_at: now,
                };
                self.store.insert_data_key_if_absent(&row).await?
            }
        };
        let key = match self.cached(&row.id) {
            Some(key) => key,
            None => {
                let key = self.unwrap_row(&row)?;
                self.remember(&row.id, key)
            }
        };
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((tenant.clone(), purpose), row.id.clone());
        Ok((row.id, key))
    }

    /// The keyed fingerprint of `pan` for `tenant` (creating the tenant's fingerprint key on
    /// first use). The fingerprint key is never rotated, so fingerprints stay comparable.
    ///
    /// # Errors
    /// [`VaultError`] when the key cannot be read or made.
    pub async fn fingerprint(
        &self,
        tenant: &TenantId,
        pan: &Pan,
        now: Timestamp,
    ) -> Result<Fingerprint, VaultError> {
        let (_, key) = self.active_key(tenant, KeyPurpose::Fingerprint, now).await?;
        let mut data = Zeroizing::new(b"ivrpay/fingerprint/v1|".to_vec());
        data.extend_from_slice(pan.expose().as_bytes());
        Ok(Fingerprint(crypto::hmac(key.as_slice(), &data)?))
    }

    /// The tenant's tokens for this card, oldest first, found without decrypting anything.
    ///
    /// # Errors
    /// [`VaultError`] on key or store failure.
    pub async fn tokens_for_card(
        &self,
        tenant: &TenantId,
        pan: &Pan,
        now: Timestamp,
    ) -> Result<Vec<TokenId>, VaultError> {
        let fingerprint = self.fingerprint(tenant, pan, now).await?;
        Ok(self.store.tokens_by_fingerprint(tenant, fingerprint.as_bytes()).await?)
    }

    /// Stores the card encrypted and returns a new random token for it. The tenant must
    /// exist in the store. No CVV is accepted: it never reaches the vault.
    ///
    /// # Errors
    /// [`VaultError`] on key or store failure.
    pub async fn tokenize(
        &self,
        tenant: &TenantId,
        pan: &Pan,
        expiry: Expiry,
        token_type: TokenType,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Token, VaultError> {
        let sealed = self.seal(tenant, pan, expiry, token_type, expires_at, now).await?;
        self.store.insert_token(&sealed.row).await?;
        Ok(sealed.token)
    }

    /// As [`Vault::tokenize`] without storing the row: for a caller that writes it in a
    /// transaction of its own (a payment and its token, one commit).
    ///
    /// # Errors
    /// [`VaultError`] on key or store failure.
    pub async fn seal(
        &self,
        tenant: &TenantId,
        pan: &Pan,
        expiry: Expiry,
        token_type: TokenType,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<SealedCard, VaultError> {
        let fingerprint = self.fingerprint(tenant, pan, now).await?;
        let seen_before =
            self.store.first_token_by_fingerprint(tenant, fingerprint.as_bytes()).await?;
        let (data_key_id, key) = self.active_key(tenant, KeyPurpose::Pan, now).await?;
        let id = TokenId::random();
        let ciphertext =
            crypto::seal(&key, &pan_aad(&id, tenant, &data_key_id), pan.expose().as_bytes())?;
        let brand = pan.brand();
        let last4 = pan.last4().as_str().to_owned();
        let row = TokenRow {
            id: id.clone(),
            tenant_id: tenant.clone(),
            data_key_id,
            pan_ciphertext: ciphertext,
            fingerprint: fingerprint.as_bytes().to_vec(),
            brand: brand.map_or("unknown", Brand::name).to_owned(),
            last4: last4.clone(),
            exp_month: i64::from(expiry.month()),
            exp_year: i64::from(expiry.year()),
            token_type: token_type.name().to_owned(),
            created_at: now,
            expires_at_ms: expires_at.map(Timestamp::unix_ms),
            used_at_ms: None,
        };
        Ok(SealedCard { token: Token { id, brand, last4, expiry, fingerprint, seen_before }, row })
    }

    /// Decrypts a token's card for a gateway call.
    ///
    /// # Errors
    /// [`VaultError::UnknownToken`], [`VaultError::TokenExpired`], or
    /// [`VaultError::Decryption`] when the row was tampered with.
    pub async fn detokenize(
        &self,
        tenant: &TenantId,
        token: &TokenId,
        now: Timestamp,
    ) -> Result<DetokenizedCard, VaultError> {
        let row = self.store.token(tenant, token).await?.ok_or(VaultError::UnknownToken)?;
        if row.expires_at_ms.is_some_and(|t| t <= now.unix_ms()) {
            return Err(VaultError::TokenExpired);
        }
        let key = self.key_by_id(&row.data_key_id).await?;
        let plain = crypto::open(
            &key,
            &pan_aad(&row.id, &row.tenant_id, &row.data_key_id),
            &row.pan_ciphertext,
        )?;
        let pan = Pan::from_ascii(&plain).map_err(|_| VaultError::CorruptCard)?;
        let month = u8::try_from(row.exp_month).map_err(|_| VaultError::CorruptCard)?;
        let year = u16::try_from(row.exp_year).map_err(|_| VaultError::CorruptCard)?;
        let expiry = Expiry::new(month, year).map_err(|_| VaultError::CorruptCard)?;
        Ok(DetokenizedCard { pan, expiry })
    }

    /// Rotates the master key without downtime: a new random key becomes active (written to
    /// the key file first, the old keys kept after it), new data keys are wrapped by it at
    /// once, and every existing data key is re-wrapped under it. Tokens are untouched:
    /// their data keys do not change, only the wrapping does, so reads and writes carry on
    /// throughout.
    ///
    /// # Errors
    /// [`VaultError::ReadOnlyKeySource`] for keys from the environment (edit the variable,
    /// then call [`Vault::rewrap`]); other [`VaultError`]s on key or store failure.
    pub async fn rotate(&self, now: Timestamp) -> Result<RotationReport, VaultError> {
        if matches!(self.source, MasterKeySource::Env(_)) {
            return Err(VaultError::ReadOnlyKeySource);
        }
        let current = self.reload_keyring()?;
        let next = current.with_new_active()?;
        master::store(&self.source, &next)?;
        let next = Arc::new(next);
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        let new_id = next.active().map(|k| k.id().to_owned()).ok_or(VaultError::BadMasterKey)?;
        let rewrapped = self.rewrap(now).await?;
        let previous = current.ids();
        let detail = serde_json::json!({ "previous": previous, "rewrapped": rewrapped });
        self.store.audit(None, "vault", "keys.rotate", Some(&new_id), &detail, now).await?;
        Ok(RotationReport {
            new_master_key_id: new_id,
            previous_master_key_ids: previous,
            rewrapped,
        })
    }

    /// Re-wraps every data key not yet wrapped by the active master key (the second half of
    /// a rotation; safe to run again after a crash). Returns how many it re-wrapped.
    ///
    /// # Errors
    /// [`VaultError`] on key or store failure.
    pub async fn rewrap(&self, now: Timestamp) -> Result<usize, VaultError> {
        let keyring = self.reload_keyring()?;
        let active = keyring.active().ok_or(VaultError::BadMasterKey)?;
        let mut rewrapped = 0;
        for _ in 0..REWRAP_MAX_BATCHES {
            let rows = self.store.data_keys_not_wrapped_by(active.id(), REWRAP_BATCH).await?;
            if rows.is_empty() {
                return Ok(rewrapped);
            }
            for row in rows {
                let key = self.unwrap_row(&row)?;
                let wrapped = crypto::seal(
                    active.key(),
                    &wrap_aad(&row.id, &row.tenant_id, row.purpose),
                    key.as_slice(),
                )?;
                if self
                    .store
                    .rewrap_data_key(&row.id, &row.master_key_id, active.id(), &wrapped, now)
                    .await?
                {
                    rewrapped += 1;
                }
            }
        }
        Ok(rewrapped)
    }

    /// Drops from the key file every old master key that no data key uses any more (after
    /// re-wrapping what is left). Run it once every node has picked up the last rotation:
    /// a node still holding only the old key would otherwise lose its way to data keys it
    /// creates. Returns the ids removed.
    ///
    /// # Errors
    /// [`VaultError`] on key file or store failure.
    pub async fn retire_master_keys(&self, now: Timestamp) -> Result<Vec<String>, VaultError> {
        self.rewrap(now).await?;
        let keyring = self.reload_keyring()?;
        let in_use: Vec<String> =
            self.store.data_key_count_by_master().await?.into_iter().map(|(id, _)| id).collect();
        let retired: Vec<String> =
            keyring.ids().into_iter().skip(1).filter(|id| !in_use.contains(id)).collect();
        if retired.is_empty() {
            return Ok(retired);
        }
        let kept = keyring.without(&retired);
        master::store(&self.source, &kept)?;
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(kept);
        let detail = serde_json::json!({ "retired": retired });
        self.store.audit(None, "vault", "keys.retire", None, &detail, now).await?;
        Ok(retired)
    }
}
