//! IVR self-service through the real binary: SIPp calls `pay` with the amount in the
//! router's headers, ivrpay answers and prompts, SIPp keys the card (in-band tones from a
//! file timed to the prompts, or RFC 2833 pcaps), the sandbox charges, ivrpay reads the
//! result back and hangs up. What the customer received is captured on the wire and
//! compared, prompt by prompt, with the built-in prompt set; the feed events are read back
//! from the store.

use std::time::{Duration, Instant};

use ivrpay_card::{Currency, Money};
use ivrpay_ivr::prompts::{PromptSet, Utterance};
use ivrpay_ivr::speech;
use ivrpay_store::{CallId, EventRecord, SessionId, SessionStatus, Store, StoreConfig, TenantId};
use serde_json::Value;

use crate::harness::{Ivrpay, ProfileSpec, SippSpec, free_ports, scratch};
use crate::ivr_media::{
    Rtp, Script, Segment, Tap, expected_ulaw, level_db, ms_of, segments, speech_share,
};

const RUN: Duration = Duration::from_secs(150);

/// When the customer's keys come, in the files timed to the prompts: the first prompt
/// starts at most `FIRST_PROMPT_MS` after the answer (the call and its session are written
/// to the store first), a field's prompt at most `NEXT_PROMPT_MS` after the key that ended
/// the field before, and the customer waits `MARGIN_MS` after a prompt's expected end, so
/// that no key cuts a prompt short on a loaded machine.
const FIRST_PROMPT_MS: u32 = 1000;
const NEXT_PROMPT_MS: u32 = 300;
const MARGIN_MS: u32 = 1500;
const VISA: &str = "4242424242424242";

/// The IVR profile of these tests: calls to `pay` on the default profile's addresses.
const IVR_PROFILE: &str = r#"# Written by the integration test.
name = "ivr"
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
allowed_sources = ["127.0.0.0/8"]
match_user = "pay"

[routing]
ivr = true

[ivr]
currency = "GBP"
first_digit_timeout_s = 10
"#;

/// Root: the tap's raw socket and SIPp's pcap play need it.
fn require_root() {
    let uid = std::process::Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the IVR suites capture the customer's RTP with a raw socket: run the tests as root"
    );
}

/// An ivrpay with the IVR profile beside the default one (whose agent is never called).
fn start_ivrpay(dir: &std::path::Path) -> Ivrpay {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).expect("profiles dir");
    std::fs::write(profiles.join("ivr.toml"), IVR_PROFILE).expect("ivr profile");
    let nobody = format!("127.0.0.1:{}", free_ports(1)).parse().expect("address");
    Ivrpay::start(dir, &ProfileSpec::to(nobody), 5)
}

fn gbp(minor: u64) -> Money {
    Money::from_minor(minor, Currency::GBP)
}

// ---- what the caller hears (the dialogue's wording, prompt by prompt) ----

fn welcome(amount: Money) -> Utterance {
    Utterance::new()
        .clip("welcome")
        .pause(300)
        .clip("amount-due")
        .then(speech::amount(amount))
        .pause(400)
        .clip("enter-card-number")
}

fn retry(error: &'static str, field: &'static str) -> Utterance {
    Utterance::new().clip(error).pause(300).clip(field)
}

fn approved(last4: &str, ending: &'static str) -> Utterance {
    Utterance::new()
        .clip("payment-approved")
        .pause(200)
        .clip("card-ending-in")
        .then(speech::digits(last4))
        .pause(300)
        .clip(ending)
}

fn one(clip: &'static str) -> Utterance {
    Utterance::new().clip(clip)
}

/// Checks a captured prompt against the utterance: the same µ-law bytes, in full, or a
/// prefix when the caller barged in. Returns a line for the report.
fn check_segment(
    prompts: &PromptSet,
    segment: &Segment,
    utterance: &Utterance,
    full: bool,
) -> String {
    let expected = expected_ulaw(prompts, utterance);
    let n = segment.ulaw.len();
    let what = utterance.clips().join(" ");
    if full {
        assert_eq!(
            n,
            expected.len(),
            "{what}: received {n} samples, the prompt has {}",
            expected.len()
        );
    } else {
        assert!(n < expected.len(), "{what}: barged in, yet received in full ({n} samples)");
    }
    let same = segment.ulaw.iter().zip(&expected).filter(|(a, b)| a == b).count();
    assert_eq!(same, n, "{what}: {} of {n} samples differ from the prompt set", n - same);
    let samples = segment.samples();
    let share = speech_share(&samples);
    assert!(share > 0.5, "{what}: speech in {:.0} % of 250 ms windows", share * 100.0);
    format!(
        "{:.2} s {:+.1} dBFS ({}){}",
        segment.seconds(),
        level_db(&samples),
        what,
        if full { "" } else { " [barged in]" }
    )
}

// ---- the store, read back once ivrpay has stopped ----

fn call_id_of(ivrpay: &Ivrpay) -> String {
    let line = ivrpay.log.wait_for("call started", Duration::from_secs(10));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("call="))
        .unwrap_or_else(|| panic!("no call id in {line:?}"))
        .to_owned()
}

/// Stops ivrpay (SIGTERM) and reads the events of one call, in feed order.
fn stop_and_read(
    mut ivrpay: Ivrpay,
    dir: &std::path::Path,
    call: &str,
) -> (Vec<EventRecord>, Store) {
    ivrpay.process.terminate();
    ivrpay.process.wait(Duration::from_secs(20));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store = Store::open(&StoreConfig::sqlite_in(&dir.join("data"))).await.expect("store");
        let tenant = TenantId::parse("ten_default").expect("tenant");
        let all = store.events_since(&tenant, 0, 10_000).await.expect("events");
        let mine = all
            .into_iter()
            .filter(|e| {
                e.payload.get("call_id").and_then(Value::as_str) == Some(call)
                    || e.subject_id == call
            })
            .collect();
        (mine, store)
    })
}

fn types(events: &[EventRecord]) -> Vec<String> {
    events.iter().map(|e| e.event_type.as_str().to_owned()).collect()
}

/// No card number, in any form longer than the last four, in any event.
fn assert_no_card_data(events: &[EventRecord]) {
    for e in events {
        let text = e.payload.to_string();
        for window in VISA.as_bytes().windows(6) {
            let w = std::str::from_utf8(window).expect("ascii");
            assert!(!text.contains(w), "{}: card digits {w} in {text}", e.event_type.as_str());
        }
    }
}

/// The events a self-service payment raises, as the agent flow raises them.
fn assert_paid(events: &[EventRecord], invalid_first: bool) {
    let t = types(events);
    let has = |name: &str| t.iter().any(|x| x == name);
    for name in [
        "call.started",
        "call.answered",
        "payment.created",
        "capture.started",
        "capture.progress",
        "capture.field_completed",
        "payment.processing",
        "payment.succeeded",
        "call.ended",
    ] {
        assert!(has(name), "no {name} in {t:?}");
    }
    let completed: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type.as_str() == "capture.field_completed")
        .filter_map(|e| e.payload.get("field").and_then(Value::as_str))
        .collect();
    assert_eq!(completed, ["payment-card-number", "expiration-date", "security-code"]);
    let invalid: Vec<(&str, i64)> = events
        .iter()
        .filter(|e| e.event_type.as_str() == "capture.field_invalid")
        .map(|e| {
            (
                e.payload.get("error").and_then(Value::as_str).unwrap_or(""),
                e.payload.get("attempt").and_then(Value::as_i64).unwrap_or(0),
            )
        })
        .collect();
    if invalid_first {
        assert_eq!(invalid, [("invalid-card-number", 1)]);
    } else {
        assert_eq!(invalid, []);
    }
    let paid = events.iter().find(|e| e.event_type.as_str() == "payment.succeeded").expect("paid");
    assert_eq!(paid.payload.get("last4").and_then(Value::as_str), Some("4242"), "{}", paid.payload);
    assert_eq!(
        paid.payload.get("amount_minor").and_then(Value::as_i64),
        Some(1250),
        "{}",
        paid.payload
    );
    let ended = events.iter().find(|e| e.event_type.as_str() == "call.ended").expect("ended");
    assert_no_card_data(events);
    let _ = ended;
}

/// The customer keys the card in-band, timed to the prompts: a wrong number first (it gets
/// the error prompt and a second attempt), then the right one, the expiry and the code.
/// Every prompt reaches the customer whole, byte for byte.
#[test]
fn self_service_in_band_with_a_wrong_card_number_first() {
    require_root();
    crate::harness::require_tool("sipp", "sip-tester");
    let dir = scratch("ivr-in-band");
    let prompts = PromptSet::builtin().expect("prompts");
    let said = [
        welcome(gbp(1250)),
        retry("invalid-card-number", "enter-card-number"),
        one("enter-expiry"),
        one("enter-security-code"),
        one("processing"),
        approved("4242", "goodbye"),
    ];
    let mut script = Script::default();
    let mut at = FIRST_PROMPT_MS + ms_of(&prompts, &said[0]) + MARGIN_MS;
    for (keys, next) in [("4242424242424241#", 1), (VISA, 2), ("1230", 3), ("123", 4)] {
        let end = script.until(at).keys(keys);
        at = end + NEXT_PROMPT_MS + ms_of(&prompts, &said[next]) + MARGIN_MS;
    }
    script.write(&dir.join("customer_keys.ulaw"));

    let ivrpay = start_ivrpay(&dir);
    let media_port = free_ports(4);
    let tap = Tap::start(media_port);
    let started = Instant::now();
    let customer = SippSpec {
        media_port: Some(media_port),
        ..SippSpec::uac("customer", "customer_ivr", &dir, ivrpay.sip_udp, 1)
    }
    .key("amount", "12.50")
    .start();
    customer.finish(RUN).assert_all("customer", 1, &ivrpay);
    let call_ms = started.elapsed().as_millis();
    let packets = tap.finish();
    let got = segments(&packets);
    assert_eq!(
        got.len(),
        said.len(),
        "prompts received: {:?}",
        got.iter().map(Segment::seconds).collect::<Vec<_>>()
    );
    let mut report = Vec::new();
    for (segment, utterance) in got.iter().zip(&said) {
        report.push(check_segment(&prompts, segment, utterance, true));
    }
    ivrpay.wait_metric("calls_active", 0, Duration::from_secs(5));
    assert_eq!(ivrpay.metric("digits_in_band_total"), 17 + 16 + 4 + 3);
    let call = call_id_of(&ivrpay);
    let (events, _) = stop_and_read(ivrpay, &dir, &call);
    assert_paid(&events, true);
    let ended = events.iter().find(|e| e.event_type.as_str() == "call.ended").expect("ended");
    assert_eq!(
        ended.payload.get("reason").and_then(Value::as_str),
        Some("completed"),
        "ivrpay hung up: {}",
        ended.payload
    );
    #[allow(clippy::print_stdout, reason = "the figures for the closing note")]
    {
        println!("ivr in-band: call {call_ms} ms, {} events; prompts received:", events.len());
        for line in report {
            println!("ivr in-band:   {line}");
        }
    }
}

/// The customer keys the card as RFC 2833 telephone-events (SIPp's pcaps), typing over the
/// prompts: each key stops the prompt playing. The result and goodbye arrive whole.
#[test]
fn self_service_rfc2833_with_barge_in() {
    require_root();
    crate::harness::require_tool("sipp", "sip-tester");
    let dir = scratch("ivr-2833");
    let prompts = PromptSet::builtin().expect("prompts");
    // Keys over the prompts: the card 2 s into the welcome, the expiry and the code 1 s into
    // their prompts; 250 ms between keys.
    let mut keys = crate::ivr_media::EventPcap::default();
    let card_end = keys.until(2000).keys(VISA, 250);
    let expiry_end = keys.until(card_end + 1000).keys("1230", 250);
    keys.until(expiry_end + 1000).keys("123", 250);
    keys.write(&dir.join("customer_keys_2833.pcap"));
    let ivrpay = start_ivrpay(&dir);
    let media_port = free_ports(4);
    let tap = Tap::start(media_port);
    let customer = SippSpec {
        media_port: Some(media_port),
        ..SippSpec::uac("customer", "customer_ivr_2833", &dir, ivrpay.sip_udp, 1)
    }
    .key("amount", "12.50")
    .start();
    customer.finish(RUN).assert_all("customer", 1, &ivrpay);
    let got = segments(&tap.finish());
    // Welcome (cut by the first key), expiry and code prompts (cut), processing, result.
    assert_eq!(
        got.len(),
        5,
        "prompts received: {:?}\n{}",
        got.iter().map(Segment::seconds).collect::<Vec<_>>(),
        ivrpay.log.text()
    );
    let report = [
        check_segment(&prompts, &got[0], &welcome(gbp(1250)), false),
        check_segment(&prompts, &got[1], &one("enter-expiry"), false),
        check_segment(&prompts, &got[2], &one("enter-security-code"), false),
        check_segment(&prompts, &got[3], &one("processing"), true),
        check_segment(&prompts, &got[4], &approved("4242", "goodbye"), true),
    ];
    let cut = [got[0].seconds(), got[1].seconds(), got[2].seconds()];
    assert!((1.5..2.6).contains(&cut[0]), "the first key came 2 s in: {} s", cut[0]);
    assert!(cut[1..].iter().all(|s| (0.6..1.6).contains(s)), "keys 1 s into the prompts: {cut:?}");
    ivrpay.wait_metric("calls_active", 0, Duration::from_secs(5));
    assert_eq!(ivrpay.metric("digits_rfc4733_total"), 23);
    assert_eq!(ivrpay.metric("digits_in_band_total"), 0);
    let call = call_id_of(&ivrpay);
    let (events, _) = stop_and_read(ivrpay, &dir, &call);
    assert_paid(&events, false);
    #[allow(clippy::print_stdout, reason = "the figures for the closing note")]
    for line in report {
        println!("ivr rfc2833: {line}");
    }
}

/// The customer hangs up half-way through the card number: the session is cancelled,
/// nothing is charged, and ivrpay plays nothing more.
#[test]
fn self_service_hang_up_mid_entry_cancels() {
    require_root();
    crate::harness::require_tool("sipp", "sip-tester");
    let dir = scratch("ivr-hangup");
    let prompts = PromptSet::builtin().expect("prompts");
    let mut script = Script::default();
    let end = script
        .until(FIRST_PROMPT_MS + ms_of(&prompts, &welcome(gbp(1250))) + MARGIN_MS)
        .keys("42424242");
    script.write(&dir.join("customer_keys.ulaw"));
    let ivrpay = start_ivrpay(&dir);
    let media_port = free_ports(4);
    let tap = Tap::start(media_port);
    let customer = SippSpec {
        media_port: Some(media_port),
        hold_ms: end + 500,
        ..SippSpec::uac("customer", "customer_ivr_hangup", &dir, ivrpay.sip_udp, 1)
    }
    .key("amount", "12.50")
    .start();
    customer.finish(RUN).assert_all("customer", 1, &ivrpay);
    ivrpay.wait_metric("calls_active", 0, Duration::from_secs(5));
    ivrpay.log.wait_for("IVR dialogue over", Duration::from_secs(5));
    let got = segments(&tap.finish());
    assert_eq!(got.len(), 1, "only the welcome was played");
    check_segment(&prompts, &got[0], &welcome(gbp(1250)), true);
    let call = call_id_of(&ivrpay);
    let (events, store) = stop_and_read(ivrpay, &dir, &call);
    let t = types(&events);
    assert!(t.iter().any(|x| x == "payment.cancelled"), "{t:?}");
    for never in ["payment.processing", "payment.succeeded", "payment.declined", "payment.failed"] {
        assert!(!t.iter().any(|x| x == never), "{never} after a hang-up: {t:?}");
    }
    let progress = events
        .iter()
        .filter(|e| e.event_type.as_str() == "capture.progress")
        .filter(|e| e.payload.get("partial").and_then(Value::as_bool) == Some(true))
        .count();
    assert_eq!(progress, 8, "eight keys reached the session: {t:?}");
    let session = events
        .iter()
        .find(|e| e.event_type.as_str() == "payment.cancelled")
        .and_then(|e| e.payload.get("id"))
        .and_then(Value::as_str)
        .expect("the cancelled session's id")
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let record = runtime.block_on(async {
        let tenant = TenantId::parse("ten_default").expect("tenant");
        store.session(&tenant, &SessionId::parse(&session).expect("id")).await.expect("session")
    });
    assert_eq!(record.status, SessionStatus::Cancelled);
    assert!(record.payment_id.as_ref().is_none(), "no charge was attempted");
    assert_eq!(record.call_id.as_ref(), Some(&CallId::parse(&call).expect("call id")));
    assert_no_card_data(&events);
}

// ---- the API: a key and JSON posts ----

/// The admin key `ivrpay serve` printed on its first start (only its hash is stored).
fn admin_key(ivrpay: &Ivrpay) -> String {
    ivrpay.log.wait_for("created the first admin API key", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = ivrpay.log.text();
        if let Some(key) =
            text.lines().map(str::trim).find(|l| l.starts_with("ivrpay_") && !l.contains(' '))
        {
            return key.to_owned();
        }
        assert!(Instant::now() < deadline, "no admin key in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP request with a JSON body; returns (status, body as JSON).
fn request(
    ivrpay: &Ivrpay,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&ivrpay.http, Duration::from_secs(2))
        .expect("HTTP connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let idempotency = format!("test-{}-{n}", std::process::id());
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Idempotency-Key: {idempotency}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        ivrpay.http,
        body.len()
    )
    .expect("HTTP request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("HTTP response");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let text = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())))
}

/// A payment request made over the API and paid by a caller who keys its reference: the
/// call carries no amount, the IVR asks for the reference, reads the amount back, takes
/// the card; the request is then paid, with the session and the call on it.
#[test]
fn a_payment_request_is_paid_by_its_reference() {
    require_root();
    crate::harness::require_tool("sipp", "sip-tester");
    let dir = scratch("ivr-request");
    let prompts = PromptSet::builtin().expect("prompts");
    let ivrpay = start_ivrpay(&dir);
    let key = admin_key(&ivrpay);
    let body = serde_json::json!({
        "amount": "40.00", "currency": "gbp", "customer_ref": "INV-17", "expires_in": 3600
    });
    let (status, created) = request(&ivrpay, "POST", "/v1/payment-requests", &key, Some(&body));
    assert_eq!(status, 201, "{created}");
    let reference = created["reference"].as_str().expect("reference").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (created["status"].as_str(), created["amount"].as_str()),
        (Some("open"), Some("40.00"))
    );
    assert!(ivrpay_ivr::plausible_reference(&reference), "{reference}");

    let said = [
        Utterance::new().clip("welcome").pause(300).clip("enter-reference"),
        Utterance::new()
            .clip("amount-due")
            .then(speech::amount(gbp(4000)))
            .pause(400)
            .clip("enter-card-number"),
        one("enter-expiry"),
        one("enter-security-code"),
        one("processing"),
        approved("4242", "goodbye"),
    ];
    let mut script = Script::default();
    let mut at = FIRST_PROMPT_MS + ms_of(&prompts, &said[0]) + MARGIN_MS;
    let reference_keys = format!("{reference}#");
    for (keys, next) in [(reference_keys.as_str(), 1), (VISA, 2), ("1230", 3), ("123", 4)] {
        let end = script.until(at).keys(keys);
        at = end + NEXT_PROMPT_MS + ms_of(&prompts, &said[next]) + MARGIN_MS;
    }
    script.write(&dir.join("customer_keys.ulaw"));
    let media_port = free_ports(4);
    let tap = Tap::start(media_port);
    // No amount on the call: the IVR asks for a reference.
    let customer = SippSpec {
        media_port: Some(media_port),
        ..SippSpec::uac("customer", "customer_ivr", &dir, ivrpay.sip_udp, 1)
    }
    .key("amount", "")
    .start();
    customer.finish(RUN).assert_all("customer", 1, &ivrpay);
    let got = segments(&tap.finish());
    assert_eq!(
        got.len(),
        said.len(),
        "prompts received: {:?}",
        got.iter().map(Segment::seconds).collect::<Vec<_>>()
    );
    for (segment, utterance) in got.iter().zip(&said) {
        check_segment(&prompts, segment, utterance, true);
    }
    ivrpay.log.wait_for("IVR dialogue over", Duration::from_secs(5));
    let call = call_id_of(&ivrpay);
    let (status, paid) = request(&ivrpay, "GET", &format!("/v1/payment-requests/{id}"), &key, None);
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"].as_str(), Some("paid"), "{paid}");
    assert_eq!(paid["call_id"].as_str(), Some(call.as_str()), "{paid}");
    let session = paid["payment_id"].as_str().expect("the paying session").to_owned();
    assert!(paid["charge_id"].as_str().is_some_and(|c| c.starts_with("pay_")), "{paid}");
    let (status, payment) = request(&ivrpay, "GET", &format!("/v1/payments/{session}"), &key, None);
    assert_eq!(status, 200, "{payment}");
    assert_eq!(
        (
            payment["status"].as_str(),
            payment["amount"].as_str(),
            payment["customer_ref"].as_str(),
            payment["last4"].as_str()
        ),
        (Some("succeeded"), Some("40.00"), Some("INV-17"), Some("4242")),
        "{payment}"
    );
    // A paid request cannot be paid again: a second caller keying it hears it is not found.
    let (_, again) = request(&ivrpay, "GET", &format!("/v1/payment-requests/{id}"), &key, None);
    assert_eq!(again["status"].as_str(), Some("paid"));
    // Only an admin key makes requests; a wrong amount is refused with the field named.
    let bad = serde_json::json!({ "amount": "0", "currency": "GBP" });
    let (status, problem) = request(&ivrpay, "POST", "/v1/payment-requests", &key, Some(&bad));
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("amount")), "{problem}");
    let (events, _) = stop_and_read(ivrpay, &dir, &call);
    assert!(types(&events).iter().any(|t| t == "payment.succeeded"));
    assert_no_card_data(&events);
}

/// The agent's side of the media: records what the agent hears, and talks (a 1 kHz tone,
/// PCMU, 20 ms packets) to wherever the relay's agent leg sends from.
struct Agent {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Rtp>>,
}

impl Agent {
    fn start(socket: std::net::UdpSocket) -> Agent {
        use std::sync::atomic::Ordering;
        socket.set_read_timeout(Some(Duration::from_millis(5))).expect("timeout");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let tone = crate::ivr_media::sine(1000.0, 20);
            let mut ulaw = vec![0u8; tone.len()];
            ivrpay_audio::g711::Law::Ulaw.encode_slice(&tone, &mut ulaw);
            let (mut heard, mut relay, mut seq, mut next) =
                (Vec::new(), None, 0u16, Instant::now());
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    if let Some(p) = crate::ivr_media::parse_rtp(&buf[..n], Instant::now()) {
                        heard.push(p);
                        relay.get_or_insert(from);
                    }
                }
                if let (Some(to), true) = (relay, Instant::now() >= next) {
                    let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x9e, 0x7e, 0x11];
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                    packet.extend_from_slice(&ulaw);
                    let _ = socket.send_to(&packet, to);
                    seq = seq.wrapping_add(1);
                    next += Duration::from_millis(20);
                }
            }
            heard
        });
        Agent { stop, thread }
    }

    fn finish(self) -> Vec<Rtp> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("agent thread")
    }
}

/// PCMU packets' audio on one timeline (their RTP timestamps), gaps silent.
fn timeline(packets: &[&Rtp]) -> Vec<i16> {
    let Some(first) = packets.first() else { return Vec::new() };
    let mut out = Vec::new();
    for p in packets {
        let offset = p.timestamp.wrapping_sub(first.timestamp) as usize;
        if offset > 8000 * 120 {
            continue;
        }
        let end = offset + p.payload.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        ivrpay_audio::g711::Law::Ulaw.decode_slice(&p.payload, &mut out[offset..end]);
    }
    out
}

/// The audio of the packets that arrived in a window.
fn window(packets: &[Rtp], from: Instant, to: Instant) -> Vec<i16> {
    let inside: Vec<&Rtp> =
        packets.iter().filter(|p| p.payload_type == 0 && p.at >= from && p.at < to).collect();
    let mut pcm = Vec::new();
    for p in inside {
        let start = pcm.len();
        pcm.resize(start + p.payload.len(), 0);
        ivrpay_audio::g711::Law::Ulaw.decode_slice(&p.payload, &mut pcm[start..]);
    }
    pcm
}

/// During an agent's call, `POST /v1/calls/{id}/ivr` sends the customer to the IVR: the
/// customer hears the prompts and nothing of the agent, keys the card in-band; the agent
/// hears the hold announcement and no digit (spandsp and multimon-ng find none in the
/// agent's recording); after the result the two hear each other again.
#[test]
fn hand_off_to_the_ivr_and_back_to_the_agent() {
    require_root();
    crate::harness::require_tool("sipp", "sip-tester");
    crate::harness::require_tool("multimon-ng", "multimon-ng");
    let dir = scratch("ivr-handoff");
    let prompts = PromptSet::builtin().expect("prompts");
    const HANDOFF_MS: u32 = 3500;
    let said = [
        Utterance::new()
            .clip("handoff")
            .pause(300)
            .clip("amount-due")
            .then(speech::amount(gbp(1250)))
            .pause(400)
            .clip("enter-card-number"),
        one("enter-expiry"),
        one("enter-security-code"),
        one("processing"),
        approved("4242", "returning-to-agent"),
    ];
    // The customer talks to the agent (300 Hz), is handed off at 3.5 s, keys the card after
    // each prompt, and talks to the agent again once back.
    let mut script = Script::default();
    script.audio(&crate::ivr_media::sine(300.0, 3000));
    let mut at = HANDOFF_MS + FIRST_PROMPT_MS + ms_of(&prompts, &said[0]) + MARGIN_MS;
    for (keys, next) in [(VISA, 1), ("1230", 2), ("123", 3)] {
        let end = script.until(at).keys(keys);
        at = end + NEXT_PROMPT_MS + ms_of(&prompts, &said[next]) + MARGIN_MS;
    }
    let back_ms = at - MARGIN_MS + ms_of(&prompts, &said[4]) + 500;
    script.until(back_ms + 2000);
    let script_ms = script.audio(&crate::ivr_media::sine(300.0, 3000));
    // Control: the oracles hear every key the customer sends.
    let keyed = format!("{VISA}1230123");
    assert_eq!(ivrpay_testkit::oracle::spandsp(&script.samples, false), keyed, "spandsp, customer");
    assert_eq!(ivrpay_testkit::oracle::multimon(&script.samples), keyed, "multimon-ng, customer");
    script.write(&dir.join("customer_keys.ulaw"));

    let agent_socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("agent media socket");
    let agent_media = agent_socket.local_addr().expect("bound").port();
    let agent = Agent::start(agent_socket);
    let mut agent_spec =
        SippSpec::uas("agent", "agent", &dir, 1).key("agent_rtp_port", agent_media);
    // The call lasts most of a minute: the agent waits that long for the BYE.
    agent_spec.extra.extend(["-recv_timeout".to_owned(), "120000".to_owned()]);
    let agent_sipp = agent_spec.start();
    let ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent_sipp.addr()), 5);
    let key = admin_key(&ivrpay);
    let media_port = free_ports(4);
    let tap = Tap::start(media_port);
    let customer = SippSpec {
        media_port: Some(media_port),
        hold_ms: script_ms + 500,
        ..SippSpec::uac("customer", "customer_handoff", &dir, ivrpay.sip_udp, 1)
    }
    .start();
    ivrpay.log.wait_for("call answered", Duration::from_secs(10));
    let answered = Instant::now();
    let call = call_id_of(&ivrpay);
    std::thread::sleep(
        (answered + Duration::from_millis(u64::from(HANDOFF_MS)))
            .saturating_duration_since(Instant::now()),
    );
    let body =
        serde_json::json!({ "amount": "12.50", "currency": "GBP", "customer_ref": "ACME-7" });
    let (status, started) =
        request(&ivrpay, "POST", &format!("/v1/calls/{call}/ivr"), &key, Some(&body));
    let handed = Instant::now();
    assert_eq!(status, 202, "{started}");
    let session = started["payment"]["id"].as_str().expect("the session").to_owned();
    // The same call cannot be handed off twice at once.
    let (status, problem) =
        request(&ivrpay, "POST", &format!("/v1/calls/{call}/ivr"), &key, Some(&body));
    assert_eq!(status, 409, "{problem}");
    ivrpay.log.wait_for("IVR dialogue over", Duration::from_secs(90));
    let back = Instant::now();
    customer.finish(RUN).assert_all("customer", 1, &ivrpay);
    agent_sipp.finish(RUN).assert_all("agent", 1, &ivrpay);
    let heard_by_agent = agent.finish();
    let heard_by_customer = tap.finish();

    // The agent's recording: no digit for any decoder, over the whole call.
    let all: Vec<&Rtp> = heard_by_agent.iter().filter(|p| p.payload_type == 0).collect();
    let audio = timeline(&all);
    assert!(audio.len() / 8 >= script_ms as usize - 1000, "the agent got {} ms", audio.len() / 8);
    assert_eq!(ivrpay_testkit::oracle::spandsp(&audio, false), "", "spandsp on the agent's audio");
    assert_eq!(ivrpay_testkit::oracle::spandsp(&audio, true), "", "spandsp (relaxed)");
    assert_eq!(ivrpay_testkit::oracle::multimon(&audio), "", "multimon-ng on the agent's audio");
    assert!(
        heard_by_agent.iter().all(|p| p.payload_type != 101),
        "telephone-events reached the agent"
    );
    // Before: the customer's voice; during: the hold announcement; after: the voice again.
    let ms = Duration::from_millis;
    let before = window(&heard_by_agent, answered + ms(500), answered + ms(2500));
    let during = window(&heard_by_agent, handed + ms(500), back - ms(200));
    let after = window(
        &heard_by_agent,
        answered + ms(u64::from(back_ms + 2300)),
        answered + ms(u64::from(back_ms + 4500)),
    );
    let voice = |pcm: &[i16]| crate::ivr_media::tone_share_db(pcm, 300.0);
    assert!(voice(&before) > -3.0, "the agent hears the customer before: {:.1} dB", voice(&before));
    assert!(
        voice(&during) < -20.0,
        "the agent hears the customer during the IVR: {:.1} dB",
        voice(&during)
    );
    assert!(speech_share(&during) > 0.4, "the hold announcement: {:.2}", speech_share(&during));
    assert!(
        voice(&after) > -3.0,
        "back with the agent, the agent hears the customer: {:.1} dB",
        voice(&after)
    );

    // The customer: the agent, then the IVR's prompts whole and nothing of the agent, then
    // the agent again.
    let got = segments(&heard_by_customer);
    assert_eq!(
        got.len(),
        said.len() + 2,
        "segments: {:?}",
        got.iter().map(Segment::seconds).collect::<Vec<_>>()
    );
    let agent_voice = |s: &Segment| crate::ivr_media::tone_share_db(&s.samples(), 1000.0);
    assert!(agent_voice(&got[0]) > -3.0, "the customer hears the agent before");
    let mut report = Vec::new();
    for (segment, utterance) in got[1..=said.len()].iter().zip(&said) {
        report.push(check_segment(&prompts, segment, utterance, true));
    }
    let last = got.last().expect("segments");
    assert!(last.start >= back - ms(100), "the agent's audio came back only after the IVR");
    assert!(agent_voice(last) > -3.0, "the customer hears the agent again");
    assert!(last.seconds() > 2.0, "{} s of the agent after the return", last.seconds());

    let (status, payment) = request(&ivrpay, "GET", &format!("/v1/payments/{session}"), &key, None);
    assert_eq!(status, 200, "{payment}");
    assert_eq!(
        (payment["status"].as_str(), payment["last4"].as_str()),
        (Some("succeeded"), Some("4242")),
        "{payment}"
    );
    let (events, _) = stop_and_read(ivrpay, &dir, &call);
    assert_paid(&events, false);
    #[allow(clippy::print_stdout, reason = "the figures for the closing note")]
    {
        println!(
            "ivr hand-off: agent got {} ms, 0 digits (spandsp, relaxed, multimon-ng); 300 Hz \
             share at the agent {:.1} dB before, {:.1} dB during (announcement, speech {:.0} %), \
             {:.1} dB after",
            audio.len() / 8,
            voice(&before),
            voice(&during),
            speech_share(&during) * 100.0,
            voice(&after)
        );
        for line in report {
            println!("ivr hand-off: {line}");
        }
    }
}
