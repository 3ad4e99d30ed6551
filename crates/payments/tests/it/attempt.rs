//! `PaymentAttempt`: the card until the gateway answers, the same key on every retry.

use std::time::Duration;

use ivrpay_card::TokenType;
use ivrpay_payments::sandbox::{Fault, Sandbox};
use ivrpay_payments::{Answer, GatewayError, Intent, PaymentAttempt, RetryPolicy, Submission};

use crate::cards::{card, key, usd};

fn attempt(k: &str, pan: &str) -> PaymentAttempt {
    PaymentAttempt::charge(key(k), usd(2500), card(pan), "invoice 9", Some("cust-1".into()))
}

#[tokio::test]
async fn answered_attempts_are_consumed() {
    let g = Sandbox::new();
    let a = attempt("a1", "4242424242424242");
    assert_eq!(a.card().pan.last4().as_str(), "4242");
    assert_eq!(a.intent(), Intent::Charge(usd(2500)));
    match a.submit(&g).await {
        Submission::Answered(Answer::Charged(c)) => assert_eq!(c.amount, usd(2500)),
        other => panic!("{other:?}"),
    }
    match attempt("a2", "4000000000009995").submit(&g).await {
        Submission::Answered(Answer::Declined(d)) => {
            assert_eq!(d.code.agent_message(), "insufficient funds")
        }
        other => panic!("{other:?}"),
    }
    let t = PaymentAttempt::tokenize(key("a3"), TokenType::OneTime, card("4242424242424242"), None);
    assert!(matches!(t.submit(&g).await, Submission::Answered(Answer::Tokenized(_))));
}

#[tokio::test]
async fn unanswered_attempts_come_back_with_the_card_and_the_key() {
    let g = Sandbox::new();
    g.inject(Fault::TimeoutAfterProcessing);
    let Submission::Unanswered { attempt, error } =
        attempt("b1", "4242424242424242").submit(&g).await
    else {
        panic!("a time-out is unanswered")
    };
    assert_eq!(error, GatewayError::Timeout);
    assert_eq!(attempt.tries(), 1);
    assert_eq!(attempt.card().pan.expose(), "4242424242424242", "kept for the retry");
    assert_eq!(attempt.idempotency_key().as_str(), "b1");
    match attempt.submit(&g).await {
        Submission::Answered(Answer::Charged(c)) => assert!(c.replayed),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.charges_for(&key("b1")), 1);
}

#[tokio::test]
async fn rejected_attempts_are_not_retried() {
    let g = Sandbox::new();
    assert!(matches!(attempt("c1", "4242424242424242").submit(&g).await, Submission::Answered(_)));
    // Same key, another card: a conflict is a bug, not something to retry.
    match attempt("c1", "5555555555554444").submit(&g).await {
        Submission::Rejected(GatewayError::IdempotencyConflict) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_policy_on_a_paused_clock() {
    let g = Sandbox::new();
    g.inject(Fault::ServerError);
    g.inject(Fault::HangAfterProcessing);
    g.inject(Fault::TimeoutBeforeProcessing);
    let policy = RetryPolicy {
        try_timeout: Duration::from_secs(3),
        backoff: vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400),
        ],
    };
    let started = tokio::time::Instant::now();
    match attempt("d1", "4242424242424242").submit_with_retries(&g, &policy).await {
        // Try 2 charged and hung; try 4 is answered by the replay.
        Submission::Answered(Answer::Charged(c)) => assert!(c.replayed),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.charges_for(&key("d1")), 1);
    assert_eq!(started.elapsed(), Duration::from_millis(100 + 3000 + 200 + 400));

    // Every try fails: the last `Unanswered` comes back after 1 + backoff.len() tries.
    for _ in 0..4 {
        g.inject(Fault::ServerError);
    }
    match attempt("d2", "4242424242424242").submit_with_retries(&g, &policy).await {
        Submission::Unanswered { attempt, error } => {
            assert_eq!(attempt.tries(), 4);
            assert_eq!(error, GatewayError::Server { status: 503 });
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.charges_for(&key("d2")), 0);
}

#[tokio::test]
async fn requests_attempts_and_answers_print_no_card_data() {
    let g = Sandbox::new();
    let a = attempt("e1", "4000056655665556");
    let k = key("e2");
    let c = card("4000056655665556");
    let request = ivrpay_payments::ChargeRequest {
        idempotency_key: &k,
        amount: usd(1),
        card: &c,
        description: "",
        customer_reference: None,
    };
    let mut shown = format!("{a:?} {a:#?} {request:?}");
    g.inject(Fault::TimeoutBeforeProcessing);
    let unanswered = a.submit(&g).await;
    shown.push_str(&format!("{unanswered:?}"));
    let Submission::Unanswered { attempt, .. } = unanswered else { panic!("time-out") };
    shown.push_str(&format!("{:?}", attempt.submit(&g).await));
    for secret in ["4000056655665556", "123", "94107", "5556"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
