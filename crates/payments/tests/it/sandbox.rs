//! The sandbox: Stripe test mode in process.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_card::{Currency, Money, TokenType};
use ivrpay_payments::sandbox::{Fault, Sandbox};
use ivrpay_payments::{
    ChargeOutcome, ChargeRequest, DeclineCode, Gateway, GatewayError, RefundRequest,
    TokenizeOutcome, TokenizeRequest,
};

use crate::cards::{OUTCOMES, card, key, usd};

async fn charge(
    g: &dyn Gateway,
    k: &str,
    pan: &str,
    minor: u64,
) -> Result<ChargeOutcome, GatewayError> {
    let key = key(k);
    let card = card(pan);
    let request = ChargeRequest {
        idempotency_key: &key,
        amount: usd(minor),
        card: &card,
        description: "invoice 42",
        customer_reference: Some("cust-7"),
    };
    g.charge(&request).await
}

#[tokio::test]
async fn every_test_card_gives_stripes_outcome() {
    let g = Sandbox::new();
    for (i, &(pan, expected)) in OUTCOMES.iter().enumerate() {
        let outcome = charge(&g, &format!("k{i}"), pan, 1999).await.expect("answered");
        match (outcome, expected) {
            (ChargeOutcome::Succeeded(c), None) => {
                assert_eq!(c.amount, usd(1999));
                assert!(c.charge_id.starts_with("pi_sandbox_"));
                assert!(!c.replayed);
            }
            (ChargeOutcome::Declined(d), Some(code)) => {
                assert_eq!(d.gateway_code.as_deref(), Some(code), "{pan}");
            }
            (other, _) => panic!("{pan}: {other:?}"),
        }
    }
    // …0119 is a processing error: retryable, and not saved, so each retry executes.
    let e = charge(&g, "p", "4000000000000119", 100).await.expect_err("processing error");
    assert_eq!(e, GatewayError::Processing);
    assert!(e.is_retryable());
    let _ = charge(&g, "p", "4000000000000119", 100).await;
    assert_eq!(g.executions_for(&key("p")), 2);
    assert_eq!(g.charges_for(&key("p")), 0);
    // Declines carry our classification and the agent's wording.
    let ChargeOutcome::Declined(d) =
        charge(&g, "s", "4000000000009979", 100).await.expect("answered")
    else {
        panic!("declined expected")
    };
    assert_eq!(d.code, DeclineCode::StolenCard);
    assert_eq!(d.code.agent_message(), "card declined", "stolen is not revealed");
    // A real card number is refused in test mode.
    let ChargeOutcome::Declined(d) =
        charge(&g, "live", "4111111111111111", 100).await.expect("answered")
    else {
        panic!("declined expected")
    };
    assert_eq!(d.gateway_code.as_deref(), Some("test_mode_live_card"));
    assert_eq!(g.charge_count(), 2, "4242 and 5555 only");
}

#[tokio::test]
async fn same_key_replays_without_a_second_charge() {
    let g = Sandbox::new();
    let first = charge(&g, "pay-1", "4242424242424242", 500).await.expect("ok");
    let again = charge(&g, "pay-1", "4242424242424242", 500).await.expect("ok");
    let (ChargeOutcome::Succeeded(a), ChargeOutcome::Succeeded(b)) = (first, again) else {
        panic!("both succeed")
    };
    assert_eq!(a.charge_id, b.charge_id);
    assert!(!a.replayed && b.replayed);
    assert_eq!(g.charges_for(&key("pay-1")), 1);
    assert_eq!(g.executions_for(&key("pay-1")), 1);
    // A decline is replayed too (Stripe saves 402s).
    charge(&g, "pay-2", "4000000000000002", 500).await.expect("declined");
    charge(&g, "pay-2", "4000000000000002", 500).await.expect("declined");
    assert_eq!(g.executions_for(&key("pay-2")), 1);
}

#[tokio::test]
async fn same_key_different_request_is_a_conflict() {
    let g = Sandbox::new();
    charge(&g, "pay-1", "4242424242424242", 500).await.expect("ok");
    for (pan, amount) in [("4242424242424242", 501), ("5555555555554444", 500)] {
        let e = charge(&g, "pay-1", pan, amount).await.expect_err("conflict");
        assert_eq!(e, GatewayError::IdempotencyConflict);
        assert!(!e.is_retryable());
    }
    // Another operation under the same key conflicts as well.
    let k = key("pay-1");
    let c = card("4242424242424242");
    let t = TokenizeRequest {
        idempotency_key: &k,
        card: &c,
        token_type: TokenType::OneTime,
        customer_reference: None,
    };
    assert_eq!(g.tokenize(&t).await.expect_err("conflict"), GatewayError::IdempotencyConflict);
    assert_eq!(g.charge_count(), 1);
}

#[tokio::test]
async fn invalid_amounts_are_refused_and_not_saved() {
    let g = Sandbox::new();
    let e = charge(&g, "z", "4242424242424242", 0).await.expect_err("zero");
    assert_eq!(e, GatewayError::InvalidRequest { code: Some("amount_too_small".into()) });
    let e = charge(&g, "z", "4242424242424242", 100_000_000).await.expect_err("too large");
    assert_eq!(e, GatewayError::InvalidRequest { code: Some("amount_too_large".into()) });
    // Not saved: the key is still free.
    assert!(matches!(
        charge(&g, "z", "4242424242424242", 100).await,
        Ok(ChargeOutcome::Succeeded(_))
    ));
}

#[tokio::test]
async fn faults() {
    let g = Sandbox::new();
    // 5xx before processing: nothing charged; the retry with the same key charges once.
    g.inject(Fault::ServerError);
    let e = charge(&g, "f1", "4242424242424242", 100).await.expect_err("5xx");
    assert_eq!(e, GatewayError::Server { status: 503 });
    assert!(e.is_retryable());
    assert_eq!(g.charges_for(&key("f1")), 0);
    let ok = charge(&g, "f1", "4242424242424242", 100).await.expect("retried");
    assert!(matches!(ok, ChargeOutcome::Succeeded(ref c) if !c.replayed));
    // Time-out before processing: same.
    g.inject(Fault::TimeoutBeforeProcessing);
    assert_eq!(charge(&g, "f2", "4242424242424242", 100).await, Err(GatewayError::Timeout));
    assert_eq!(g.charges_for(&key("f2")), 0);
    // Time-out after processing: charged, the caller does not know; the retry replays.
    g.inject(Fault::TimeoutAfterProcessing);
    assert_eq!(charge(&g, "f3", "4242424242424242", 100).await, Err(GatewayError::Timeout));
    assert_eq!(g.charges_for(&key("f3")), 1);
    let replay = charge(&g, "f3", "4242424242424242", 100).await.expect("replayed");
    assert!(matches!(replay, ChargeOutcome::Succeeded(ref c) if c.replayed));
    assert_eq!(g.charges_for(&key("f3")), 1);
    // A hang never answers: the caller's deadline fires.
    g.inject(Fault::HangAfterProcessing);
    let hung =
        tokio::time::timeout(Duration::from_millis(50), charge(&g, "f4", "4242424242424242", 100))
            .await;
    assert!(hung.is_err(), "must not answer");
    assert_eq!(g.charges_for(&key("f4")), 1);
    assert_eq!(g.charge_count(), 3);
}

#[tokio::test]
async fn tokenize_per_token_type() {
    let g = Sandbox::new();
    let c = card("4242424242424242");
    for (i, (tt, prefix, customer)) in [
        (TokenType::OneTime, "tok_", false),
        (TokenType::Reusable, "pm_", true),
        (TokenType::PaymentMethod, "pm_", false),
    ]
    .into_iter()
    .enumerate()
    {
        let k = key(&format!("t{i}"));
        let r = TokenizeRequest {
            idempotency_key: &k,
            card: &c,
            token_type: tt,
            customer_reference: None,
        };
        let TokenizeOutcome::Succeeded(t) = g.tokenize(&r).await.expect("ok") else {
            panic!("{tt}")
        };
        assert!(t.token.starts_with(prefix), "{}", t.token);
        assert_eq!(t.customer.is_some(), customer);
        let TokenizeOutcome::Succeeded(again) = g.tokenize(&r).await.expect("ok") else { panic!() };
        assert_eq!((again.token, again.replayed), (t.token, true));
    }
    // Verification declines the same cards a charge does, but 0341 attaches fine.
    for (pan, ok) in
        [("4000000000000341", true), ("4000000000000002", false), ("4000000000000069", false)]
    {
        let k = key(&format!("v{pan}"));
        let c = card(pan);
        let r = TokenizeRequest {
            idempotency_key: &k,
            card: &c,
            token_type: TokenType::Reusable,
            customer_reference: None,
        };
        assert_eq!(matches!(g.tokenize(&r).await, Ok(TokenizeOutcome::Succeeded(_))), ok, "{pan}");
    }
    assert_eq!(g.charge_count(), 0, "tokenizing charges nothing");
}

#[tokio::test]
async fn refunds_full_and_partial() {
    let g = Sandbox::new();
    let ChargeOutcome::Succeeded(c) =
        charge(&g, "pay", "4242424242424242", 1000).await.expect("ok")
    else {
        panic!()
    };
    let refund = |k: &'static str, amount: Option<Money>| {
        let g = &g;
        let id = c.charge_id.clone();
        async move {
            let k = key(k);
            g.refund(&RefundRequest { idempotency_key: &k, charge_id: &id, amount }).await
        }
    };
    let r1 = refund("r1", Some(usd(300))).await.expect("partial");
    assert_eq!(r1.amount, usd(300));
    assert!(r1.refund_id.starts_with("re_sandbox_"));
    // Replayed, not refunded twice.
    assert!(refund("r1", Some(usd(300))).await.expect("replay").replayed);
    assert_eq!(g.refunded(&c.charge_id), Some(300));
    assert_eq!(refund("r2", Some(usd(800))).await, Err(GatewayError::RefundExceedsCharge));
    assert_eq!(
        refund("r3", Some(Money::from_minor(100, Currency::EUR))).await,
        Err(GatewayError::InvalidRequest { code: Some("currency_mismatch".into()) })
    );
    // Full refund of what is left.
    let rest = refund("r4", None).await.expect("rest");
    assert_eq!(rest.amount, usd(700));
    assert_eq!(refund("r5", None).await, Err(GatewayError::RefundExceedsCharge));
    let k = key("r6");
    let unknown = RefundRequest { idempotency_key: &k, charge_id: "pi_nope", amount: None };
    assert_eq!(g.refund(&unknown).await, Err(GatewayError::UnknownCharge));
}

#[tokio::test]
async fn the_journal_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("ivrpay-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    let charge_id = {
        let g = Sandbox::open(&path).expect("open");
        g.inject(Fault::TimeoutAfterProcessing);
        assert_eq!(charge(&g, "crash", "4242424242424242", 1234).await, Err(GatewayError::Timeout));
        let ChargeOutcome::Succeeded(c) =
            charge(&g, "other", "5555555555554444", 10).await.expect("ok")
        else {
            panic!()
        };
        c.charge_id
        // The process "dies" here: the sandbox is dropped without any shutdown.
    };
    // A torn line, as if the process died mid-write.
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(b"{\"key\":\"torn\",\"rec").expect("write");
    }
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("4242424242424242") && !text.contains("5555555555554444"), "no PAN");
    assert!(!text.contains("\"123\""), "no CVV");

    let g = Arc::new(Sandbox::open(&path).expect("reopen"));
    let replay = charge(g.as_ref(), "crash", "4242424242424242", 1234).await.expect("replayed");
    assert!(matches!(replay, ChargeOutcome::Succeeded(ref c) if c.replayed));
    assert_eq!(g.charges_for(&key("crash")), 1, "one charge across the restart");
    assert_eq!(g.charge_count(), 2);
    // State needed for refunds came back, and new ids do not collide.
    let k = key("refund-after-restart");
    let r =
        g.refund(&RefundRequest { idempotency_key: &k, charge_id: &charge_id, amount: None }).await;
    assert_eq!(r.map(|r| r.amount), Ok(usd(10)));
    let ChargeOutcome::Succeeded(fresh) =
        charge(g.as_ref(), "new", "4242424242424242", 1).await.expect("ok")
    else {
        panic!()
    };
    assert_ne!(fresh.charge_id, charge_id);
    let _ = std::fs::remove_dir_all(&dir);
}
