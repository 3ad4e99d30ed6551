//! Fixtures: a vault on a store fixture, and random test cards.

use std::path::PathBuf;

use ivrpay_card::{Expiry, Pan, luhn_check_digit};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{Store, TenantId, Timestamp};
use ivrpay_vault::{MasterKeySource, Vault};
use rand::RngExt as _;

pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(1_764_000_000_000 + ms)
}

/// A tenant that exists in the store.
pub async fn tenant(store: &Store, name: &str) -> TenantId {
    let id = TenantId::parse(&format!("ten_{name}")).expect("tenant id");
    store.ensure_tenant(&id, name, at(0)).await.expect("tenant");
    id
}

/// A directory for master keys that outlives the vaults opened on it.
pub struct KeyDir(pub tempfile::TempDir);

impl KeyDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().expect("key dir"))
    }

    pub fn source(&self) -> MasterKeySource {
        MasterKeySource::DataDir(self.0.path().to_path_buf())
    }

    pub fn key_file(&self) -> PathBuf {
        self.source().key_file().expect("file source")
    }

    pub fn vault(&self, db: &TestDatabase) -> Vault {
        Vault::open(db.store().clone(), self.source()).expect("vault")
    }
}

/// A random Luhn-valid card number: `prefix` then random digits to `len`.
pub fn random_pan_digits(prefix: &str, len: usize) -> String {
    let mut rng = rand::rng();
    let mut digits: Vec<u8> = prefix.bytes().collect();
    while digits.len() < len - 1 {
        digits.push(b'0' + rng.random_range(0..10u8));
    }
    digits.push(luhn_check_digit(&digits).expect("digits"));
    String::from_utf8(digits).expect("ascii")
}

pub fn pan(digits: &str) -> Pan {
    Pan::parse(digits).expect("pan")
}

pub fn expiry() -> Expiry {
    Expiry::new(12, 2030).expect("expiry")
}
