//! The generic-pay connector against a real HTTP server on loopback that implements the
//! protocol of research/payments.md §1.1 (plus our refund extension). The server is written
//! here with axum and processes payments with the sandbox, so it behaves like a gateway
//! with Stripe's test cards and idempotency by `transaction_id`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use ivrpay_card::{
    CardData, Currency, Cvv, Expiry, IdempotencyKey, Money, Pan, PostalCode, Secret, TokenType,
};
use ivrpay_payments::generic::{GenericPay, GenericPayConfig};
use ivrpay_payments::sandbox::Sandbox;
use ivrpay_payments::{
    ChargeOutcome, ChargeRequest, Gateway, GatewayError, RefundRequest, TokenizeOutcome,
    TokenizeRequest,
};
use serde_json::{Value, json};

use crate::cards::{OUTCOMES, card, key, usd};

/// `twilio:s3cret`, base64.
const AUTH: &str = "Basic dHdpbGlvOnMzY3JldA==";

#[derive(Default)]
struct Peer {
    sandbox: Sandbox,
    requests: Mutex<Vec<Value>>,
    /// Answer this many requests with 503 before processing.
    unavailable: Mutex<u32>,
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// The protocol's answer for a decline or failure code.
fn error_code(code: &str) -> Value {
    json!({"charge_id": null, "token_id": null, "error_code": code, "error_message": "declined"})
}

fn card_of(body: &Value) -> Result<CardData, &'static str> {
    let pan =
        Pan::parse(field(body, "cardnumber").unwrap_or("")).map_err(|_| "incorrect_number")?;
    let month =
        field(body, "expiry_month").and_then(|m| m.parse().ok()).ok_or("invalid_expiry_month")?;
    let year =
        field(body, "expiry_year").and_then(|y| y.parse().ok()).ok_or("invalid_expiry_year")?;
    let expiry = Expiry::new(month, year).map_err(|_| "invalid_expiry_year")?;
    let cvv = match field(body, "cvv") {
        Some(c) => Some(Cvv::parse(c).map_err(|_| "invalid_cvc")?),
        None => None,
    };
    let postal_code = field(body, "postal_code").and_then(|p| PostalCode::parse(p).ok());
    Ok(CardData { pan, expiry, cvv, postal_code })
}

fn money_of(body: &Value) -> Option<Money> {
    let currency = Currency::from_code(field(body, "currency_code")?).ok()?;
    Money::parse_major(field(body, "amount")?, currency).ok()
}

fn failure(e: GatewayError) -> (StatusCode, Json<Value>) {
    match e {
        GatewayError::IdempotencyConflict => (StatusCode::CONFLICT, Json(json!({}))),
        GatewayError::Processing => (StatusCode::OK, Json(error_code("processing_error"))),
        GatewayError::UnknownCharge => (StatusCode::OK, Json(error_code("unknown_charge"))),
        GatewayError::RefundExceedsCharge => {
            (StatusCode::OK, Json(error_code("refund_exceeds_charge")))
        }
        GatewayError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, Json(json!({}))),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({}))),
    }
}

async fn handle(
    State(peer): State<Arc<Peer>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    peer.requests.lock().expect("lock").push(body.clone());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTH) {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    {
        let mut down = peer.unavailable.lock().expect("lock");
        if *down > 0 {
            *down -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
        }
    }
    let Some(Ok(key)) = field(&body, "transaction_id").map(IdempotencyKey::new) else {
        return (StatusCode::BAD_REQUEST, Json(json!({})));
    };
    let header_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    if header_key != Some(key.as_str()) {
        return (StatusCode::BAD_REQUEST, Json(json!({})));
    }
    match field(&body, "method") {
        Some("charge") => {
            let card = match card_of(&body) {
                Ok(c) => c,
                Err(code) => return (StatusCode::OK, Json(error_code(code))),
            };
            let Some(amount) = money_of(&body) else {
                return (StatusCode::BAD_REQUEST, Json(json!({})));
            };
            let description = field(&body, "description").unwrap_or("");
            let r = ChargeRequest {
                idempotency_key: &key,
                amount,
                card: &card,
                description,
                customer_reference: None,
            };
            match peer.sandbox.charge(&r).await {
                Ok(ChargeOutcome::Succeeded(c)) => (
                    StatusCode::OK,
                    Json(
                        json!({"charge_id": c.charge_id, "error_code": null, "error_message": null}),
                    ),
                ),
                Ok(ChargeOutcome::Declined(d)) => (
                    StatusCode::OK,
                    Json(error_code(d.gateway_code.as_deref().unwrap_or("card_declined"))),
                ),
                Err(e) => failure(e),
            }
        }
        Some("tokenize") => {
            let card = match card_of(&body) {
                Ok(c) => c,
                Err(code) => return (StatusCode::OK, Json(error_code(code))),
            };
            let token_type =
                field(&body, "token_type").and_then(TokenType::parse).unwrap_or_default();
            let r = TokenizeRequest {
                idempotency_key: &key,
                card: &card,
                token_type,
                customer_reference: None,
            };
            match peer.sandbox.tokenize(&r).await {
                Ok(TokenizeOutcome::Succeeded(t)) => (
                    StatusCode::OK,
                    Json(json!({"token_id": t.token, "error_code": null, "error_message": null})),
                ),
                Ok(TokenizeOutcome::Declined(d)) => (
                    StatusCode::OK,
                    Json(error_code(d.gateway_code.as_deref().unwrap_or("card_declined"))),
                ),
                Err(e) => failure(e),
            }
        }
        Some("refund") => {
            let Some(charge_id) = field(&body, "charge_id") else {
                return (StatusCode::BAD_REQUEST, Json(json!({})));
            };
            let r = RefundRequest { idempotency_key: &key, charge_id, amount: money_of(&body) };
            match peer.sandbox.refund(&r).await {
                Ok(refund) => (
                    StatusCode::OK,
                    Json(json!({
                        "refund_id": refund.refund_id,
                        "amount": refund.amount.to_major_string(),
                        "currency_code": refund.amount.currency().code().to_ascii_lowercase(),
                        "error_code": null,
                        "error_message": null,
                    })),
                ),
                Err(e) => failure(e),
            }
        }
        _ => (StatusCode::BAD_REQUEST, Json(json!({}))),
    }
}

/// Starts the peer on a loopback port; it lives as long as the test's runtime.
async fn start() -> (Arc<Peer>, String) {
    let peer = Arc::new(Peer::default());
    let app = axum::Router::new().route("/pay", post(handle)).with_state(peer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (peer, format!("http://{addr}/pay"))
}

fn connector(url: &str, password: &str) -> GenericPay {
    let mut parameters = BTreeMap::new();
    parameters.insert("merchant".to_string(), "acme".to_string());
    GenericPay::new(GenericPayConfig {
        url: url.to_string(),
        basic_auth: Some(("twilio".into(), Secret::new(password.to_string()))),
        parameters,
        timeout: Duration::from_secs(5),
    })
    .expect("client")
}

async fn charge(
    g: &GenericPay,
    k: &str,
    pan: &str,
    minor: u64,
) -> Result<ChargeOutcome, GatewayError> {
    let key = key(k);
    let card = card(pan);
    let r = ChargeRequest {
        idempotency_key: &key,
        amount: usd(minor),
        card: &card,
        description: "invoice 42",
        customer_reference: None,
    };
    g.charge(&r).await
}

#[tokio::test]
async fn every_test_card_over_the_protocol() {
    let (peer, url) = start().await;
    let g = connector(&url, "s3cret");
    for (i, &(pan, expected)) in OUTCOMES.iter().enumerate() {
        match (charge(&g, &format!("g{i}"), pan, 1999).await.expect("answered"), expected) {
            (ChargeOutcome::Succeeded(c), None) => {
                assert!(c.charge_id.starts_with("pi_sandbox_"));
                assert_eq!(c.amount, usd(1999));
            }
            (ChargeOutcome::Declined(d), Some(code)) => {
                assert_eq!(d.gateway_code.as_deref(), Some(code), "{pan}")
            }
            (other, _) => panic!("{pan}: {other:?}"),
        }
    }
    assert_eq!(charge(&g, "proc", "4000000000000119", 100).await, Err(GatewayError::Processing));
    // The request is the protocol's JSON.
    let requests = peer.requests.lock().expect("lock");
    let first = &requests[0];
    assert_eq!(first["method"], "charge");
    assert_eq!(first["transaction_id"], "g0");
    assert_eq!(first["cardnumber"], "4242424242424242");
    assert_eq!(first["cvv"], "123");
    assert_eq!(
        (first["expiry_month"].as_str(), first["expiry_year"].as_str()),
        (Some("12"), Some("30"))
    );
    assert_eq!(first["postal_code"], "94107");
    assert_eq!(
        (first["amount"].as_str(), first["currency_code"].as_str()),
        (Some("19.99"), Some("usd"))
    );
    assert_eq!(first["description"], "invoice 42");
    assert_eq!(first["parameters"], json!({"merchant": "acme"}));
}

#[tokio::test]
async fn transaction_id_is_the_idempotency_key() {
    let (peer, url) = start().await;
    let g = connector(&url, "s3cret");
    let a = charge(&g, "same", "4242424242424242", 700).await.expect("ok");
    let b = charge(&g, "same", "4242424242424242", 700).await.expect("ok");
    let (ChargeOutcome::Succeeded(a), ChargeOutcome::Succeeded(b)) = (a, b) else { panic!() };
    assert_eq!(a.charge_id, b.charge_id);
    assert_eq!(peer.sandbox.charges_for(&key("same")), 1);
    assert_eq!(
        charge(&g, "same", "4242424242424242", 701).await,
        Err(GatewayError::IdempotencyConflict)
    );
}

#[tokio::test]
async fn http_failures_are_classified() {
    let (peer, url) = start().await;
    // 503, then the retry with the same key succeeds once.
    *peer.unavailable.lock().expect("lock") = 1;
    let g = connector(&url, "s3cret");
    let e = charge(&g, "h1", "4242424242424242", 100).await.expect_err("503");
    assert_eq!(e, GatewayError::Server { status: 503 });
    assert!(e.is_retryable());
    assert!(matches!(
        charge(&g, "h1", "4242424242424242", 100).await,
        Ok(ChargeOutcome::Succeeded(_))
    ));
    assert_eq!(peer.sandbox.charges_for(&key("h1")), 1);
    // Wrong password: not retryable.
    let bad = connector(&url, "wrong");
    assert_eq!(
        charge(&bad, "h2", "4242424242424242", 100).await,
        Err(GatewayError::Authentication)
    );
    // Nobody listening: a connection error, retryable.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let gone = connector(&format!("http://127.0.0.1:{port}/pay"), "s3cret");
    let e = charge(&gone, "h3", "4242424242424242", 100).await.expect_err("refused");
    assert_eq!(e, GatewayError::Connection);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn tokenize_and_refunds() {
    let (peer, url) = start().await;
    let g = connector(&url, "s3cret");
    let k = key("t1");
    let c = card("4242424242424242");
    let r = TokenizeRequest {
        idempotency_key: &k,
        card: &c,
        token_type: TokenType::OneTime,
        customer_reference: None,
    };
    let TokenizeOutcome::Succeeded(t) = g.tokenize(&r).await.expect("ok") else { panic!() };
    assert!(t.token.starts_with("tok_"));
    assert_eq!(peer.requests.lock().expect("lock")[0]["token_type"], "one-time");
    let k = key("t2");
    let c = card("4000000000000069");
    let r = TokenizeRequest {
        idempotency_key: &k,
        card: &c,
        token_type: TokenType::Reusable,
        customer_reference: None,
    };
    let TokenizeOutcome::Declined(d) = g.tokenize(&r).await.expect("answered") else { panic!() };
    assert_eq!(d.gateway_code.as_deref(), Some("expired_card"));

    let ChargeOutcome::Succeeded(paid) =
        charge(&g, "p1", "4242424242424242", 1000).await.expect("ok")
    else {
        panic!()
    };
    let refund = |k: &str, amount: Option<Money>| {
        let k = key(k);
        let id = paid.charge_id.clone();
        let g = &g;
        async move { g.refund(&RefundRequest { idempotency_key: &k, charge_id: &id, amount }).await }
    };
    assert_eq!(refund("r1", Some(usd(250))).await.map(|r| r.amount), Ok(usd(250)));
    assert_eq!(refund("r1", Some(usd(250))).await.map(|r| r.amount), Ok(usd(250)), "replayed");
    assert_eq!(refund("r2", Some(usd(751))).await, Err(GatewayError::RefundExceedsCharge));
    assert_eq!(refund("r3", None).await.map(|r| r.amount), Ok(usd(750)));
    assert_eq!(peer.sandbox.refunded(&paid.charge_id), Some(1000));
    let k = key("r4");
    let unknown = RefundRequest { idempotency_key: &k, charge_id: "pi_unknown", amount: None };
    assert_eq!(g.refund(&unknown).await, Err(GatewayError::UnknownCharge));
}
