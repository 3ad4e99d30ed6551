//! The harness: the service on a store fixture, the API on a loopback socket, keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ivrpay_api::{ApiConfig, ApiState, Scope};
use ivrpay_dtmf::Digit;
use ivrpay_payments::RetryPolicy;
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_service::{Clock as _, IncomingCall, Service, ServiceConfig, SystemClock};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{CallId, Store, TenantId};
use ivrpay_vault::{MasterKeySource, Vault};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The test card (Stripe's Visa that succeeds) and what a customer keys after it.
pub const PAN: &str = "4242424242424242";
pub const EXPIRY: &str = "1230";
pub const CVC: &str = "737";

/// A directory for the vault's master keys, removed on drop.
struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The API on a socket, with an admin key and agent keys for agent-7 and agent-9.
pub struct Api {
    pub addr: SocketAddr,
    pub service: Service,
    pub store: Store,
    pub tenant: TenantId,
    pub admin: String,
    pub agent7: String,
    pub agent9: String,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _keys: KeyDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response: status, headers, JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {}", self.text);
        self
    }

    /// Asserts a problem+json answer with this status (and `code`, when given).
    pub fn problem(self, status: u16, code: Option<&str>) -> Answer {
        let a = self.expect(status);
        assert_eq!(a.header("content-type"), Some("application/problem+json"), "{}", a.text);
        assert_eq!(a.json["status"], status, "{}", a.text);
        assert!(a.json["type"].as_str().is_some_and(|t| t.starts_with("urn:ivrpay:problem:")));
        assert!(a.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", a.text);
        if let Some(code) = code {
            assert_eq!(a.json["code"], code, "{}", a.text);
        }
        a
    }
}

impl Api {
    pub async fn start(db: &TestDatabase) -> Api {
        Api::with(db, ApiConfig { allow_private_webhooks: true, ..ApiConfig::default() }).await
    }

    pub async fn with(db: &TestDatabase, config: ApiConfig) -> Api {
        let store = db.store().clone();
        let tenant = TenantId::parse("ten_default").expect("tenant");
        let dir = std::env::temp_dir().join(format!(
            "ivrpay-api-it-{}-{}",
            std::process::id(),
            ivrpay_store::CallId::generate(SystemClock.now()).as_str()
        ));
        std::fs::create_dir_all(&dir).expect("key dir");
        let keys = KeyDir(dir.clone());
        let vault = Vault::open(store.clone(), MasterKeySource::DataDir(dir)).expect("vault");
        let service_config = ServiceConfig {
            tenant: tenant.clone(),
            node: "node-1".to_owned(),
            gateway_name: "sandbox".to_owned(),
            retry: RetryPolicy {
                try_timeout: Duration::from_secs(5),
                backoff: vec![Duration::from_millis(10)],
            },
            inter_digit_timeout: Duration::from_secs(30),
        };
        let service = Service::start(
            service_config,
            store.clone(),
            vault,
            Arc::new(Sandbox::new()),
            Arc::new(SystemClock),
        )
        .await
        .expect("service");
        let now = SystemClock.now();
        let (_, admin) =
            ivrpay_api::auth::create_key(&store, &tenant, &Scope::Admin, "admin", "test", now)
                .await
                .expect("admin key");
        let agent = |id: &str| Scope::Agent(id.to_owned());
        let (_, agent7) =
            ivrpay_api::auth::create_key(&store, &tenant, &agent("agent-7"), "a7", "test", now)
                .await
                .expect("agent key");
        let (_, agent9) =
            ivrpay_api::auth::create_key(&store, &tenant, &agent("agent-9"), "a9", "test", now)
                .await
                .expect("agent key");
        let state = ApiState::new(
            service.clone(),
            Arc::new(SystemClock),
            config,
            Arc::new(|| "# the process's metrics\n".to_owned()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = ivrpay_api::router(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Api {
            addr,
            service,
            store,
            tenant,
            admin,
            agent7,
            agent9,
            http: client(),
            server,
            _keys: keys,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request with `key` (none when empty), an idempotency key and a JSON body when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: &str,
        idem: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        if let Some(idem) = idem {
            request = request.header("Idempotency-Key", idem);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, headers, text, json }
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.send(Method::GET, path, key, None, None).await
    }

    /// A POST with a fresh idempotency key.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        let idem = fresh_key();
        self.send(Method::POST, path, key, Some(&idem), Some(body)).await
    }

    /// A call from the B2BUA, answered by `agent`; returns once the API shows it answered.
    pub async fn call(&self, agent: &str) -> CallId {
        let id = CallId::generate(SystemClock.now());
        self.service.call_started(IncomingCall {
            id: id.clone(),
            sip_call_id: format!("{}@carrier", id.as_str()),
            profile: "default".to_owned(),
            caller: Some("+441632960001".to_owned()),
            called: Some("+441632960999".to_owned()),
            agent: None,
        });
        self.service.call_answered(&id, Some(agent.to_owned()));
        let path = format!("/v1/calls/{}", id.as_str());
        wait_for(Duration::from_secs(10), || async {
            let a = self.get(&path, &self.admin).await;
            a.status == StatusCode::OK && a.json["agent"] == agent
        })
        .await;
        id
    }

    /// The customer keys `keys` on `call` (as the media path reports them).
    pub fn keys(&self, call: &CallId, keys: &str) {
        for c in keys.chars() {
            self.service.digit(call, Digit::from_char(c).expect("a keypad key"));
        }
    }

    /// Opens a 12.50 GBP payment on `call` with `key`; returns the session id.
    pub async fn open(&self, call: &CallId, key: &str) -> String {
        let body =
            serde_json::json!({ "amount": "12.50", "currency": "GBP", "customer_ref": "INV-1" });
        let a = self.post(&format!("/v1/calls/{}/payments", call.as_str()), key, &body).await;
        let a = a.expect(201);
        a.json["id"].as_str().expect("session id").to_owned()
    }

    /// Waits until the payment's view satisfies `check`.
    pub async fn wait_payment(
        &self,
        id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!("/v1/payments/{id}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let a = self.get(&path, &self.admin).await.expect(200);
            if check(&a.json) {
                return a.json;
            }
            assert!(tokio::time::Instant::now() < deadline, "payment never {what}: {}", a.text);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Keys a whole card and waits until the payment is ready to complete.
    pub async fn key_card(&self, call: &CallId, id: &str, pan: &str) {
        self.keys(call, pan);
        self.keys(call, EXPIRY);
        self.keys(call, CVC);
        self.wait_payment(id, "ready", |p| {
            p["required"].as_array().is_some_and(Vec::is_empty) && p["capturing"].is_null()
        })
        .await;
    }
}

/// An HTTP client (reqwest is built with rustls and no crypto provider in this workspace).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A new idempotency key.
pub fn fresh_key() -> String {
    ivrpay_api::auth::generate_secret().replace("ivrpay_", "idem-")
}

/// Polls `check` until it holds (panics after `limit`).
pub async fn wait_for<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every PAN fragment longer than the last four, and the CVC as a whole token: none may
/// appear in anything the API sends.
pub fn assert_no_card_data(what: &str, text: &str) {
    for start in 0..PAN.len() - 4 {
        for end in start + 5..=PAN.len() {
            let fragment = &PAN[start..end];
            assert!(!text.contains(fragment), "{what} holds PAN digits {fragment}: {text}");
        }
    }
    // The CVC as a number of its own (ids are base32 and may hold the digits by chance).
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(CVC) {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + CVC.len()).copied();
        let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        assert!(alnum(before) || alnum(after), "{what} holds the CVC: {text}");
    }
}
