//! Payments end to end through the application core, on each backend: a call starts and is
//! answered, the agent opens a payment, the customer's 23 keys go to the capture, the agent
//! completes, and the card goes through the vault and the sandbox gateway to the store (with
//! its outbox event and two deliveries). Against a baseline measured in the same run: the
//! store's bare payment (`begin_payment` + `record_payment_result`, no call, no capture, no
//! vault, no gateway).
//!
//! Figures:
//! - `end to end`: one payment at a time (criterion);
//! - `N lanes`: N customers paying at once, each one payment after another, for the
//!   payments/s of the node and the p99 from the customer's last key to the result
//!   (`complete` is sent right after the last key, as an IVR does it; an agent adds their
//!   own reaction time);
//! - the baseline with the same N lanes.
//!
//! Two kinds of card, each measured:
//! - `succeeded`: the sandbox's succeeding test cards, in turn (a payment that succeeds, as
//!   most do; each card is seen many times, so the vault finds it by fingerprint);
//! - `new card`: a different Luhn-valid Visa number each time (repeat cards are the
//!   exception in real traffic): the sandbox refuses such numbers as live cards in test
//!   mode, so these payments end declined, after the same vault, gateway, result, event,
//!   deliveries and session work as a success.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p ivrpay-benches --bench service`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use ivrpay_card::{Currency, IdempotencyKey, Money, luhn_check_digit};
use ivrpay_dtmf::Digit;
use ivrpay_payments::RetryPolicy;
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_service::{IncomingCall, OpenPayment, Service, ServiceConfig, Status, SystemClock};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunPayment, CallId, CardSummary, NewPayment, NewSink, PaymentOutcome, SqliteDurability,
    Store, TenantId, Timestamp,
};
use ivrpay_vault::{MasterKeySource, Vault};

/// Customers paying at once, from a moderate load to a heavy one.
const LANES: [u64; 4] = [8, 16, 32, 64];
/// Payments each customer makes, one after another.
const PER_LANE: u64 = 40;

#[allow(clippy::disallowed_methods, reason = "a benchmark driver owns the clock")]
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

#[allow(clippy::disallowed_methods, reason = "a benchmark driver owns the clock")]
fn instant() -> Instant {
    Instant::now()
}

/// Cards the sandbox charges successfully (Stripe's test cards), with their security codes:
/// only brands a session accepts by default (Visa, Mastercard, Amex), or the capture asks
/// for the number again.
const SUCCEEDING: [(&str, &str); 6] = [
    ("4242424242424242", "123"),
    ("5555555555554444", "123"),
    ("378282246310005", "1234"),
    ("2223003122003222", "123"),
    ("371449635398431", "1234"),
    ("4000056655665556", "123"),
];

/// Which cards a run pays with.
#[derive(Clone, Copy)]
enum Cards {
    Succeeding,
    New,
}

impl Cards {
    /// The customer's keys for payment `i`: card number, expiry (12/30) and security code.
    fn keys(self, i: u64) -> (String, Status) {
        match self {
            Cards::Succeeding => {
                let (pan, cvv) = SUCCEEDING[i as usize % SUCCEEDING.len()];
                (format!("{pan}1230{cvv}"), Status::Succeeded)
            }
            Cards::New => (format!("{}1230737", new_card()), Status::Declined),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cards::Succeeding => "succeeded",
            Cards::New => "new card",
        }
    }
}

/// A different Luhn-valid Visa number each time.
fn new_card() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = NEXT.fetch_add(0x2545_f491_4f6c_dd1d, Ordering::Relaxed);
    let mut digits = vec![b'4'];
    while digits.len() < 15 {
        digits.push(b'0' + (x % 10) as u8);
        x /= 10;
    }
    digits.push(luhn_check_digit(&digits).expect("digits"));
    String::from_utf8(digits).expect("ascii")
}

struct Fixture {
    db: TestDatabase,
    service: Service,
    tenant: TenantId,
    _keys: tempfile::TempDir,
}

async fn fixture(name: &str) -> Fixture {
    let db = match name {
        "sqlite-full" => TestDatabase::sqlite_as_served(SqliteDurability::Full).await,
        "sqlite-normal" => TestDatabase::sqlite_as_served(SqliteDurability::Normal).await,
        _ => TestDatabase::postgres().await,
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let store = db.store().clone();
    let tenant = TenantId::parse("ten_bench").expect("id");
    store.ensure_tenant(&tenant, "bench", now()).await.expect("tenant");
    for kind in ["webhook", "ledger"] {
        let sink = NewSink {
            tenant_id: tenant.clone(),
            kind: kind.to_owned(),
            name: kind.to_owned(),
            event_types: vec!["*".to_owned()],
            config: serde_json::json!({}),
        };
        store.add_sink(&sink, now()).await.expect("sink");
    }
    let keys = tempfile::tempdir().expect("key dir");
    let vault = Vault::open(store.clone(), MasterKeySource::DataDir(keys.path().to_path_buf()))
        .expect("vault");
    let config = ServiceConfig {
        tenant: tenant.clone(),
        node: "bench".to_owned(),
        gateway_name: "sandbox".to_owned(),
        retry: RetryPolicy::default(),
        inter_digit_timeout: Duration::from_secs(30),
    };
    let service =
        Service::start(config, store, vault, Arc::new(Sandbox::new()), Arc::new(SystemClock))
            .await
            .expect("service");
    Fixture { db, service, tenant, _keys: keys }
}

/// Payment `i` on a new call; returns the time from the last key to the result.
async fn pay(service: &Service, cards: Cards, i: u64) -> Duration {
    let call = CallId::generate(now());
    service.call_started(IncomingCall {
        id: call.clone(),
        sip_call_id: format!("{}@bench", call.as_str()),
        profile: "default".to_owned(),
        caller: None,
        called: None,
        agent: None,
    });
    service.call_answered(&call, Some("agent-1".to_owned()));
    let request = OpenPayment {
        amount: Money::from_minor(1999, Currency::from_code("GBP").expect("GBP")),
        description: Some("bench".to_owned()),
        customer_ref: None,
        token_type: Default::default(),
        postal_code: false,
        accepted_brands: None,
        idempotency_key: IdempotencyKey::new(format!("bench-{}", call.as_str())).expect("key"),
        first_digit_timeout: None,
    };
    let view = service.open_payment(&call, request).await.expect("open");
    let (keys, expected) = cards.keys(i);
    for key in keys.chars() {
        service.digit(&call, Digit::from_char(key).expect("key"));
    }
    let last_key = instant();
    let done = service
        .complete(&view.id)
        .await
        .unwrap_or_else(|e| panic!("complete payment {i} ({}): {e:?}", cards.name()));
    let latency = last_key.elapsed();
    assert_eq!(done.status, expected, "{}", cards.name());
    service.call_ended(&call, "customer_hangup");
    latency
}

/// The baseline: the store's two commits of a payment, nothing else.
async fn bare_payment(store: &Store, tenant: &TenantId, key: &str) -> Duration {
    let start = instant();
    let new = NewPayment {
        tenant_id: tenant.clone(),
        idempotency_key: IdempotencyKey::new(key).expect("key"),
        amount: Money::from_minor(1999, Currency::from_code("GBP").expect("GBP")),
        description: None,
        session_id: None,
        call_id: None,
        token_id: None,
        card: Some(CardSummary::new("visa", "4242").expect("summary")),
        gateway: "sandbox".to_owned(),
    };
    let BegunPayment::Pending(pending) = store.begin_payment(&new, now()).await.expect("begin")
    else {
        panic!("a fresh key is pending");
    };
    let outcome = PaymentOutcome::Succeeded { gateway_ref: "pi_bench".to_owned() };
    store.record_payment_result(pending, &outcome, now()).await.expect("record");
    start.elapsed()
}

/// `lanes` lanes of `PER_LANE` operations; returns (operations/s, p99 latency).
async fn lanes<F, Fut>(lanes: u64, op: F) -> (f64, Duration)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Duration> + Send,
{
    let start = instant();
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..PER_LANE {
                latencies.push(op(lane * PER_LANE + i).await);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("lane"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / elapsed, all[all.len() * 99 / 100])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let mut summary = Vec::new();
    for name in ["sqlite-full", "sqlite-normal", "postgres"] {
        let f = runtime.block_on(fixture(name));
        let mut group = criterion.benchmark_group(format!("service/{name}"));
        for cards in [Cards::Succeeding, Cards::New] {
            let id = format!("end to end, {}: call, keys, complete", cards.name());
            let mut i = 0;
            group.bench_function(id, |b| {
                b.iter(|| {
                    i += 1;
                    runtime.block_on(pay(&f.service, cards, i))
                });
            });
        }
        group.finish();

        for n in LANES {
            let (store, tenant) = (f.db.store().clone(), f.tenant.clone());
            let (base_rate, base_p99) = runtime.block_on(lanes(n, move |i| {
                let (store, tenant) = (store.clone(), tenant.clone());
                async move { bare_payment(&store, &tenant, &format!("bare-{n}-{i}")).await }
            }));
            for cards in [Cards::Succeeding, Cards::New] {
                let service = f.service.clone();
                let (rate, p99) = runtime.block_on(lanes(n, move |i| {
                    let service = service.clone();
                    async move { pay(&service, cards, i).await }
                }));
                summary.push(format!(
                    "{name:>13}, {n:>2} lanes, {:>9}: end to end {rate:>5.0} payments/s, p99 last key to result {:>6.1} ms | baseline (the store's bare payment) {base_rate:>5.0}/s, p99 {:>5.1} ms | ratio {:.2}",
                    cards.name(),
                    p99.as_secs_f64() * 1000.0,
                    base_p99.as_secs_f64() * 1000.0,
                    rate / base_rate,
                ));
            }
        }
        runtime.block_on(f.service.wait_idle(Duration::from_secs(10)));
        runtime.block_on(f.db.cleanup()).expect("cleanup");
    }
    criterion.final_summary();
    for line in summary {
        println!("{line}");
    }
}
