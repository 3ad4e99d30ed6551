//! Refunds, full and partial: recorded before the gateway call, never more than was paid,
//! never twice for one key.

use ivrpay_card::IdempotencyKey;
use ivrpay_service::{RefundPayment, ServiceError};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{PaymentId, RefundStatus};

use crate::support::{Harness, fresh_key, gbp};

crate::on_both!(partial_then_the_rest_and_never_more, a_refund_retried_with_its_key_refunds_once);

fn refund(payment: &PaymentId, amount: Option<&str>, key: &str) -> RefundPayment {
    RefundPayment {
        payment: payment.clone(),
        amount: amount.map(gbp),
        reason: Some("requested_by_customer".to_owned()),
        idempotency_key: IdempotencyKey::new(key.to_owned()).expect("key"),
    }
}

async fn partial_then_the_rest_and_never_more(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let paid = h.pay(&call, "25.00", &fresh_key("refund"), "4242424242424242", "737").await;
    let payment = PaymentId::parse(paid.payment_id.as_deref().expect("id")).expect("id");
    let charge = paid.gateway_ref.clone().expect("charge id");

    let part =
        h.service.refund(refund(&payment, Some("10.00"), &fresh_key("r1"))).await.expect("refund");
    assert_eq!(part.status, RefundStatus::Succeeded);
    assert_eq!(part.amount_minor, 1000);
    assert!(
        part.gateway_ref.as_deref().is_some_and(|r| r.starts_with("re_")),
        "{:?}",
        part.gateway_ref
    );
    let too_much = h.service.refund(refund(&payment, Some("15.01"), &fresh_key("r2"))).await;
    assert!(matches!(too_much, Err(ServiceError::RefundExceedsPayment)), "{too_much:?}");
    // No amount: what is left.
    let rest = h.service.refund(refund(&payment, None, &fresh_key("r3"))).await.expect("refund");
    assert_eq!(rest.amount_minor, 1500);
    assert_eq!(h.sandbox.refunded(&charge), Some(2500));
    let stored = h.store.payment(&h.tenant, &payment).await.expect("payment");
    assert_eq!(stored.refunded_minor, 2500);
    let nothing_left = h.service.refund(refund(&payment, Some("0.01"), &fresh_key("r4"))).await;
    assert!(matches!(nothing_left, Err(ServiceError::RefundExceedsPayment)), "{nothing_left:?}");

    // A declined payment has nothing to refund.
    let declined =
        h.pay(&h.call(), "5.00", &fresh_key("declined"), "4000000000000002", "737").await;
    let declined = PaymentId::parse(declined.payment_id.as_deref().expect("id")).expect("id");
    let refused = h.service.refund(refund(&declined, Some("1.00"), &fresh_key("r5"))).await;
    assert!(matches!(refused, Err(ServiceError::InvalidState(_))), "{refused:?}");
    let unknown = PaymentId::generate(crate::support::now());
    let missing = h.service.refund(refund(&unknown, None, &fresh_key("r6"))).await;
    assert!(matches!(missing, Err(ServiceError::UnknownPayment)), "{missing:?}");
}

async fn a_refund_retried_with_its_key_refunds_once(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let paid = h.pay(&h.call(), "8.00", &fresh_key("once"), "5555555555554444", "737").await;
    let payment = PaymentId::parse(paid.payment_id.as_deref().expect("id")).expect("id");
    let key = fresh_key("refund-once");
    let first = h.service.refund(refund(&payment, Some("3.00"), &key)).await.expect("refund");
    let again = h.service.refund(refund(&payment, Some("3.00"), &key)).await.expect("replay");
    assert_eq!(again.id, first.id);
    assert_eq!(h.sandbox.refunded(paid.gateway_ref.as_deref().expect("charge")), Some(300));
    // The key names that refund: another amount under it is a conflict.
    let conflict = h.service.refund(refund(&payment, Some("4.00"), &key)).await;
    assert!(matches!(conflict, Err(ServiceError::IdempotencyConflict)), "{conflict:?}");
    let refunds = h.store.refunds_of(&h.tenant, &payment).await.expect("refunds");
    assert_eq!(refunds.len(), 1);
}
