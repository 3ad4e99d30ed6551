//! Payments: the result and its events commit together or not at all.

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BackendKind, BegunPayment, CallId, Currency, DataKeyId, DataKeyRow, EventType, KeyPurpose,
    Money, PaymentOutcome, PaymentStatus, StoreError, TenantId, TokenId, TokenRow,
};

use crate::support::{at, begin_pending, new_payment, sink, store, tenant, usd};

crate::on_both!(
    result_event_and_deliveries_commit_together,
    same_key_resumes_then_replays,
    failed_commit_leaves_the_payment_pending_and_no_event,
    racing_results_give_one_event,
    declines_and_failures_are_final,
    a_payment_and_its_token_commit_together,
);

async fn result_event_and_deliveries_commit_together(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let all = sink(s, &t, "webhook", &["*"]).await;
    let _refunds_only = sink(s, &t, "ledger", &["refund.succeeded"]).await;
    let payments = sink(s, &t, "crm", &["payment.succeeded", "payment.declined"]).await;

    let pending = begin_pending(s, &new_payment(&t, "order-1", usd(1999)), at(10)).await;
    assert!(!pending.resumed());
    assert_eq!(pending.gateway_idempotency_key(), pending.id().as_str());
    assert_eq!(pending.record().status, PaymentStatus::Pending);
    // Nothing is announced before the result.
    assert!(s.events_since(&t, 0, 10).await.expect("feed").is_empty());

    let id = pending.id().clone();
    let outcome = PaymentOutcome::Succeeded { gateway_ref: "pi_123".to_owned() };
    let record = s.record_payment_result(pending, &outcome, at(20)).await.expect("record");
    assert_eq!(record.id, id);
    assert_eq!(record.status, PaymentStatus::Succeeded);
    assert_eq!(record.gateway_ref.as_deref(), Some("pi_123"));
    assert_eq!(record.amount(), usd(1999));
    assert_eq!(record.updated_at, at(20));

    let events = s.events_since(&t, 0, 10).await.expect("feed");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!((event.seq, event.event_type), (1, EventType::PaymentSucceeded));
    assert_eq!(event.subject_id, id.as_str());
    assert_eq!(event.payload["status"], "succeeded");
    assert_eq!(event.payload["amount_minor"], 1999);
    assert_eq!(event.payload["currency"], "USD");
    assert_eq!(event.payload["last4"], "4242");

    let deliveries = s.deliveries_of(&event.id).await.expect("deliveries");
    let mut sinks: Vec<_> = deliveries.into_iter().map(|(_, sink)| sink).collect();
    sinks.sort();
    let mut expected = vec![all, payments];
    expected.sort();
    assert_eq!(sinks, expected, "one delivery per subscribed sink, none for the others");
}

async fn same_key_resumes_then_replays(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let other = tenant(s, "globex").await;
    let new = new_payment(&t, "order-7", usd(500));

    let first = begin_pending(s, &new, at(1)).await;
    // The process "dies" here: the first handle is lost; a retry resumes the same attempt.
    let id = first.id().clone();
    drop(first);
    let again = begin_pending(s, &new, at(5)).await;
    assert!(again.resumed());
    assert_eq!(again.id(), &id);
    assert_eq!(again.gateway_idempotency_key(), id.as_str());

    s.record_payment_result(
        again,
        &PaymentOutcome::Succeeded { gateway_ref: "pi_7".to_owned() },
        at(6),
    )
    .await
    .expect("record");
    match s.begin_payment(&new, at(7)).await.expect("begin") {
        BegunPayment::Finished(record) => {
            assert_eq!(record.id, id);
            assert_eq!(record.status, PaymentStatus::Succeeded);
        }
        BegunPayment::Pending(_) => panic!("a finished payment must not be attempted again"),
    }

    // The same key with another amount or currency is the client's error.
    let mut changed = new.clone();
    changed.amount = usd(501);
    assert!(matches!(
        s.begin_payment(&changed, at(8)).await,
        Err(StoreError::IdempotencyConflict { kind: "payment" })
    ));
    changed.amount = Money::from_minor(500, Currency::EUR);
    assert!(matches!(
        s.begin_payment(&changed, at(8)).await,
        Err(StoreError::IdempotencyConflict { .. })
    ));

    // Keys are per tenant.
    let theirs = begin_pending(s, &new_payment(&other, "order-7", usd(500)), at(9)).await;
    assert_ne!(theirs.id(), &id);
    assert!(!theirs.resumed());
    assert_eq!(
        s.payment_by_key(&t, &new.idempotency_key).await.expect("by key").map(|p| p.id),
        Some(id)
    );
    drop(theirs);
}

/// Installs a trigger that makes every delivery insert fail, on either dialect.
async fn break_deliveries(db: &TestDatabase) {
    match db.kind() {
        BackendKind::Sqlite => {
            db.exec(
                "CREATE TRIGGER break_deliveries BEFORE INSERT ON deliveries
                 BEGIN SELECT RAISE(ABORT, 'deliveries are broken'); END",
            )
            .await
            .expect("trigger");
        }
        _ => {
            db.exec(
                "CREATE FUNCTION break_deliveries() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'deliveries are broken'; END; $$",
            )
            .await
            .expect("function");
            db.exec(
                "CREATE TRIGGER break_deliveries BEFORE INSERT ON deliveries
                 FOR EACH ROW EXECUTE FUNCTION break_deliveries()",
            )
            .await
            .expect("trigger");
        }
    }
}

async fn failed_commit_leaves_the_payment_pending_and_no_event(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    sink(s, &t, "webhook", &["*"]).await;
    let new = new_payment(&t, "order-9", usd(700));
    let pending = begin_pending(s, &new, at(1)).await;
    let id = pending.id().clone();

    break_deliveries(db).await;
    let outcome = PaymentOutcome::Succeeded { gateway_ref: "pi_9".to_owned() };
    let err = s
        .record_payment_result(pending, &outcome, at(2))
        .await
        .expect_err("the delivery insert fails");
    assert!(err.to_string().contains("deliveries are broken"), "{err}");

    // Neither the result nor the event was kept: the whole transaction rolled back.
    assert_eq!(s.payment(&t, &id).await.expect("payment").status, PaymentStatus::Pending);
    assert!(s.events_since(&t, 0, 10).await.expect("feed").is_empty());

    let drop = match db.kind() {
        BackendKind::Sqlite => "DROP TRIGGER break_deliveries",
        _ => "DROP TRIGGER break_deliveries ON deliveries",
    };
    db.exec(drop).await.expect("drop trigger");
    // The retry resumes the attempt and records it once, with seq 1 (no gap was burnt).
    let again = begin_pending(s, &new, at(3)).await;
    assert!(again.resumed());
    s.record_payment_result(again, &outcome, at(4)).await.expect("record");
    let events = s.events_since(&t, 0, 10).await.expect("feed");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(s.deliveries_of(&events[0].id).await.expect("deliveries").len(), 1);
}

async fn racing_results_give_one_event(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let new = new_payment(&t, "order-race", usd(100));
    let a = begin_pending(s, &new, at(1)).await;
    let b = begin_pending(s, &new, at(1)).await;
    let (s1, s2) = (s.clone(), s.clone());
    let ok = PaymentOutcome::Succeeded { gateway_ref: "pi_r".to_owned() };
    let declined = PaymentOutcome::Declined {
        gateway_ref: None,
        code: "card_declined".to_owned(),
        message: None,
    };
    let ja = tokio::spawn(async move { s1.record_payment_result(a, &ok, at(2)).await });
    let jb = tokio::spawn(async move { s2.record_payment_result(b, &declined, at(2)).await });
    let ra = ja.await.expect("join").expect("record a");
    let rb = jb.await.expect("join").expect("record b");
    assert_eq!(ra, rb, "both callers see the result that won");
    assert_eq!(s.events_since(&t, 0, 10).await.expect("feed").len(), 1);
}

async fn declines_and_failures_are_final(db: &TestDatabase) {
    let s = store(db);
    let t: TenantId = tenant(s, "acme").await;
    let declined = begin_pending(s, &new_payment(&t, "d", usd(100)), at(1)).await;
    let outcome = PaymentOutcome::Declined {
        gateway_ref: Some("pi_d".to_owned()),
        code: "insufficient_funds".to_owned(),
        message: Some("Your card has insufficient funds.".to_owned()),
    };
    let record = s.record_payment_result(declined, &outcome, at(2)).await.expect("record");
    assert_eq!(record.status, PaymentStatus::Declined);
    assert_eq!(record.error_code.as_deref(), Some("insufficient_funds"));

    let failed = begin_pending(s, &new_payment(&t, "f", usd(100)), at(3)).await;
    let outcome = PaymentOutcome::Failed {
        gateway_ref: None,
        code: "invalid_request".to_owned(),
        message: None,
    };
    assert_eq!(
        s.record_payment_result(failed, &outcome, at(4)).await.expect("record").status,
        PaymentStatus::Failed
    );

    let types: Vec<_> =
        s.events_since(&t, 0, 10).await.expect("feed").into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, vec![EventType::PaymentDeclined, EventType::PaymentFailed]);
    assert!(matches!(
        s.begin_payment(&new_payment(&t, "d", usd(100)), at(5)).await.expect("begin"),
        BegunPayment::Finished(_)
    ));
}

/// The card's token and the attempt that uses it: written together, or (when the token
/// cannot be written) neither.
async fn a_payment_and_its_token_commit_together(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let key = DataKeyRow {
        id: DataKeyId::generate(at(0)),
        tenant_id: t.clone(),
        purpose: KeyPurpose::Pan,
        master_key_id: "mk_a".to_owned(),
        wrapped_key: b"wrapped".to_vec(),
        active: true,
        created_at: at(0),
    };
    let key = s.insert_data_key_if_absent(&key).await.expect("data key");
    let token = |id: TokenId| TokenRow {
        id,
        tenant_id: t.clone(),
        data_key_id: key.id.clone(),
        pan_ciphertext: vec![7; 44],
        fingerprint: vec![1; 32],
        brand: "visa".to_owned(),
        last4: "4242".to_owned(),
        exp_month: 12,
        exp_year: 2030,
        token_type: "one_time".to_owned(),
        created_at: at(1),
        expires_at_ms: None,
        used_at_ms: None,
    };
    let first = token(TokenId::random());
    let new = ivrpay_store::NewPayment {
        token_id: Some(first.id.clone()),
        ..new_payment(&t, "with-token", usd(1999))
    };
    let BegunPayment::Pending(pending) =
        s.begin_payment_with_token(&new, &first, at(2)).await.expect("begin")
    else {
        panic!("a fresh key is pending")
    };
    assert_eq!(pending.record().token_id.as_ref(), Some(&first.id));
    assert_eq!(s.token(&t, &first.id).await.expect("token"), Some(first.clone()));

    // A token that cannot be written (its id is taken) takes the attempt down with it.
    let clash = ivrpay_store::NewPayment {
        token_id: Some(first.id.clone()),
        ..new_payment(&t, "clashing-token", usd(500))
    };
    assert!(s.begin_payment_with_token(&clash, &first, at(3)).await.is_err());
    let fresh = new_payment(&t, "clashing-token", usd(500));
    let BegunPayment::Pending(later) = s.begin_payment(&fresh, at(4)).await.expect("begin") else {
        panic!("nothing was written under the key")
    };
    assert!(!later.resumed(), "the failed attempt left no payment behind");

    // An attempt that cannot be written (its call does not exist) takes its token with it.
    let orphan = token(TokenId::random());
    let no_call = ivrpay_store::NewPayment {
        token_id: Some(orphan.id.clone()),
        call_id: Some(CallId::generate(at(5))),
        ..new_payment(&t, "no-such-call", usd(500))
    };
    assert!(s.begin_payment_with_token(&no_call, &orphan, at(5)).await.is_err());
    assert_eq!(s.token(&t, &orphan.id).await.expect("token"), None, "one transaction");
}

/// On SQLite a write runs on the store's writer thread and finishes there even when its
/// caller stops waiting (a dropped API request, say): a gateway's answer is recorded whole,
/// result and event, not cut off between two statements and left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_whose_caller_stopped_waiting_is_still_recorded_on_sqlite() {
    let db = TestDatabase::sqlite().await.expect("SQLite fixture");
    let s = store(&db);
    let t = tenant(s, "acme").await;
    let pending = begin_pending(s, &new_payment(&t, "dropped-caller", usd(500)), at(1)).await;
    let id = pending.id().clone();
    let outcome = PaymentOutcome::Succeeded { gateway_ref: "pi_dropped".to_owned() };
    // Polled once (which hands the write over), then dropped.
    let mut write = Box::pin(s.record_payment_result(pending, &outcome, at(2)));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the write takes more than one poll");
    drop(write);
    let mut status = PaymentStatus::Pending;
    for _ in 0..500 {
        status = s.payment(&t, &id).await.expect("payment").status;
        if status != PaymentStatus::Pending {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, PaymentStatus::Succeeded);
    let events = s.events_since(&t, 0, 10).await.expect("feed");
    assert!(
        events
            .iter()
            .any(|e| e.event_type == EventType::PaymentSucceeded && e.subject_id == id.as_str()),
        "the result's event committed with it: {events:?}"
    );
    db.cleanup().await.expect("cleanup");
}
