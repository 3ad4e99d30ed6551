//! API keys, the audit log, the vault's rows and the schema itself.

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    ApiKeyHash, BackendKind, DataKeyId, DataKeyRow, KeyPurpose, NewSession, SessionStatus,
    StoreError, TenantId, TokenId, TokenRow, TokenType,
};
use serde_json::json;

use crate::support::{at, key, store, tenant, usd};

crate::on_both!(
    api_keys_are_found_by_hash_only,
    audit_log_is_append_only,
    vault_rows,
    schema_and_errors
);

async fn api_keys_are_found_by_hash_only(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let secret = "ivk_live_7f3a9c2e4b1d8f6a0e5c3b2a1d9f8e7c";
    let hash = ApiKeyHash::of_secret(secret);
    let id = s
        .insert_api_key(&t, "desk", &["payments:write".to_owned()], &hash, at(1))
        .await
        .expect("insert");
    let found =
        s.api_key_by_hash(&ApiKeyHash::of_secret(secret)).await.expect("lookup").expect("found");
    assert_eq!((found.id.clone(), found.tenant_id.clone()), (id.clone(), t.clone()));
    assert_eq!(found.scopes, vec!["payments:write".to_owned()]);
    assert!(
        s.api_key_by_hash(&ApiKeyHash::of_secret("ivk_live_wrong"))
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(s.revoke_api_key(&id, at(2)).await.expect("revoke"));
    assert!(!s.revoke_api_key(&id, at(3)).await.expect("revoke again"));
    assert!(s.api_key_by_hash(&hash).await.expect("lookup").is_none());
    // The secret itself is nowhere in the table.
    let stored = db.scalar_text("SELECT name FROM api_keys").await.expect("row");
    assert_eq!(stored, "desk");
}

async fn audit_log_is_append_only(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let first = s
        .audit(Some(&t), "cli", "keys.rotate", None, &json!({"rewrapped": 2}), at(1))
        .await
        .expect("append");
    let second =
        s.audit(None, "system", "store.open", Some("db"), &json!({}), at(2)).await.expect("append");
    assert!(second > first);
    let entries = s.audit_since(0, 10).await.expect("read");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].detail["rewrapped"], 2);
    assert_eq!(entries[0].tenant_id.as_deref(), Some(t.as_str()));

    let update = db.exec("UPDATE audit_log SET action = 'nothing happened'").await;
    assert!(update.expect_err("update refused").to_string().contains("append-only"));
    let delete = db.exec("DELETE FROM audit_log").await;
    assert!(delete.expect_err("delete refused").to_string().contains("append-only"));
    if db.kind() == BackendKind::Postgres {
        let truncate = db.exec("TRUNCATE audit_log").await;
        assert!(truncate.expect_err("truncate refused").to_string().contains("append-only"));
    }
    assert_eq!(s.audit_since(0, 10).await.expect("read"), entries);
}

fn data_key(tenant: &TenantId, purpose: KeyPurpose, master: &str, wrapped: &[u8]) -> DataKeyRow {
    DataKeyRow {
        id: DataKeyId::generate(at(0)),
        tenant_id: tenant.clone(),
        purpose,
        master_key_id: master.to_owned(),
        wrapped_key: wrapped.to_vec(),
        active: true,
        created_at: at(0),
    }
}

async fn vault_rows(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    // Two nodes race to create the tenant's first PAN key: both get the winner's.
    let a = data_key(&t, KeyPurpose::Pan, "mk_a", b"wrapped-a");
    let b = data_key(&t, KeyPurpose::Pan, "mk_a", b"wrapped-b");
    let (s1, s2, a2, b2) = (s.clone(), s.clone(), a.clone(), b.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { s1.insert_data_key_if_absent(&a2).await }),
        tokio::spawn(async move { s2.insert_data_key_if_absent(&b2).await })
    );
    let (ra, rb) = (ra.expect("join").expect("insert"), rb.expect("join").expect("insert"));
    assert_eq!(ra, rb);
    assert!(ra.id == a.id || ra.id == b.id);
    let fp = s
        .insert_data_key_if_absent(&data_key(&t, KeyPurpose::Fingerprint, "mk_a", b"fp"))
        .await
        .expect("fp key");
    assert_eq!(fp.purpose, KeyPurpose::Fingerprint);

    // Rotation work list and compare-and-set re-wrap.
    assert_eq!(s.data_keys_not_wrapped_by("mk_b", 10).await.expect("list").len(), 2);
    assert!(s.rewrap_data_key(&ra.id, "mk_a", "mk_b", b"rewrapped", at(1)).await.expect("rewrap"));
    assert!(
        !s.rewrap_data_key(&ra.id, "mk_a", "mk_c", b"stale", at(2)).await.expect("stale rewrap")
    );
    let now = s.data_key(&ra.id).await.expect("key");
    assert_eq!(
        (now.master_key_id.as_str(), now.wrapped_key.as_slice()),
        ("mk_b", b"rewrapped".as_slice())
    );
    assert_eq!(
        s.data_key_count_by_master().await.expect("count"),
        vec![("mk_a".to_owned(), 1), ("mk_b".to_owned(), 1)]
    );

    // Tokens: found by fingerprint, used once, deleted.
    let token = |fingerprint: &[u8]| TokenRow {
        id: TokenId::random(),
        tenant_id: t.clone(),
        data_key_id: ra.id.clone(),
        pan_ciphertext: vec![7; 44],
        fingerprint: fingerprint.to_vec(),
        brand: "visa".to_owned(),
        last4: "4242".to_owned(),
        exp_month: 12,
        exp_year: 2030,
        token_type: "reusable".to_owned(),
        created_at: at(3),
        expires_at_ms: None,
        used_at_ms: None,
    };
    let (t1, t2, t3) = (token(&[1; 32]), token(&[1; 32]), token(&[2; 32]));
    for row in [&t1, &t2, &t3] {
        s.insert_token(row).await.expect("insert token");
    }
    let mut repeat = s.tokens_by_fingerprint(&t, &[1; 32]).await.expect("by fingerprint");
    repeat.sort();
    let mut expected = vec![t1.id.clone(), t2.id.clone()];
    expected.sort();
    assert_eq!(repeat, expected);
    assert_eq!(s.token(&t, &t3.id).await.expect("token"), Some(t3.clone()));
    let other = tenant(s, "globex").await;
    assert_eq!(s.token(&other, &t3.id).await.expect("token"), None, "tokens are per tenant");
    assert!(s.mark_token_used(&t, &t3.id, at(4)).await.expect("use"));
    assert!(!s.mark_token_used(&t, &t3.id, at(5)).await.expect("use twice"));

    // A tokenize-only session completes with its token.
    let session = s
        .open_session(
            &NewSession {
                tenant_id: t.clone(),
                call_id: None,
                idempotency_key: key("tokenize-1"),
                amount: usd(0),
                description: None,
                customer_ref: None,
                token_type: TokenType::default(),
            },
            at(6),
        )
        .await
        .expect("open");
    let done =
        s.complete_session_with_token(&t, &session.id, &t1.id, at(7)).await.expect("complete");
    assert_eq!((done.status, done.token_id.as_ref()), (SessionStatus::Completed, Some(&t1.id)));

    assert!(s.delete_token(&t, &t1.id).await.expect("delete"));
    assert!(!s.delete_token(&t, &t1.id).await.expect("delete again"));
    assert_eq!(s.session(&t, &session.id).await.expect("session").token_id.as_ref(), None);
}

async fn schema_and_errors(db: &TestDatabase) {
    let s = store(db);
    if db.kind() == BackendKind::Sqlite {
        assert_eq!(db.scalar_text("PRAGMA journal_mode").await.expect("pragma"), "wal");
    }
    // Events need their tenant.
    let ghost = TenantId::parse("ten_ghost").expect("id");
    assert!(crate::support::start_call(s, &ghost, "x", at(1)).await.is_err());
    // Unknown rows are NotFound, not a panic or a database error.
    let t = tenant(s, "acme").await;
    assert!(matches!(
        s.payment(&t, &ivrpay_store::PaymentId::random()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(s.data_key(&DataKeyId::random()).await, Err(StoreError::NotFound { .. })));
    // Opening the same database again applies no migration twice.
    if let Some(dir) = db.dir() {
        let again = ivrpay_store::Store::open(&ivrpay_store::StoreConfig::sqlite_in(dir))
            .await
            .expect("reopen");
        again.close().await;
    }
}
