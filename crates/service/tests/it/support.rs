//! The harness: a service on a store fixture, a vault with its own keys, the sandbox.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_card::{Currency, IdempotencyKey, Money};
use ivrpay_dtmf::Digit;
use ivrpay_payments::RetryPolicy;
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_service::{
    IncomingCall, OpenPayment, PaymentView, Service, ServiceConfig, Status, SystemClock,
};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{CallId, EventRecord, Store, TenantId, Timestamp};
use ivrpay_vault::{MasterKeySource, Vault};
use tokio::sync::broadcast;

/// The cards' expiry: December 2030, keyed `1230`.
pub const EXPIRY: &str = "1230";

/// Settings a harness can change.
pub struct Options {
    pub sandbox: Arc<Sandbox>,
    pub retry: RetryPolicy,
    pub inter_digit_timeout: Duration,
    pub node: String,
    /// Where the master keys live; a fresh temporary directory when `None`.
    pub keys: Option<MasterKeySource>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sandbox: Arc::new(Sandbox::new()),
            // Quick retries: the faults suite injects failures on purpose.
            retry: RetryPolicy {
                try_timeout: Duration::from_secs(5),
                backoff: vec![Duration::from_millis(10), Duration::from_millis(20)],
            },
            inter_digit_timeout: Duration::from_secs(30),
            node: "node-1".to_owned(),
            keys: None,
        }
    }
}

/// A running service and what a test looks at.
pub struct Harness {
    pub service: Service,
    pub sandbox: Arc<Sandbox>,
    pub store: Store,
    pub tenant: TenantId,
    _keys: Option<KeyDir>,
}

impl Harness {
    pub async fn new(db: &TestDatabase) -> Harness {
        Harness::with(db.store().clone(), Options::default()).await
    }

    pub async fn with(store: Store, options: Options) -> Harness {
        let tenant = TenantId::parse("ten_default").expect("tenant id");
        let (source, keys) = match options.keys {
            Some(source) => (source, None),
            None => {
                let keys = KeyDir::new();
                (keys.source(), Some(keys))
            }
        };
        let vault = Vault::open(store.clone(), source).expect("vault");
        let config = ServiceConfig {
            tenant: tenant.clone(),
            node: options.node,
            gateway_name: "sandbox".to_owned(),
            retry: options.retry,
            inter_digit_timeout: options.inter_digit_timeout,
        };
        let gateway = Arc::clone(&options.sandbox);
        let service = Service::start(config, store.clone(), vault, gateway, Arc::new(SystemClock))
            .await
            .expect("service");
        Harness { service, sandbox: options.sandbox, store, tenant, _keys: keys }
    }

    /// A call from the B2BUA, answered by agent-7.
    pub fn call(&self) -> CallId {
        let id = CallId::generate(now());
        self.service.call_started(IncomingCall {
            id: id.clone(),
            sip_call_id: format!("{}@carrier", id.as_str()),
            profile: "default".to_owned(),
            caller: Some("sip:+441632960001@carrier".to_owned()),
            called: Some("sip:sales@contact-centre".to_owned()),
            agent: None,
        });
        self.service.call_answered(&id, Some("agent-7".to_owned()));
        id
    }

    /// The customer keys `keys` on `call`.
    pub fn keys(&self, call: &CallId, keys: &str) {
        for c in keys.chars() {
            self.service.digit(call, Digit::from_char(c).expect("a keypad key"));
        }
    }

    /// Opens a GBP payment of `amount` on `call`.
    pub async fn open(&self, call: &CallId, amount: &str, key: &str) -> PaymentView {
        let view = self.service.open_payment(call, payment(amount, key)).await.expect("open");
        assert_eq!(view.status, Status::Open);
        view
    }

    /// Opens a payment, keys the card and completes it.
    pub async fn pay(
        &self,
        call: &CallId,
        amount: &str,
        key: &str,
        card: &str,
        cvc: &str,
    ) -> PaymentView {
        let view = self.open(call, amount, key).await;
        self.keys(call, &format!("{card}{EXPIRY}{cvc}"));
        self.service.complete(&view.id).await.expect("complete")
    }
}

/// A payment request as the API would make it.
pub fn payment(amount: &str, key: &str) -> OpenPayment {
    OpenPayment {
        amount: gbp(amount),
        description: Some("Invoice 1042".to_owned()),
        customer_ref: Some("cust-981".to_owned()),
        token_type: Default::default(),
        postal_code: false,
        accepted_brands: None,
        idempotency_key: IdempotencyKey::new(key.to_owned()).expect("key"),
        first_digit_timeout: None,
    }
}

pub fn gbp(amount: &str) -> Money {
    Money::parse_major(amount, Currency::from_code("GBP").expect("GBP")).expect("amount")
}

/// A fresh idempotency key.
pub fn fresh_key(label: &str) -> String {
    format!("{label}-{}", CallId::generate(now()).as_str())
}

#[allow(clippy::disallowed_methods, reason = "test timestamps come from the wall clock")]
pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// A directory for master keys that outlives the vaults opened on it.
pub struct KeyDir(pub tempfile::TempDir);

impl KeyDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().expect("key dir"))
    }

    pub fn source(&self) -> MasterKeySource {
        MasterKeySource::DataDir(self.0.path().to_path_buf())
    }
}

/// Reads live events until `done` says so (or 10 s pass, which fails the test).
pub async fn events_until(
    feed: &mut broadcast::Receiver<Arc<EventRecord>>,
    mut done: impl FnMut(&[Arc<EventRecord>]) -> bool,
) -> Vec<Arc<EventRecord>> {
    let mut seen = Vec::new();
    let wait = async {
        while !done(&seen) {
            match feed.recv().await {
                Ok(event) => seen.push(event),
                Err(e) => panic!("feed: {e}"),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait).await.is_err() {
        let types: Vec<&str> = seen.iter().map(|e| e.event_type.as_str()).collect();
        panic!("the feed did not deliver what was expected; it delivered {types:?}");
    }
    seen
}

/// The events of one payment session.
pub fn of_session<'a>(events: &'a [Arc<EventRecord>], session: &str) -> Vec<&'a EventRecord> {
    events
        .iter()
        .filter(|e| {
            e.subject_id == session
                || e.payload["payment_id"] == session
                || e.payload["session_id"] == session
        })
        .map(|e| &**e)
        .collect()
}
