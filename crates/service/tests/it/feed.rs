//! The live feed: every step of a payment, in commit order, the same as a client resuming
//! from the store reads.

use ivrpay_store::EventType;
use ivrpay_store::testing::TestDatabase;

use crate::support::{EXPIRY, Harness, events_until, fresh_key, of_session};

crate::on_both!(every_step_of_a_payment_reaches_the_feed_in_order);

async fn every_step_of_a_payment_reaches_the_feed_in_order(db: &TestDatabase) {
    let h = Harness::new(db).await;
    let mut feed = h.service.feed().subscribe();
    let call = h.call();
    let view = h.open(&call, "12.50", &fresh_key("feed")).await;
    h.keys(&call, "4242424242424241#"); // a wrong check digit first
    h.keys(&call, &format!("4242424242424242{EXPIRY}737"));
    let done = h.service.complete(&view.id).await.expect("complete");
    let session = view.id.as_str();
    let events = events_until(&mut feed, |seen| {
        seen.iter().any(|e| {
            e.event_type == EventType::PaymentSucceeded && e.payload["session_id"] == session
        })
    })
    .await;

    // Gapless and increasing: nothing else writes to this tenant.
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq + 1,
            "{} then {}",
            pair[0].event_type.as_str(),
            pair[1].event_type.as_str()
        );
    }
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(&types[..3], ["call.started", "call.answered", "payment.created"], "{types:?}");
    let mine = of_session(&events, session);
    let steps: Vec<(&str, String)> = mine
        .iter()
        .map(|e| {
            (e.event_type.as_str(), e.payload["field"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let position = |t: &str, f: &str| {
        steps
            .iter()
            .position(|(ty, field)| *ty == t && field == f)
            .unwrap_or_else(|| panic!("no {t} {f} in {steps:?}"))
    };
    let invalid = position("capture.field_invalid", "payment-card-number");
    let number = position("capture.field_completed", "payment-card-number");
    let expiry = position("capture.field_completed", "expiration-date");
    let code = position("capture.field_completed", "security-code");
    let processing =
        steps.iter().position(|(t, _)| *t == "payment.processing").expect("processing");
    let succeeded = steps.iter().position(|(t, _)| *t == "payment.succeeded").expect("succeeded");
    assert!(
        invalid < number
            && number < expiry
            && expiry < code
            && code < processing
            && processing < succeeded,
        "{steps:?}"
    );
    // One progress event per key of the card number (16, twice) at least.
    let progress = steps
        .iter()
        .filter(|(t, f)| *t == "capture.progress" && f == "payment-card-number")
        .count();
    assert!(progress >= 30, "{progress} progress events for 32 keys");
    let invalid_event =
        mine.iter().find(|e| e.event_type == EventType::CaptureFieldInvalid).expect("invalid");
    assert_eq!(invalid_event.payload["error"], "invalid-card-number");
    assert_eq!(invalid_event.payload["call_id"], call.as_str());
    let completed =
        mine.iter().find(|e| e.event_type == EventType::CaptureFieldCompleted).expect("completed");
    assert_eq!(completed.payload["brand"], "visa");
    assert!(completed.payload["masked"].as_str().expect("masked").ends_with("4242"));
    let result = mine.last().expect("result");
    assert_eq!(result.payload["last4"], "4242");
    assert_eq!(result.payload["id"].as_str(), done.payment_id.as_deref());

    // A client that resumes from any point reads from the store exactly what followed live.
    let middle = events[events.len() / 2].seq;
    let resumed = h.store.events_since(&h.tenant, middle, 1000).await.expect("events");
    let live: Vec<_> =
        events.iter().filter(|e| e.seq > middle).map(|e| (e.seq, e.id.clone())).collect();
    let read: Vec<_> = resumed.iter().take(live.len()).map(|e| (e.seq, e.id.clone())).collect();
    assert_eq!(read, live);
}
