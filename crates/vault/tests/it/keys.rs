//! The master key: created on first start with 0600 permissions, refused when loose, read
//! from a file or the environment.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use ivrpay_card::TokenType;
use ivrpay_store::testing::TestDatabase;
use ivrpay_vault::{MasterKeySource, Vault, VaultError};

use crate::support::{KeyDir, at, expiry, pan, tenant};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test]
async fn created_on_first_start_with_0600() {
    let db = TestDatabase::sqlite().await.expect("fixture");
    let keys = KeyDir::new();
    let file = keys.key_file();
    assert!(!file.exists());
    let vault = keys.vault(&db);
    assert_eq!(mode(&file), 0o600, "key file");
    assert_eq!(mode(file.parent().expect("dir")), 0o700, "key directory");
    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() == 64 && lines[0].bytes().all(|b| b.is_ascii_hexdigit()));
    // Nothing but the key file and no stray temporaries.
    let entries: Vec<_> = std::fs::read_dir(file.parent().expect("dir")).expect("ls").collect();
    assert_eq!(entries.len(), 1);
    // The next start reads the same key.
    assert_eq!(keys.vault(&db).master_key_id(), vault.master_key_id());
    assert!(vault.master_key_id().starts_with("mk_"));
    db.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn loose_permissions_and_bad_files_are_refused() {
    let db = TestDatabase::sqlite().await.expect("fixture");
    let keys = KeyDir::new();
    let _ = keys.vault(&db);
    let file = keys.key_file();
    for loose in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(loose)).expect("chmod");
        let err = Vault::open(db.store().clone(), keys.source()).expect_err("loose permissions");
        assert!(matches!(err, VaultError::InsecureKeyFile), "{loose:o}: {err}");
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(Vault::open(db.store().clone(), keys.source()).is_ok());

    let dir = tempfile::tempdir().expect("dir");
    let missing = MasterKeySource::File(dir.path().join("none.keys"));
    assert!(matches!(Vault::open(db.store().clone(), missing), Err(VaultError::KeyFile { .. })));
    let bad = dir.path().join("bad.keys");
    for content in ["", "# only a comment\n", "abcd\n", &"z".repeat(64)] {
        std::fs::write(&bad, content).expect("write");
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = Vault::open(db.store().clone(), MasterKeySource::File(bad.clone()))
            .expect_err("bad key file");
        assert!(matches!(err, VaultError::BadMasterKey), "{content:?}: {err}");
        // The error message never echoes the file's content.
        assert!(!err.to_string().contains("abcd"));
    }
    db.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_key_file_the_operator_provides() {
    let db = TestDatabase::sqlite().await.expect("fixture");
    let t = tenant(db.store(), "acme").await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("operator.keys");
    std::fs::write(&path, format!("# from the HSM export\n{}\n", "a1".repeat(32))).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let vault = Vault::open(db.store().clone(), MasterKeySource::File(path.clone())).expect("open");
    let token = vault
        .tokenize(&t, &pan("4242424242424242"), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("tokenize");
    let report = vault.rotate(at(2)).await.expect("rotate");
    assert_eq!(report.rewrapped, 2, "the PAN and fingerprint data keys");
    assert_eq!(mode(&path), 0o600, "the rewritten file keeps 0600");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
    assert!(text.contains(&"a1".repeat(32)), "the old key stays until retired");
    let reopened = Vault::open(db.store().clone(), MasterKeySource::File(path)).expect("reopen");
    assert_eq!(reopened.master_key_id(), report.new_master_key_id);
    assert_eq!(
        reopened.detokenize(&t, &token.id, at(3)).await.expect("detokenize").pan.expose(),
        "4242424242424242"
    );
    db.cleanup().await.expect("cleanup");
}

#[test]
fn racing_first_starts_agree_on_one_key() {
    let keys = KeyDir::new();
    let source = keys.source();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let source = source.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let db = TestDatabase::sqlite().await.expect("fixture");
                    let id = Vault::open(db.store().clone(), source).expect("open").master_key_id();
                    db.cleanup().await.expect("cleanup");
                    id
                })
            })
        })
        .collect();
    let ids: Vec<String> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

/// The environment source is tested in a child process (this edition forbids changing the
/// environment of a running multi-threaded test binary).
const CHILD_FLAG: &str = "IVRPAY_VAULT_ENV_CHILD";
const CHILD_VAR: &str = "IVRPAY_VAULT_TEST_MASTER_KEY";

#[test]
fn master_key_from_the_environment() {
    let exe = std::env::current_exe().expect("test binary");
    let run = |value: &str| {
        Command::new(&exe)
            .args(["--exact", "keys::environment_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_FLAG, "1")
            .env(CHILD_VAR, value)
            .output()
            .expect("child")
    };
    let two_keys = format!("{},{}", "b2".repeat(32), "c3".repeat(32));
    let ok = run(&two_keys);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("environment child ok"));
    let bad = run("not-a-key");
    assert!(!bad.status.success(), "a malformed key must fail");
}

#[test]
fn environment_child() {
    if std::env::var_os(CHILD_FLAG).is_none() {
        return; // Only meaningful when started by `master_key_from_the_environment`.
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let db = TestDatabase::sqlite().await.expect("fixture");
        let t = tenant(db.store(), "acme").await;
        let vault = Vault::open(db.store().clone(), MasterKeySource::Env(CHILD_VAR.to_owned()))
            .expect("open from env");
        assert_eq!(vault.master_key_ids().len(), 2);
        let token = vault
            .tokenize(&t, &pan("5555555555554444"), expiry(), TokenType::Reusable, None, at(1))
            .await
            .expect("tokenize");
        assert_eq!(
            vault.detokenize(&t, &token.id, at(2)).await.expect("detokenize").pan.expose(),
            "5555555555554444"
        );
        assert!(matches!(vault.rotate(at(3)).await, Err(VaultError::ReadOnlyKeySource)));
        assert_eq!(vault.rewrap(at(3)).await.expect("rewrap"), 0, "already under the first key");
        db.cleanup().await.expect("cleanup");
    });
    println!("environment child ok");
}
