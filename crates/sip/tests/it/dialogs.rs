//! Requests inside a call act on it only when they name its dialog whole (Call-ID and both
//! tags) and come from the leg's own peer, or from a network the profile lists for the leg:
//! a stranger who learns a Call-ID can neither hang the call up nor type into it.

use std::time::Duration;

use ezk_sip_types::{Method, Name};
use ivrpay_sip::b2bua::{CallEvent, EndReason};
use ivrpay_sip::message::{Message, Request};

use crate::flows::{answered_call, customer_cancel, customer_request};
use crate::sim::{AGENT, CUSTOMER, OFFER, PROFILE, Sim, answer, header_named, invite, reply};

/// Another port on the customer's address, and other addresses on loopback.
const CUSTOMER_OTHER_PORT: &str = "127.0.0.1:6001";
const STRANGER: &str = "127.0.0.2:6000";
const PBX_NODE: &str = "127.0.0.3:5080";

fn digits(sim: &Sim) -> usize {
    sim.events.iter().filter(|e| matches!(e, CallEvent::Digit { .. })).count()
}

fn ended(sim: &Sim) -> Option<EndReason> {
    sim.events.iter().find_map(|e| match e {
        CallEvent::Ended { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn info(call_id: &str, to: &str, cseq: u32, branch: &str) -> String {
    customer_request("INFO", call_id, to, cseq, branch, Some("application/dtmf"), "5")
}

fn bye(call_id: &str, to: &str, cseq: u32, branch: &str) -> String {
    customer_request("BYE", call_id, to, cseq, branch, None, "")
}

/// A request from the agent in the dialog of `invite` (ivrpay's INVITE to it): `agent_tag`
/// in From, `our_tag` in To; `n` makes its branch and CSeq (a repeated branch would be taken
/// for a retransmission).
fn agent_request(method: &str, n: u32, invite: &Request, agent_tag: &str, our_tag: &str) -> String {
    let from = header_named(&invite.headers, &Name::FROM).expect("From");
    let to = header_named(&invite.headers, &Name::TO).expect("To");
    let call_id = header_named(&invite.headers, &Name::CALL_ID).expect("Call-ID");
    let our_uri = from.split(";tag=").next().unwrap_or(&from);
    format!(
        "{method} sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKagent{n}
Max-Forwards: 70
From: {to};tag={agent_tag}
To: {our_uri};tag={our_tag}
Call-ID: {call_id}
CSeq: {n} {method}
Content-Length: 0

"
    )
}

/// ivrpay's tag on the agent leg (the From tag of its INVITE).
fn our_agent_tag(invite: &Request) -> String {
    let from = header_named(&invite.headers, &Name::FROM).expect("From");
    from.split(";tag=").nth(1).expect("tagged").to_owned()
}

#[test]
fn requests_with_made_up_tags_or_from_elsewhere_get_481_and_change_nothing() {
    let mut sim = Sim::new();
    let to = answered_call(&mut sim, "d-1").customer_to;
    let stranger_to = "<sip:pay@127.0.0.1:5060>;tag=guessed";
    // The right Call-ID with a made-up To tag, from the customer's own address and another.
    for (n, (from, to)) in
        [(CUSTOMER, stranger_to), (CUSTOMER_OTHER_PORT, stranger_to), (STRANGER, to.as_str())]
            .into_iter()
            .enumerate()
    {
        let n = n as u32;
        sim.send(from, &info("d-1", to, 10 + n, &format!("z9hG4bKs{n}")));
        assert_eq!(sim.take_response(from).status(), 481, "INFO from {from} with To {to}");
        sim.send(from, &bye("d-1", to, 20 + n, &format!("z9hG4bKsb{n}")));
        assert_eq!(sim.take_response(from).status(), 481, "BYE from {from} with To {to}");
    }
    // The right To tag with someone else's From tag.
    let wrong_from = bye("d-1", &to, 30, "z9hG4bKwf").replace("tag=cust1", "tag=other");
    sim.send(CUSTOMER, &wrong_from);
    assert_eq!(sim.take_response(CUSTOMER).status(), 481);
    assert!(sim.nothing_sent(), "nothing relayed: {:?}", sim.summary());
    assert_eq!(digits(&sim), 0, "no digit injected");
    assert_eq!((sim.core.active_calls(), ended(&sim)), (1, None), "the call goes on");

    // The customer's peer, from another port (a carrier SBC may send from several): taken.
    sim.send(CUSTOMER_OTHER_PORT, &info("d-1", &to, 40, "z9hG4bKok"));
    assert_eq!(sim.take_response(CUSTOMER_OTHER_PORT).status(), 200);
    assert_eq!(digits(&sim), 1);
    sim.send(CUSTOMER, &bye("d-1", &to, 41, "z9hG4bKbye"));
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    assert_eq!(ended(&sim), Some(EndReason::CustomerHangup));
}

#[test]
fn the_profile_lists_the_other_nodes_of_a_leg() {
    let profile = format!("{PROFILE}\n[dialogs]\ncustomer_sources = [\"127.0.0.2/32\"]\n");
    let mut sim = Sim::with_profile(&profile);
    let to = answered_call(&mut sim, "d-2").customer_to;
    sim.send(STRANGER, &info("d-2", &to, 10, "z9hG4bKn1"));
    assert_eq!(sim.take_response(STRANGER).status(), 200, "a listed node of the carrier");
    assert_eq!(digits(&sim), 1);
    // Listed for the customer leg only: the same node cannot act on the agent leg.
    let mut sim = Sim::with_profile(&profile);
    let agent_invite = answered_call(&mut sim, "d-3").agent_invite;
    let tag = our_agent_tag(&agent_invite);
    sim.send(STRANGER, &agent_request("BYE", 1, &agent_invite, "agent1", &tag));
    assert_eq!(sim.take_response(STRANGER).status(), 481);
    assert_eq!(sim.core.active_calls(), 1);
}

#[test]
fn the_agent_leg_takes_requests_from_the_target_and_its_contact_only() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("d-4", "z9hG4bKd4", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    // The PBX answers with the Contact of another node of its cluster.
    let ok = reply(
        &agent_invite,
        200,
        Some("a4"),
        Some(&answer(9000, "sendrecv")),
        &[("Contact", "<sip:agent@127.0.0.3:5080>")],
    );
    sim.send_message(AGENT, &ok);
    assert_eq!(sim.take_request(PBX_NODE).method, Method::ACK);
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    let tag = our_agent_tag(&agent_invite);
    // Made-up tags from the target; the right tags from an address that is neither.
    sim.send(AGENT, &agent_request("BYE", 2, &agent_invite, "a4", "guessed"));
    assert_eq!(sim.take_response(AGENT).status(), 481);
    sim.send(AGENT, &agent_request("BYE", 3, &agent_invite, "guessed", &tag));
    assert_eq!(sim.take_response(AGENT).status(), 481);
    sim.send(STRANGER, &agent_request("BYE", 4, &agent_invite, "a4", &tag));
    assert_eq!(sim.take_response(STRANGER).status(), 481);
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    assert_eq!(sim.core.active_calls(), 1);
    // The target's address on another port is the peer too, and so is the Contact's node.
    sim.send("127.0.0.1:5099", &agent_request("INFO", 5, &agent_invite, "a4", &tag));
    let relayed = sim.take_request(CUSTOMER);
    assert_eq!(relayed.method, Method::INFO);
    sim.send_message(CUSTOMER, &reply(&relayed, 200, None, None, &[]));
    assert_eq!(sim.take_response("127.0.0.1:5099").status(), 200);
    sim.send("127.0.0.3:5090", &agent_request("BYE", 6, &agent_invite, "a4", &tag));
    assert_eq!(sim.take_response("127.0.0.3:5090").status(), 200);
    assert_eq!(ended(&sim), Some(EndReason::AgentHangup));
}

#[test]
fn a_cancel_must_repeat_the_invite_and_come_from_its_sender() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("d-5", "z9hG4bKd5long", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&agent_invite, 180, Some("a5"), None, &[]));
    assert_eq!(sim.take_response(CUSTOMER).status(), 180);
    for (from, text) in [
        // From another address (its own Via: the same one would make the customer's CANCEL
        // look like a retransmission of this one to the transaction layer).
        (
            STRANGER,
            customer_cancel("d-5", "z9hG4bKd5long")
                .replace("UDP 127.0.0.1:6000", "UDP 127.0.0.2:6000"),
        ),
        // A branch that is only part of the INVITE's.
        (CUSTOMER, customer_cancel("d-5", "z9hG4bKd5")),
        // Another From tag.
        (
            CUSTOMER,
            customer_cancel("d-5", "z9hG4bKd5long")
                .replace("tag=cust1", "tag=x")
                .replace("UDP 127.0.0.1:6000", "UDP 127.0.0.1:6002"),
        ),
    ] {
        sim.send(from, &text);
        assert_eq!(sim.take_response(from).status(), 481, "{from}: {text}");
    }
    assert!(sim.nothing_sent(), "{:?}", sim.summary());
    assert_eq!((sim.core.active_calls(), ended(&sim)), (1, None));
    sim.send(CUSTOMER, &customer_cancel("d-5", "z9hG4bKd5long"));
    let mut codes =
        vec![sim.take_response(CUSTOMER).status(), sim.take_response(CUSTOMER).status()];
    codes.sort();
    assert_eq!(codes, vec![200, 487]);
    assert_eq!(sim.take_request(AGENT).method, Method::CANCEL);
    assert_eq!(ended(&sim), Some(EndReason::Cancelled));
}

#[test]
fn a_customer_bye_in_the_early_dialog_ends_the_call() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("d-6", "z9hG4bKd6", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(AGENT, &reply(&agent_invite, 180, Some("a6"), None, &[]));
    let ringing = sim.take_response(CUSTOMER);
    let to = header_named(&ringing.headers, &Name::TO).expect("To");
    assert!(to.contains("tag="), "the 180 opens an early dialog: {to}");
    sim.send(CUSTOMER, &bye("d-6", &to, 2, "z9hG4bKebye"));
    let mut codes =
        vec![sim.take_response(CUSTOMER).status(), sim.take_response(CUSTOMER).status()];
    codes.sort();
    assert_eq!(codes, vec![200, 487], "the BYE is answered, the INVITE terminated");
    assert_eq!(sim.take_request(AGENT).method, Method::CANCEL, "the agent stops ringing");
    assert_eq!(ended(&sim), Some(EndReason::Cancelled));
    assert_eq!(sim.core.active_calls(), 0);
}

#[test]
fn the_agent_early_dialogs_are_known_by_their_provisional_tags() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("d-7", "z9hG4bKd7", Some(OFFER), ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    let tag = our_agent_tag(&agent_invite);
    // Before any provisional there is no dialog with the agent at all.
    sim.send(AGENT, &agent_request("BYE", 7, &agent_invite, "fork2", &tag));
    assert_eq!(sim.take_response(AGENT).status(), 481);
    // Two forks ring.
    sim.send_message(AGENT, &reply(&agent_invite, 180, Some("fork1"), None, &[]));
    sim.send_message(AGENT, &reply(&agent_invite, 183, Some("fork2"), None, &[]));
    let _ = sim.take_response(CUSTOMER);
    let _ = sim.take_response(CUSTOMER);
    sim.send(AGENT, &agent_request("BYE", 8, &agent_invite, "fork3", &tag));
    assert_eq!(sim.take_response(AGENT).status(), 481, "a tag no provisional carried");
    assert_eq!(sim.core.active_calls(), 1);
    sim.send(AGENT, &agent_request("BYE", 9, &agent_invite, "fork2", &tag));
    assert_eq!(sim.take_response(AGENT).status(), 200, "a BYE in the early dialog fork2");
    assert_eq!(sim.take_final_or_provisional(CUSTOMER).status(), 480);
    assert_eq!(ended(&sim), Some(EndReason::AgentHangup));
}

#[test]
fn an_ack_from_a_stranger_neither_completes_a_delayed_offer_nor_stops_the_2xx() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("d-8", "z9hG4bKd8", None, ""));
    let _ = sim.take_response(CUSTOMER);
    let agent_invite = sim.take_request(AGENT);
    sim.send_message(
        AGENT,
        &reply(
            &agent_invite,
            200,
            Some("a8"),
            Some(&answer(9300, "sendrecv")),
            &[("Contact", "<sip:agent@127.0.0.1:5080>")],
        ),
    );
    let ok = sim.take_response(CUSTOMER);
    let to = header_named(&ok.headers, &Name::TO).expect("To");
    let ack = |to: &str, port: u16| {
        let sdp = answer(port, "sendrecv").replace('\n', "\r\n");
        format!(
            "ACK sip:ivrpay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKack{port}
Max-Forwards: 70
From: \"Customer\" <sip:+441234567890@127.0.0.1:6000>;tag=cust1
To: {to}
Call-ID: d-8
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: {}

{sdp}",
            sdp.len()
        )
    };
    // Made-up tag; the right tag from elsewhere: both dropped.
    sim.send(CUSTOMER, &ack("<sip:pay@127.0.0.1:5060>;tag=guessed", 6666));
    sim.send(STRANGER, &ack(&to, 6667));
    assert!(sim.nothing_sent(), "no ACK to the agent: {:?}", sim.summary());
    let hijacked = sim
        .core
        .media()
        .updates
        .iter()
        .any(|u| u.2.rtp.is_some_and(|a| a.port() == 6666 || a.port() == 6667));
    assert!(!hijacked, "the relay was not pointed at the stranger's media");
    // Our 2xx is still retransmitted: it was not taken as acknowledged.
    sim.advance(Duration::from_millis(600));
    assert_eq!(sim.take_response(CUSTOMER).status(), 200);
    // The customer's ACK completes the offer.
    sim.send(CUSTOMER, &ack(&to, 7100));
    let agent_ack = sim.take_request(AGENT);
    assert_eq!(agent_ack.method, Method::ACK);
    assert!(String::from_utf8_lossy(&agent_ack.body).contains("m=audio 30002"));
    sim.advance(Duration::from_secs(2));
    assert!(
        !sim.sent.iter().any(|(_, m)| matches!(m, Message::Response(_))),
        "no more 2xx once acknowledged: {:?}",
        sim.summary()
    );
}

#[test]
fn an_invite_without_a_from_tag_is_refused() {
    let mut sim = Sim::new();
    sim.send(CUSTOMER, &invite("d-9", "z9hG4bKd9", Some(OFFER), "").replace(";tag=cust1", ""));
    let refused = sim.take_response(CUSTOMER);
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.reason.as_deref(), Some("Missing From tag"));
    assert_eq!(sim.core.active_calls(), 0);
}
