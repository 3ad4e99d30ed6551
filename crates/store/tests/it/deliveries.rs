//! Claiming deliveries: leases, retries, dead letters, and disjoint concurrent claims.

use std::collections::HashSet;
use std::time::Duration;

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{DeliveryResult, EventType};

use crate::support::{at, sink, store, succeeded_payment, tenant, usd};

crate::on_both!(
    claim_lease_retry_and_dead_letter,
    concurrent_claimers_never_share_a_row,
    disabled_sinks_get_nothing_new,
);

const LEASE: Duration = Duration::from_secs(30);

async fn claim_lease_retry_and_dead_letter(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    sink(s, &t, "webhook", &["*"]).await;
    succeeded_payment(s, &t, "p1", usd(100)).await; // event committed at(2)

    assert!(
        s.claim_deliveries(at(1), LEASE, 10).await.expect("claim").is_empty(),
        "not due before the event"
    );
    let claimed = s.claim_deliveries(at(2), LEASE, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let d = &claimed[0];
    assert_eq!((d.attempts, d.event_type), (1, EventType::PaymentSucceeded));
    assert_eq!(d.payload["gateway_ref"], "pi_p1");
    // Leased: nobody else gets it until the lease runs out.
    assert!(s.claim_deliveries(at(3), LEASE, 10).await.expect("claim").is_empty());
    // The worker died; after the lease the row is due again, with a new attempt number.
    let later = at(2 + 30_000);
    let reclaimed = s.claim_deliveries(later, LEASE, 10).await.expect("claim");
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].attempts, 2);
    // The dead worker's late answer does not count.
    assert!(
        !s.finish_delivery(&d.id, 1, &DeliveryResult::Delivered { status: Some(200) }, later)
            .await
            .expect("finish")
    );

    let retry = DeliveryResult::Retry {
        next_attempt_at: at(100_000),
        error: "HTTP 503".to_owned(),
        status: Some(503),
    };
    assert!(s.finish_delivery(&d.id, 2, &retry, later).await.expect("finish"));
    let state = s.delivery_state(&d.id).await.expect("state");
    assert_eq!(
        (state.status.as_str(), state.attempts, state.next_attempt_at_ms),
        ("pending", 2, at(100_000).unix_ms())
    );
    assert!(s.claim_deliveries(at(99_999), LEASE, 10).await.expect("claim").is_empty());
    let third = s.claim_deliveries(at(100_000), LEASE, 10).await.expect("claim");
    assert_eq!(third[0].attempts, 3);
    let dead = DeliveryResult::Dead { error: "schedule exhausted".to_owned(), status: Some(500) };
    assert!(s.finish_delivery(&d.id, 3, &dead, at(100_001)).await.expect("finish"));
    assert_eq!(s.delivery_state(&d.id).await.expect("state").status, "dead");
    assert!(s.claim_deliveries(at(10_000_000), LEASE, 10).await.expect("claim").is_empty());
}

async fn concurrent_claimers_never_share_a_row(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    for kind in ["webhook", "crm", "receipt", "ledger"] {
        sink(s, &t, kind, &["*"]).await;
    }
    for i in 0..10 {
        succeeded_payment(s, &t, &format!("p{i}"), usd(100)).await;
    }
    // 40 deliveries, 4 workers claiming 3 at a time until nothing is left.
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        jobs.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..100 {
                let batch = s.claim_deliveries(at(5), LEASE, 3).await.expect("claim");
                if batch.is_empty() {
                    break;
                }
                for d in batch {
                    assert!(
                        s.finish_delivery(
                            &d.id,
                            d.attempts,
                            &DeliveryResult::Delivered { status: None },
                            at(6)
                        )
                        .await
                        .expect("finish")
                    );
                    mine.push(d.id);
                }
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for job in jobs {
        for id in job.await.expect("worker") {
            total += 1;
            assert!(seen.insert(id), "a delivery was claimed twice");
        }
    }
    assert_eq!(total, 40);
}

async fn disabled_sinks_get_nothing_new(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let crm = sink(s, &t, "crm", &["payment.succeeded"]).await;
    let first = succeeded_payment(s, &t, "p1", usd(100)).await;
    s.set_sink_enabled(&crm, false).await.expect("disable");
    succeeded_payment(s, &t, "p2", usd(100)).await;
    s.set_sink_enabled(&crm, true).await.expect("enable");
    succeeded_payment(s, &t, "p3", usd(100)).await;
    let claimed = s.claim_deliveries(at(10), LEASE, 10).await.expect("claim");
    let mut paid: Vec<(String, String)> = claimed
        .iter()
        .map(|d| {
            let key = d.payload["idempotency_key"].as_str().unwrap_or("").to_owned();
            let id = d.payload["id"].as_str().unwrap_or("").to_owned();
            (key, id)
        })
        .collect();
    paid.sort();
    assert_eq!(paid.len(), 2, "nothing was queued while the sink was disabled");
    assert_eq!(paid[0], ("p1".to_owned(), first.id.as_str().to_owned()));
    assert_eq!(paid[1].0, "p3");
    assert!(matches!(
        s.set_sink_enabled(&ivrpay_store::SinkId::random(), false).await,
        Err(ivrpay_store::StoreError::NotFound { .. })
    ));
}
