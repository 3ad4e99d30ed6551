//! No card data anywhere but the vault's ciphertext: every log line (at TRACE, from the
//! service, the store and the database driver), every panic message and `Debug` of what the
//! service hands out, the database file or dump after payments of every kind.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ivrpay_card::{IdempotencyKey, luhn_check_digit};
use ivrpay_payments::RetryPolicy;
use ivrpay_payments::sandbox::{Fault, Sandbox};
use ivrpay_service::{RefundPayment, Status};
use ivrpay_store::PaymentId;
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::testing::scan::{code_leaks, database_bytes, pan_leaks};

use crate::support::{EXPIRY, Harness, Options, fresh_key, gbp};

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A Visa-prefixed number nobody else could have written (the sandbox refuses it as a live
/// card: it still goes through capture and the vault).
fn random_pan() -> String {
    let seed = crate::support::now().unix_ms().unsigned_abs();
    let mut digits: Vec<u8> = b"4".to_vec();
    let mut x = seed | 1;
    while digits.len() < 15 {
        // xorshift: enough to vary the digits from run to run.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        digits.push(b'0' + (x % 10) as u8);
    }
    digits.push(luhn_check_digit(&digits).expect("digits"));
    String::from_utf8(digits).expect("ascii")
}

/// Cards whose every 7-digit run is distinctive (Stripe's zero-heavy numbers share runs
/// with ordinary numbers such as timestamps, so they are keyed but not scanned for).
struct Cards {
    scanned: Vec<String>,
    codes: Vec<String>,
}

/// Every log line and panic message of the whole test process, from the first leak test
/// on: the other suites' payments running at the same time are scanned too.
struct Capture {
    logs: Captured,
    panics: Arc<Mutex<Vec<String>>>,
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        let panics = Arc::new(Mutex::new(Vec::<String>::new()));
        let recorded = Arc::clone(&panics);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            recorded.lock().unwrap_or_else(|e| e.into_inner()).push(info.to_string());
            previous(info);
        }));
        Capture { logs, panics }
    })
}

/// Runs payments of every kind, capturing what is logged and panicked, then scans.
fn check_for_leaks(postgres: bool) {
    let capture = capture();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime.block_on(async {
        if postgres {
            TestDatabase::postgres().await.unwrap_or_else(|e| panic!("PostgreSQL fixture: {e}"))
        } else {
            TestDatabase::sqlite().await.expect("SQLite fixture")
        }
    });
    let cards = runtime.block_on(payments_of_every_kind(&db));

    let logs = capture.logs.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let text = String::from_utf8_lossy(&logs);
    // The capture works: it holds the service's own warning and the driver's statements.
    assert!(text.contains("gateway did not answer"), "the service's warning was captured");
    assert!(
        text.contains("INSERT INTO payments"),
        "the database driver's statements were captured"
    );
    let panics = capture.panics.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
    assert!(panics.contains("PaymentView"), "the deliberate panic was captured");
    for (what, bytes) in [("logs", logs.as_slice()), ("panics", panics.as_bytes())] {
        let found: Vec<String> = pan_leaks(bytes, &cards.scanned)
            .into_iter()
            .chain(code_leaks(bytes, &cards.codes))
            .collect();
        assert!(found.is_empty(), "card data in the {what}: {found:?}");
    }
    let stored = database_bytes(&db).expect("database bytes");
    assert!(stored.iter().map(Vec::len).sum::<usize>() > 16 * 1024, "the scan read the database");
    for bytes in &stored {
        let found: Vec<String> = pan_leaks(bytes, &cards.scanned)
            .into_iter()
            .chain(code_leaks(bytes, &cards.codes))
            .collect();
        assert!(found.is_empty(), "card data in the database: {found:?}");
    }
    println!(
        "leak: {} bytes of TRACE logs, {} of panics, {} of database: no PAN run of 7 digits, no security code",
        logs.len(),
        panics.len(),
        stored.iter().map(Vec::len).sum::<usize>()
    );
    runtime.block_on(db.cleanup()).expect("cleanup");
}

async fn payments_of_every_kind(db: &TestDatabase) -> Cards {
    let sandbox = Arc::new(Sandbox::new());
    let options = Options {
        sandbox: Arc::clone(&sandbox),
        retry: RetryPolicy {
            try_timeout: Duration::from_millis(300),
            backoff: vec![Duration::from_millis(5)],
        },
        inter_digit_timeout: Duration::from_millis(400),
        ..Options::default()
    };
    let h = Harness::with(db.store().clone(), options).await;
    let random = random_pan();
    let cards = Cards {
        scanned: [
            "4242424242424242",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            random.as_str(),
        ]
        .map(str::to_owned)
        .to_vec(),
        // Three-digit codes are too short to tell from the other numbers in a log or a file;
        // the four-digit Amex code stands for them (and the types keep every code out of
        // the store and the logs).
        codes: vec!["7391".to_owned()],
    };

    // Successes with every scanned card, a refund of one.
    let visa = h.pay(&h.call(), "12.50", &fresh_key("ok"), "4242424242424242", "826").await;
    assert_eq!(visa.status, Status::Succeeded);
    let amex = h.pay(&h.call(), "99.99", &fresh_key("amex"), "378282246310005", "7391").await;
    assert_eq!(amex.status, Status::Succeeded);
    let refund = RefundPayment {
        payment: PaymentId::parse(amex.payment_id.as_deref().expect("id")).expect("id"),
        amount: Some(gbp("10.00")),
        reason: None,
        idempotency_key: IdempotencyKey::new(fresh_key("refund")).expect("key"),
    };
    h.service.refund(refund).await.expect("refund");
    let saved = h.pay(&h.call(), "0", &fresh_key("save"), "2223003122003222", "951").await;
    assert_eq!(saved.status, Status::Succeeded);
    // Declines, a live card refused, a processing error, a wrong number typed first.
    for card in ["4000000000000002", "4000000000000127", "4000000000000119", random.as_str()] {
        let done = h.pay(&h.call(), "3.00", &fresh_key("no"), card, "826").await;
        assert_ne!(done.status, Status::Succeeded);
    }
    let call = h.call();
    let view = h.open(&call, "4.00", &fresh_key("typo")).await;
    h.keys(&call, &format!("5555555555554445#5555555555554444{EXPIRY}951"));
    assert_eq!(h.service.complete(&view.id).await.expect("complete").status, Status::Succeeded);
    // A gateway that hangs (the warning is logged), a field left to time out, a hang-up.
    // Both tries hang: the retry policy gives up and leaves the payment in doubt.
    sandbox.inject(Fault::HangAfterProcessing);
    sandbox.inject(Fault::HangAfterProcessing);
    let doubt = h.pay(&h.call(), "6.00", &fresh_key("doubt"), "378282246310005", "7391").await;
    assert_eq!(doubt.status, Status::Processing);
    let call = h.call();
    let timed_out = h.open(&call, "7.00", &fresh_key("slow")).await;
    h.keys(&call, "37828224");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let view = h.service.payment(&timed_out.id).await.expect("view");
    assert_eq!(view.fields[0].error, Some("input-timeout"), "{view:?}");
    h.keys(&call, "6310005");
    h.service.call_ended(&call, "customer_hangup");
    h.service.wait_idle(Duration::from_secs(5)).await;

    // What a careless `{:?}` in a panic would print: the views and an error.
    let error = h.service.complete(&timed_out.id).await.expect_err("ended");
    let shown = std::panic::AssertUnwindSafe((visa, amex, view, error));
    let caught = std::panic::catch_unwind(|| {
        let (visa, amex, view, error) = &*shown;
        panic!("{visa:?} {amex:?} {view:?} {error:?}")
    });
    assert!(caught.is_err());
    cards
}

#[test]
fn no_card_data_in_logs_panics_or_the_sqlite_file() {
    check_for_leaks(false);
}

#[test]
fn no_card_data_in_logs_panics_or_a_postgres_dump() {
    check_for_leaks(true);
}
