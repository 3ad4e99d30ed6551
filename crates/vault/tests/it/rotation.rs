//! Rotation without downtime: tokenize and detokenize carry on while the master key changes;
//! other processes follow; old keys retire once unused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ivrpay_card::TokenType;
use ivrpay_store::TenantId;
use ivrpay_store::testing::TestDatabase;

use crate::support::{KeyDir, at, expiry, pan, random_pan_digits, tenant};

crate::on_both!(rotation_under_concurrent_use, other_processes_follow_and_old_keys_retire);

async fn rotation_under_concurrent_use(db: &TestDatabase) {
    let keys = KeyDir::new();
    let vault = Arc::new(keys.vault(db));
    // Twelve tenants with data keys and tokens before the rotation.
    let mut tenants: Vec<TenantId> = Vec::new();
    let mut before = Vec::new();
    for i in 0..12 {
        let t = tenant(db.store(), &format!("t{i}")).await;
        let digits = random_pan_digits("4", 16);
        let token = vault
            .tokenize(&t, &pan(&digits), expiry(), TokenType::Reusable, None, at(1))
            .await
            .expect("tokenize");
        before.push((t.clone(), token.id, digits));
        tenants.push(t);
    }
    let old_master = vault.master_key_id();

    // Workers tokenize and detokenize without pause while the rotation runs.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (vault, stop, done, tenants) =
            (Arc::clone(&vault), Arc::clone(&stop), Arc::clone(&done), tenants.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = 0usize;
            // Bounded: at most 400 round trips per worker even if the rotation were slow.
            while !stop.load(Ordering::Relaxed) && i < 400 {
                let t = &tenants[(w + i) % tenants.len()];
                let digits = random_pan_digits("5", 16);
                let token = vault
                    .tokenize(t, &pan(&digits), expiry(), TokenType::Reusable, None, at(2))
                    .await
                    .expect("tokenize during rotation");
                let back = vault
                    .detokenize(t, &token.id, at(2))
                    .await
                    .expect("detokenize during rotation");
                assert_eq!(back.pan.expose(), digits);
                mine.push((t.clone(), token.id, digits));
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            mine
        }));
    }
    // Let the workers get going, rotate, then stop them.
    while done.load(Ordering::Relaxed) < 20 {
        tokio::task::yield_now().await;
    }
    let report = vault.rotate(at(3)).await.expect("rotate");
    let during = done.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut after = Vec::new();
    for w in workers {
        after.extend(w.await.expect("worker"));
    }
    println!(
        "rotation: {} data keys re-wrapped while {} tokenize+detokenize round trips ran ({} before it returned)",
        report.rewrapped,
        after.len(),
        during
    );
    assert_eq!(report.previous_master_key_ids, vec![old_master.clone()]);
    assert_eq!(report.rewrapped, 24, "two data keys (PAN, fingerprint) per tenant");
    assert_ne!(report.new_master_key_id, old_master);

    // Every data key is now wrapped by the new master key only.
    let counts = db.store().data_key_count_by_master().await.expect("counts");
    assert_eq!(counts, vec![(report.new_master_key_id.clone(), 24)]);
    // Every token, from before and during the rotation, reads in a cold vault.
    let cold = keys.vault(db);
    for (t, token, digits) in before.iter().chain(after.iter()) {
        assert_eq!(
            &cold.detokenize(t, token, at(4)).await.expect("cold detokenize").pan.expose(),
            digits
        );
    }
    let audit = db.store().audit_since(0, 10).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "keys.rotate"
        && e.subject_id.as_deref() == Some(report.new_master_key_id.as_str())));
}

async fn other_processes_follow_and_old_keys_retire(db: &TestDatabase) {
    let keys = KeyDir::new();
    // Two "nodes" on the same data directory and database.
    let node_a = keys.vault(db);
    let node_b = keys.vault(db);
    let t1 = tenant(db.store(), "acme").await;
    let token1 = node_a
        .tokenize(&t1, &pan("4242424242424242"), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("tokenize");
    let old = node_a.master_key_id();

    let report = node_a.rotate(at(2)).await.expect("rotate");
    // Node B still has only the old key in memory. A tenant it has never seen was keyed under
    // the new master by node A: B reloads the keyring and reads it.
    let t2 = tenant(db.store(), "globex").await;
    let token2 = node_a
        .tokenize(&t2, &pan("5555555555554444"), expiry(), TokenType::Reusable, None, at(3))
        .await
        .expect("tokenize");
    assert_eq!(
        node_b.detokenize(&t2, &token2.id, at(4)).await.expect("node b").pan.expose(),
        "5555555555554444"
    );
    assert_eq!(node_b.master_key_id(), report.new_master_key_id);
    // New data keys made by B are wrapped by the new key too.
    let t3 = tenant(db.store(), "initech").await;
    node_b
        .tokenize(&t3, &pan("378282246310005"), expiry(), TokenType::Reusable, None, at(5))
        .await
        .expect("tokenize");
    let counts = db.store().data_key_count_by_master().await.expect("counts");
    assert_eq!(counts, vec![(report.new_master_key_id.clone(), 6)]);

    // The old key is unused: retiring removes it from the file; everything still reads.
    assert_eq!(node_a.master_key_ids(), vec![report.new_master_key_id.clone(), old.clone()]);
    let retired = node_a.retire_master_keys(at(6)).await.expect("retire");
    assert_eq!(retired, vec![old.clone()]);
    let text = std::fs::read_to_string(keys.key_file()).expect("read");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 1);
    let cold = keys.vault(db);
    assert_eq!(cold.master_key_ids(), vec![report.new_master_key_id.clone()]);
    assert_eq!(
        cold.detokenize(&t1, &token1.id, at(7)).await.expect("cold").pan.expose(),
        "4242424242424242"
    );
    // A second rotation right after works the same way.
    let again = cold.rotate(at(8)).await.expect("rotate again");
    assert_eq!(again.rewrapped, 6);
    assert_eq!(again.previous_master_key_ids, vec![report.new_master_key_id]);
}
