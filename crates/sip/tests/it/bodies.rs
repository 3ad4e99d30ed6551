//! Bodies from the customer leg pass an allow-list: key presses of every DTMF type are
//! consumed, SDP is rewritten wherever it sits (multipart included), the rest is refused, and
//! the agent only ever gets the rewritten SDP as a single-part body.

use ezk_sip_types::{Method, Name};
use ivrpay_sip::b2bua::CallEvent;
use ivrpay_sip::media::Leg;
use ivrpay_sip::message::{Message, Request, Response};

use crate::flows::{answered_call, customer_request};
use crate::sim::{AGENT, CUSTOMER, OFFER, Sim, answer, header_named, invite, reply};

const MIXED: &str = "multipart/mixed;boundary=bnd";

/// A `multipart/mixed` body (boundary `bnd`) of (Content-Type, Content-Disposition, body).
fn multipart(parts: &[(&str, Option<&str>, &str)]) -> String {
    let mut out = String::new();
    for (content_type, disposition, body) in parts {
        out.push_str(&format!("--bnd\nContent-Type: {content_type}\n"));
        if let Some(disposition) = disposition {
            out.push_str(&format!("Content-Disposition: {disposition}\n"));
        }
        out.push_str(&format!("\n{body}\n"));
    }
    out.push_str("--bnd--\n");
    out
}

const ISUP: (&str, Option<&str>, &str) =
    ("application/isup;version=itu-t92+", Some("signal;handling=optional"), "IAM 4111111111111111");

fn keys(sim: &Sim) -> String {
    sim.events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Digit { digit, .. } => Some(digit.as_char()),
            _ => None,
        })
        .collect()
}

fn content_type(headers: &ezk_sip_types::Headers) -> Option<String> {
    header_named(headers, &Name::CONTENT_TYPE)
}

/// The body as the agent got it: a single SDP of ivrpay's, with nothing of the customer's.
fn assert_rewritten_sdp_only(content_type: Option<String>, body: &[u8], ivrpay_port: u16) {
    assert_eq!(content_type.as_deref(), Some("application/sdp"), "single-part SDP");
    let text = String::from_utf8_lossy(body);
    assert!(text.starts_with("v=0") && text.contains("o=ivrpay"), "{text}");
    assert!(text.contains(&format!("m=audio {ivrpay_port} ")), "{text}");
    for leaked in ["audio 7000", "audio 7100", "audio 9000", "bnd", "IAM", "4111111111111111"] {
        assert!(!text.contains(leaked), "{leaked} reached the other leg: {text}");
    }
}

#[test]
fn key_presses_of_every_dtmf_type_are_consumed_never_relayed() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "b-1").customer_to;
    let dtmf_in_multipart = multipart(&[("application/dtmf-relay", None, "Signal=#\nDuration=90")]);
    for (n, (content_type, body)) in [
        ("application/vnd.nortelnetworks.digits", "d=4"),
        ("application/x-dtmf-relay", "Signal=1\nDuration=160"),
        ("application/x-dtmf", "1"),
        ("application/dtmf", "1"),
        (MIXED, dtmf_in_multipart.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let n = n as u32;
        let branch = format!("z9hG4bKk{n}");
        sim.send(
            CUSTOMER,
            &customer_request("INFO", "b-1", &to, 10 + n, &branch, Some(content_type), body),
        );
        assert_eq!(sim.take_response(CUSTOMER).status(), 200, "{content_type}");
        assert!(sim.nothing_sent(), "{content_type} relayed: {:?}", sim.summary());
    }
    assert_eq!(keys(&sim), "4111#");
    // A DTMF body whose key cannot be read is refused, and still not relayed.
    sim.send(
        CUSTOMER,
        &customer_request(
            "INFO",
            "b-1",
            &to,
            20,
            "z9hG4bKk9",
            Some("application/vnd.nortelnetworks.digits"),
            "d=?",
        ),
    );
    assert_eq!(sim.take_response(CUSTOMER).status(), 400);
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
}

#[test]
fn a_multipart_reinvite_reaches_the_agent_as_rewritten_sdp_only() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "b-2").customer_to;
    let hold =
        OFFER.replace("a=sendrecv", "a=sendonly").replace("o=customer 1 1", "o=customer 1 2");
    let body = multipart(&[("application/sdp", None, &hold), ISUP]);
    sim.send(CUSTOMER, &customer_request("INVITE", "b-2", &to, 2, "z9hG4bKmp", Some(MIXED), &body));
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    let reinvite = sim.take_request(AGENT);
    assert_eq!(reinvite.method, Method::INVITE);
    assert_rewritten_sdp_only(content_type(&reinvite.headers), &reinvite.body, 30002);
    assert!(String::from_utf8_lossy(&reinvite.body).contains("a=sendonly"));
    let customer_update = sim.core.media().updates.last().cloned();
    assert!(
        customer_update.is_some_and(
            |u| u.1 == Leg::Customer && u.2.direction == ezk_sdp_types::Direction::SendOnly
        ),
        "the relay follows the customer's new stream"
    );
    sim.send_message(AGENT, &reply(&reinvite, 200, None, Some(&answer(9000, "recvonly")), &[]));
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    let ok = sim.take_response(CUSTOMER);
    assert_eq!(ok.status(), 200);
    assert_rewritten_sdp_only(content_type(&ok.headers), &ok.body, 30000);
}

#[test]
fn a_carrier_invite_with_sdp_and_isup_is_taken_and_the_agent_gets_sdp_only() {
    let mut sim = Sim::new();
    let body = multipart(&[("application/sdp", None, OFFER), ISUP]);
    let length = body.replace('\n', "\r\n").len();
    let text = invite("b-3", "z9hG4bKb3", None, "").replace(
        "Content-Length: 0\n",
        &format!("Content-Type: {MIXED}\nContent-Length: {length}\n"),
    );
    sim.send(CUSTOMER, &format!("{text}{body}"));
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    let agent_invite = sim.take_request(AGENT);
    assert_rewritten_sdp_only(content_type(&agent_invite.headers), &agent_invite.body, 30002);
    let media = &sim.core.media().updates;
    assert_eq!(media[0].1, Leg::Customer);
    assert_eq!(media[0].2.rtp, Some("127.0.0.1:7000".parse().expect("addr")));
}

#[test]
fn bodies_off_the_list_are_refused_and_nothing_reaches_the_agent() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "b-4").customer_to;
    let required_isup =
        multipart(&[("application/sdp", None, OFFER), ("application/isup", None, "IAM")]);
    let unterminated = multipart(&[("application/sdp", None, OFFER)]).replace("--bnd--\n", "");
    let two_sdp = multipart(&[("application/sdp", None, OFFER), ("application/sdp", None, OFFER)]);
    for (n, (method, content_type, body, code, reason)) in [
        ("INVITE", "text/plain", "hello", 415, "Unsupported Media Type"),
        ("UPDATE", "application/pidf+xml", "<presence/>", 415, "Unsupported Media Type"),
        ("INVITE", MIXED, required_isup.as_str(), 415, "Unsupported Media Type"),
        ("INFO", "application/sdp", OFFER, 415, "Unsupported Media Type"),
        ("INVITE", MIXED, unterminated.as_str(), 400, "Multipart body without a closing delimiter"),
        (
            "INVITE",
            "multipart/mixed",
            two_sdp.as_str(),
            400,
            "Multipart body without a valid boundary",
        ),
        ("INVITE", MIXED, two_sdp.as_str(), 400, "More than one session description"),
    ]
    .into_iter()
    .enumerate()
    {
        let n = n as u32;
        let branch = format!("z9hG4bKr{n}");
        sim.send(
            CUSTOMER,
            &customer_request(method, "b-4", &to, 10 + n, &branch, Some(content_type), body),
        );
        let refused = loop {
            let response = sim.take_response(CUSTOMER);
            if response.status() != 100 {
                break response;
            }
        };
        assert_eq!(refused.status(), code, "{method} {content_type}");
        assert_eq!(refused.reason.as_deref(), Some(reason), "{method} {content_type}");
        if code == 415 {
            let accept = header_named(&refused.headers, &Name::ACCEPT).expect("Accept");
            for listed in
                ["application/sdp", "application/vnd.nortelnetworks.digits", "multipart/mixed"]
            {
                assert!(accept.contains(listed), "{accept}");
            }
        }
        assert!(sim.nothing_sent(), "{method} {content_type}: {:?}", sim.summary());
    }
    assert_eq!(sim.core.active_calls(), 1, "the call goes on");
    // The initial INVITE is held to the same list.
    sim.send(
        CUSTOMER,
        &invite("b-5", "z9hG4bKb5", Some("hello"), "").replace("application/sdp", "text/plain"),
    );
    let refused = sim.take_response(CUSTOMER);
    assert_eq!(refused.status(), 415);
    assert!(
        header_named(&refused.headers, &Name::ACCEPT)
            .is_some_and(|a| a.contains("multipart/mixed"))
    );
}

/// A request from the agent in the dialog of `invite` (ivrpay's INVITE to it, answered with
/// tag `agent1`), with a body.
fn agent_request(
    method: &str,
    invite: &Request,
    cseq: u32,
    content_type: &str,
    body: &str,
) -> String {
    let from = header_named(&invite.headers, &Name::FROM).expect("From");
    let to = header_named(&invite.headers, &Name::TO).expect("To");
    let call_id = header_named(&invite.headers, &Name::CALL_ID).expect("Call-ID");
    format!(
        "{method} sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKag{cseq}
Max-Forwards: 70
From: {to};tag=agent1
To: {from}
Call-ID: {call_id}
CSeq: {cseq} {method}
Contact: <sip:agent@127.0.0.1:5080>
Content-Type: {content_type}
Content-Length: {}

{body}",
        body.replace('\n', "\r\n").len()
    )
}

/// A response with a body of any type.
fn reply_with(request: &Request, code: u16, content_type: &str, body: &str) -> Message {
    let Message::Response(mut response) = reply(request, code, None, None, &[]) else {
        unreachable!("reply builds a response")
    };
    response.headers.insert(Name::CONTENT_TYPE, content_type.to_owned());
    response.body = bytes::Bytes::from(body.replace('\n', "\r\n"));
    Message::Response(response)
}

#[test]
fn the_customer_answer_to_an_agent_reinvite_goes_on_as_rewritten_sdp_only() {
    let mut sim = Sim::new();
    let agent_invite = answered_call(&mut sim, "b-6").agent_invite;
    // The agent's re-INVITE, its offer in a multipart body: the customer gets our SDP alone.
    let offer = multipart(&[
        ("application/sdp", None, &answer(9000, "sendonly")),
        ("application/x-note", None, "note"),
    ]);
    sim.send(AGENT, &agent_request("INVITE", &agent_invite, 2, MIXED, &offer));
    assert_eq!(sim.take_response(AGENT).status(), 100);
    let to_customer = sim.take_request(CUSTOMER);
    assert_eq!(to_customer.method, Method::INVITE);
    assert_rewritten_sdp_only(content_type(&to_customer.headers), &to_customer.body, 30000);
    // The customer answers in a multipart body with a key press and ISUP beside the SDP.
    let answer_body = multipart(&[
        (
            "application/sdp",
            None,
            &OFFER.replace("7000", "7100").replace("a=sendrecv", "a=recvonly"),
        ),
        ("application/dtmf", None, "7"),
        ISUP,
    ]);
    sim.send_message(CUSTOMER, &reply_with(&to_customer, 200, MIXED, &answer_body));
    assert_eq!(sim.take_request(CUSTOMER).method, Method::ACK);
    let ok: Response = match sim.take_to(AGENT) {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected the 200, got {}", r.method),
    };
    assert_eq!(ok.status(), 200);
    assert_rewritten_sdp_only(content_type(&ok.headers), &ok.body, 30002);
    assert_eq!(keys(&sim), "7", "the key in the answer was consumed");
    assert!(
        sim.core
            .media()
            .updates
            .iter()
            .any(|u| u.1 == Leg::Customer
                && u.2.rtp == Some("127.0.0.1:7100".parse().expect("addr"))),
        "the relay follows the customer's answer"
    );
}

#[test]
fn an_ivr_call_takes_keys_and_multipart_offers_from_the_same_list() {
    let mut sim = crate::ivr::sim();
    let (ok, _) = crate::ivr::ivr_call(&mut sim, "b-7", Some(OFFER));
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    let info = customer_request(
        "INFO",
        "b-7",
        &to,
        2,
        "z9hG4bKi7",
        Some("application/vnd.nortelnetworks.digits"),
        "d=9",
    );
    sim.send(CUSTOMER, &info);
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    assert_eq!(keys(&sim), "9");
    let offer = multipart(&[("application/sdp", None, &OFFER.replace("7000", "7200")), ISUP]);
    sim.send(
        CUSTOMER,
        &customer_request("INVITE", "b-7", &to, 3, "z9hG4bKr7", Some(MIXED), &offer),
    );
    let answered = sim.take_response(CUSTOMER);
    assert_eq!(answered.status(), 200);
    assert_rewritten_sdp_only(content_type(&answered.headers), &answered.body, 30000);
    let last = sim.core.media().updates.last().cloned().expect("media update");
    assert_eq!(last.2.rtp, Some("127.0.0.1:7200".parse().expect("addr")));
}
