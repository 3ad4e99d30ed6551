//! The payment session's share of the 20 ms budget: the capture state machine and the
//! sandbox gateway, each against a baseline measured in the same run.
//!
//! - *capture*: one session from its first key to `complete` (16-digit card, expiry,
//!   security code, 23 progress events), against the baseline of validating the same
//!   digits directly (`Pan::parse`, Luhn, brand, `Expiry::from_mmyy`, `Cvv::parse`): the
//!   ratio is what the state machine, masking and events cost over the bare checks;
//! - *sandbox*: a charge with a fresh idempotency key in memory, a replay of a key, and a
//!   charge with the crash-proof journal (one `fsync` per charge), against the in-memory
//!   charge.
//!
//! `cargo bench -p ivrpay-benches --bench payments`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ivrpay_capture::{Session, SessionConfig};
use ivrpay_card::{CardData, Currency, Cvv, Expiry, IdempotencyKey, Money, Pan, YearMonth};
use ivrpay_dtmf::Digit;
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_payments::{ChargeOutcome, ChargeRequest, Gateway};

const KEYS: &str = "42424242424242421230123";

fn digits() -> Vec<Digit> {
    KEYS.chars().map(|c| Digit::from_char(c).expect("keypad key")).collect()
}

/// One session, first key to `complete`.
fn session(digits: &[Digit], start: Instant, n: u64) -> CardData {
    let key = IdempotencyKey::new(format!("bench-{n}")).expect("valid");
    let config = SessionConfig::new(Money::from_minor(1999, Currency::USD), key);
    let today = YearMonth::new(2026, 5).expect("valid");
    let mut s = Session::new(config, today, start);
    let mut events = 0;
    for (i, &d) in digits.iter().enumerate() {
        s.handle_digit(start + Duration::from_millis(200 * i as u64), d);
        while s.poll_event().is_some() {
            events += 1;
        }
    }
    black_box(events);
    match s.complete() {
        Ok(done) => done.card,
        Err(_) => panic!("the bench card completes"),
    }
}

/// The baseline: the same checks with no session around them.
fn validate_only() -> CardData {
    let pan = Pan::parse(&KEYS[..16]).expect("valid");
    assert!(pan.is_luhn_valid() && pan.brand().is_some());
    let expiry = Expiry::from_mmyy(&KEYS.as_bytes()[16..20]).expect("valid");
    let cvv = Cvv::parse(&KEYS[20..]).expect("valid");
    CardData { pan, expiry, cvv: Some(cvv), postal_code: None }
}

fn charge(rt: &tokio::runtime::Runtime, gateway: &Sandbox, card: &CardData, key: &IdempotencyKey) {
    let request = ChargeRequest {
        idempotency_key: key,
        amount: Money::from_minor(1999, Currency::USD),
        card,
        description: "bench",
        customer_reference: None,
    };
    match rt.block_on(gateway.charge(&request)) {
        Ok(ChargeOutcome::Succeeded(c)) => {
            black_box(c);
        }
        other => panic!("bench charge: {other:?}"),
    }
}

/// Operations per second of `f`, run `n` times.
#[allow(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
fn per_second(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[allow(clippy::disallowed_methods, reason = "a benchmark owns its clock")]
fn main() {
    let digits = digits();
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let journal_dir = std::env::temp_dir().join(format!("ivrpay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&journal_dir).expect("temp dir");
    let card = validate_only();

    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(5));
    let mut group = c.benchmark_group("capture: one session, 23 keys to complete");
    group.throughput(Throughput::Elements(1));
    let mut n = 0;
    group.bench_function("session", |b| {
        b.iter(|| {
            n += 1;
            session(&digits, start, n)
        })
    });
    group.bench_function("baseline: validation only", |b| b.iter(validate_only));
    group.finish();

    let mut group = c.benchmark_group("sandbox: one charge");
    group.throughput(Throughput::Elements(1));
    let memory = Sandbox::new();
    let mut n = 0u64;
    group.bench_function("in memory, new key", |b| {
        b.iter(|| {
            n += 1;
            charge(&rt, &memory, &card, &IdempotencyKey::new(format!("k{n}")).expect("valid"))
        })
    });
    let replay_key = IdempotencyKey::new("replayed").expect("valid");
    group.bench_function("in memory, replayed key", |b| {
        b.iter(|| charge(&rt, &memory, &card, &replay_key))
    });
    let journaled = Sandbox::open(&journal_dir.join("criterion.jsonl")).expect("journal");
    group.bench_function("journal (fsync), new key", |b| {
        b.iter(|| {
            n += 1;
            charge(&rt, &journaled, &card, &IdempotencyKey::new(format!("j{n}")).expect("valid"))
        })
    });
    group.finish();

    // Side by side in rounds, ratios within each round.
    const ROUNDS: usize = 30;
    let (mut sess, mut base, mut mem, mut jour) = (vec![], vec![], vec![], vec![]);
    let (mut sess_ratio, mut jour_ratio) = (vec![], vec![]);
    let mut k = 0u64;
    for round in 0..ROUNDS {
        let b = per_second(2000, |_| {
            black_box(validate_only());
        });
        let s = per_second(2000, |i| {
            black_box(session(&digits, start, i));
        });
        let m = per_second(2000, |_| {
            k += 1;
            charge(&rt, &memory, &card, &IdempotencyKey::new(format!("m{k}")).expect("valid"));
        });
        let journal =
            Sandbox::open(&journal_dir.join(format!("round{round}.jsonl"))).expect("journal");
        let j = per_second(50, |i| {
            charge(&rt, &journal, &card, &IdempotencyKey::new(format!("r{i}")).expect("valid"));
        });
        sess_ratio.push(s / b);
        jour_ratio.push(j / m);
        sess.push(s);
        base.push(b);
        mem.push(m);
        jour.push(j);
    }
    let _ = std::fs::remove_dir_all(&journal_dir);
    println!(
        "capture: {:.0} sessions/s ({:.1} µs each); baseline validation only {:.0}/s; session/baseline speed {:.3}",
        median(sess.clone()),
        1e6 / median(sess),
        median(base),
        median(sess_ratio)
    );
    println!(
        "sandbox: {:.0} charges/s in memory ({:.1} µs each); {:.0}/s with the journal; journal/memory speed {:.4}",
        median(mem.clone()),
        1e6 / median(mem),
        median(jour),
        median(jour_ratio)
    );
}
