//! The per-tenant feed: gapless sequence numbers in commit order, calls and sessions.

use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{
    CallId, EventType, FeedEvent, NewCall, NewSession, PaymentOutcome, SessionStatus, StoreError,
    TokenId, TokenType,
};

use crate::support::{at, begin_pending, key, new_payment, store, tenant, usd};

crate::on_both!(
    concurrent_writers_leave_no_gap,
    calls_and_sessions_emit_in_order,
    relay_marks_events_published,
    feed_only_events_keep_their_order_and_cannot_forge_state_changes,
    a_long_batch_of_events_is_numbered_and_delivered_whole,
    calls_are_answered_once_and_listed_by_agent,
    an_open_session_moves_to_the_call_back_once_its_call_ended,
    a_restarted_node_ends_only_its_own_calls,
);

async fn concurrent_writers_leave_no_gap(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let other = tenant(s, "globex").await;
    const TASKS: usize = 6;
    const EACH: usize = 15;
    let mut jobs = Vec::new();
    for task in 0..TASKS {
        let (s, t, other) = (s.clone(), t.clone(), other.clone());
        jobs.push(tokio::spawn(async move {
            for i in 0..EACH {
                let tenant = if i % 3 == 0 { &other } else { &t };
                let new = new_payment(tenant, &format!("k-{task}-{i}"), usd(100));
                let pending = begin_pending(&s, &new, at(1)).await;
                let outcome = PaymentOutcome::Succeeded { gateway_ref: format!("pi_{task}_{i}") };
                s.record_payment_result(pending, &outcome, at(2)).await.expect("record");
            }
        }));
    }
    for job in jobs {
        job.await.expect("writer");
    }
    let all = s.events_since(&t, 0, 1000).await.expect("feed");
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (1..=i64::try_from(TASKS * EACH * 2 / 3).expect("small")).collect();
    assert_eq!(seqs, expected, "acme's feed is 1..=N without gaps");
    let theirs = s.events_since(&other, 0, 1000).await.expect("feed");
    assert_eq!(theirs.len(), TASKS * EACH / 3);
    assert_eq!(theirs.first().map(|e| e.seq), Some(1), "each tenant counts from 1");

    // Resuming from any point gives exactly the rest, in pages.
    let mut since = 17;
    let mut resumed = Vec::new();
    loop {
        let page = s.events_since(&t, since, 7).await.expect("page");
        let Some(last) = page.last() else { break };
        since = last.seq;
        resumed.extend(page.into_iter().map(|e| e.seq));
    }
    assert_eq!(resumed, expected[17..].to_vec());
}

async fn calls_and_sessions_emit_in_order(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let call = crate::support::start_call(s, &t, "a84b4c76e66710@pc33", at(1)).await.expect("call");
    let new = NewSession {
        tenant_id: t.clone(),
        call_id: Some(call.id.clone()),
        idempotency_key: key("sess-1"),
        amount: usd(2500),
        description: Some("invoice 9".to_owned()),
        customer_ref: Some("cust-42".to_owned()),
        token_type: TokenType::default(),
    };
    let session = s.open_session(&new, at(2)).await.expect("open");
    assert_eq!(session.status, SessionStatus::Open);
    assert_eq!(session.amount(), usd(2500));
    // Opening again with the same key is a replay; with another amount, a conflict.
    assert_eq!(s.open_session(&new, at(3)).await.expect("replay").id, session.id);
    let mut changed = new.clone();
    changed.amount = usd(1);
    assert!(matches!(
        s.open_session(&changed, at(3)).await,
        Err(StoreError::IdempotencyConflict { .. })
    ));

    // Charging completes the session in the payment's transaction.
    let mut payment = new_payment(&t, "pay-1", usd(2500));
    payment.session_id = Some(session.id.clone());
    payment.call_id = Some(call.id.clone());
    let pending = begin_pending(s, &payment, at(4)).await;
    let paid = s
        .record_payment_result(
            pending,
            &PaymentOutcome::Succeeded { gateway_ref: "pi_1".to_owned() },
            at(5),
        )
        .await
        .expect("record");
    let done = s.session(&t, &session.id).await.expect("session");
    assert_eq!(done.status, SessionStatus::Completed);
    assert_eq!(done.payment_id.as_ref(), Some(&paid.id));

    // A tokenize-only session completes with its token; a cancelled one stays cancelled.
    let mut tokenize = new.clone();
    tokenize.idempotency_key = key("sess-2");
    tokenize.amount = usd(0);
    let second = s.open_session(&tokenize, at(6)).await.expect("open");
    let token = TokenId::random();
    // A cancelled session cannot complete any more.
    let cancelled = s.cancel_session(&t, &second.id, at(7)).await.expect("cancel");
    assert_eq!(cancelled.status, SessionStatus::Cancelled);
    assert!(matches!(
        s.complete_session_with_token(&t, &second.id, &token, at(8)).await,
        Err(StoreError::InvalidState { .. })
    ));
    assert!(matches!(
        s.cancel_session(&t, &second.id, at(8)).await,
        Err(StoreError::InvalidState { .. })
    ));

    let ended = s.end_call(&t, &call.id, "bye", at(9)).await.expect("end");
    assert_eq!(ended.ended_at_ms, Some(at(9).unix_ms()));
    // Ending twice changes nothing and announces nothing.
    assert_eq!(s.end_call(&t, &call.id, "bye", at(10)).await.expect("end again"), ended);

    let types: Vec<EventType> =
        s.events_since(&t, 0, 100).await.expect("feed").into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![
            EventType::CallStarted,
            EventType::PaymentCreated,
            EventType::PaymentSucceeded,
            EventType::PaymentCreated,
            EventType::PaymentCancelled,
            EventType::CallEnded,
        ]
    );
}

async fn relay_marks_events_published(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let other = tenant(s, "globex").await;
    let call = crate::support::start_call(s, &t, "c1@pc", at(1)).await.expect("call");
    crate::support::start_call(s, &other, "c2@pc", at(2)).await.expect("call");
    s.end_call(&t, &call.id, "bye", at(3)).await.expect("end");
    let pending = s.unpublished_events(10).await.expect("unpublished");
    let types: Vec<EventType> = pending.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![EventType::CallStarted, EventType::CallStarted, EventType::CallEnded],
        "oldest first"
    );
    s.mark_published(&pending[0].id, at(4)).await.expect("mark");
    s.mark_published(&pending[2].id, at(4)).await.expect("mark");
    let left = s.unpublished_events(10).await.expect("unpublished");
    assert_eq!(left.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![pending[1].id.clone()]);
    // Publishing is the bus relay's business: the feed still has everything.
    assert_eq!(s.events_since(&t, 0, 10).await.expect("feed").len(), 2);
}

async fn feed_only_events_keep_their_order_and_cannot_forge_state_changes(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let call = crate::support::start_call(s, &t, "c9@pc", at(1)).await.expect("call");
    let everything = crate::support::sink(s, &t, "webhook", &["*"]).await;
    let progress_only = crate::support::sink(s, &t, "crm", &["capture.progress"]).await;
    let progress = |n: u64| FeedEvent {
        event_type: EventType::CaptureProgress,
        subject_id: "ses_x".into(),
        payload: serde_json::json!({ "field": "card-number", "partial": true, "digits": n }),
    };
    let started = FeedEvent {
        event_type: EventType::CaptureStarted,
        subject_id: call.id.as_str().to_owned(),
        payload: serde_json::json!({ "call_id": call.id.as_str(), "field": "card-number" }),
    };
    let processing = FeedEvent {
        event_type: EventType::PaymentProcessing,
        subject_id: "pay_x".into(),
        payload: serde_json::json!({ "id": "pay_x" }),
    };
    let batch = [started, progress(1), progress(2), processing];
    let written = s.record_events(&t, &batch, at(2)).await.expect("record");
    assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    // Each event reached the sinks that take its type, in the batch's one statement: the
    // keystroke-level capture events only the sink that names them, the rest `*`.
    let mut sinks_of = Vec::new();
    for event in &written {
        let sinks = s.deliveries_of(&event.id).await.expect("deliveries");
        sinks_of.push(sinks.into_iter().map(|(_, k)| k).collect::<Vec<_>>());
    }
    let progress_sinks = vec![progress_only.clone()];
    assert_eq!(
        sinks_of,
        vec![vec![], progress_sinks.clone(), progress_sinks, vec![everything]],
        "capture.started (named by nobody), two capture.progress, payment.processing"
    );
    assert!(s.record_events(&t, &[], at(3)).await.expect("nothing").is_empty());
    let forged = FeedEvent {
        event_type: EventType::PaymentSucceeded,
        subject_id: "pay_x".into(),
        payload: serde_json::json!({}),
    };
    assert!(matches!(
        s.record_events(&t, &[progress(3), forged], at(4)).await,
        Err(StoreError::InvalidState { .. })
    ));
    let feed = s.events_since(&t, 1, 10).await.expect("feed");
    let types: Vec<&str> = feed.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["capture.started", "capture.progress", "capture.progress", "payment.processing"],
        "nothing of the refused batch"
    );
}

async fn calls_are_answered_once_and_listed_by_agent(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let first = crate::support::start_call(s, &t, "a@pc", at(1)).await.expect("call");
    let second = crate::support::start_call(s, &t, "b@pc", at(2)).await.expect("call");
    let answered = s.answer_call(&t, &first.id, Some("agent-7"), at(3)).await.expect("answer");
    assert_eq!(answered.agent.as_deref(), Some("agent-7"));
    assert_eq!(answered.answered_at_ms, Some(at(3).unix_ms()));
    // Answering again changes nothing and announces nothing.
    assert_eq!(s.answer_call(&t, &first.id, Some("other"), at(4)).await.expect("again"), answered);
    s.end_call(&t, &second.id, "bye", at(5)).await.expect("end");
    let active = s.calls(&t, true, None, None, 10).await.expect("active");
    assert_eq!(active.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![first.id.clone()]);
    let mine = s.calls(&t, false, Some("agent-7"), None, 10).await.expect("mine");
    assert_eq!(mine.len(), 1);
    let all = s.calls(&t, false, None, None, 1).await.expect("page 1");
    let next = s.calls(&t, false, None, Some(&all[0].id), 10).await.expect("page 2");
    assert_eq!(all.len() + next.len(), 2, "pages cover both calls once");
    let ghost = ivrpay_store::CallId::generate(at(9));
    assert!(matches!(s.call(&t, &ghost).await, Err(StoreError::NotFound { .. })));
    let types: Vec<&str> = s
        .events_since(&t, 0, 10)
        .await
        .expect("feed")
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, vec!["call.started", "call.started", "call.answered", "call.ended"]);
}

async fn an_open_session_moves_to_the_call_back_once_its_call_ended(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let first = crate::support::start_call(s, &t, "first@pc33", at(1)).await.expect("call");
    let second = crate::support::start_call(s, &t, "second@pc33", at(2)).await.expect("call");
    let new = NewSession {
        tenant_id: t.clone(),
        call_id: Some(first.id.clone()),
        idempotency_key: key("order-77"),
        amount: usd(990),
        description: None,
        customer_ref: None,
        token_type: TokenType::default(),
    };
    let session = s.open_session(&new, at(3)).await.expect("open");
    let on_second = NewSession { call_id: Some(second.id.clone()), ..new.clone() };
    // While the first call is in progress the key is its own.
    assert!(matches!(
        s.open_session(&on_second, at(4)).await,
        Err(StoreError::IdempotencyConflict { kind: "session" })
    ));
    // The first call drops: the same key on the call back resumes the same session.
    s.end_call(&t, &first.id, "bye", at(5)).await.expect("end");
    let resumed = s.open_session(&on_second, at(6)).await.expect("resume");
    assert_eq!(resumed.id, session.id);
    assert_eq!(resumed.call_id.as_ref(), Some(&second.id));
    // Another amount under the key is still a conflict, and a session that is over stays
    // on its call.
    let other_amount = NewSession { amount: usd(1), ..on_second.clone() };
    assert!(matches!(
        s.open_session(&other_amount, at(7)).await,
        Err(StoreError::IdempotencyConflict { .. })
    ));
    s.cancel_session(&t, &session.id, at(8)).await.expect("cancel");
    s.end_call(&t, &second.id, "bye", at(9)).await.expect("end");
    let third = crate::support::start_call(s, &t, "third@pc33", at(10)).await.expect("call");
    let on_third = NewSession { call_id: Some(third.id.clone()), ..new };
    assert!(matches!(
        s.open_session(&on_third, at(11)).await,
        Err(StoreError::IdempotencyConflict { .. })
    ));
}

async fn a_restarted_node_ends_only_its_own_calls(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    // support::start_call puts calls on node-1.
    let mine = crate::support::start_call(s, &t, "mine@pc33", at(1)).await.expect("call");
    let done = crate::support::start_call(s, &t, "done@pc33", at(2)).await.expect("call");
    s.end_call(&t, &done.id, "bye", at(3)).await.expect("end");
    let theirs = NewCall {
        id: CallId::generate(at(4)),
        tenant_id: t.clone(),
        sip_call_id: "theirs@pc33".to_owned(),
        profile: "default".to_owned(),
        agent: None,
        caller: None,
        called: None,
        node: "node-2".to_owned(),
    };
    s.start_call(&theirs, at(4)).await.expect("call on node-2");
    let before = s.latest_seq(&t).await.expect("seq");

    let ended = s.end_calls_of_node(&t, "node-1", "restart", at(5)).await.expect("end");
    assert_eq!(ended.iter().map(|c| &c.id).collect::<Vec<_>>(), vec![&mine.id]);
    assert_eq!(ended[0].end_reason.as_deref(), Some("restart"));
    assert!(s.call(&t, &theirs.id).await.expect("call").ended_at_ms.is_none());
    assert_eq!(s.call(&t, &done.id).await.expect("call").end_reason.as_deref(), Some("bye"));
    let events = s.events_since(&t, before, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::CallEnded);
    assert_eq!(events[0].subject_id, mine.id.as_str());
    // A second restart has nothing left to end.
    assert!(s.end_calls_of_node(&t, "node-1", "restart", at(6)).await.expect("end").is_empty());
}

/// A batch longer than one statement takes (SQLite writes 32 events a statement): every
/// event numbered in turn with its payload, each delivered once to the sink that names it.
async fn a_long_batch_of_events_is_numbered_and_delivered_whole(db: &TestDatabase) {
    let s = store(db);
    let t = tenant(s, "acme").await;
    let progress_only = crate::support::sink(s, &t, "crm", &["capture.progress"]).await;
    let _everything = crate::support::sink(s, &t, "webhook", &["*"]).await;
    let batch: Vec<FeedEvent> = (0..70)
        .map(|n| FeedEvent {
            event_type: EventType::CaptureProgress,
            subject_id: "ses_long".into(),
            payload: serde_json::json!({ "digits": n, "masked": format!("{n:•>4}") }),
        })
        .collect();
    let first = s.record_events(&t, &batch[..1], at(1)).await.expect("one");
    assert_eq!(first[0].seq, 1);
    let written = s.record_events(&t, &batch, at(2)).await.expect("seventy");
    assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), (2..72).collect::<Vec<_>>());
    let feed = s.events_since(&t, 1, 100).await.expect("feed");
    assert_eq!(feed, written, "stored as returned, in order");
    for event in &written {
        let sinks: Vec<_> = s.deliveries_of(&event.id).await.expect("deliveries");
        let sinks: Vec<_> = sinks.into_iter().map(|(_, k)| k).collect();
        assert_eq!(sinks, std::slice::from_ref(&progress_only));
    }
    assert_eq!(s.latest_seq(&t).await.expect("latest"), 71);
}
