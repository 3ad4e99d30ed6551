//! API keys: bearer secrets whose SHA-256 is all the store keeps, with a scope each.
//!
//! - `admin`: everything, including the sync's endpoints and refunds;
//! - `agent` bound to one agent id (`agent:<id>` in the store): that agent's calls, their
//!   payments and their feed events. Other agents' calls read as 404, not 403, so an agent
//!   cannot probe which call ids exist.
//!
//! A key is `ivrpay_` and 40 base32 characters (200 random bits): long enough that a plain
//! hash is a safe thing to store (nothing to brute-force, unlike a password). The first
//! start of a deployment with no key at all makes an admin key ([`bootstrap_admin_key`]),
//! from `IVRPAY_BOOTSTRAP_ADMIN_KEY` when set.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use axum::http::request::Parts;
use ivrpay_store::{ApiKeyHash, ApiKeyId, CallRecord, Store, StoreError, TenantId, Timestamp};
use rand::Rng as _;
use serde_json::json;

use crate::ApiState;
use crate::error::ApiError;

/// The environment variable whose value becomes the first admin key.
pub const BOOTSTRAP_ENV: &str = "IVRPAY_BOOTSTRAP_ADMIN_KEY";

/// The subprotocol prefix that carries a key on a WebSocket (`bearer.<key>`).
pub const WS_BEARER_PREFIX: &str = "bearer.";

/// What a key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Admin,
    /// One agent's calls, payments and events.
    Agent(String),
}

impl Scope {
    /// The scope the CLI names: `admin`, or `agent` with the agent id.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(scope: &str, agent: Option<&str>) -> Result<Scope, String> {
        match (scope, agent) {
            ("admin", None) => Ok(Scope::Admin),
            ("admin", Some(_)) => Err("--agent goes with --scope agent only".to_owned()),
            ("agent", Some(id)) => {
                check_agent_id(id)?;
                Ok(Scope::Agent(id.to_owned()))
            }
            ("agent", None) => Err("--scope agent needs --agent ID".to_owned()),
            (other, _) => Err(format!("--scope {other:?}: expected admin or agent")),
        }
    }

    /// The scopes as stored with the key.
    #[must_use]
    pub fn stored(&self) -> Vec<String> {
        match self {
            Scope::Admin => vec!["admin".to_owned()],
            Scope::Agent(id) => vec![format!("agent:{id}")],
        }
    }

    fn from_stored(scopes: &[String]) -> Option<Scope> {
        if scopes.iter().any(|s| s == "admin") {
            return Some(Scope::Admin);
        }
        scopes.iter().find_map(|s| s.strip_prefix("agent:")).map(|id| Scope::Agent(id.to_owned()))
    }

    /// `admin` or `agent`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Agent(_) => "agent",
        }
    }
}

/// An agent id: 1 to 128 visible ASCII characters.
fn check_agent_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("an agent id is 1 to 128 visible ASCII characters".to_owned());
    }
    Ok(())
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub(crate) key_id: ApiKeyId,
    pub(crate) scope: Scope,
}

impl Principal {
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            Scope::Agent(_) => Err(ApiError::forbidden("this endpoint needs an admin key")),
        }
    }

    /// The agent an agent key is bound to.
    pub(crate) fn agent(&self) -> Option<&str> {
        match &self.scope {
            Scope::Admin => None,
            Scope::Agent(id) => Some(id),
        }
    }

    /// Whether the caller may see this call.
    pub(crate) fn may_see(&self, call: &CallRecord) -> bool {
        match &self.scope {
            Scope::Admin => true,
            Scope::Agent(id) => call.agent.as_deref() == Some(id.as_str()),
        }
    }
}

/// The key a request carries: `Authorization: Bearer <key>`, or on a WebSocket handshake
/// the subprotocol `bearer.<key>`.
pub(crate) fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().ok()?.trim();
        let (scheme, key) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim().to_owned());
    }
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WS_BEARER_PREFIX).map(str::to_owned))
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let fail = |detail: &str| {
            state.metrics().auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ApiError::unauthorized(detail)
        };
        let Some(secret) = credential(&parts.headers) else {
            return Err(fail("send an API key as Authorization: Bearer <key>"));
        };
        let record = state.store().api_key_by_hash(&ApiKeyHash::of_secret(&secret)).await?;
        let Some(record) = record.filter(|r| &r.tenant_id == state.tenant()) else {
            return Err(fail("the API key is unknown or revoked"));
        };
        let scope = Scope::from_stored(&record.scopes)
            .ok_or_else(|| ApiError::forbidden("the API key has no scope this API knows"))?;
        Ok(Principal { key_id: record.id, scope })
    }
}

/// A new random key.
#[must_use]
pub fn generate_secret() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut bytes = [0u8; 40];
    rand::rng().fill_bytes(&mut bytes);
    let body: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect();
    format!("ivrpay_{body}")
}

/// Stores a key with `scope` under its hash and records it in the audit log.
///
/// # Errors
/// [`StoreError`] when the store fails (a duplicate secret included).
pub async fn store_key(
    store: &Store,
    tenant: &TenantId,
    scope: &Scope,
    secret: &str,
    name: &str,
    actor: &str,
    now: Timestamp,
) -> Result<ApiKeyId, StoreError> {
    let id = store
        .insert_api_key(tenant, name, &scope.stored(), &ApiKeyHash::of_secret(secret), now)
        .await?;
    let detail = json!({ "scope": scope.name(), "agent": match scope {
        Scope::Agent(a) => Some(a.as_str()),
        Scope::Admin => None,
    }, "name": name });
    store.audit(Some(tenant), actor, "api_key.create", Some(id.as_str()), &detail, now).await?;
    Ok(id)
}

/// Makes a new random key with `scope`; returns its id and the secret (to show once).
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn create_key(
    store: &Store,
    tenant: &TenantId,
    scope: &Scope,
    name: &str,
    actor: &str,
    now: Timestamp,
) -> Result<(ApiKeyId, String), StoreError> {
    let secret = generate_secret();
    let id = store_key(store, tenant, scope, &secret, name, actor, now).await?;
    Ok((id, secret))
}

/// What [`bootstrap_admin_key`] did.
#[derive(PartialEq, Eq)]
pub enum Bootstrap {
    /// The tenant has keys already: nothing.
    Existing,
    /// A random admin key was made: show it once.
    Generated {
        /// Its id.
        id: ApiKeyId,
        /// The key.
        secret: String,
    },
    /// The key given in `IVRPAY_BOOTSTRAP_ADMIN_KEY` was stored.
    FromEnv {
        /// Its id.
        id: ApiKeyId,
    },
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bootstrap::Existing => f.write_str("Existing"),
            Bootstrap::Generated { id, .. } => write!(f, "Generated({})", id.as_str()),
            Bootstrap::FromEnv { id } => write!(f, "FromEnv({})", id.as_str()),
        }
    }
}

/// Why the first admin key could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum BootstrapError {
    /// `IVRPAY_BOOTSTRAP_ADMIN_KEY` is too short, too long or not visible ASCII.
    BadPreset,
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for BootstrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootstrapError::BadPreset => {
                write!(f, "{BOOTSTRAP_ENV} must be 20 to 255 visible ASCII characters")
            }
            BootstrapError::Store(e) => write!(f, "storing the first admin key: {e}"),
        }
    }
}

impl std::error::Error for BootstrapError {}

/// On a deployment's first start (the tenant was never given a key), makes the first admin
/// key: `preset` when given (`IVRPAY_BOOTSTRAP_ADMIN_KEY`), else a random one for the caller
/// to show once. Later starts do nothing, even when every key was revoked since: a new admin
/// key then comes from `ivrpay keys create`, by someone with access to the data.
///
/// # Errors
/// [`BootstrapError`].
pub async fn bootstrap_admin_key(
    store: &Store,
    tenant: &TenantId,
    preset: Option<&str>,
    now: Timestamp,
) -> Result<Bootstrap, BootstrapError> {
    if let Some(p) = preset {
        if p.len() < 20 || p.len() > 255 || !p.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BootstrapError::BadPreset);
        }
    }
    if store.api_key_count(tenant).await.map_err(BootstrapError::Store)? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let name = "bootstrap admin";
    Ok(match preset {
        Some(secret) => {
            let id = store_key(store, tenant, &Scope::Admin, secret, name, "system", now)
                .await
                .map_err(BootstrapError::Store)?;
            Bootstrap::FromEnv { id }
        }
        None => {
            let (id, secret) = create_key(store, tenant, &Scope::Admin, name, "system", now)
                .await
                .map_err(BootstrapError::Store)?;
            Bootstrap::Generated { id, secret }
        }
    })
}
