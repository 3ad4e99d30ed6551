//! IVR calls under the simulated clock: an IVR profile's calls are answered by ivrpay itself
//! (customer leg only), its in-dialog offers answered locally, and the call ends with a BYE
//! from the customer or, once the application is done, from ivrpay.

use std::time::Duration;

use ezk_sip_types::{Method, Name};
use ivrpay_sip::b2bua::{CallEvent, EndReason, IvrParams};
use ivrpay_sip::media::{CallId, Leg};
use ivrpay_sip::message::{Message, Response};
use ivrpay_sip::sdp::Codec;

use crate::sim::{AGENT, CUSTOMER, OFFER, PROFILE, Sim, addr, header_named, invite, reply};

/// An IVR profile on the same address as the relay profile, for calls to `pay`.
const IVR_PROFILE: &str = r#"
    name = "ivr"
    listen = ["udp:127.0.0.1:5060"]
    allowed_sources = ["127.0.0.0/8"]
    match_user = "pay"
    [routing]
    ivr = true
"#;

const ROUTER_HEADERS: &str =
    "X-Ivrpay-Amount: 12.50\nX-Ivrpay-Currency: GBP\nX-Ivrpay-Customer: ACME-1\n";

pub fn sim() -> Sim {
    Sim::with_profiles(&[PROFILE, IVR_PROFILE])
}

fn body(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).replace("\r\n", "\n")
}

/// A request from the customer in the dialog ivrpay's 200 (`to`, with our tag) set up.
fn in_dialog(
    method: &str,
    call_id: &str,
    to: &str,
    cseq: u32,
    branch: &str,
    sdp: Option<&str>,
) -> String {
    let body = sdp.unwrap_or("");
    let ct = if sdp.is_some() { "Content-Type: application/sdp\n" } else { "" };
    format!(
        "{method} sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch={branch}
Max-Forwards: 70
From: \"Customer\" <sip:+441234567890@127.0.0.1:6000>;tag=cust1
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
Contact: <sip:customer@127.0.0.1:6000>
{ct}Content-Length: {}

{body}",
        body.replace('\n', "\r\n").len()
    )
}

/// Calls `pay` with an offer and the router's headers; returns ivrpay's 200 and the call.
pub fn ivr_call(sim: &mut Sim, call_id: &str, offer: Option<&str>) -> (Response, CallId) {
    sim.send(CUSTOMER, &invite(call_id, &format!("z9hG4bK{call_id}"), offer, ROUTER_HEADERS));
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    let ok = sim.take_response(CUSTOMER);
    assert_eq!(ok.status(), 200, "ivrpay answers the IVR call itself");
    assert!(
        sim.sent.iter().all(|(to, _)| *to != addr(AGENT)),
        "no agent leg for an IVR call: {:?}",
        sim.summary()
    );
    let call = sim
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            CallEvent::Started { call, .. } => Some(call.clone()),
            _ => None,
        })
        .expect("started");
    (ok, call)
}

fn ack(sim: &mut Sim, call_id: &str, to: &str, sdp: Option<&str>) {
    sim.send(CUSTOMER, &in_dialog("ACK", call_id, to, 1, &format!("z9hG4bKack{call_id}"), sdp));
}

#[test]
fn an_ivr_call_is_answered_with_the_relay_port_and_the_routers_headers() {
    let mut sim = sim();
    let (ok, call) = ivr_call(&mut sim, "ivr-1", Some(OFFER));
    // Our SDP: the relay's customer port, one codec (the profile's first offered) and
    // telephone-event, answered sendrecv.
    let sdp = body(&ok);
    assert!(sdp.contains("o=ivrpay") && sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 101\n"), "{sdp}");
    assert!(!sdp.contains("PCMA") && !sdp.contains("G729"), "{sdp}");
    assert!(sdp.contains("a=sendrecv"), "{sdp}");
    assert!(header_named(&ok.headers, &Name::CONTACT).is_some_and(|c| c.contains("5060")));
    // The relay opened the customer leg only and sends PCMU to the customer's offer.
    assert!(sim.core.media().settings[0].customer_only);
    let (_, leg, stream) = sim.core.media().updates.last().cloned().expect("media update");
    assert_eq!(leg, Leg::Customer);
    assert_eq!(stream.codecs, vec![(0, Codec::Pcmu)]);
    assert_eq!(stream.telephone_event, Some(101));
    // The application learns the payment the router asked for, and that the call is up.
    match &sim.events[..] {
        [CallEvent::Started { profile, ivr, .. }, CallEvent::Answered { agent: None, .. }] => {
            assert_eq!(profile, "ivr");
            assert_eq!(
                ivr.as_ref(),
                Some(&IvrParams {
                    amount: Some("12.50".into()),
                    currency: Some("GBP".into()),
                    customer: Some("ACME-1".into()),
                })
            );
        }
        other => panic!("events: {other:?}"),
    }
    assert_eq!(sim.core.active_calls(), 1);
    let _ = call;
    // Another user on the same address still goes to the contact centre.
    sim.send(
        CUSTOMER,
        &invite("relay-1", "z9hG4bKr1", Some(OFFER), "").replace("sip:pay@", "sip:agents@"),
    );
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    assert_eq!(sim.take_request(AGENT).method, Method::INVITE);
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Started { ivr: None, profile, .. }) if profile == "test0"
    ));
}

#[test]
fn the_customer_hangs_up_an_ivr_call() {
    let mut sim = sim();
    let (ok, call) = ivr_call(&mut sim, "ivr-2", Some(OFFER));
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    ack(&mut sim, "ivr-2", &to, None);
    sim.send(CUSTOMER, &in_dialog("BYE", "ivr-2", &to, 2, "z9hG4bKbye2", None));
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { call: ended, reason: EndReason::CustomerHangup }) if *ended == call
    ));
    assert_eq!(sim.core.media().closed, vec![call.clone()]);
    assert!(!sim.core.hangup(sim.now, &call), "nothing left to hang up");
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.open_transactions(), (0, 0));
}

#[test]
fn ivrpay_hangs_up_once_the_application_is_done() {
    let mut sim = sim();
    let (ok, call) = ivr_call(&mut sim, "ivr-3", Some(OFFER));
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    ack(&mut sim, "ivr-3", &to, None);
    assert!(sim.nothing_sent());
    let now = sim.now;
    assert!(sim.core.hangup(now, &call));
    while let Some(t) = sim.core.poll_transmit() {
        let message = ivrpay_sip::message::parse(t.bytes).expect("valid SIP");
        sim.sent.push_back((t.to.addr, message));
    }
    while let Some(e) = sim.core.poll_event() {
        sim.events.push(e);
    }
    let bye = sim.take_request(CUSTOMER);
    assert_eq!(bye.method, Method::BYE);
    // In the customer's dialog: to its Contact, our tag as From, its tag as To.
    let mut encoded = bytes::BytesMut::new();
    Message::Request(bye.clone()).encode(&mut encoded);
    assert!(
        encoded.starts_with(b"BYE sip:customer@127.0.0.1:6000 SIP/2.0"),
        "{}",
        String::from_utf8_lossy(&encoded)
    );
    assert_eq!(header_named(&bye.headers, &Name::FROM).as_deref(), Some(to.as_str()));
    let bye_to = header_named(&bye.headers, &Name::TO).expect("To");
    assert!(bye_to.contains("tag=cust1"), "{bye_to}");
    assert!(
        header_named(&bye.headers, &Name::CSEQ).is_some_and(|c| c.starts_with("1 BYE")),
        "our first request in the dialog"
    );
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { call: ended, reason: EndReason::Finished }) if *ended == call
    ));
    assert_eq!(sim.core.media().closed, vec![call]);
    sim.send_message(CUSTOMER, &reply(&bye, 200, None, None, &[]));
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.open_transactions(), (0, 0));
}

#[test]
fn an_invite_without_offer_gets_ours_and_the_ack_answers() {
    let mut sim = sim();
    let (ok, call) = ivr_call(&mut sim, "ivr-4", None);
    let sdp = body(&ok);
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 8 101\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:101 telephone-event/8000"), "{sdp}");
    assert!(sim.core.media().updates.is_empty(), "no stream known before the ACK");
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    let answer = "v=0
o=customer 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 7100 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
";
    ack(&mut sim, "ivr-4", &to, Some(answer));
    let (updated, leg, stream) = sim.core.media().updates.last().cloned().expect("update");
    assert_eq!((updated, leg), (call, Leg::Customer));
    assert_eq!(stream.rtp, Some(addr("127.0.0.1:7100")));
    assert_eq!(stream.codecs, vec![(8, Codec::Pcma)]);
}

#[test]
fn in_dialog_offers_are_answered_by_ivrpay_and_digits_consumed() {
    let mut sim = sim();
    let (ok, _) = ivr_call(&mut sim, "ivr-5", Some(OFFER));
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    ack(&mut sim, "ivr-5", &to, None);
    // The customer puts ivrpay on hold: a=sendonly gets a=recvonly, a newer o= version.
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    sim.send(CUSTOMER, &in_dialog("INVITE", "ivr-5", &to, 2, "z9hG4bKre5", Some(&hold)));
    let mut response = sim.take_response(CUSTOMER);
    if response.status() == 100 {
        response = sim.take_response(CUSTOMER);
    }
    assert_eq!(response.status(), 200);
    let sdp = body(&response);
    assert!(sdp.contains("a=recvonly") && sdp.contains(" 2 IN IP4"), "{sdp}");
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    let (_, _, stream) = sim.core.media().updates.last().cloned().expect("update");
    assert_eq!(stream.direction, ezk_sdp_types::Direction::SendOnly);
    ack(&mut sim, "ivr-5", &to, None);
    // Keys sent as SIP INFO reach the application, as on a relayed call.
    let info = in_dialog("INFO", "ivr-5", &to, 3, "z9hG4bKinfo5", None)
        .replace("Content-Length: 0", "Content-Type: application/dtmf-relay\nContent-Length: 9")
        + "Signal=7\n";
    sim.send(CUSTOMER, &info);
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Digit { digit, .. }) if digit.as_char() == '7'
    ));
}

#[test]
fn an_unacknowledged_answer_ends_the_ivr_call() {
    let mut sim = sim();
    let (_, call) = ivr_call(&mut sim, "ivr-6", Some(OFFER));
    sim.advance(Duration::from_secs(40));
    let retransmitted = sim
        .sent
        .iter()
        .filter(|(to, m)| {
            *to == addr(CUSTOMER) && matches!(m, Message::Response(r) if r.status() == 200)
        })
        .count();
    assert!(retransmitted >= 5, "the 200 is retransmitted until 64·T1: {retransmitted}");
    assert!(sim.sent.iter().any(|(to, m)| *to == addr(CUSTOMER)
        && matches!(m, Message::Request(r) if r.method == Method::BYE)));
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { call: ended, reason: EndReason::Terminated }) if *ended == call
    ));
}
