//! Call flows through the B2BUA core, under a simulated clock.

use std::time::Duration;

use ezk_sip_types::{Method, Name};
use ivrpay_sip::b2bua::{CallEvent, EndReason};
use ivrpay_sip::media::{LatchFrom, Leg};
use ivrpay_sip::message::{Message, Request};

use crate::sim::{
    AGENT, AGENT2, CUSTOMER, OFFER, PROFILE, Sim, answer, header, header_named, invite, reply,
};

/// An answered call as its two peers know it.
pub struct Answered {
    /// The agent's view of the INVITE.
    pub agent_invite: Request,
    /// The To of ivrpay's 200 to the customer (with ivrpay's tag): the customer's requests
    /// in the dialog carry it.
    pub customer_to: String,
}

/// Customer → ivrpay → agent, up to the agent's 200 and the ACKs.
pub fn answered_call(sim: &mut Sim, call_id: &str) -> Answered {
    sim.send(
        CUSTOMER,
        &invite(call_id, "z9hG4bKc1", Some(OFFER), "X-Customer-Ref: A-42\nSubject: secret\n"),
    );
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    let agent_invite = sim.take_request(AGENT);
    let ringing = reply(&agent_invite, 180, Some("agent1"), None, &[]);
    sim.send_message(AGENT, &ringing);
    assert_eq!(sim.take_response(CUSTOMER).status(), 180);
    let ok = reply(
        &agent_invite,
        200,
        Some("agent1"),
        Some(&answer(9000, "sendrecv")),
        &[("Contact", "<sip:agent@127.0.0.1:5080>"), ("X-Agent-Id", "agent-7")],
    );
    sim.send_message(AGENT, &ok);
    let ack = sim.take_request(AGENT);
    assert_eq!(ack.method, Method::ACK);
    let ok = sim.take_response(CUSTOMER);
    assert_eq!(ok.status(), 200);
    // The customer ACKs our 200.
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    sim.send(
        CUSTOMER,
        &format!(
            "ACK sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKack1
Max-Forwards: 70
From: \"Customer\" <sip:+441234567890@127.0.0.1:6000>;tag=cust1
To: {to}
Call-ID: {call_id}
CSeq: 1 ACK
Content-Length: 0

"
        ),
    );
    Answered { agent_invite, customer_to: to }
}

/// The customer's CANCEL of its INVITE `call_id` (sent with `branch`).
pub fn customer_cancel(call_id: &str, branch: &str) -> String {
    format!(
        "CANCEL sip:pay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch={branch}
Max-Forwards: 70
From: \"Customer\" <sip:+441234567890@127.0.0.1:6000>;tag=cust1
To: <sip:pay@127.0.0.1:5060>
Call-ID: {call_id}
CSeq: 1 CANCEL
Content-Length: 0

"
    )
}

/// An in-dialog request from the customer, given ivrpay's 200 To value.
pub fn customer_request(
    method: &str,
    call_id: &str,
    to: &str,
    cseq: u32,
    branch: &str,
    content_type: Option<&str>,
    body: &str,
) -> String {
    let ct = content_type.map(|c| format!("Content-Type: {c}\n")).unwrap_or_default();
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

#[test]
fn a_call_is_relayed_with_media_anchored_and_headers_filtered() {
    let mut sim = Sim::new();
    let agent_invite = answered_call(&mut sim, "call-1@customer").agent_invite;
    // The agent leg: a new dialog that names the ivrpay call.
    let ivrpay_id = header(&agent_invite.headers, "X-Ivrpay-Call-Id").expect("X-Ivrpay-Call-Id");
    assert!(ivrpay_id.starts_with("call_") && ivrpay_id.len() == 25, "{ivrpay_id}");
    assert_ne!(
        header_named(&agent_invite.headers, &Name::CALL_ID).as_deref(),
        Some("call-1@customer")
    );
    assert_eq!(header(&agent_invite.headers, "X-Customer-Ref").as_deref(), Some("A-42"));
    assert_eq!(
        header(&agent_invite.headers, "Subject"),
        None,
        "headers not in the pass list are stripped"
    );
    assert_eq!(header_named(&agent_invite.headers, &Name::MAX_FORWARDS).as_deref(), Some("69"));
    // Its SDP: ivrpay's address and agent-side port, only PCMU/PCMA and telephone-event.
    let sdp = String::from_utf8_lossy(&agent_invite.body).into_owned();
    assert!(sdp.contains("m=audio 30002 RTP/AVP 0 8 101"), "{sdp}");
    assert!(!sdp.contains("G729") && !sdp.contains("7000"), "{sdp}");
    assert!(sdp.contains("a=rtcp:30003"), "{sdp}");
    let started = &sim.events[0];
    assert!(matches!(started, CallEvent::Started { call, .. } if call.0 == ivrpay_id));
    assert!(matches!(&sim.events[1], CallEvent::Answered { agent: Some(a), .. } if a == "agent-7"));
    // The relay heard both legs' SDP.
    let media = &sim.core.media().updates;
    assert_eq!(media.len(), 2);
    assert_eq!(media[0].1, Leg::Customer);
    assert_eq!(media[0].2.rtp, Some("127.0.0.1:7000".parse().expect("addr")));
    assert_eq!(media[1].1, Leg::Agent);
    assert_eq!(media[1].2.rtp, Some("127.0.0.1:9000".parse().expect("addr")));
    assert_eq!(sim.core.active_calls(), 1);
}

#[test]
fn customer_answer_shows_ivrpay_not_the_agent() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-2", "z9hG4bKc2", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(
        AGENT,
        &reply(
            &agent_invite,
            200,
            Some("a2"),
            Some(&answer(9100, "sendrecv")),
            &[("Contact", "<sip:agent@127.0.0.1:5080>")],
        ),
    );
    let ok = sim.take_response(CUSTOMER);
    let sdp = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 101"), "{sdp}");
    assert!(!sdp.contains("9100"), "{sdp}");
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    assert!(to.contains("tag="), "ivrpay tags the customer's dialog: {to}");
    assert!(!to.contains("a2"), "the agent's tag is not the customer's: {to}");
    assert!(header_named(&ok.headers, &Name::CONTACT).expect("Contact").contains("127.0.0.1:5060"));
}

#[test]
fn bye_from_the_customer_ends_both_legs() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "call-3").customer_to;
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    sim.send(CUSTOMER, &customer_request("BYE", "call-3", &to, 2, "z9hG4bKbye", None, ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    let bye = sim.take_request(AGENT);
    assert_eq!(bye.method, Method::BYE);
    assert!(header_named(&bye.headers, &Name::TO).expect("To").contains("tag=agent1"));
    sim.send_message(AGENT, &reply(&bye, 200, None, None, &[]));
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { reason: EndReason::CustomerHangup, .. })
    ));
    assert_eq!(sim.core.media().closed.len(), 1);
    assert_eq!(sim.core.active_calls(), 0);
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.open_transactions(), (0, 0), "every transaction ends");
}

#[test]
fn bye_from_the_agent_ends_both_legs() {
    let mut sim = Sim::new();
    let agent_invite = answered_call(&mut sim, "call-4").agent_invite;
    let bye = format!(
        "BYE sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKabye
Max-Forwards: 70
From: {};tag=agent1
To: {}
Call-ID: {}
CSeq: 1 BYE
Content-Length: 0

",
        header_named(&agent_invite.headers, &Name::TO).expect("To"),
        header_named(&agent_invite.headers, &Name::FROM).expect("From"),
        header_named(&agent_invite.headers, &Name::CALL_ID).expect("Call-ID"),
    );
    sim.send(AGENT, &bye);
    assert_eq!(sim.take_response(AGENT).status(), 200);
    let customer_bye = sim.take_request(CUSTOMER);
    assert_eq!(customer_bye.method, Method::BYE);
    assert_eq!(customer_bye.uri.host_port.port, Some(6000), "sent to the customer's Contact");
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { reason: EndReason::AgentHangup, .. })
    ));
}

#[test]
fn cancel_before_answer_cancels_the_agent_leg() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-5", "z9hG4bKc5", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&agent_invite, 180, Some("a5"), None, &[]));
    assert_eq!(sim.take_response(CUSTOMER).status(), 180);
    sim.send(CUSTOMER, &customer_cancel("call-5", "z9hG4bKc5"));
    let mut codes =
        vec![sim.take_response(CUSTOMER).status(), sim.take_response(CUSTOMER).status()];
    codes.sort();
    assert_eq!(codes, vec![200, 487]);
    let cancel = sim.take_request(AGENT);
    assert_eq!(cancel.method, Method::CANCEL);
    assert_eq!(
        header_named(&cancel.headers, &Name::VIA),
        header_named(&agent_invite.headers, &Name::VIA)
    );
    sim.send_message(AGENT, &reply(&cancel, 200, Some("a5"), None, &[]));
    sim.send_message(AGENT, &reply(&agent_invite, 487, Some("a5"), None, &[]));
    let ack = sim.take_request(AGENT);
    assert_eq!(ack.method, Method::ACK, "the 487 is acknowledged");
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { reason: EndReason::Cancelled, .. })
    ));
}

#[test]
fn cancel_after_only_100_trying_cancels_the_agent_leg_and_a_racing_200_is_hung_up() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-c1", "z9hG4bKcc1", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&agent_invite, 100, None, None, &[]));
    sim.send(CUSTOMER, &customer_cancel("call-c1", "z9hG4bKcc1"));
    let mut codes =
        vec![sim.take_response(CUSTOMER).status(), sim.take_response(CUSTOMER).status()];
    codes.sort();
    assert_eq!(codes, vec![200, 487]);
    let cancel = sim.take_request(AGENT);
    assert_eq!(cancel.method, Method::CANCEL, "a 100 Trying allows the CANCEL");
    assert_eq!(
        header_named(&cancel.headers, &Name::VIA),
        header_named(&agent_invite.headers, &Name::VIA)
    );
    assert_eq!(sim.core.active_calls(), 0);

    // The agent answered before the CANCEL reached it: ACK the 200, then hang up.
    sim.send_message(AGENT, &reply(&cancel, 200, Some("c1"), None, &[]));
    let ok = reply(
        &agent_invite,
        200,
        Some("c1"),
        Some(&answer(9100, "sendrecv")),
        &[("Contact", "<sip:agent@127.0.0.1:5080>")],
    );
    sim.send_message(AGENT, &ok);
    let ack = sim.take_request(AGENT);
    assert_eq!(ack.method, Method::ACK);
    let bye = sim.take_request(AGENT);
    assert_eq!(bye.method, Method::BYE);
    assert!(header_named(&bye.headers, &Name::TO).expect("To").contains("tag=c1"));
    assert_eq!(
        header_named(&bye.headers, &Name::CALL_ID),
        header_named(&agent_invite.headers, &Name::CALL_ID)
    );
    // A retransmitted 200 is ACKed again, but not hung up twice.
    sim.send_message(AGENT, &ok);
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    assert!(!sim.sent.iter().any(|(to, _)| *to == crate::sim::addr(AGENT)), "{:?}", sim.summary());
    sim.send_message(AGENT, &reply(&bye, 200, Some("c1"), None, &[]));
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.open_transactions(), (0, 0));
}

#[test]
fn cancel_before_any_response_waits_for_the_provisional() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-c2", "z9hG4bKcc2", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send(CUSTOMER, &customer_cancel("call-c2", "z9hG4bKcc2"));
    let _ = sim.take_response(CUSTOMER);
    let _ = sim.take_response(CUSTOMER);
    // RFC 3261 §9.1: no CANCEL before a provisional.
    assert!(!sim.sent.iter().any(|(to, _)| *to == crate::sim::addr(AGENT)));
    sim.send_message(AGENT, &reply(&agent_invite, 180, Some("c2"), None, &[]));
    assert_eq!(sim.take_request(AGENT).method, Method::CANCEL);
    assert!(sim.nothing_sent(), "the late 180 is not relayed: {:?}", sim.summary());
    // The agent never answers the INVITE: it is given up 64*T1 after the CANCEL.
    sim.advance(Duration::from_secs(40));
    while sim.core.poll_transmit().is_some() {}
    assert_eq!(sim.core.open_transactions(), (0, 0));
}

#[test]
fn an_answer_from_a_target_failed_over_is_hung_up() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-c3", "z9hG4bKcc3", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let first = sim.take_request(AGENT);
    sim.advance(Duration::from_millis(1100));
    let second = sim.take_request(AGENT2);
    assert_eq!(second.method, Method::INVITE);
    while sim.sent.iter().any(|(to, _)| *to == crate::sim::addr(AGENT)) {
        assert_eq!(sim.take_request(AGENT).method, Method::INVITE, "retransmissions only");
    }
    // The slow first target answers after all: it is ACKed and hung up, the call goes on
    // with the second.
    let late = reply(
        &first,
        200,
        Some("late"),
        Some(&answer(9300, "sendrecv")),
        &[("Contact", "<sip:agent@127.0.0.1:5080>")],
    );
    sim.send_message(AGENT, &late);
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    assert_eq!(sim.take_request(AGENT).method, Method::BYE);
    assert!(!sim.sent.iter().any(|(to, _)| *to == crate::sim::addr(CUSTOMER)));
    sim.send_message(
        AGENT2,
        &reply(
            &second,
            200,
            Some("c3"),
            Some(&answer(9200, "sendrecv")),
            &[("Contact", "<sip:agent@127.0.0.1:5082>")],
        ),
    );
    assert_eq!(sim.take_request(AGENT2).method, Method::ACK);
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    assert_eq!(sim.core.active_calls(), 1);
}

#[test]
fn a_6xx_is_final_for_every_target() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-c4", "z9hG4bKcc4", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let first = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&first, 603, Some("c4"), None, &[]));
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    assert_eq!(sim.take_response(CUSTOMER).status(), 603);
    assert!(sim.nothing_sent(), "no failover on 603: {:?}", sim.summary());
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { reason: EndReason::Rejected(603), .. })
    ));
}

#[test]
fn an_error_from_the_agent_is_relayed() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-6", "z9hG4bKc6", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&agent_invite, 486, Some("a6"), None, &[]));
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    let busy = sim.take_response(CUSTOMER);
    assert_eq!(busy.status(), 486);
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { reason: EndReason::Rejected(486), .. })
    ));
    // The customer does not ACK: the 486 is retransmitted (Timer G), then given up (Timer H).
    sim.advance(Duration::from_millis(600));
    assert_eq!(sim.take_response(CUSTOMER).status(), 486);
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.core.open_transactions(), (0, 0));
}

#[test]
fn failover_on_503_and_on_silence() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-7", "z9hG4bKc7", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let first = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&first, 503, Some("a7"), None, &[]));
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    let second = sim.take_request(AGENT2);
    assert_eq!(second.method, Method::INVITE);
    sim.send_message(
        AGENT2,
        &reply(
            &second,
            200,
            Some("b7"),
            Some(&answer(9200, "sendrecv")),
            &[("Contact", "<sip:agent@127.0.0.1:5082>")],
        ),
    );
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);

    // A dead first target: nothing at all within the failover timeout.
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-8", "z9hG4bKc8", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let _ = sim.take_request(AGENT);
    sim.advance(Duration::from_millis(900));
    // Retransmissions to the dead target, then the next one.
    while sim.sent.iter().any(|(to, _)| *to == crate::sim::addr(AGENT)) {
        let _ = sim.take_request(AGENT);
    }
    sim.advance(Duration::from_millis(200));
    let second = sim.take_request(AGENT2);
    assert_eq!(second.method, Method::INVITE);
    // The last target is not given up after the failover timeout: a slow contact centre
    // is the only one left. It gets the whole INVITE transaction (Timer B, 32 s), then 408.
    sim.advance(Duration::from_secs(2));
    assert!(!sim.sent.iter().any(|(to, _)| *to == crate::sim::addr(CUSTOMER)), "no answer yet");
    let retransmitted = sim.take_request(AGENT2);
    assert_eq!(retransmitted.method, Method::INVITE, "still trying the last target");
    sim.advance(Duration::from_secs(31));
    let code = sim.take_final_or_provisional(CUSTOMER).status();
    assert_eq!(code, 408);
}

#[test]
fn reinvite_hold_and_resume_are_relayed_with_sdp_rewritten() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "call-9").customer_to;
    let hold =
        OFFER.replace("a=sendrecv", "a=sendonly").replace("o=customer 1 1", "o=customer 1 2");
    sim.send(
        CUSTOMER,
        &customer_request("INVITE", "call-9", &to, 2, "z9hG4bKre1", Some("application/sdp"), &hold),
    );
    let _ = sim.take_response(CUSTOMER); // 100 Trying
    let reinvite = sim.take_request(AGENT);
    assert_eq!(reinvite.method, Method::INVITE);
    let sdp = String::from_utf8_lossy(&reinvite.body).into_owned();
    assert!(sdp.contains("a=sendonly") && sdp.contains("m=audio 30002"), "{sdp}");
    assert!(
        sdp.contains("o=ivrpay") && sdp.contains(" 2 IN IP4"),
        "the origin version grew: {sdp}"
    );
    sim.send_message(AGENT, &reply(&reinvite, 200, None, Some(&answer(9000, "recvonly")), &[]));
    assert_eq!(sim.take_request(AGENT).method, Method::ACK);
    let ok = sim.take_response(CUSTOMER);
    assert_eq!(ok.status(), 200);
    let sdp = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(sdp.contains("a=recvonly") && sdp.contains("m=audio 30000"), "{sdp}");
    let updates = &sim.core.media().updates;
    assert_eq!(updates.last().map(|u| u.1), Some(Leg::Agent));
}

#[test]
fn dtmf_info_from_the_customer_is_consumed() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "call-10").customer_to;
    for (i, (ct, body, key)) in [
        ("application/dtmf-relay", "Signal=5\nDuration=160\n", '5'),
        ("application/dtmf", "#", '#'),
        ("application/dtmf-relay", "Signal=10\nDuration=160\n", '*'),
    ]
    .iter()
    .enumerate()
    {
        sim.send(
            CUSTOMER,
            &customer_request(
                "INFO",
                "call-10",
                &to,
                10 + i as u32,
                &format!("z9hG4bKi{i}"),
                Some(ct),
                body,
            ),
        );
        assert_eq!(sim.take_response(CUSTOMER).status(), 200);
        assert!(sim.nothing_sent(), "never forwarded: {:?}", sim.summary());
        assert!(
            matches!(sim.events.last(), Some(CallEvent::Digit { digit, .. }) if digit.as_char() == *key)
        );
    }
    // A body off the customer leg's list is refused, never relayed; an empty INFO is.
    sim.send(
        CUSTOMER,
        &customer_request(
            "INFO",
            "call-10",
            &to,
            20,
            "z9hG4bKi9",
            Some("application/x-note"),
            "hello",
        ),
    );
    let refused = sim.take_response(CUSTOMER);
    assert_eq!(refused.status(), 415);
    assert!(header_named(&refused.headers, &Name::ACCEPT).is_some_and(|a| a.contains("dtmf")));
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    sim.send(CUSTOMER, &customer_request("INFO", "call-10", &to, 21, "z9hG4bKi10", None, ""));
    let info = sim.take_request(AGENT);
    assert_eq!(info.method, Method::INFO);
    assert!(info.body.is_empty());
    sim.send_message(AGENT, &reply(&info, 200, None, None, &[]));
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
}

#[test]
fn delayed_offer_is_completed_by_the_customer_ack() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-11", "z9hG4bKc11", None, ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    assert!(agent_invite.body.is_empty(), "no offer to the agent either");
    sim.send_message(
        AGENT,
        &reply(
            &agent_invite,
            200,
            Some("a11"),
            Some(&answer(9300, "sendrecv")),
            &[("Contact", "<sip:agent@127.0.0.1:5080>")],
        ),
    );
    let ok = sim.take_response(CUSTOMER);
    let offer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(offer.contains("m=audio 30000"), "{offer}");
    assert!(
        sim.nothing_sent(),
        "the agent's ACK waits for the customer's answer: {:?}",
        sim.summary()
    );
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    let answer_sdp = crate::sim::answer(7100, "sendrecv");
    sim.send(
        CUSTOMER,
        &format!(
            "ACK sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKack11
Max-Forwards: 70
From: \"Customer\" <sip:+441234567890@127.0.0.1:6000>;tag=cust1
To: {to}
Call-ID: call-11
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: {}

{}",
            answer_sdp.replace('\n', "\r\n").len(),
            answer_sdp.replace('\n', "\r\n")
        ),
    );
    let ack = sim.take_request(AGENT);
    assert_eq!(ack.method, Method::ACK);
    let sdp = String::from_utf8_lossy(&ack.body).into_owned();
    assert!(sdp.contains("m=audio 30002"), "{sdp}");
    let updates = &sim.core.media().updates;
    assert!(
        updates
            .iter()
            .any(|u| u.1 == Leg::Customer
                && u.2.rtp == Some("127.0.0.1:7100".parse().expect("addr")))
    );
}

#[test]
fn early_media_flows_through_the_relay() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-12", "z9hG4bKc12", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(
        AGENT,
        &reply(&agent_invite, 183, Some("a12"), Some(&answer(9400, "sendrecv")), &[]),
    );
    let progress = sim.take_response(CUSTOMER);
    assert_eq!(progress.status(), 183);
    assert!(String::from_utf8_lossy(&progress.body).contains("m=audio 30000"));
    assert!(sim.core.media().updates.iter().any(|u| u.1 == Leg::Agent));
}

/// The relay latches a leg's media onto its SIP peer's IP when the profile says
/// `latch_from = "sip-peer"`: it is told the customer's INVITE source, the agent target's
/// address for early media, and the agent's 2xx Contact once answered.
#[test]
fn the_relay_is_told_each_legs_sip_peer_and_the_profiles_latch_from() {
    let media = "[media]\ncodecs = [\"PCMU\"]\ntelephone_event = true\nlatching = true\n";
    let mut sim = Sim::with_profile(&format!("{PROFILE}{media}latch_from = \"sip-peer\"\n"));
    sim.send(CUSTOMER, &invite("call-peer", "z9hG4bKp1", Some(OFFER), ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    let agent_invite = sim.take_request(AGENT);
    let sdp = answer(9000, "sendrecv");
    sim.send_message(AGENT, &reply(&agent_invite, 183, Some("ap"), Some(&sdp), &[]));
    assert_eq!(sim.take_response(CUSTOMER).status(), 183);
    let contact = [("Contact", "<sip:agent@127.0.0.3:5090>")];
    sim.send_message(AGENT, &reply(&agent_invite, 200, Some("ap"), Some(&sdp), &contact));
    assert_eq!(sim.take_request("127.0.0.3:5090").method, Method::ACK);
    let relay = sim.core.media();
    assert_eq!(relay.settings[0].latch_from, LatchFrom::SignallingPeer);
    let told: Vec<_> = relay.updates.iter().map(|u| u.1).zip(relay.sip_peers.clone()).collect();
    let ip = |s: &str| Some(s.parse().expect("ip"));
    assert_eq!(
        told,
        [
            (Leg::Customer, ip("127.0.0.1")),
            (Leg::Agent, ip("127.0.0.1")),
            (Leg::Agent, ip("127.0.0.3")),
        ]
    );
    // By default the relay latches onto the SDP's address alone.
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-sdp", "z9hG4bKp2", Some(OFFER), ""));
    assert_eq!(sim.core.media().settings[0].latch_from, LatchFrom::Sdp);
}

#[test]
fn our_2xx_is_retransmitted_until_acked_and_a_retransmitted_invite_is_absorbed() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("call-13", "z9hG4bKc13", Some(OFFER), ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    // The customer retransmits its INVITE: the 100 again, no second agent INVITE.
    sim.send(CUSTOMER, &invite("call-13", "z9hG4bKc13", Some(OFFER), ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 100);
    let agent_invite = sim.take_request(AGENT);
    assert!(sim.sent.iter().all(|(to, _)| *to != crate::sim::addr(AGENT)));
    sim.send_message(
        AGENT,
        &reply(
            &agent_invite,
            200,
            Some("a13"),
            Some(&answer(9500, "sendrecv")),
            &[("Contact", "<sip:agent@127.0.0.1:5080>")],
        ),
    );
    let _ = sim.take_request(AGENT); // ACK
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    sim.advance(Duration::from_millis(1600));
    let mut retransmitted = 0;
    while let Some(index) = sim.sent.iter().position(|(to, _)| *to == crate::sim::addr(CUSTOMER)) {
        if let Some((_, Message::Response(r))) = sim.sent.remove(index) {
            assert_eq!(r.status(), 200);
            retransmitted += 1;
        }
    }
    assert!(retransmitted >= 2, "T1, 2T1: {retransmitted}");
    // Never ACKed: after 64·T1 the call is ended on both sides.
    sim.advance(Duration::from_secs(40));
    assert!(sim.sent.iter().any(|(to, m)| *to == crate::sim::addr(AGENT)
        && matches!(m, Message::Request(r) if r.method == Method::BYE)));
    assert!(matches!(
        sim.events.last(),
        Some(CallEvent::Ended { reason: EndReason::Terminated, .. })
    ));
}

#[test]
fn requests_ivrpay_will_not_take_are_refused_with_the_right_code() {
    let mut sim = Sim::new();
    let cases: Vec<(String, u16)> = vec![
        (
            invite("c-mf", "z9hG4bKmf", Some(OFFER), "")
                .replace("Max-Forwards: 70", "Max-Forwards: 0"),
            483,
        ),
        (
            invite(
                "c-loop",
                "z9hG4bKlp",
                Some(OFFER),
                "X-Ivrpay-Call-Id: call_aaaaaaaaaaaaaaaaaaaa\n",
            ),
            482,
        ),
        (invite("c-ext", "z9hG4bKex", Some(OFFER), "Require: 100rel\n"), 420),
        (invite("c-sdp", "z9hG4bKsd", Some("this is not sdp"), ""), 488),
        (
            invite(
                "c-g729",
                "z9hG4bKg7",
                Some(&OFFER.replace("RTP/AVP 0 8 18 101", "RTP/AVP 18")),
                "",
            ),
            488,
        ),
        (invite("c-srtp", "z9hG4bKsr", Some(&OFFER.replace("RTP/AVP", "RTP/SAVP")), ""), 488),
        (
            invite("c-ct", "z9hG4bKct", Some("hello"), "").replace("application/sdp", "text/plain"),
            415,
        ),
        (invite("c-reg", "z9hG4bKrg", None, "").replace("INVITE", "REGISTER"), 405),
        (invite("c-xyz", "z9hG4bKxy", None, "").replace("INVITE", "FROBNICATE"), 501),
        (
            invite("c-tel", "z9hG4bKtl", None, "")
                .replace("INVITE sip:pay@127.0.0.1:5060", "INVITE tel:+4412345"),
            416,
        ),
        (invite("c-cseq", "z9hG4bKcs", None, "").replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), 400),
        (
            invite("c-bye", "z9hG4bKby", None, "")
                .replace("INVITE", "BYE")
                .replace("To: <sip:pay@127.0.0.1:5060>", "To: <sip:pay@127.0.0.1:5060>;tag=nope"),
            481,
        ),
    ];
    for (text, code) in cases {
        sim.send(CUSTOMER, &text);
        let response = sim.take_final_or_provisional(CUSTOMER);
        assert_eq!(response.status(), code, "{}", text.lines().next().unwrap_or(""));
    }
    // Garbage with no headers to answer with is dropped; OPTIONS is answered.
    sim.send(CUSTOMER, "\u{1}\u{2}binary garbage");
    sim.send(CUSTOMER, "INVITE sip:x@y SIP/2.0\nVia: nonsense\n\n");
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    assert!(sim.core.malformed >= 2);
    sim.send(CUSTOMER, &invite("c-opt", "z9hG4bKop", None, "").replace("INVITE", "OPTIONS"));
    let ok = sim.take_response(CUSTOMER);
    assert_eq!(ok.status(), 200);
    assert!(header_named(&ok.headers, &Name::ALLOW).expect("Allow").contains("INFO"));
    assert_eq!(sim.core.active_calls(), 0);
    assert!(sim.core.media().opened.is_empty(), "no media for refused calls");
}

#[test]
fn the_call_limit_and_the_source_networks_are_enforced() {
    let mut sim = Sim::new();
    for i in 0..5 {
        sim.send(CUSTOMER, &invite(&format!("lim-{i}"), &format!("z9hG4bKl{i}"), Some(OFFER), ""));
        assert_eq!(sim.take_response(CUSTOMER).status(), 100);
        let _ = sim.take_request(AGENT);
    }
    sim.send(CUSTOMER, &invite("lim-6", "z9hG4bKl6", Some(OFFER), ""));
    let busy = sim.take_response(CUSTOMER);
    assert_eq!(busy.status(), 503);
    assert!(header_named(&busy.headers, &Name::RETRY_AFTER).is_some());

    let mut sim = Sim::with_profile(&crate::sim::PROFILE.replace("127.0.0.0/8", "10.0.0.0/8"));
    sim.send(CUSTOMER, &invite("src-1", "z9hG4bKs1", Some(OFFER), ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 403);

    let mut sim = Sim::new();
    sim.core.media().fail = true;
    sim.send(CUSTOMER, &invite("ports-1", "z9hG4bKp1", Some(OFFER), ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 503, "no media ports: 503");
}

#[test]
fn shutdown_refuses_new_calls_and_ends_the_rest() {
    let mut sim = Sim::new();
    answered_call(&mut sim, "call-14");
    sim.core.shutdown();
    sim.send(CUSTOMER, &invite("call-15", "z9hG4bKc15", Some(OFFER), ""));
    assert_eq!(sim.take_response(CUSTOMER).status(), 503);
    assert_eq!(sim.core.active_calls(), 1, "the call in progress goes on");
    sim.core.end_all(sim.now);
    while let Some(t) = sim.core.poll_transmit() {
        let _ = t;
    }
    assert_eq!(sim.core.active_calls(), 0);
}
