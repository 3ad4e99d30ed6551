//! The Stripe connector against localstripe (PyPI `localstripe`), a stateful fake Stripe,
//! started here on a loopback port. scripts/test.sh installs it; without it this test
//! fails and says so.
//!
//! What localstripe does differently from Stripe, and so what these tests expect:
//! - it declines the 0002/9995/0069/… cards when a payment method is *attached* (our
//!   reusable tokenization), not when charged; charging declines 0341;
//! - it ignores the MOTO flag, so 3-D Secure cards come back `requires_action`;
//! - it takes 16-digit numbers and 3-digit codes only (an Amex is a 400);
//! - declines are HTTP 402 with `type: invalid_request_error` and `code: card_declined`
//!   (no `decline_code`); it has no idempotency keys.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ivrpay_card::{Secret, TokenType};
use ivrpay_payments::stripe::{Stripe, StripeConfig};
use ivrpay_payments::{
    ChargeOutcome, ChargeRequest, DeclineCode, Gateway, GatewayError, RefundRequest,
    TokenizeOutcome, TokenizeRequest,
};

use crate::cards::{card, key, usd};

/// Runs localstripe's aiohttp app on 127.0.0.1 only (its own launcher listens on every
/// interface), and exits when the test process goes away.
const LAUNCHER: &str = r#"
import os, sys, threading, time
from aiohttp import web
import localstripe.server as server
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"#;

/// The localstripe process; killed when dropped.
struct LocalStripe {
    child: Child,
    url: String,
}

impl LocalStripe {
    fn start() -> LocalStripe {
        let python = std::env::var("IVRPAY_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = Command::new(&python).args(["-c", "import localstripe, aiohttp"]).output();
        match probe {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "localstripe is not installed for `{python}`: install the PyPI package \
                 `localstripe` (pip install localstripe; scripts/test.sh does it)"
            ),
        }
        let port =
            TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut child = Command::new(&python)
            .args(["-c", LAUNCHER, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start localstripe");
        // Up to 15 s for Python to import aiohttp and listen.
        for _ in 0..150 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return LocalStripe { child, url: format!("http://127.0.0.1:{port}") };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("localstripe exited ({status}): {err}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("localstripe did not listen on 127.0.0.1:{port} within 15 s");
    }

    fn connector(&self, secret_key: &str) -> Stripe {
        Stripe::new(StripeConfig {
            base_url: self.url.clone(),
            secret_key: Secret::new(secret_key.to_string()),
            timeout: Duration::from_secs(10),
        })
        .expect("client")
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn charge(g: &Stripe, k: &str, pan: &str, minor: u64) -> Result<ChargeOutcome, GatewayError> {
    let key = key(k);
    let card = card(pan);
    let r = ChargeRequest {
        idempotency_key: &key,
        amount: usd(minor),
        card: &card,
        description: "invoice 42",
        customer_reference: Some("cust-7"),
    };
    g.charge(&r).await
}

async fn tokenize(
    g: &Stripe,
    k: &str,
    pan: &str,
    token_type: TokenType,
) -> Result<TokenizeOutcome, GatewayError> {
    let key = key(k);
    let card = card(pan);
    let r = TokenizeRequest {
        idempotency_key: &key,
        card: &card,
        token_type,
        customer_reference: Some("cust-7"),
    };
    g.tokenize(&r).await
}

/// One localstripe for the whole contract, scenarios in sequence.
#[tokio::test]
async fn contract_against_localstripe() {
    let server = LocalStripe::start();
    let g = server.connector("sk_test_ivrpay");

    // A charge: PaymentMethod, then PaymentIntent confirmed with MOTO.
    let ChargeOutcome::Succeeded(paid) =
        charge(&g, "c1", "4242424242424242", 2000).await.expect("answered")
    else {
        panic!("4242 succeeds")
    };
    assert!(paid.charge_id.starts_with("pi_"), "{}", paid.charge_id);
    assert_eq!(paid.amount, usd(2000));

    // Declined when charged (402 on confirm).
    match charge(&g, "c2", "4000000000000341", 2000).await {
        Ok(ChargeOutcome::Declined(d)) => {
            assert_eq!(d.code, DeclineCode::Generic);
            assert_eq!(d.gateway_code.as_deref(), Some("card_declined"));
        }
        other => panic!("0341: {other:?}"),
    }
    // 3-D Secure: localstripe ignores MOTO and asks for authentication.
    match charge(&g, "c3", "4000002500003155", 2000).await {
        Ok(ChargeOutcome::Declined(d)) => assert_eq!(d.code, DeclineCode::AuthenticationRequired),
        other => panic!("3155: {other:?}"),
    }

    // Tokenize, every token type.
    let TokenizeOutcome::Succeeded(t) =
        tokenize(&g, "t1", "4242424242424242", TokenType::OneTime).await.expect("ok")
    else {
        panic!()
    };
    assert!(t.token.starts_with("tok_"), "{}", t.token);
    let TokenizeOutcome::Succeeded(t) =
        tokenize(&g, "t2", "4242424242424242", TokenType::PaymentMethod).await.expect("ok")
    else {
        panic!()
    };
    assert!(t.token.starts_with("pm_") && t.customer.is_none());
    let TokenizeOutcome::Succeeded(t) =
        tokenize(&g, "t3", "4242424242424242", TokenType::Reusable).await.expect("ok")
    else {
        panic!()
    };
    assert!(t.token.starts_with("pm_"));
    assert!(t.customer.as_deref().is_some_and(|c| c.starts_with("cus_")));
    // Attaching verifies the card: the decline cards are refused there.
    for pan in [
        "4000000000000002",
        "4000000000009995",
        "4000000000000069",
        "4000000000000127",
        "4242424242424241",
    ] {
        match tokenize(&g, &format!("t-{pan}"), pan, TokenType::Reusable).await {
            Ok(TokenizeOutcome::Declined(d)) => {
                assert_eq!(d.gateway_code.as_deref(), Some("card_declined"))
            }
            other => panic!("{pan}: {other:?}"),
        }
    }

    // Refunds: partial, then the rest.
    let refund = |k: &str, amount| {
        let k = key(k);
        let id = paid.charge_id.clone();
        let g = &g;
        async move { g.refund(&RefundRequest { idempotency_key: &k, charge_id: &id, amount }).await }
    };
    let partial = refund("r1", Some(usd(500))).await.expect("partial refund");
    assert!(partial.refund_id.starts_with("re_"));
    assert_eq!(partial.amount, usd(500));
    let full = refund("r2", None).await.expect("full refund");
    assert_eq!(full.amount.currency(), ivrpay_card::Currency::USD);
    assert!(full.amount.minor() > 0);
    let k = key("r3");
    let unknown = RefundRequest { idempotency_key: &k, charge_id: "pi_doesnotexist", amount: None };
    assert_eq!(g.refund(&unknown).await, Err(GatewayError::UnknownCharge));

    // Errors that are not declines: not retryable.
    let amex =
        charge(&g, "e1", "378282246310005", 100).await.expect_err("localstripe takes 16 digits");
    assert!(matches!(amex, GatewayError::InvalidRequest { .. }), "{amex:?}");
    assert!(!amex.is_retryable());
    let bad_key = server.connector("pk_test_not_a_secret_key");
    assert_eq!(
        charge(&bad_key, "e2", "4242424242424242", 100).await,
        Err(GatewayError::Authentication)
    );

    // The server gone: a retryable connection error.
    let url = server.url.clone();
    drop(server);
    let gone = Stripe::new(StripeConfig {
        base_url: url,
        secret_key: Secret::new("sk_test_ivrpay".into()),
        timeout: Duration::from_secs(2),
    })
    .expect("client");
    let e = charge(&gone, "e3", "4242424242424242", 100).await.expect_err("no server");
    assert!(e.is_retryable(), "{e:?}");
}

/// What a recording Stripe peer saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    idempotency_key: Option<String>,
    form: Vec<(String, String)>,
}

/// A loopback peer that records each request and answers like Stripe (a payment method,
/// then a succeeded PaymentIntent), after one 503 on the first PaymentIntent: what
/// localstripe cannot show (it ignores the MOTO flag and has no idempotency keys).
async fn recording_peer() -> (std::sync::Arc<std::sync::Mutex<Vec<Seen>>>, String) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::{Form, Json};
    type Seens = std::sync::Arc<std::sync::Mutex<Vec<Seen>>>;
    async fn record(
        State(seen): State<Seens>,
        Path(object): Path<String>,
        headers: HeaderMap,
        Form(form): Form<Vec<(String, String)>>,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let idempotency_key =
            headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut seen = seen.lock().expect("lock");
        let first_intent =
            object == "payment_intents" && !seen.iter().any(|s| s.path == "/v1/payment_intents");
        seen.push(Seen { path: format!("/v1/{object}"), idempotency_key, form });
        match object.as_str() {
            _ if first_intent => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": {"type": "api_error"}})),
            ),
            "payment_methods" => (StatusCode::OK, Json(serde_json::json!({"id": "pm_rec"}))),
            _ => (
                StatusCode::OK,
                Json(serde_json::json!({"id": "pi_rec", "status": "succeeded", "amount": 1250})),
            ),
        }
    }
    let seen = Seens::default();
    let app = axum::Router::new()
        .route("/v1/{object}", axum::routing::post(record))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (seen, url)
}

#[tokio::test]
async fn every_charge_is_moto_and_a_retry_reuses_its_idempotency_keys() {
    let (seen, url) = recording_peer().await;
    let g = Stripe::new(StripeConfig {
        base_url: url,
        secret_key: Secret::new("sk_test_recorder".into()),
        timeout: Duration::from_secs(5),
    })
    .expect("client");
    // The first attempt meets a 503 (retryable); the retry, with the same attempt key,
    // succeeds.
    assert_eq!(
        charge(&g, "attempt-1", "4242424242424242", 1250).await,
        Err(GatewayError::Server { status: 503 })
    );
    let ChargeOutcome::Succeeded(paid) =
        charge(&g, "attempt-1", "4242424242424242", 1250).await.expect("retry")
    else {
        panic!("the retry succeeds")
    };
    assert_eq!(paid.charge_id, "pi_rec");

    let seen = seen.lock().expect("lock").clone();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/payment_methods",
            "/v1/payment_intents",
            "/v1/payment_methods",
            "/v1/payment_intents"
        ]
    );
    let keys: Vec<Option<&str>> = seen.iter().map(|s| s.idempotency_key.as_deref()).collect();
    let pm_key = keys[0].expect("the payment method has an Idempotency-Key");
    let intent_key = keys[1].expect("the PaymentIntent has an Idempotency-Key");
    assert_ne!(pm_key, intent_key, "each object has its own key");
    assert_eq!(keys[2], Some(pm_key), "the retry sends the same keys");
    assert_eq!(keys[3], Some(intent_key), "the retry sends the same keys");
    for intent in seen.iter().filter(|s| s.path == "/v1/payment_intents") {
        let value =
            |name: &str| intent.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(value("payment_method_options[card][moto]"), Some("true"));
        assert_eq!(value("confirm"), Some("true"));
        assert_eq!(value("amount"), Some("1250"));
        assert_eq!(value("currency"), Some("usd"));
        assert_eq!(value("payment_method"), Some("pm_rec"));
    }
}
