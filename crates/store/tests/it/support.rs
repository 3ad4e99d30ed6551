//! Fixtures shared by the suites.

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    BegunPayment, CallId, CallRecord, Currency, IdempotencyKey, Money, NewCall, NewPayment,
    NewSink, PaymentOutcome, PaymentRecord, PendingPayment, SinkId, Store, StoreError, TenantId,
    Timestamp,
};

/// A fixed instant plus `ms`.
pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(1_764_000_000_000 + ms)
}

pub fn usd(minor: u64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

pub fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).expect("valid key")
}

/// A tenant that exists.
pub async fn tenant(store: &Store, name: &str) -> TenantId {
    let id = TenantId::parse(&format!("ten_{name}")).expect("tenant id");
    store.ensure_tenant(&id, name, at(0)).await.expect("tenant");
    id
}

/// A sink receiving `types`.
pub async fn sink(store: &Store, tenant: &TenantId, kind: &str, types: &[&str]) -> SinkId {
    let sink = NewSink {
        tenant_id: tenant.clone(),
        kind: kind.to_owned(),
        name: format!("{kind} sink"),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        config: serde_json::json!({}),
    };
    store.add_sink(&sink, at(0)).await.expect("sink")
}

pub fn new_payment(tenant: &TenantId, idempotency_key: &str, amount: Money) -> NewPayment {
    NewPayment {
        tenant_id: tenant.clone(),
        idempotency_key: key(idempotency_key),
        amount,
        description: Some("invoice 17".to_owned()),
        session_id: None,
        call_id: None,
        token_id: None,
        card: Some(ivrpay_store::CardSummary::new("visa", "4242").expect("summary")),
        gateway: "sandbox".to_owned(),
    }
}

pub async fn begin_pending(store: &Store, new: &NewPayment, now: Timestamp) -> PendingPayment {
    match store.begin_payment(new, now).await.expect("begin") {
        BegunPayment::Pending(p) => p,
        BegunPayment::Finished(r) => panic!("expected pending, found {:?}", r.status),
    }
}

/// A payment that succeeded.
pub async fn succeeded_payment(
    store: &Store,
    tenant: &TenantId,
    idempotency_key: &str,
    amount: Money,
) -> PaymentRecord {
    let pending = begin_pending(store, &new_payment(tenant, idempotency_key, amount), at(1)).await;
    let outcome = PaymentOutcome::Succeeded { gateway_ref: format!("pi_{idempotency_key}") };
    store.record_payment_result(pending, &outcome, at(2)).await.expect("record")
}

/// The fixture's store (a shorthand).
pub fn store(db: &TestDatabase) -> &Store {
    db.store()
}

/// Starts a call with a fresh id, as the B2BUA would.
pub async fn start_call(
    store: &Store,
    tenant: &TenantId,
    sip_call_id: &str,
    now: Timestamp,
) -> Result<CallRecord, StoreError> {
    let new = NewCall {
        id: CallId::generate(now),
        tenant_id: tenant.clone(),
        sip_call_id: sip_call_id.to_owned(),
        profile: "default".to_owned(),
        agent: None,
        caller: Some("sip:+441234567890@carrier".to_owned()),
        called: Some("sip:pay@ivrpay".to_owned()),
        node: "node-1".to_owned(),
    };
    store.start_call(&new, now).await
}
