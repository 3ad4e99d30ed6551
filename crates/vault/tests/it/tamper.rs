//! Wrong keys and tampered rows are refused, never decrypted into garbage.

use ivrpay_card::TokenType;
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{BackendKind, KeyPurpose};
use ivrpay_vault::VaultError;

use crate::support::{KeyDir, at, expiry, pan, random_pan_digits, tenant};

crate::on_both!(wrong_master_key_is_refused, tampered_rows_are_refused);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An SQL literal for `bytes` in the fixture's dialect.
fn blob(db: &TestDatabase, bytes: &[u8]) -> String {
    match db.kind() {
        BackendKind::Sqlite => format!("X'{}'", hex(bytes)),
        _ => format!("decode('{}', 'hex')", hex(bytes)),
    }
}

async fn wrong_master_key_is_refused(db: &TestDatabase) {
    let t = tenant(db.store(), "acme").await;
    let right = KeyDir::new();
    let vault = right.vault(db);
    let token = vault
        .tokenize(&t, &pan(&random_pan_digits("4", 16)), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("tokenize");

    // Another master key (another data directory) cannot read the tenant's data keys.
    let wrong = KeyDir::new();
    let intruder = wrong.vault(db);
    assert_ne!(intruder.master_key_id(), vault.master_key_id());
    assert!(matches!(
        intruder.detokenize(&t, &token.id, at(2)).await,
        Err(VaultError::UnknownMasterKey)
    ));

    // Relabelling the wrapped key as the intruder's master key does not help: the key id is
    // derived from the key, and the wrapping does not open under another key.
    let relabel = format!("UPDATE data_keys SET master_key_id = '{}'", intruder.master_key_id());
    db.exec(&relabel).await.expect("relabel");
    assert!(matches!(intruder.detokenize(&t, &token.id, at(3)).await, Err(VaultError::Decryption)));
}

async fn tampered_rows_are_refused(db: &TestDatabase) {
    let t = tenant(db.store(), "acme").await;
    let keys = KeyDir::new();
    let vault = keys.vault(db);
    let one = vault
        .tokenize(&t, &pan(&random_pan_digits("4", 16)), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("one");
    let two = vault
        .tokenize(&t, &pan(&random_pan_digits("4", 16)), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("two");
    let row_one = db.store().token(&t, &one.id).await.expect("row").expect("present");
    let row_two = db.store().token(&t, &two.id).await.expect("row").expect("present");

    // One flipped bit anywhere in the ciphertext.
    for i in [0, 5, 20, row_one.pan_ciphertext.len() - 1] {
        let mut bad = row_one.pan_ciphertext.clone();
        bad[i] ^= 0x10;
        db.exec(&format!(
            "UPDATE tokens SET pan_ciphertext = {} WHERE id = '{}'",
            blob(db, &bad),
            one.id
        ))
        .await
        .expect("tamper");
        assert!(
            matches!(vault.detokenize(&t, &one.id, at(2)).await, Err(VaultError::Decryption)),
            "byte {i}"
        );
    }
    // Another token's valid ciphertext moved into this row.
    db.exec(&format!(
        "UPDATE tokens SET pan_ciphertext = {} WHERE id = '{}'",
        blob(db, &row_two.pan_ciphertext),
        one.id
    ))
    .await
    .expect("swap");
    assert!(matches!(vault.detokenize(&t, &one.id, at(2)).await, Err(VaultError::Decryption)));
    // Put it back: it reads again.
    db.exec(&format!(
        "UPDATE tokens SET pan_ciphertext = {} WHERE id = '{}'",
        blob(db, &row_one.pan_ciphertext),
        one.id
    ))
    .await
    .expect("restore");
    assert!(vault.detokenize(&t, &one.id, at(2)).await.is_ok());

    // A tampered wrapped data key: a cold vault (no cached key) refuses it.
    let dk = db.store().active_data_key(&t, KeyPurpose::Pan).await.expect("dk").expect("present");
    let mut bad = dk.wrapped_key.clone();
    bad[15] ^= 0x01;
    db.exec(&format!(
        "UPDATE data_keys SET wrapped_key = {} WHERE id = '{}'",
        blob(db, &bad),
        dk.id
    ))
    .await
    .expect("tamper");
    assert!(matches!(
        keys.vault(db).detokenize(&t, &two.id, at(3)).await,
        Err(VaultError::Decryption)
    ));
    // The fingerprint key's wrapping is bound to its purpose: swapping it into the PAN key's
    // row does not give a usable PAN key.
    let fp = db
        .store()
        .active_data_key(&t, KeyPurpose::Fingerprint)
        .await
        .expect("fp")
        .expect("present");
    db.exec(&format!(
        "UPDATE data_keys SET wrapped_key = {} WHERE id = '{}'",
        blob(db, &fp.wrapped_key),
        dk.id
    ))
    .await
    .expect("swap");
    assert!(matches!(
        keys.vault(db).detokenize(&t, &two.id, at(3)).await,
        Err(VaultError::Decryption)
    ));
}
