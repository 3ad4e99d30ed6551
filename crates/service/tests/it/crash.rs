//! No double charge across a crash: the process is killed (SIGKILL) after the gateway
//! charged and before the result was committed; restarted on the same data, the payment
//! retried under the same idempotency key is found at the gateway, not charged again.
//!
//! The child is this test binary run again with only `child_charges_then_hangs` (an ignored
//! test that refuses to run without the directory the parent gives it). Its sandbox keeps a
//! journal on disk, as a real gateway keeps its memory through our crash.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ivrpay_card::IdempotencyKey;
use ivrpay_payments::RetryPolicy;
use ivrpay_payments::sandbox::{Fault, Sandbox};
use ivrpay_service::Status;
use ivrpay_store::{PaymentStatus, SQLITE_FILE_NAME, SqliteDurability, Store, StoreConfig};

use ivrpay_vault::MasterKeySource;

use crate::support::{EXPIRY, Harness, Options, payment};

const CHILD_DIR: &str = "IVRPAY_CRASH_TEST_DIR";
const KEY: &str = "order-crash-7731";
const CARD: &str = "4242424242424242";

fn journal(dir: &Path) -> PathBuf {
    dir.join("sandbox.journal")
}

async fn open_store(dir: &Path) -> Store {
    let config = StoreConfig::Sqlite {
        path: dir.join(SQLITE_FILE_NAME),
        durability: SqliteDurability::Full,
    };
    Store::open(&config).await.expect("store")
}

async fn harness(dir: &Path, sandbox: &Arc<Sandbox>, retry: RetryPolicy) -> Harness {
    let options = Options {
        sandbox: Arc::clone(sandbox),
        retry,
        node: "node-crash".to_owned(),
        // The master keys live in the data directory, as under `ivrpay serve`.
        keys: Some(MasterKeySource::DataDir(dir.to_path_buf())),
        ..Options::default()
    };
    Harness::with(open_store(dir).await, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_crash_between_the_charge_and_its_commit_charges_once"]
async fn child_charges_then_hangs() {
    let dir = PathBuf::from(
        std::env::var_os(CHILD_DIR).expect("run by the crash test, which sets the directory"),
    );
    let sandbox = Arc::new(Sandbox::open(&journal(&dir)).expect("journal"));
    // The gateway charges, journals it, and then never answers.
    sandbox.inject(Fault::HangAfterProcessing);
    let patient = RetryPolicy { try_timeout: Duration::from_secs(3600), backoff: Vec::new() };
    let h = harness(&dir, &sandbox, patient).await;
    let call = h.call();
    let view = h.service.open_payment(&call, payment("64.00", KEY)).await.expect("open");
    h.keys(&call, &format!("{CARD}{EXPIRY}737"));
    let result = h.service.complete(&view.id).await;
    panic!("the gateway was told to hang, yet complete returned {result:?}");
}

#[test]
fn a_crash_between_the_charge_and_its_commit_charges_once() {
    let dir = tempfile::tempdir().expect("data directory");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash::child_charges_then_hangs",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("child");
    // Wait for the gateway's journal to hold the charge: the child is now between the
    // gateway call and the commit of its result.
    let mut charged = false;
    for _ in 0..600 {
        let text = std::fs::read_to_string(journal(dir.path())).unwrap_or_default();
        if text.lines().count() >= 1 {
            charged = true;
            break;
        }
        if let Some(status) = child.try_wait().expect("child") {
            panic!("the child exited before charging: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(charged, "the child never reached the gateway");
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sandbox = Arc::new(Sandbox::open(&journal(dir.path())).expect("journal"));
        assert_eq!(sandbox.charge_count(), 1, "the gateway remembers the charge");
        let h = harness(dir.path(), &sandbox, Options::default().retry).await;
        // The restart ended the call the crash left behind; the attempt is pending.
        let key = IdempotencyKey::new(KEY.to_owned()).expect("key");
        let pending = h
            .store
            .payment_by_key(&h.tenant, &key)
            .await
            .expect("read")
            .expect("the attempt was recorded");
        assert_eq!(pending.status, PaymentStatus::Pending);
        let old_call = pending.call_id.as_ref().cloned().expect("call");
        assert_eq!(
            h.store.call(&h.tenant, &old_call).await.expect("call").end_reason.as_deref(),
            Some("restart")
        );

        // The customer calls back; the agent retries with the same key.
        let call = h.call();
        let view = h.service.open_payment(&call, payment("64.00", KEY)).await.expect("resume");
        h.keys(&call, &format!("{CARD}{EXPIRY}737"));
        let done = h.service.complete(&view.id).await.expect("complete");
        assert_eq!(done.status, Status::Succeeded);
        assert_eq!(done.payment_id.as_deref(), Some(pending.id.as_str()));
        let gateway_key = IdempotencyKey::new(pending.id.as_str().to_owned()).expect("key");
        assert_eq!(sandbox.charges_for(&gateway_key), 1);
        assert_eq!(sandbox.executions_for(&gateway_key), 1, "the retry was replayed, not executed");
        assert_eq!(sandbox.charge_count(), 1, "one charge in all");
        let stored = h.store.payment_by_key(&h.tenant, &key).await.expect("read").expect("payment");
        assert_eq!(stored.status, PaymentStatus::Succeeded);
    });
}
