//! Fixtures shared by the suites: databases on both backends, payments, receivers, Python
//! helpers, a dispatcher on a fast schedule.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use ivrpay_store::{
    BegunPayment, BegunRefund, CardSummary, Currency, IdempotencyKey, Money, NewPayment, NewRefund,
    PaymentOutcome, PaymentRecord, RefundOutcome, RefundRecord, Store, TenantId, Timestamp,
};
use ivrpay_sync::sinks::{SinkOptions, SinkSet};
use ivrpay_sync::{
    Dispatcher, DispatcherConfig, DispatcherHandle, RetrySchedule, SyncMetrics, SystemClock,
};

#[allow(
    clippy::disallowed_methods,
    reason = "tests stamp rows with the wall clock the dispatcher uses"
)]
pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

pub async fn tenant(store: &Store) -> TenantId {
    let id = TenantId::parse("ten_acme").expect("tenant id");
    store.ensure_tenant(&id, "acme", now()).await.expect("tenant");
    id
}

/// A payment that succeeded, with the given card summary.
pub async fn pay(
    store: &Store,
    tenant: &TenantId,
    key: &str,
    minor: u64,
    currency: Currency,
    card: (&str, &str),
) -> PaymentRecord {
    let new = NewPayment {
        tenant_id: tenant.clone(),
        idempotency_key: IdempotencyKey::new(key).expect("key"),
        amount: Money::from_minor(minor, currency),
        description: Some(format!("invoice {key}")),
        session_id: None,
        call_id: None,
        token_id: None,
        card: Some(CardSummary::new(card.0, card.1).expect("card")),
        gateway: "sandbox".to_owned(),
    };
    let BegunPayment::Pending(pending) = store.begin_payment(&new, now()).await.expect("begin")
    else {
        panic!("payment finished already")
    };
    let outcome = PaymentOutcome::Succeeded { gateway_ref: format!("ch_{key}") };
    store.record_payment_result(pending, &outcome, now()).await.expect("record")
}

pub async fn usd(store: &Store, tenant: &TenantId, key: &str, minor: u64) -> PaymentRecord {
    pay(store, tenant, key, minor, Currency::USD, ("visa", "4242")).await
}

pub async fn refund(store: &Store, p: &PaymentRecord, key: &str, minor: u64) -> RefundRecord {
    let new = NewRefund {
        tenant_id: p.tenant_id.clone(),
        payment_id: p.id.clone(),
        idempotency_key: IdempotencyKey::new(key).expect("key"),
        amount: Money::from_minor(minor, *p.currency),
        reason: None,
    };
    let BegunRefund::Pending(pending) = store.begin_refund(&new, now()).await.expect("begin")
    else {
        panic!("refund finished already")
    };
    let outcome = RefundOutcome::Succeeded { gateway_ref: format!("re_{key}") };
    store.record_refund_result(pending, &outcome, now()).await.expect("record")
}

/// A schedule of a few hundred milliseconds.
pub fn fast() -> DispatcherConfig {
    DispatcherConfig {
        concurrency: 16,
        batch: 64,
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(20),
        schedule: RetrySchedule::new(
            [100, 150, 200, 250, 300, 350].map(Duration::from_millis).to_vec(),
        ),
        alert_after: 4,
    }
}

pub fn start(
    store: &Store,
    config: DispatcherConfig,
    timeout: Duration,
    metrics: &Arc<SyncMetrics>,
) -> DispatcherHandle {
    let options =
        SinkOptions { allow_private_webhooks: true, timeout, refresh: Duration::from_millis(100) };
    let sinks = Arc::new(SinkSet::new(store.clone(), options).expect("sinks"));
    Dispatcher::new(store.clone(), sinks, config, Arc::new(SystemClock), Arc::clone(metrics))
        .spawn()
}

/// Polls `check` every 25 ms until it holds or `limit` passes.
pub async fn wait_for<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One request a receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// How a receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Status(u16),
    /// Sleeps this long, then answers 200.
    Delay(Duration),
}

/// An HTTP receiver on loopback that logs every request.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Received>>>,
    pub mode: Arc<Mutex<Mode>>,
    stop: Arc<tokio::sync::Notify>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), mode).await
    }

    pub async fn start_on(addr: SocketAddr, mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(mode));
        let stop = Arc::new(tokio::sync::Notify::new());
        let (l, m) = (Arc::clone(&log), Arc::clone(&mode));
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (log, mode) = (Arc::clone(&l), Arc::clone(&m));
                async move {
                    let current = *mode.lock().expect("mode");
                    let answered = match current {
                        Mode::Ok => 200,
                        Mode::Status(s) => s,
                        Mode::Delay(d) => {
                            tokio::time::sleep(d).await;
                            200
                        }
                    };
                    log.lock().expect("log").push(Received {
                        method: method.to_string(),
                        path: uri.to_string(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect(),
                        body: body.to_vec(),
                        answered,
                    });
                    (StatusCode::from_u16(answered).unwrap_or(StatusCode::OK), "thanks")
                }
            },
        );
        let s = Arc::clone(&stop);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.notified().await })
                .await;
        });
        Self { addr, log, mode, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log").clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }

    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// A free loopback port (nothing listens on it when this returns).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// The Python interpreter with `module` importable, or a panic naming the PyPI package.
pub fn python_with(module: &str, package: &str) -> String {
    let python = std::env::var("IVRPAY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{python} cannot import {module}: install the PyPI package `{package}` \
         (`{python} -m pip install {package}`; scripts/test.sh does it)"
    );
    python
}

/// A Python helper process that prints its port on its first line; killed on drop.
#[derive(Debug)]
pub struct PythonServer {
    pub port: u16,
    child: tokio::process::Child,
}

impl PythonServer {
    pub async fn start(python: &str, script: &str, args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python helper");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("python helper started in time")
            .expect("read port")
            .expect("python helper printed its port");
        let port = first.trim().parse().expect("port number");
        Self { port, child }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
