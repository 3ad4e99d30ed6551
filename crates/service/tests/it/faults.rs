//! A gateway that fails, times out or never answers: retried with the same key, never
//! charged twice, and a payment left in doubt is finished by keying the card again, on the
//! same call or on the call back.

use std::sync::Arc;
use std::time::Duration;

use ivrpay_card::IdempotencyKey;
use ivrpay_payments::RetryPolicy;
use ivrpay_payments::sandbox::{Fault, Sandbox};
use ivrpay_service::{PaymentView, Status};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{PaymentStatus, SessionStatus};

use crate::support::{EXPIRY, Harness, Options, fresh_key, payment};

crate::on_both!(
    failures_before_an_answer_are_retried_with_the_same_key,
    an_unanswered_charge_is_found_when_the_card_is_keyed_again,
    the_customer_who_calls_back_finishes_the_same_payment,
);

fn gateway_key(view: &PaymentView) -> IdempotencyKey {
    IdempotencyKey::new(view.payment_id.clone().expect("payment id")).expect("key")
}

async fn failures_before_an_answer_are_retried_with_the_same_key(db: &TestDatabase) {
    let h = Harness::new(db).await;
    for (fault, executions) in [
        (Fault::ServerError, 1),
        (Fault::TimeoutBeforeProcessing, 1),
        // The first try charged; the retry replays that answer.
        (Fault::TimeoutAfterProcessing, 1),
    ] {
        h.sandbox.inject(fault);
        let call = h.call();
        let done = h.pay(&call, "10.00", &fresh_key("fault"), "4242424242424242", "737").await;
        assert_eq!(done.status, Status::Succeeded, "{fault:?}");
        assert_eq!(h.sandbox.charges_for(&gateway_key(&done)), 1, "{fault:?}");
        assert_eq!(h.sandbox.executions_for(&gateway_key(&done)), executions, "{fault:?}");
    }
    assert_eq!(h.sandbox.charge_count(), 3);
}

/// One try of 300 ms and no retry: a hanging gateway leaves the payment in doubt.
fn impatient(sandbox: &Arc<Sandbox>) -> Options {
    Options {
        sandbox: Arc::clone(sandbox),
        retry: RetryPolicy { try_timeout: Duration::from_millis(300), backoff: Vec::new() },
        ..Options::default()
    }
}

async fn an_unanswered_charge_is_found_when_the_card_is_keyed_again(db: &TestDatabase) {
    let sandbox = Arc::new(Sandbox::new());
    let h = Harness::with(db.store().clone(), impatient(&sandbox)).await;
    sandbox.inject(Fault::HangAfterProcessing);
    let call = h.call();
    let key = fresh_key("doubt");
    let first = h.pay(&call, "10.00", &key, "4242424242424242", "737").await;
    assert_eq!(first.status, Status::Processing);
    assert!(
        first.error.as_deref().is_some_and(|e| e.contains("capture the card again")),
        "{:?}",
        first.error
    );
    assert_eq!(first.capturing, Some("payment-card-number"), "the card is asked for again");
    let stored = h
        .store
        .payment_by_key(&h.tenant, &IdempotencyKey::new(key).expect("key"))
        .await
        .expect("read")
        .expect("payment");
    assert_eq!(stored.status, PaymentStatus::Pending);
    assert_eq!(sandbox.charges_for(&gateway_key(&first)), 1, "the gateway did charge");

    h.keys(&call, &format!("4242424242424242{EXPIRY}737"));
    let done = h.service.complete(&first.id).await.expect("complete");
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.payment_id, first.payment_id, "the same payment, resumed");
    assert_eq!(sandbox.charges_for(&gateway_key(&done)), 1, "found, not charged again");
    assert_eq!(sandbox.executions_for(&gateway_key(&done)), 1, "the retry was a replay");
    assert_eq!(sandbox.charge_count(), 1);
}

async fn the_customer_who_calls_back_finishes_the_same_payment(db: &TestDatabase) {
    let sandbox = Arc::new(Sandbox::new());
    let h = Harness::with(db.store().clone(), impatient(&sandbox)).await;
    sandbox.inject(Fault::HangAfterProcessing);
    let key = fresh_key("dropped");
    let call = h.call();
    let first = h.pay(&call, "42.00", &key, "5555555555554444", "737").await;
    assert_eq!(first.status, Status::Processing);
    // The call drops while the payment is in doubt: the session stays open for the call back.
    h.service.call_ended(&call, "customer_hangup");
    h.service.wait_idle(Duration::from_secs(5)).await;
    assert_eq!(
        h.store.session(&h.tenant, &first.id).await.expect("session").status,
        SessionStatus::Open
    );

    let back = h.call();
    let resumed = h.service.open_payment(&back, payment("42.00", &key)).await.expect("resume");
    assert_eq!(resumed.id, first.id);
    assert_eq!(resumed.status, Status::Open);
    h.keys(&back, &format!("5555555555554444{EXPIRY}737"));
    let done = h.service.complete(&resumed.id).await.expect("complete");
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.payment_id, first.payment_id);
    assert_eq!(sandbox.charge_count(), 1, "one charge across both calls");
    let session = h.store.session(&h.tenant, &first.id).await.expect("session");
    assert_eq!(session.call_id.as_ref(), Some(&back));
    assert_eq!(session.status, SessionStatus::Completed);
}
