//! Faults: a receiver that answers 500, then times out, then refuses connections, then
//! recovers: every event arrives, one payment's events in order, duplicates only under the
//! same `webhook-id`. A receiver that never recovers: the alert after 4 failures (on the
//! feed, to the operator's endpoint, in the metrics), the dead letter, retry and replay.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ivrpay_store::EventType;
use ivrpay_store::testing::TestDatabase;
use ivrpay_sync::api::{self, CreateEndpoint, DeliveryQuery};
use ivrpay_sync::{RetrySchedule, SyncMetrics};

use crate::support::{Mode, Receiver, fast, now, refund, start, tenant, usd, wait_for};

crate::on_both!(every_event_arrives_through_faults, alert_dead_letter_retry_and_replay);

async fn endpoint(
    s: &ivrpay_store::Store,
    t: &ivrpay_store::TenantId,
    url: String,
    events: &[&str],
) -> String {
    let request = CreateEndpoint {
        url,
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        description: None,
    };
    api::create_webhook_endpoint(s, t, request, true, now()).await.expect("create").id
}

async fn every_event_arrives_through_faults(db: &TestDatabase) {
    let s = db.store();
    let t = tenant(s).await;
    let first = Receiver::start(Mode::Status(500)).await;
    let addr = first.addr;
    endpoint(s, &t, first.url("/hooks"), &["*"]).await;
    let mut config = fast();
    config.schedule = RetrySchedule::new(vec![Duration::from_millis(100); 40]);
    let metrics = Arc::new(SyncMetrics::default());
    let handle = start(s, config, Duration::from_millis(300), &metrics);
    // Ten payments, each refunded once: twenty events, two per payment in order.
    let mut payments = Vec::new();
    for i in 0..10 {
        let p = usd(s, &t, &format!("f{i}"), 1000 + i).await;
        refund(s, &p, &format!("f{i}-r"), 100).await;
        payments.push(p.id.to_string());
    }
    let events = s.events_since(&t, 0, 1000).await.expect("feed");
    assert_eq!(events.len(), 20);
    // 500s, then timeouts, then a closed port, then an answer at once.
    assert!(
        wait_for(Duration::from_secs(10), || async { first.received().len() >= 10 }).await,
        "500s answered"
    );
    first.set(Mode::Delay(Duration::from_secs(2)));
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = Receiver::start_on(addr, Mode::Ok).await;
    let all_ids: HashSet<String> = events.iter().map(|e| e.id.to_string()).collect();
    let arrived = wait_for(Duration::from_secs(30), || async {
        let got: HashSet<String> = second
            .accepted()
            .iter()
            .filter_map(|r| r.header("webhook-id").map(str::to_owned))
            .collect();
        got == all_ids
    })
    .await;
    handle.stop(Duration::from_secs(10)).await;
    assert!(arrived, "every event arrived after the receiver recovered");
    let all: Vec<_> = first.received().into_iter().chain(second.received()).collect();
    assert!(all.iter().any(|r| r.answered == 500), "the 500 phase was exercised");
    assert!(all.iter().any(|r| r.answered == 200 && r.path == "/hooks"));
    // Duplicates only under the same webhook-id, with the same body.
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    for r in &all {
        let id = r.header("webhook-id").expect("webhook-id").to_owned();
        assert!(all_ids.contains(&id));
        let body = bodies.entry(id).or_insert_with(|| r.body.clone());
        assert_eq!(body, &r.body, "a redelivery carries the same body");
    }
    // One payment's refund was first attempted only after its payment event was delivered.
    for p in &payments {
        let about = |e: &&ivrpay_store::EventRecord| {
            e.subject_id == *p || e.payload["payment_id"].as_str() == Some(p.as_str())
        };
        let mine: Vec<_> = events.iter().filter(about).collect();
        assert_eq!(mine.len(), 2);
        let attempts = |event: &ivrpay_store::EventId| {
            let event = event.clone();
            async move {
                let (delivery, _) = s.deliveries_of(&event).await.expect("deliveries").remove(0);
                s.attempts_of(&delivery).await.expect("attempts")
            }
        };
        let paid = attempts(&mine[0].id).await;
        let refunded = attempts(&mine[1].id).await;
        let delivered_at =
            paid.iter().find(|a| a.outcome == "delivered").expect("payment delivered").ended_at_ms;
        assert!(
            refunded.iter().all(|a| a.started_at_ms >= delivered_at),
            "payment {p} before its refund"
        );
    }
    let failed = metrics.failed_attempts.load(Ordering::Relaxed);
    println!(
        "faults: {} requests for 20 events, {failed} failed attempts, {} alerts",
        all.len(),
        metrics.alerts.load(Ordering::Relaxed)
    );
    second.stop();
}

async fn alert_dead_letter_retry_and_replay(db: &TestDatabase) {
    let s = db.store();
    let t = tenant(s).await;
    let broken = Receiver::start(Mode::Status(503)).await;
    let ops = Receiver::start(Mode::Ok).await;
    let sink = endpoint(s, &t, broken.url("/hooks"), &["payment.succeeded"]).await;
    endpoint(s, &t, ops.url("/ops"), &["delivery.failing"]).await;
    let mut config = fast();
    config.schedule = RetrySchedule::new(vec![Duration::from_millis(50); 5]); // 6 attempts
    let metrics = Arc::new(SyncMetrics::default());
    let handle = start(s, config, Duration::from_secs(2), &metrics);
    usd(s, &t, "dead1", 100).await;
    let failed = DeliveryQuery { status: Some("failed".to_owned()), ..Default::default() };
    assert!(
        wait_for(Duration::from_secs(15), || async {
            api::list_deliveries(s, &t, &failed).await.expect("list").len() == 1
        })
        .await,
        "dead-lettered"
    );
    let dead = api::list_deliveries(s, &t, &failed).await.expect("list").remove(0);
    assert_eq!(
        (dead.attempts, dead.last_status, dead.last_error.as_deref()),
        (6, Some(503), Some("HTTP 503"))
    );
    let detail = api::get_delivery(s, &t, &dead.id).await.expect("detail");
    let log = detail.attempt_log.expect("attempts");
    let outcomes: Vec<_> = log.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "failed", "failed", "failed", "failed", "dead"]);
    assert_eq!(
        log[0].response_body.as_deref(),
        Some("thanks"),
        "the answer's first bytes are kept"
    );
    assert_eq!(broken.received().len(), 6);
    // The alert: once, after the 4th failure, on the feed and to the operator's endpoint.
    let feed = s.events_since(&t, 0, 100).await.expect("feed");
    let alerts: Vec<_> =
        feed.iter().filter(|e| e.event_type == EventType::DeliveryFailing).collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].payload["delivery_id"].as_str(), alerts[0].payload["attempts"].as_i64()),
        (Some(dead.id.as_str()), Some(4))
    );
    assert!(
        wait_for(Duration::from_secs(5), || async { ops.accepted().len() == 1 }).await,
        "the operator is told"
    );
    assert_eq!(ops.accepted()[0].json()["type"], "delivery.failing");
    assert_eq!(metrics.alerts.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.dead_lettered.load(Ordering::Relaxed), 1);
    assert!(
        ivrpay_sync::SyncMetrics::render(&metrics)
            .contains("ivrpay_sync_delivery_failing_alerts_total 1"),
        "the alert is a metric"
    );

    // Retry one: the receiver is back.
    broken.set(Mode::Ok);
    let retried = api::retry_delivery(s, &t, &dead.id, now()).await.expect("retry");
    assert_eq!((retried.status.as_str(), retried.attempts), ("pending", 0));
    assert!(
        wait_for(Duration::from_secs(10), || async { broken.accepted().len() == 1 }).await,
        "retried"
    );
    // Replay all failed since a time: two more dead letters, then one replay.
    broken.set(Mode::Status(500));
    let since = now();
    usd(s, &t, "dead2", 200).await;
    usd(s, &t, "dead3", 300).await;
    assert!(
        wait_for(Duration::from_secs(15), || async {
            api::list_deliveries(s, &t, &failed).await.expect("list").len() == 2
        })
        .await
    );
    broken.set(Mode::Ok);
    let replay = api::ReplayRequest { sink: sink.clone(), since: since.unix_ms().to_string() };
    let replayed = api::replay_failed(s, &t, &replay, now()).await.expect("replay");
    assert_eq!(replayed["replayed"], 2);
    assert!(
        wait_for(Duration::from_secs(10), || async { broken.accepted().len() == 3 }).await,
        "replayed"
    );
    handle.stop(Duration::from_secs(5)).await;
    let delivered = DeliveryQuery {
        status: Some("delivered".to_owned()),
        sink: Some(sink),
        ..Default::default()
    };
    assert_eq!(api::list_deliveries(s, &t, &delivered).await.expect("list").len(), 3);
    broken.stop();
    ops.stop();
}
