//! The feed: WebSocket and SSE, filters, heartbeats, and resume without loss or repeats.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use ivrpay_api::ApiConfig;
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::{CallId, EventRecord};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{Api, CVC, EXPIRY, PAN, assert_no_card_data};

crate::on_both!(agent_feed_resumes_mid_payment, sse_resumes_with_last_event_id);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a client presents its key.
enum Auth<'a> {
    Header(&'a str),
    /// As a browser does: subprotocols `ivrpay.feed.v1` and `bearer.<key>`.
    Subprotocol(&'a str),
}

async fn connect(api: &Api, query: &str, auth: Auth<'_>) -> Ws {
    let mut request =
        format!("ws://{}/v1/feed{query}", api.addr).into_client_request().expect("request");
    let subprotocol = matches!(auth, Auth::Subprotocol(_));
    let headers = request.headers_mut();
    match auth {
        Auth::Header(key) => {
            headers.insert("Authorization", format!("Bearer {key}").parse().expect("header"));
        }
        Auth::Subprotocol(key) => {
            headers.insert(
                "Sec-WebSocket-Protocol",
                format!("ivrpay.feed.v1, bearer.{key}").parse().expect("header"),
            );
        }
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket");
    if subprotocol {
        let chosen = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        assert_eq!(chosen, Some("ivrpay.feed.v1"));
    }
    ws
}

/// The next text message (events and heartbeats), or None after `wait` of silence.
async fn next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        let message =
            tokio::time::timeout(wait, ws.next()).await.ok()??.expect("WebSocket message");
        if let Message::Text(text) = message {
            assert_no_card_data("a feed message", &text);
            return Some(serde_json::from_str(&text).expect("JSON message"));
        }
    }
}

/// Events (no heartbeats) until `until` holds for one, at most `limit`.
async fn events_until(ws: &mut Ws, limit: Duration, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(message) = next(ws, left).await else {
            panic!("the awaited event did not come within {limit:?}; got {out:#?}");
        };
        if message["type"] == "heartbeat" {
            continue;
        }
        let done = until(&message);
        out.push(message);
        if done {
            return out;
        }
    }
}

/// Whether a stored event concerns `call` (as the feed decides it).
fn about(event: &EventRecord, call: &CallId, charges: &BTreeSet<String>) -> bool {
    let p = &event.payload;
    p["call_id"] == call.as_str()
        || event.subject_id == call.as_str()
        || p["payment_id"].as_str().is_some_and(|c| charges.contains(c))
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().expect("numeric id")).collect()
}

fn fast() -> ApiConfig {
    ApiConfig { heartbeat: Duration::from_millis(300), ..ApiConfig::default() }
}

async fn agent_feed_resumes_mid_payment(db: &TestDatabase) {
    let api = Api::with(db, fast()).await;
    let mine = api.call("agent-7").await;
    let theirs = api.call("agent-9").await;
    let start = api.store.latest_seq(&api.tenant).await.expect("seq");

    // agent-7's desktop connects as a browser does, an admin's integration with a header.
    let mut first = connect(&api, "", Auth::Subprotocol(&api.agent7)).await;
    let mut admin = connect(&api, "", Auth::Header(&api.admin)).await;
    // Idle: heartbeats only.
    let beat = next(&mut first, Duration::from_secs(3)).await.expect("a heartbeat");
    assert_eq!(beat["type"], "heartbeat");
    assert!(beat["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    let session = api.open(&mine, &api.agent7).await;
    let other = api.open(&theirs, &api.agent9).await;
    api.keys(&mine, &PAN[..6]);
    api.keys(&theirs, &PAN[..6]);
    let before = events_until(&mut first, Duration::from_secs(10), |e| {
        e["type"] == "capture.progress"
            && e["data"]["masked"]
                .as_str()
                .is_some_and(|m| m.chars().filter(|c| *c == '•').count() == 6)
    })
    .await;
    assert!(
        before.iter().all(|e| e["data"]["call_id"] == mine.as_str()),
        "agent-7 saw another call: {before:#?}"
    );
    assert_eq!(before[0]["type"], "payment.created");
    for e in &before {
        assert!(e["timestamp"].is_string() && e["data"].is_object(), "{e}");
    }
    let last = *ids(&before).last().expect("events");
    // The desktop goes away mid-payment...
    first.close(None).await.expect("close");
    drop(first);

    // ... while the customer keys the rest, the agent completes, the other call goes on.
    api.keys(&mine, &PAN[6..]);
    api.keys(&theirs, &PAN[6..]);
    api.keys(&mine, EXPIRY);
    api.keys(&mine, CVC);
    api.wait_payment(&session, "ready", |p| {
        p["required"].as_array().is_some_and(Vec::is_empty) && p["capturing"].is_null()
    })
    .await;
    let done = api
        .post(&format!("/v1/payments/{session}"), &api.agent7, &json!({ "status": "complete" }))
        .await
        .expect(200);
    assert_eq!(done.json["status"], "succeeded", "{}", done.text);
    let charge = done.json["charge_id"].as_str().expect("charge").to_owned();
    let refund = api
        .post(&format!("/v1/payments/{session}/refunds"), &api.admin, &json!({ "amount": "1.00" }))
        .await
        .expect(201);
    assert_eq!(refund.json["status"], "succeeded");

    // It comes back with the last id it saw.
    let mut second = connect(&api, &format!("?since={last}"), Auth::Subprotocol(&api.agent7)).await;
    let after =
        events_until(&mut second, Duration::from_secs(10), |e| e["type"] == "refund.succeeded")
            .await;
    // Nothing more for this agent: the next message is a heartbeat.
    let idle = next(&mut second, Duration::from_secs(3)).await.expect("a heartbeat");
    assert_eq!(idle["type"], "heartbeat", "an unexpected event: {idle}");

    // Every event about agent-7's call since the desktop connected, each once, in order.
    let got: Vec<i64> = ids(&before).into_iter().chain(ids(&after)).collect();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "ids not increasing: {got:?}");
    let charges: BTreeSet<String> = [charge.clone()].into();
    let stored = api.store.events_since(&api.tenant, start, 10_000).await.expect("events");
    let expected: Vec<i64> =
        stored.iter().filter(|e| about(e, &mine, &charges)).map(|e| e.seq).collect();
    assert_eq!(got, expected, "the agent's feed differs from the store");
    let types: Vec<&str> = before.iter().chain(&after).filter_map(|e| e["type"].as_str()).collect();
    for wanted in [
        "payment.created",
        "capture.started",
        "capture.progress",
        "capture.field_completed",
        "payment.processing",
        "payment.succeeded",
        "refund.succeeded",
    ] {
        assert!(types.contains(&wanted), "no {wanted} in {types:?}");
    }
    let succeeded = after.iter().find(|e| e["type"] == "payment.succeeded").expect("succeeded");
    assert_eq!(
        (succeeded["data"]["brand"].as_str(), succeeded["data"]["last4"].as_str()),
        (Some("visa"), Some("4242"))
    );
    assert!(
        stored.iter().any(|e| e.payload["call_id"] == theirs.as_str()),
        "the other call made events"
    );

    // The admin's unfiltered feed has every event since it connected, both calls', once.
    let last_seq = stored.last().expect("events").seq;
    let all =
        events_until(&mut admin, Duration::from_secs(10), |e| e["id"].as_i64() == Some(last_seq))
            .await;
    let expected_all: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(ids(&all), expected_all);
    assert!(all.iter().any(|e| e["data"]["payment_id"] == other.as_str()));

    // One call's feed, resumed from the start of the call's payment.
    let mut call_feed =
        connect(&api, &format!("?call={}&since={start}", mine.as_str()), Auth::Header(&api.agent7))
            .await;
    let replay =
        events_until(&mut call_feed, Duration::from_secs(10), |e| e["type"] == "refund.succeeded")
            .await;
    assert_eq!(ids(&replay), expected);
    second.send(Message::Close(None)).await.ok();
}

/// Reads SSE events from a streaming response until `until` holds for one.
async fn sse_until(
    response: &mut reqwest::Response,
    limit: Duration,
    until: impl Fn(&Value) -> bool,
) -> (Vec<(String, String, Value)>, usize) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buffer = String::new();
    let mut out = Vec::new();
    let mut heartbeats = 0;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            assert_no_card_data("an SSE event", &block);
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                } else if line.starts_with(':') {
                    heartbeats += 1;
                }
            }
            if data.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&data).expect("SSE data is JSON");
            let done = until(&value);
            out.push((id, event, value));
            if done {
                return (out, heartbeats);
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("the awaited SSE event did not come; got {out:#?}"))
            .expect("SSE body")
            .expect("the stream ended");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

async fn sse_resumes_with_last_event_id(db: &TestDatabase) {
    let api = Api::with(db, fast()).await;
    let call = api.call("agent-7").await;
    let path = format!("/v1/calls/{}/events", call.as_str());
    let start = api.store.latest_seq(&api.tenant).await.expect("seq");
    let mut stream =
        api.http.get(api.url(&path)).bearer_auth(&api.agent7).send().await.expect("SSE");
    assert_eq!(stream.status().as_u16(), 200);
    assert!(
        stream.headers()["content-type"].to_str().is_ok_and(|c| c.starts_with("text/event-stream"))
    );
    let session = api.open(&call, &api.agent7).await;
    api.keys(&call, &PAN[..4]);
    let (before, _) =
        sse_until(&mut stream, Duration::from_secs(10), |e| e["type"] == "capture.progress").await;
    for (id, event, value) in &before {
        assert_eq!(id, &value["id"].to_string());
        assert_eq!(event, value["type"].as_str().unwrap_or(""));
    }
    let last = before.last().expect("events").0.clone();
    drop(stream);

    api.keys(&call, &PAN[4..]);
    api.keys(&call, EXPIRY);
    api.keys(&call, CVC);
    api.wait_payment(&session, "ready", |p| {
        p["required"].as_array().is_some_and(Vec::is_empty) && p["capturing"].is_null()
    })
    .await;
    api.post(&format!("/v1/payments/{session}"), &api.agent7, &json!({ "status": "complete" }))
        .await
        .expect(200);

    let mut resumed = api
        .http
        .get(api.url(&path))
        .bearer_auth(&api.agent7)
        .header("Last-Event-ID", &last)
        .send()
        .await
        .expect("SSE");
    let (after, _) =
        sse_until(&mut resumed, Duration::from_secs(10), |e| e["type"] == "payment.succeeded")
            .await;
    let got: Vec<i64> =
        before.iter().chain(&after).map(|(_, _, v)| v["id"].as_i64().expect("id")).collect();
    let stored = api.store.events_since(&api.tenant, start, 10_000).await.expect("events");
    let expected: Vec<i64> =
        stored.iter().filter(|e| about(e, &call, &BTreeSet::new())).map(|e| e.seq).collect();
    assert_eq!(got, expected, "SSE events differ from the store");
    // Idle: heartbeat comments.
    let mut idle = api
        .http
        .get(api.url(&format!("{path}?since={}", expected.last().expect("events"))))
        .bearer_auth(&api.agent7)
        .send()
        .await
        .expect("SSE");
    let chunk = tokio::time::timeout(Duration::from_secs(3), idle.chunk())
        .await
        .expect("a heartbeat in time");
    let text = String::from_utf8(chunk.expect("body").expect("chunk").to_vec()).expect("UTF-8");
    assert!(text.starts_with(": heartbeat"), "{text:?}");
    // A Last-Event-ID that is not an id: 400.
    let bad = api
        .http
        .get(api.url(&path))
        .bearer_auth(&api.agent7)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("HTTP");
    assert_eq!(bad.status().as_u16(), 400);
}
