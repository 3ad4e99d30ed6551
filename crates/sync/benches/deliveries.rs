#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark prints its figures")]
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
//! Webhook deliveries per second through the real dispatcher (claim, sign, POST, record in
//! batches), to a receiver on loopback that answers at once, against a baseline measured in
//! the same run: the same receiver hit by a plain reqwest loop at the same concurrency (no
//! database, no signing). The figure that matters is the ratio: how much of what the HTTP
//! stack alone can do survives the outbox's durability.
//!
//! ```sh
//! cargo bench -p ivrpay-sync --bench deliveries        # DATABASE_URL adds PostgreSQL
//! ```
//!
//! Setup: 2,000 payments to 10 endpoints (20,000 deliveries) are committed before the clock
//! starts; the dispatcher then runs with 256 deliveries in flight (its default is 64: a
//! service delivers far fewer a second than a backlog drains).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunPayment, CardSummary, Currency, IdempotencyKey, Money, NewPayment, NewWebhookEndpoint,
    PaymentOutcome, Store, TenantId, Timestamp,
};
use ivrpay_sync::sinks::{SinkOptions, SinkSet};
use ivrpay_sync::{Clock, Dispatcher, DispatcherConfig, RetrySchedule, SyncMetrics, SystemClock};

const PAYMENTS: usize = 2_000;
const ENDPOINTS: usize = 10;
/// Deliveries in flight (and the baseline's concurrent requests); `IVRPAY_BENCH_CONCURRENCY`
/// overrides.
fn concurrency() -> usize {
    std::env::var("IVRPAY_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

async fn receiver() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicU64::new(0));
    let h = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        let h = Arc::clone(&h);
        async move {
            h.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

async fn baseline(url: &str, requests: usize) -> f64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().expect("client");
    let body = serde_json::to_vec(&serde_json::json!({"type": "payment.succeeded", "timestamp": "2026-01-01T00:00:00.000Z",
        "data": {"id": "pay_0123456789abcdefghjkmnpqrs", "amount_minor": 1250, "currency": "USD", "brand": "visa", "last4": "4242"}}))
    .expect("body");
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency() {
        let (client, body, next, url) =
            (client.clone(), body.clone(), Arc::clone(&next), url.to_owned());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests as u64 {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                assert!(r.is_ok_and(|r| r.status().is_success()));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    requests as f64 / start.elapsed().as_secs_f64()
}

async fn enqueue(store: &Store, url: &str) -> TenantId {
    let now = SystemClock.now();
    let tenant = TenantId::parse("ten_bench").expect("tenant");
    store.ensure_tenant(&tenant, "bench", now).await.expect("tenant");
    for i in 0..ENDPOINTS {
        let ep = NewWebhookEndpoint {
            tenant_id: tenant.clone(),
            url: format!("{url}/{i}"),
            event_types: vec!["*".to_owned()],
            description: format!("endpoint {i}"),
            secret: ivrpay_sync::signing::WebhookSecret::generate().to_text(),
        };
        store.add_webhook_endpoint(&ep, now).await.expect("endpoint");
    }
    for i in 0..PAYMENTS {
        let new = NewPayment {
            tenant_id: tenant.clone(),
            idempotency_key: IdempotencyKey::new(format!("bench-{i}")).expect("key"),
            amount: Money::from_minor(1250, Currency::USD),
            description: None,
            session_id: None,
            call_id: None,
            token_id: None,
            card: Some(CardSummary::new("visa", "4242").expect("card")),
            gateway: "sandbox".to_owned(),
        };
        let BegunPayment::Pending(p) = store.begin_payment(&new, now).await.expect("begin") else {
            panic!("new key")
        };
        let outcome = PaymentOutcome::Succeeded { gateway_ref: format!("ch_{i}") };
        store
            .record_payment_result(p, &outcome, Timestamp::from_unix_ms(now.unix_ms()))
            .await
            .expect("record");
    }
    tenant
}

async fn dispatch(store: &Store) -> f64 {
    let total = (PAYMENTS * ENDPOINTS) as u64;
    let metrics = Arc::new(SyncMetrics::default());
    let options = SinkOptions {
        allow_private_webhooks: true,
        timeout: Duration::from_secs(10),
        refresh: Duration::from_secs(60),
    };
    let sinks = Arc::new(SinkSet::new(store.clone(), options).expect("sinks"));
    let config = DispatcherConfig {
        concurrency: concurrency(),
        batch: 256,
        lease: Duration::from_secs(60),
        poll_interval: Duration::from_millis(10),
        schedule: RetrySchedule::standard(),
        alert_after: 4,
    };
    let start = Instant::now();
    let handle =
        Dispatcher::new(store.clone(), sinks, config, Arc::new(SystemClock), Arc::clone(&metrics))
            .spawn();
    let deadline = start + Duration::from_secs(300);
    while metrics.delivered.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    handle.stop(Duration::from_secs(10)).await;
    let delivered = metrics.delivered.load(Ordering::Relaxed);
    assert_eq!(delivered, total, "every delivery recorded as delivered");
    delivered as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (addr, hits) = receiver().await;
        let url = format!("http://{addr}/hooks");
        let total = PAYMENTS * ENDPOINTS;
        let base = baseline(&url, total).await;
        println!("baseline: plain reqwest loop, {} in flight: {base:.0} requests/s", concurrency());
        let mut backends = vec![("sqlite", TestDatabase::sqlite().await.expect("SQLite"))];
        match TestDatabase::postgres().await {
            Ok(db) => backends.push(("postgres", db)),
            Err(e) => println!("postgres: skipped ({e})"),
        }
        for (name, db) in backends {
            enqueue(db.store(), &url).await;
            let before = hits.load(Ordering::Relaxed);
            let rate = dispatch(db.store()).await;
            let sent = hits.load(Ordering::Relaxed) - before;
            println!(
                "dispatcher on {name}: {total} webhook deliveries ({sent} requests) at {rate:.0} deliveries/s = {:.2} x baseline (target >= 2000/s)",
                rate / base
            );
            db.cleanup().await.expect("cleanup");
        }
    });
}
