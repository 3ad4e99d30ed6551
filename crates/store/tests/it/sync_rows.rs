//! What the downstream sync needs from the store: per-payment order in claims, attempts with
//! alerts, retry and replay, webhook endpoints and secrets, the journal, the settlement reads.

use std::time::Duration;

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunRefund, DeliveryFilter, DeliveryResult, EventType, FinishedAttempt, NewLedgerEntry,
    NewLedgerLine, NewRefund, NewWebhookEndpoint, RefundOutcome, StoreError,
};

use crate::support::{at, key, sink, store, succeeded_payment, tenant, usd};

crate::on_both!(
    one_payment_waits_behind_its_earlier_event,
    attempts_alerts_retry_and_replay,
    webhook_endpoints_and_secret_rotation,
    journal_entries_balance_and_post_once,
    settlement_reads_by_event_time,
);

const LEASE: Duration = Duration::from_secs(30);

fn delivered() -> DeliveryResult {
    DeliveryResult::Delivered { status: Some(200) }
}

async fn refund(
    s: &ivrpay_store::Store,
    t: &ivrpay_store::TenantId,
    payment: &ivrpay_store::PaymentId,
    k: &str,
    minor: u64,
    now: i64,
) -> ivrpay_store::RefundRecord {
    let new = NewRefund {
        tenant_id: t.clone(),
        payment_id: payment.clone(),
        idempotency_key: key(k),
        amount: usd(minor),
        reason: None,
    };
    let BegunRefund::Pending(pending) = s.begin_refund(&new, at(now)).await.expect("begin") else {
        panic!("refund finished already")
    };
    let outcome = RefundOutcome::Succeeded { gateway_ref: format!("re_{k}") };
    s.record_refund_result(pending, &outcome, at(now + 1)).await.expect("record")
}

async fn one_payment_waits_behind_its_earlier_event(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let hook = sink(s, &t, "webhook", &["*"]).await;
    let p1 = succeeded_payment(s, &t, "p1", usd(500)).await;
    refund(s, &t, &p1.id, "r1", 100, 10).await;
    succeeded_payment(s, &t, "p2", usd(700)).await;
    // The payment event of p1 and of p2 are claimable; p1's refund waits behind p1's payment.
    let first = s.claim_deliveries(at(100), LEASE, 10).await.expect("claim");
    let types: Vec<_> = first.iter().map(|d| d.event_type).collect();
    assert_eq!(types, [EventType::PaymentSucceeded, EventType::PaymentSucceeded]);
    // p1's payment fails and is rescheduled: the refund still waits.
    let p1_delivery = first.iter().find(|d| d.payload["id"] == p1.id.as_str()).expect("p1");
    let retry = DeliveryResult::Retry {
        next_attempt_at: at(1_000),
        error: "HTTP 500".to_owned(),
        status: Some(500),
    };
    assert!(s.finish_delivery(&p1_delivery.id, 1, &retry, at(101)).await.expect("finish"));
    assert!(s.claim_deliveries(at(200), LEASE, 10).await.expect("claim").is_empty());
    let again = s.claim_deliveries(at(1_000), LEASE, 10).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert!(s.finish_delivery(&again[0].id, 2, &delivered(), at(1_001)).await.expect("finish"));
    let refund_claim = s.claim_deliveries(at(1_002), LEASE, 10).await.expect("claim");
    assert_eq!(refund_claim.len(), 1);
    assert_eq!(refund_claim[0].event_type, EventType::RefundSucceeded);
    assert_eq!(refund_claim[0].sink_id, hook);
}

async fn attempts_alerts_retry_and_replay(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let hook = sink(s, &t, "webhook", &["*"]).await;
    let ops = sink(s, &t, "webhook", &["delivery.failing"]).await;
    succeeded_payment(s, &t, "p1", usd(500)).await;
    let claimed = s.claim_deliveries(at(10), LEASE, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1, "the ops sink gets no payment events");
    let d = &claimed[0];
    let failed = FinishedAttempt {
        delivery_id: d.id.clone(),
        tenant_id: t.clone(),
        attempt: 1,
        result: DeliveryResult::Dead { error: "HTTP 500".to_owned(), status: Some(500) },
        response_body: Some("oops".to_owned()),
        started_at: at(10),
        ended_at: at(11),
        alert: Some(serde_json::json!({ "delivery_id": d.id.as_str(), "attempts": 1 })),
    };
    let stale = FinishedAttempt { attempt: 7, alert: None, ..failed.clone() };
    assert_eq!(s.record_attempts(&[failed, stale]).await.expect("record"), [true, false]);
    let attempts = s.attempts_of(&d.id).await.expect("attempts");
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["dead", "late"]);
    assert_eq!(attempts[0].response_body.as_deref(), Some("oops"));
    // The alert is on the feed and goes only to the sink that names it.
    let feed = s.events_since(&t, 0, 100).await.expect("feed");
    let alert = feed.iter().find(|e| e.event_type == EventType::DeliveryFailing).expect("alert");
    assert_eq!(alert.subject_id, d.id.as_str());
    let alert_deliveries = s.deliveries_of(&alert.id).await.expect("deliveries");
    assert_eq!(alert_deliveries.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(), [ops]);

    let dead = DeliveryFilter { status: Some("dead".to_owned()), limit: 10, ..Default::default() };
    assert_eq!(s.list_deliveries(&t, &dead).await.expect("list").len(), 1);
    let retried = s.retry_delivery(Some(&t), &d.id, at(20)).await.expect("retry");
    assert_eq!((retried.status.as_str(), retried.attempts), ("pending", 0));
    let other = tenant(s, "other").await;
    assert!(matches!(
        s.retry_delivery(Some(&other), &d.id, at(20)).await,
        Err(StoreError::NotFound { .. })
    ));
    let again = s.claim_deliveries(at(20), LEASE, 10).await.expect("claim");
    let mine: Vec<_> = again.iter().filter(|c| c.id == d.id).collect();
    assert_eq!(mine.len(), 1);
    assert!(matches!(
        s.retry_delivery(None, &d.id, at(21)).await,
        Err(StoreError::InvalidState { .. })
    ));
    let dead_again = DeliveryResult::Dead { error: "HTTP 500".to_owned(), status: Some(500) };
    assert!(s.finish_delivery(&d.id, 1, &dead_again, at(22)).await.expect("finish"));
    assert_eq!(s.replay_failed(None, &hook, at(0), at(30)).await.expect("replay"), 1);
    assert_eq!(s.replay_failed(None, &hook, at(1_000), at(30)).await.expect("replay"), 0);
    assert_eq!(s.delivery(None, &d.id).await.expect("delivery").status, "pending");
}

async fn webhook_endpoints_and_secret_rotation(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let new = NewWebhookEndpoint {
        tenant_id: t.clone(),
        url: "https://example.com/hook".to_owned(),
        event_types: vec!["payment.succeeded".to_owned()],
        description: "orders".to_owned(),
        secret: "whsec_first".to_owned(),
    };
    let id = s.add_webhook_endpoint(&new, at(0)).await.expect("add");
    let ep = s.webhook_endpoint(&id, at(1)).await.expect("endpoint");
    assert_eq!((ep.url.as_str(), ep.sink.kind.as_str()), ("https://example.com/hook", "webhook"));
    assert_eq!(ep.secrets.len(), 1);
    assert!(!format!("{ep:?}").contains("whsec_first"), "Debug hides secrets");
    s.rotate_webhook_secret(&id, "whsec_second", at(1_000), at(10)).await.expect("rotate");
    let during: Vec<_> = s.webhook_endpoint(&id, at(500)).await.expect("ep").secrets;
    assert_eq!(
        during.iter().map(|x| x.secret.as_str()).collect::<Vec<_>>(),
        ["whsec_second", "whsec_first"]
    );
    let after = s.webhook_endpoint(&id, at(1_000)).await.expect("ep").secrets;
    assert_eq!(after.len(), 1);
    succeeded_payment(s, &t, "p1", usd(100)).await;
    assert_eq!(s.webhook_endpoints(&t, at(3)).await.expect("list").len(), 1);
    assert!(s.delete_webhook_endpoint(&t, &id, at(4)).await.expect("delete"));
    assert!(!s.delete_webhook_endpoint(&t, &id, at(5)).await.expect("delete again"));
    assert!(s.webhook_endpoints(&t, at(6)).await.expect("list").is_empty());
    let all = DeliveryFilter { limit: 10, ..Default::default() };
    let rows = s.list_deliveries(&t, &all).await.expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].last_error.as_deref()),
        ("dead", Some("endpoint deleted"))
    );
    assert!(s.claim_deliveries(at(100), LEASE, 10).await.expect("claim").is_empty());
}

async fn journal_entries_balance_and_post_once(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let p = succeeded_payment(s, &t, "p1", usd(500)).await;
    let event = s.events_since(&t, 0, 10).await.expect("feed").remove(0);
    let line = |account: &str, debit: i64, credit: i64| NewLedgerLine {
        account: account.to_owned(),
        debit_minor: debit,
        credit_minor: credit,
    };
    let mut entry = NewLedgerEntry {
        tenant_id: t.clone(),
        event_id: event.id.clone(),
        payment_id: Some(p.id.clone()),
        currency: "USD".to_owned(),
        posted_at: at(5),
        lines: vec![line("1200 Card clearing", 500, 0), line("1100 Accounts receivable", 0, 499)],
    };
    assert!(matches!(s.post_ledger_entry(&entry).await, Err(StoreError::InvalidState { .. })));
    entry.lines[1].credit_minor = 500;
    assert!(s.post_ledger_entry(&entry).await.expect("post"));
    assert!(!s.post_ledger_entry(&entry).await.expect("post again"));
    let lines = s.ledger_lines(&t, at(0), at(10)).await.expect("lines");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines.iter().map(|l| l.debit_minor).sum::<i64>(), 500);
    assert_eq!(lines.iter().map(|l| l.credit_minor).sum::<i64>(), 500);
}

async fn settlement_reads_by_event_time(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let p1 = succeeded_payment(s, &t, "p1", usd(500)).await; // captured at(2)
    refund(s, &t, &p1.id, "r1", 200, 50).await; // refunded at(51)
    let pays = s.settled_payments(&t, at(0), at(10)).await.expect("payments");
    assert_eq!(pays.len(), 1);
    assert_eq!((pays[0].amount_minor, pays[0].brand.as_deref()), (500, Some("visa")));
    assert!(s.settled_refunds(&t, at(0), at(10)).await.expect("refunds").is_empty());
    let refunds = s.settled_refunds(&t, at(10), at(100)).await.expect("refunds");
    assert_eq!((refunds[0].amount_minor, refunds[0].last4.as_deref()), (200, Some("4242")));
    assert!(s.settled_payments(&t, at(10), at(100)).await.expect("payments").is_empty());
}
