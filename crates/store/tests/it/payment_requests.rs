//! Payment requests for IVR self-service: references unique among live requests, claimed by
//! one call at a time, released, expired, paid, and reused once over.

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    CallId, NewPaymentRequest, NewSession, PaymentRequestStatus, StoreError, TenantId, Timestamp,
    TokenType,
};

use crate::on_both;
use crate::support::{at, key, store, succeeded_payment, tenant, usd};

on_both!(
    a_request_is_claimed_by_one_call_and_paid_once,
    references_are_reused_once_a_request_is_over
);

fn request(tenant: &TenantId, reference: &str, expires_at: Option<Timestamp>) -> NewPaymentRequest {
    NewPaymentRequest {
        tenant_id: tenant.clone(),
        reference: reference.to_owned(),
        amount: usd(1250),
        description: Some("invoice 17".to_owned()),
        customer_ref: Some("ACME-1".to_owned()),
        expires_at,
    }
}

async fn a_request_is_claimed_by_one_call_and_paid_once(db: &TestDatabase) {
    let store = store(db);
    let tenant = tenant(store, "requests").await;
    let created = store
        .create_payment_request(&request(&tenant, "1234567", None), at(0))
        .await
        .expect("create");
    assert!(created.id.as_str().starts_with("preq_"));
    assert_eq!((created.status, created.amount()), (PaymentRequestStatus::Open, usd(1250)));
    // The same reference while the first request is live: refused.
    let duplicate = store.create_payment_request(&request(&tenant, "1234567", None), at(1)).await;
    assert!(duplicate.as_ref().is_err_and(StoreError::is_unique_violation), "{duplicate:?}");

    let (a, b) = (CallId::generate(at(2)), CallId::generate(at(3)));
    let claimed = store.claim_payment_request(&tenant, "1234567", &a, at(4)).await.expect("claim");
    let claimed = claimed.expect("open request claimed");
    assert_eq!(claimed.status, PaymentRequestStatus::Claimed);
    assert_eq!(claimed.call_id.as_ref(), Some(&a));
    // Another caller keying the same reference meanwhile finds nothing to pay.
    assert_eq!(
        store.claim_payment_request(&tenant, "1234567", &b, at(5)).await.expect("claim"),
        None
    );
    assert!(
        !store.release_payment_request(&tenant, &created.id, &b, at(6)).await.expect("release")
    );
    // The first call hangs up without paying: the request is open again, for anyone.
    assert!(store.release_payment_request(&tenant, &created.id, &a, at(7)).await.expect("release"));
    let again = store.claim_payment_request(&tenant, "1234567", &b, at(8)).await.expect("claim");
    assert_eq!(again.map(|r| r.call_id.as_ref().cloned()), Some(Some(b.clone())));
    // Only the claiming call settles it.
    let session = store
        .open_session(
            &NewSession {
                tenant_id: tenant.clone(),
                call_id: None,
                idempotency_key: key("preq-session-1"),
                amount: usd(1250),
                description: None,
                customer_ref: None,
                token_type: TokenType::OneTime,
            },
            at(9),
        )
        .await
        .expect("session");
    let payment = succeeded_payment(store, &tenant, "preq-payment-1", usd(1250)).await;
    let wrong = store
        .settle_payment_request(&tenant, &created.id, &a, &session.id, Some(&payment.id), at(10))
        .await;
    assert!(matches!(wrong, Err(StoreError::InvalidState { .. })), "{wrong:?}");
    let paid = store
        .settle_payment_request(&tenant, &created.id, &b, &session.id, Some(&payment.id), at(11))
        .await
        .expect("settle");
    assert_eq!(paid.status, PaymentRequestStatus::Paid);
    assert_eq!(paid.session_id.as_ref(), Some(&session.id));
    assert_eq!(paid.payment_id.as_ref(), Some(&payment.id));
    assert_eq!(store.payment_request(&tenant, &created.id).await.expect("read"), paid);
    // Paid is final: no claim, no release.
    assert_eq!(
        store.claim_payment_request(&tenant, "1234567", &a, at(12)).await.expect("claim"),
        None
    );
    assert!(
        !store.release_payment_request(&tenant, &created.id, &b, at(13)).await.expect("release")
    );
    // Another tenant's references are its own.
    let other = tenant_named(store, "other").await;
    assert_eq!(
        store.claim_payment_request(&other, "1234567", &a, at(14)).await.expect("claim"),
        None
    );
}

async fn tenant_named(store: &ivrpay_store::Store, name: &str) -> TenantId {
    tenant(store, name).await
}

async fn references_are_reused_once_a_request_is_over(db: &TestDatabase) {
    let store = store(db);
    let tenant = tenant(store, "reuse").await;
    let call = CallId::generate(at(0));
    let expiring = store
        .create_payment_request(&request(&tenant, "7654321", Some(at(1_000))), at(0))
        .await
        .expect("create");
    // Expired: it cannot be claimed, and a new request may take its reference.
    assert_eq!(
        store.claim_payment_request(&tenant, "7654321", &call, at(1_000)).await.expect("claim"),
        None
    );
    let next = store
        .create_payment_request(&request(&tenant, "7654321", None), at(2_000))
        .await
        .expect("the expired request's reference is free");
    let old = store.payment_request(&tenant, &expiring.id).await.expect("read");
    assert_eq!(old.status, PaymentRequestStatus::Expired);
    // A claimed request that expires while claimed is expired, not reopened, on release.
    let claimed = store
        .create_payment_request(&request(&tenant, "1111111", Some(at(5_000))), at(3_000))
        .await
        .expect("create");
    assert!(
        store
            .claim_payment_request(&tenant, "1111111", &call, at(4_000))
            .await
            .expect("claim")
            .is_some()
    );
    assert!(
        store
            .release_payment_request(&tenant, &claimed.id, &call, at(6_000))
            .await
            .expect("release")
    );
    let released = store.payment_request(&tenant, &claimed.id).await.expect("read");
    assert_eq!((released.status, released.call_id.as_ref()), (PaymentRequestStatus::Expired, None));
    assert_eq!(next.status, PaymentRequestStatus::Open);
    let missing = ivrpay_store::PaymentRequestId::parse("preq_missing").expect("id");
    assert!(matches!(
        store.payment_request(&tenant, &missing).await,
        Err(StoreError::NotFound { kind: "payment request" })
    ));
}
