//! The store and the vault on each backend, against the cost of committing one row there.
//!
//! Backends: SQLite with `synchronous=FULL` (the default: a power cut loses nothing) and
//! `NORMAL` (synced at checkpoints), both in WAL mode in a temporary directory, and
//! PostgreSQL on a fresh schema of `DATABASE_URL`.
//!
//! Operations, each timed by criterion and then summarised as a rate and a ratio to the
//! *baseline* (one autocommit insert of one row, the floor of any durable write there):
//! - `payment`: `begin_payment` + `record_payment_result` with its outbox event and two
//!   deliveries (two transactions: the attempt is durable before the gateway call);
//! - `tokenize`: fingerprint, encrypt, insert (keys cached, as in a running node);
//! - `detokenize`: read and decrypt;
//! - `payments/s, 8 concurrent`: 8 tasks on a 2-worker runtime, each doing tokenize +
//!   payment, with the p99 of one payment's two commits (the last-digit-to-result budget).
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p ivrpay-benches --bench store`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ivrpay_card::{Currency, Expiry, IdempotencyKey, Money, Pan, TokenType};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunPayment, CardSummary, NewPayment, NewSink, PaymentOutcome, SqliteDurability, Store,
    TenantId, Timestamp,
};
use ivrpay_vault::{MasterKeySource, Vault};

struct Fixture {
    db: TestDatabase,
    vault: Arc<Vault>,
    tenant: TenantId,
    _keys: tempfile::TempDir,
}

#[allow(clippy::disallowed_methods, reason = "a benchmark driver owns the clock")]
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

#[allow(clippy::disallowed_methods, reason = "a benchmark driver owns the clock")]
fn instant() -> Instant {
    Instant::now()
}

async fn fixture(name: &'static str) -> Fixture {
    let db = match name {
        "sqlite-full" => TestDatabase::sqlite_as_served(SqliteDurability::Full).await,
        "sqlite-normal" => TestDatabase::sqlite_as_served(SqliteDurability::Normal).await,
        _ => TestDatabase::postgres().await,
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let keys = tempfile::tempdir().expect("key dir");
    let vault = Arc::new(
        Vault::open(db.store().clone(), MasterKeySource::DataDir(keys.path().to_path_buf()))
            .expect("vault"),
    );
    let tenant = TenantId::parse("ten_bench").expect("id");
    let store = db.store();
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
    Fixture { db, vault, tenant, _keys: keys }
}

/// A different Luhn-valid Visa number on every call (repeat cards are the exception in real
/// traffic; one card tokenized thousands of times would measure the fingerprint index).
fn pan() -> Pan {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    let mut digits = vec![b'4'];
    for _ in 0..14 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        digits.push(b'0' + (x % 10) as u8);
    }
    digits.push(ivrpay_card::luhn_check_digit(&digits).expect("digits"));
    Pan::from_ascii(&digits).expect("pan")
}

fn expiry() -> Expiry {
    Expiry::new(12, 2030).expect("expiry")
}

async fn baseline(store: &Store, i: u64) {
    store
        .audit(None, "bench", "baseline", None, &serde_json::json!({ "i": i }), now())
        .await
        .expect("insert");
}

async fn payment(store: &Store, tenant: &TenantId, key: &str) {
    let new = NewPayment {
        tenant_id: tenant.clone(),
        idempotency_key: IdempotencyKey::new(key).expect("key"),
        amount: Money::from_minor(1999, Currency::USD),
        description: None,
        session_id: None,
        call_id: None,
        token_id: None,
        card: Some(CardSummary::new("visa", "4242").expect("summary")),
        gateway: "sandbox".to_owned(),
    };
    let BegunPayment::Pending(pending) = store.begin_payment(&new, now()).await.expect("begin")
    else {
        panic!("fresh key must be pending");
    };
    let outcome = PaymentOutcome::Succeeded { gateway_ref: "pi_bench".to_owned() };
    black_box(store.record_payment_result(pending, &outcome, now()).await.expect("record"));
}

/// Average seconds per operation over `n` sequential runs of `op`.
async fn per_op<F, Fut>(n: u64, mut op: F) -> f64
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = instant();
    for i in 0..n {
        op(i).await;
    }
    start.elapsed().as_secs_f64() / n as f64
}

/// 8 tasks, each `per_task` times tokenize + payment; returns (payments/s, p99 of a payment).
async fn concurrent(f: &Fixture, run: u64, per_task: u64) -> (f64, Duration) {
    let start = instant();
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let (store, vault, tenant) = (f.db.store().clone(), Arc::clone(&f.vault), f.tenant.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..per_task {
                vault
                    .tokenize(&tenant, &pan(), expiry(), TokenType::Reusable, None, now())
                    .await
                    .expect("tokenize");
                let t0 = instant();
                payment(&store, &tenant, &format!("c-{run}-{task}-{i}")).await;
                latencies.push(t0.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or_default();
    (all.len() as f64 / elapsed, p99)
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
        let store = f.db.store().clone();
        let token = runtime
            .block_on(f.vault.tokenize(
                &f.tenant,
                &pan(),
                expiry(),
                TokenType::Reusable,
                None,
                now(),
            ))
            .expect("tokenize");
        let mut group = criterion.benchmark_group(format!("store/{name}"));
        let mut counter = 0u64;
        group.bench_function("baseline: one-row commit", |b| {
            b.iter(|| {
                counter += 1;
                runtime.block_on(baseline(&store, counter));
            });
        });
        group.bench_function("payment: begin + result + outbox", |b| {
            b.iter(|| {
                counter += 1;
                runtime.block_on(payment(&store, &f.tenant, &format!("crit-{counter}")));
            });
        });
        group.bench_function("vault: tokenize", |b| {
            b.iter(|| {
                runtime
                    .block_on(f.vault.tokenize(
                        &f.tenant,
                        &pan(),
                        expiry(),
                        TokenType::Reusable,
                        None,
                        now(),
                    ))
                    .expect("tokenize")
            });
        });
        group.bench_function("vault: detokenize", |b| {
            b.iter(|| {
                runtime
                    .block_on(f.vault.detokenize(&f.tenant, &token.id, now()))
                    .expect("detokenize")
            });
        });
        group.finish();

        // The summary: the same operations back to back, in one run, as rates and ratios.
        let n = 300;
        let base = runtime.block_on(per_op(n, |i| {
            let s = store.clone();
            async move { baseline(&s, 1_000_000 + i).await }
        }));
        let pay = runtime.block_on(per_op(n, |i| {
            let (s, t) = (store.clone(), f.tenant.clone());
            async move { payment(&s, &t, &format!("sum-{i}")).await }
        }));
        let tok = runtime.block_on(per_op(n, |_| {
            let (v, t) = (Arc::clone(&f.vault), f.tenant.clone());
            async move {
                v.tokenize(&t, &pan(), expiry(), TokenType::Reusable, None, now())
                    .await
                    .expect("tokenize");
            }
        }));
        let detok = runtime.block_on(per_op(n, |_| {
            let (v, t, id) = (Arc::clone(&f.vault), f.tenant.clone(), token.id.clone());
            async move {
                black_box(v.detokenize(&t, &id, now()).await.expect("detokenize"));
            }
        }));
        let (rate, p99) = runtime.block_on(concurrent(&f, 0, 100));
        summary.push(format!(
            "{name:>13}: baseline commit {:>7.0}/s | payment {:>6.0}/s ({:.2}× baseline time) | tokenize {:>6.0}/s ({:.2}×) | detokenize {:>6.0}/s ({:.2}×) | 8 concurrent: {:>6.0} payments/s, p99 {:.2} ms",
            1.0 / base,
            1.0 / pay,
            pay / base,
            1.0 / tok,
            tok / base,
            1.0 / detok,
            detok / base,
            rate,
            p99.as_secs_f64() * 1000.0,
        ));
        runtime.block_on(f.db.cleanup()).expect("cleanup");
    }
    criterion.final_summary();
    for line in summary {
        println!("{line}");
    }
}
