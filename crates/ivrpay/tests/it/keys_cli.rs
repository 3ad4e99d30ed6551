//! `ivrpay keys rotate|retire`, run as an operator runs them, on a data directory that a
//! vault has used.

use std::path::Path;
use std::process::{Command, Output};

use ivrpay_card::{Expiry, Pan, TokenType};
use ivrpay_store::{Store, StoreConfig, TenantId, Timestamp, TokenId};
use ivrpay_vault::{MasterKeySource, Vault};

fn keys(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ivrpay"))
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("IVRPAY_MASTER_KEY")
        .env_remove("IVRPAY_MASTER_KEY_FILE")
        .env_remove("IVRPAY_DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

const CARDS: [&str; 2] = ["4242424242424242", "378282246310005"];

async fn vault(dir: &Path) -> (Store, Vault) {
    let store = Store::open(&StoreConfig::sqlite_in(dir)).await.expect("store");
    let vault =
        Vault::open(store.clone(), MasterKeySource::DataDir(dir.to_path_buf())).expect("vault");
    (store, vault)
}

#[tokio::test]
async fn rotate_then_retire() {
    let dir = tempfile_dir();
    let tenant = TenantId::parse("ten_acme").expect("id");
    let now = Timestamp::from_unix_ms(1_764_000_000_000);
    let (store, v) = vault(&dir).await;
    store.ensure_tenant(&tenant, "acme", now).await.expect("tenant");
    let mut tokens: Vec<TokenId> = Vec::new();
    for card in CARDS {
        let pan = Pan::parse(card).expect("pan");
        let expiry = Expiry::new(12, 2030).expect("expiry");
        tokens.push(
            v.tokenize(&tenant, &pan, expiry, TokenType::Reusable, None, now)
                .await
                .expect("tokenize")
                .id,
        );
    }
    let old = v.master_key_id();
    store.close().await;

    let rotated = json(&keys(&["rotate"], &dir));
    let new = rotated["master_key_id"].as_str().expect("id").to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["previous_master_key_ids"], serde_json::json!([old]));
    assert_eq!(rotated["rewrapped_data_keys"], 2, "the tenant's PAN and fingerprint keys");

    let (store, v) = vault(&dir).await;
    assert_eq!(v.master_key_ids(), vec![new.clone(), old.clone()]);
    for (token, card) in tokens.iter().zip(CARDS) {
        assert_eq!(v.detokenize(&tenant, token, now).await.expect("detokenize").pan.expose(), card);
    }
    store.close().await;

    let retired = json(&keys(&["retire"], &dir));
    assert_eq!(retired["retired_master_key_ids"], serde_json::json!([old]));
    let (store, v) = vault(&dir).await;
    assert_eq!(v.master_key_ids(), vec![new]);
    assert_eq!(
        v.detokenize(&tenant, &tokens[0], now).await.expect("detokenize").pan.expose(),
        CARDS[0]
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_data_directory_is_an_error() {
    let out = keys(&["rotate"], Path::new("/nonexistent/ivrpay-data"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(out.stdout.is_empty());
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ivrpay-keys-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
