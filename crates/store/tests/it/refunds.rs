//! Refunds: partial and full, never more than was charged, even when they race.

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunRefund, Currency, EventType, Money, NewRefund, PaymentId, PaymentOutcome, RefundOutcome,
    RefundStatus, StoreError, TenantId,
};

use crate::support::{at, begin_pending, key, new_payment, store, succeeded_payment, tenant, usd};

crate::on_both!(
    partial_then_full_refund,
    refunds_are_checked,
    racing_refunds_never_exceed_the_charge
);

fn refund(tenant: &TenantId, payment: &PaymentId, k: &str, amount: Money) -> NewRefund {
    NewRefund {
        tenant_id: tenant.clone(),
        payment_id: payment.clone(),
        idempotency_key: key(k),
        amount,
        reason: Some("requested_by_customer".to_owned()),
    }
}

async fn partial_then_full_refund(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let paid = succeeded_payment(s, &t, "p1", usd(1000)).await;

    let BegunRefund::Pending(first) =
        s.begin_refund(&refund(&t, &paid.id, "r1", usd(300)), at(3)).await.expect("begin")
    else {
        panic!("new refund must be pending")
    };
    assert_eq!(first.gateway_payment_ref(), Some("pi_p1"));
    assert_eq!(first.gateway_idempotency_key(), first.record().id.as_str());
    let done = s
        .record_refund_result(
            first,
            &RefundOutcome::Succeeded { gateway_ref: "re_1".to_owned() },
            at(4),
        )
        .await
        .expect("record");
    assert_eq!(done.status, RefundStatus::Succeeded);
    assert_eq!(s.payment(&t, &paid.id).await.expect("payment").refunded_minor, 300);

    // Replaying the key returns the finished refund.
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "r1", usd(300)), at(5)).await.expect("replay"),
        BegunRefund::Finished(_)
    ));
    // The rest, exactly.
    let BegunRefund::Pending(rest) =
        s.begin_refund(&refund(&t, &paid.id, "r2", usd(700)), at(6)).await.expect("begin")
    else {
        panic!("pending")
    };
    s.record_refund_result(
        rest,
        &RefundOutcome::Succeeded { gateway_ref: "re_2".to_owned() },
        at(7),
    )
    .await
    .expect("record");
    assert_eq!(s.payment(&t, &paid.id).await.expect("payment").refunded_minor, 1000);
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "r3", usd(1)), at(8)).await,
        Err(StoreError::RefundExceedsPayment)
    ));
    assert_eq!(s.refunds_of(&t, &paid.id).await.expect("list").len(), 2);
    let types: Vec<_> =
        s.events_since(&t, 0, 10).await.expect("feed").into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![EventType::PaymentSucceeded, EventType::RefundSucceeded, EventType::RefundSucceeded]
    );
}

async fn refunds_are_checked(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let paid = succeeded_payment(s, &t, "p1", usd(1000)).await;
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "big", usd(1001)), at(3)).await,
        Err(StoreError::RefundExceedsPayment)
    ));
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "eur", Money::from_minor(10, Currency::EUR)), at(3))
            .await,
        Err(StoreError::RefundExceedsPayment)
    ));
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "zero", usd(0)), at(3)).await,
        Err(StoreError::InvalidState { .. })
    ));
    assert!(matches!(
        s.begin_refund(&refund(&t, &PaymentId::random(), "ghost", usd(1)), at(3)).await,
        Err(StoreError::NotFound { kind: "payment" })
    ));
    // Another tenant cannot refund it.
    let other = tenant(s, "globex").await;
    assert!(matches!(
        s.begin_refund(&refund(&other, &paid.id, "steal", usd(1)), at(3)).await,
        Err(StoreError::NotFound { .. })
    ));
    // A declined payment has nothing to refund.
    let declined = begin_pending(s, &new_payment(&t, "p2", usd(50)), at(1)).await;
    let outcome = PaymentOutcome::Declined {
        gateway_ref: None,
        code: "card_declined".to_owned(),
        message: None,
    };
    let declined = s.record_payment_result(declined, &outcome, at(2)).await.expect("record");
    assert!(matches!(
        s.begin_refund(&refund(&t, &declined.id, "d", usd(1)), at(3)).await,
        Err(StoreError::InvalidState { .. })
    ));
    // A failed refund frees its amount again.
    let BegunRefund::Pending(failing) =
        s.begin_refund(&refund(&t, &paid.id, "f", usd(1000)), at(4)).await.expect("begin")
    else {
        panic!("pending")
    };
    let failed = s
        .record_refund_result(
            failing,
            &RefundOutcome::Failed { code: "charge_disputed".to_owned(), message: None },
            at(5),
        )
        .await
        .expect("record");
    assert_eq!(failed.status, RefundStatus::Failed);
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "g", usd(1000)), at(6)).await.expect("begin"),
        BegunRefund::Pending(_)
    ));
    // Same key, different amount.
    assert!(matches!(
        s.begin_refund(&refund(&t, &paid.id, "g", usd(999)), at(7)).await,
        Err(StoreError::IdempotencyConflict { kind: "refund" })
    ));
}

async fn racing_refunds_never_exceed_the_charge(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let paid = succeeded_payment(s, &t, "p1", usd(100)).await;
    let mut jobs = Vec::new();
    for i in 0..8 {
        let (s, new) = (s.clone(), refund(&t, &paid.id, &format!("race-{i}"), usd(30)));
        jobs.push(tokio::spawn(async move { s.begin_refund(&new, at(3)).await }));
    }
    let mut accepted = 0;
    for job in jobs {
        match job.await.expect("join") {
            Ok(BegunRefund::Pending(_)) => accepted += 1,
            Err(StoreError::RefundExceedsPayment) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 3, "3 × 30 fit in 100, a fourth does not");
}
