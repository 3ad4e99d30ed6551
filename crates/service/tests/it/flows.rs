//! Payments taken on calls: digits in, the stored result and what the agent sees out.

use std::time::Duration;

use ivrpay_capture::Field;
use ivrpay_card::IdempotencyKey;
use ivrpay_service::{ServiceError, Status};
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{CallId, PaymentId, PaymentStatus, SessionId, SessionStatus};

use crate::support::{EXPIRY, Harness, fresh_key, payment};

crate::on_both!(
    a_keyed_card_is_charged_once_and_the_agent_sees_the_last_four,
    each_test_card_gives_stripes_outcome,
    a_zero_amount_session_tokenizes_the_card,
    a_mistyped_field_is_reported_and_keyed_again,
    completing_early_names_the_missing_fields,
    one_payment_at_a_time_per_call,
    hanging_up_cancels_the_payment_being_keyed,
    payments_need_a_call_in_progress,
    a_finished_payment_is_read_back_from_the_store,
    many_calls_pay_at_once,
);

async fn a_keyed_card_is_charged_once_and_the_agent_sees_the_last_four(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let key = fresh_key("invoice-1042");
    let view = h.open(&call, "12.50", &key).await;
    assert_eq!(view.amount, "12.50");
    assert_eq!(view.currency, "GBP");
    assert_eq!(view.required, ["payment-card-number", "expiration-date", "security-code"]);
    assert_eq!(view.capturing, Some("payment-card-number"));

    h.keys(&call, "4242424242424242");
    let typed = h.service.payment(&view.id).await.expect("view");
    assert_eq!(typed.brand.as_deref(), Some("visa"));
    assert_eq!(typed.last4.as_deref(), Some("4242"));
    assert_eq!(typed.capturing, Some("expiration-date"));
    let number = &typed.fields[0];
    assert_eq!((number.field, number.complete), ("payment-card-number", true));
    assert!(number.masked.ends_with("4242"), "{}", number.masked);
    assert_eq!(number.masked.chars().filter(char::is_ascii_digit).count(), 4);

    h.keys(&call, &format!("{EXPIRY}737"));
    let ready = h.service.payment(&view.id).await.expect("view");
    assert!(ready.required.is_empty(), "{:?}", ready.required);
    let code = ready.fields.iter().find(|f| f.field == "security-code").expect("code field");
    assert!(code.complete);
    assert!(
        !code.masked.chars().any(|c| c.is_ascii_digit()),
        "the code is masked: {}",
        code.masked
    );

    let done = h.service.complete(&view.id).await.expect("complete");
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!((done.brand.as_deref(), done.last4.as_deref()), (Some("visa"), Some("4242")));
    let gateway_ref = done.gateway_ref.clone().expect("a charge id");
    let payment_id = done.payment_id.clone().expect("payment id");

    // The store holds the result, the session is completed, the gateway charged once.
    let stored = h
        .store
        .payment(&h.tenant, &PaymentId::parse(&payment_id).expect("id"))
        .await
        .expect("payment");
    assert_eq!(stored.status, PaymentStatus::Succeeded);
    assert_eq!(stored.amount_minor, 1250);
    assert_eq!(stored.gateway_ref.as_deref(), Some(gateway_ref.as_str()));
    assert_eq!(stored.gateway, "sandbox");
    assert!(stored.token_id.as_ref().is_some(), "the card went to the vault");
    let session = h.store.session(&h.tenant, &view.id).await.expect("session");
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(h.sandbox.charges_for(&IdempotencyKey::new(payment_id).expect("key")), 1);
    assert_eq!(h.sandbox.charge_count(), 1);

    // Completing again is a replay: same result, no second charge.
    let again = h.service.complete(&view.id).await;
    assert!(matches!(again, Err(ServiceError::NotOpen)), "{again:?}");
    assert_eq!(h.sandbox.charge_count(), 1);
}

/// Stripe's test cards through the whole path: status and the code the agent sees.
async fn each_test_card_gives_stripes_outcome(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let cases: [(&str, &str, Status, Option<&str>, &str); 10] = [
        ("4242424242424242", "737", Status::Succeeded, None, "visa"),
        ("5555555555554444", "737", Status::Succeeded, None, "mastercard"),
        ("378282246310005", "7391", Status::Succeeded, None, "amex"),
        ("4000000000000002", "737", Status::Declined, Some("generic_decline"), "visa"),
        ("4000000000009995", "737", Status::Declined, Some("insufficient_funds"), "visa"),
        // Lost and stolen read as a plain decline: the agent must not tell the caller.
        ("4000000000009987", "737", Status::Declined, Some("generic_decline"), "visa"),
        ("4000000000000069", "737", Status::Declined, Some("expired_card"), "visa"),
        ("4000000000000127", "737", Status::Declined, Some("incorrect_cvc"), "visa"),
        // A fraud suspicion too.
        ("4100000000000019", "737", Status::Declined, Some("generic_decline"), "visa"),
        // Retried with the same key, then reported: nothing charged, try again later.
        ("4000000000000119", "737", Status::Failed, Some("processing_error"), "visa"),
    ];
    for (card, cvc, status, code, brand) in cases {
        let call = h.call();
        let done = h.pay(&call, "20.00", &fresh_key("card"), card, cvc).await;
        assert_eq!(done.status, status, "card …{}", &card[card.len() - 4..]);
        assert_eq!(done.decline_code.as_deref(), code, "card …{}", &card[card.len() - 4..]);
        assert_eq!(done.brand.as_deref(), Some(brand));
        assert_eq!(done.last4.as_deref(), Some(&card[card.len() - 4..]));
        let id = PaymentId::parse(done.payment_id.as_deref().expect("payment id")).expect("id");
        let stored = h.store.payment(&h.tenant, &id).await.expect("payment");
        let expected = match status {
            Status::Succeeded => PaymentStatus::Succeeded,
            Status::Declined => PaymentStatus::Declined,
            _ => PaymentStatus::Failed,
        };
        assert_eq!(stored.status, expected);
        if card == "4000000000000119" {
            assert_eq!(stored.error_code.as_deref(), Some("processing_error"));
            let key = IdempotencyKey::new(id.as_str().to_owned()).expect("key");
            assert_eq!(
                h.sandbox.executions_for(&key),
                3,
                "every try went to the gateway with the same key"
            );
        }
        if card == "4000000000009987" {
            assert_eq!(
                stored.error_code.as_deref(),
                Some("lost_card"),
                "the store keeps the real code"
            );
        }
    }
    assert_eq!(h.sandbox.charge_count(), 3, "only the three good cards were charged");
}

async fn a_zero_amount_session_tokenizes_the_card(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let done = h.pay(&call, "0", &fresh_key("save-card"), "5555555555554444", "737").await;
    assert_eq!(done.status, Status::Succeeded);
    let token = done.token.clone().expect("a token");
    assert!(token.starts_with("tok_"), "{token}");
    assert_eq!(done.payment_id, None, "nothing was charged");
    assert_eq!(h.sandbox.charge_count(), 0);
    let session = h.store.session(&h.tenant, &done.id).await.expect("session");
    assert_eq!(session.status, SessionStatus::Completed);
    assert_eq!(session.token_id.as_ref().map(|t| t.as_str()), Some(token.as_str()));
}

async fn a_mistyped_field_is_reported_and_keyed_again(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let view = h.open(&call, "5.00", &fresh_key("retype")).await;
    // A wrong check digit (a valid number would have ended by itself; `#` ends this one):
    // invalid, asked again.
    h.keys(&call, "4242424242424241#");
    let wrong = h.service.payment(&view.id).await.expect("view");
    let number = &wrong.fields[0];
    assert_eq!(number.error, Some("invalid-card-number"));
    assert_eq!(wrong.capturing, Some("payment-card-number"));
    // `*` clears what was typed; then the right number, a past expiry, the right one.
    h.keys(&call, "4111*4242424242424242");
    h.keys(&call, "0120");
    let past = h.service.payment(&view.id).await.expect("view");
    let expiry = past.fields.iter().find(|f| f.field == "expiration-date").expect("expiry");
    assert_eq!(expiry.error, Some("invalid-date"));
    h.keys(&call, &format!("{EXPIRY}12#"));
    let short = h.service.payment(&view.id).await.expect("view");
    let code = short.fields.iter().find(|f| f.field == "security-code").expect("code");
    assert_eq!(code.error, Some("invalid-security-code"), "two digits and # is too short");
    h.keys(&call, "737");
    // The agent asks for the number again, the caller keys another card.
    let again = h.service.capture(&view.id, Field::CardNumber).await.expect("capture");
    assert_eq!(again.capturing, Some("payment-card-number"));
    h.keys(&call, "5555555555554444");
    let done = h.service.complete(&view.id).await.expect("complete");
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!((done.brand.as_deref(), done.last4.as_deref()), (Some("mastercard"), Some("4444")));
}

async fn completing_early_names_the_missing_fields(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let view = h.open(&call, "5.00", &fresh_key("early")).await;
    h.keys(&call, "4242424242424242");
    let early = h.service.complete(&view.id).await;
    let Err(ServiceError::Capture(error)) = early else { panic!("{early:?}") };
    let message = error.to_string();
    assert!(message.contains("expiration-date") && message.contains("security-code"), "{message}");
    // Nothing was lost: the rest of the card completes the same session.
    h.keys(&call, &format!("{EXPIRY}737"));
    let done = h.service.complete(&view.id).await.expect("complete");
    assert_eq!(done.status, Status::Succeeded);
    // A field the session does not collect cannot be asked for.
    let postal = h.service.capture(&view.id, Field::PostalCode).await;
    assert!(matches!(postal, Err(ServiceError::NotOpen | ServiceError::Capture(_))), "{postal:?}");
}

async fn one_payment_at_a_time_per_call(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let key = fresh_key("first");
    let first = h.open(&call, "5.00", &key).await;
    // The same request again is a replay; another one waits for the first to finish.
    let replay = h.service.open_payment(&call, payment("5.00", &key)).await.expect("replay");
    assert_eq!(replay.id, first.id);
    let other = h.service.open_payment(&call, payment("7.00", &fresh_key("second"))).await;
    assert!(matches!(other, Err(ServiceError::SessionAlreadyOpen)), "{other:?}");
    // The key belongs to that payment: another amount under it is refused.
    let conflict = h.service.open_payment(&h.call(), payment("9.99", &key)).await;
    assert!(matches!(conflict, Err(ServiceError::IdempotencyConflict)), "{conflict:?}");
    h.keys(&call, &format!("4242424242424242{EXPIRY}737"));
    assert_eq!(h.service.complete(&first.id).await.expect("complete").status, Status::Succeeded);
    // Now a second payment on the same call.
    let second = h.pay(&call, "7.00", &fresh_key("second"), "5555555555554444", "737").await;
    assert_eq!(second.status, Status::Succeeded);
    assert_ne!(second.id, first.id);
    // The first one is still readable, from the store.
    let read = h.service.payment(&first.id).await.expect("first");
    assert_eq!((read.status, read.last4.as_deref()), (Status::Succeeded, Some("4242")));
    assert_eq!(h.sandbox.charge_count(), 2);
}

async fn hanging_up_cancels_the_payment_being_keyed(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let view = h.open(&call, "5.00", &fresh_key("hangup")).await;
    h.keys(&call, "42424242");
    h.service.call_ended(&call, "customer_hangup");
    h.service.wait_idle(Duration::from_secs(5)).await;
    let stored = h.store.session(&h.tenant, &view.id).await.expect("session");
    assert_eq!(stored.status, SessionStatus::Cancelled);
    assert_eq!(stored.payment_id.as_ref(), None);
    let record = h.store.call(&h.tenant, &call).await.expect("call");
    assert_eq!(record.end_reason.as_deref(), Some("customer_hangup"));
    assert_eq!(record.agent.as_deref(), Some("agent-7"));
    assert_eq!(h.sandbox.charge_count(), 0);
    // The agent's cancel on another call, and the view after it.
    let call = h.call();
    let view = h.open(&call, "5.00", &fresh_key("cancel")).await;
    h.keys(&call, "4242");
    let cancelled = h.service.cancel(&view.id).await.expect("cancel");
    assert_eq!(cancelled.status, Status::Cancelled);
    assert!(matches!(h.service.complete(&view.id).await, Err(ServiceError::NotOpen)));
    assert!(matches!(h.service.cancel(&view.id).await, Err(ServiceError::NotOpen)));
}

async fn payments_need_a_call_in_progress(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let unknown = CallId::generate(crate::support::now());
    let refused = h.service.open_payment(&unknown, payment("1.00", &fresh_key("x"))).await;
    assert!(matches!(refused, Err(ServiceError::UnknownCall)), "{refused:?}");
    let call = h.call();
    h.service.call_ended(&call, "agent_hangup");
    h.service.wait_idle(Duration::from_secs(5)).await;
    let ended = h.service.open_payment(&call, payment("1.00", &fresh_key("x"))).await;
    assert!(matches!(ended, Err(ServiceError::CallEnded)), "{ended:?}");
    let nothing = SessionId::generate(crate::support::now());
    assert!(matches!(h.service.payment(&nothing).await, Err(ServiceError::UnknownPayment)));
    assert!(matches!(h.service.complete(&nothing).await, Err(ServiceError::NotOpen)));
}

async fn a_finished_payment_is_read_back_from_the_store(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let call = h.call();
    let done = h.pay(&call, "30.00", &fresh_key("read"), "4000000000000002", "737").await;
    h.service.call_ended(&call, "customer_hangup");
    h.service.wait_idle(Duration::from_secs(5)).await;
    let read = h.service.payment(&done.id).await.expect("view");
    assert_eq!(read.status, Status::Declined);
    assert_eq!(read.decline_code.as_deref(), Some("generic_decline"));
    assert_eq!((read.brand.as_deref(), read.last4.as_deref()), (Some("visa"), Some("0002")));
    assert_eq!(read.amount, "30.00");
}

async fn many_calls_pay_at_once(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let calls: Vec<CallId> = (0..24).map(|_| h.call()).collect();
    let mut views = Vec::new();
    for call in &calls {
        views.push(h.open(call, "1.99", &fresh_key("many")).await);
    }
    // Every customer keys at the same time; digits interleave across calls.
    let card = format!("4242424242424242{EXPIRY}737");
    for key in card.chars() {
        for call in &calls {
            h.keys(call, &key.to_string());
        }
    }
    let completions: Vec<_> = views
        .iter()
        .map(|view| {
            let (service, id) = (h.service.clone(), view.id.clone());
            tokio::spawn(async move { service.complete(&id).await })
        })
        .collect();
    for completion in completions {
        assert_eq!(completion.await.expect("task").expect("complete").status, Status::Succeeded);
    }
    assert_eq!(h.sandbox.charge_count(), 24);
}
