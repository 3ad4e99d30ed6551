//! Call flows through the real binary: customer (SIPp UAC) → ivrpay → agent (SIPp UAS).

use std::time::Duration;

use crate::harness::{Ivrpay, ProfileSpec, SippSpec, free_ports, scratch};

const RUN: Duration = Duration::from_secs(90);

/// Starts the agent UAS (its media pointed at a port nobody reads) and an ivrpay routing to
/// it; runs the customer UAC; checks both SIPp sides and ivrpay's call counters.
fn flow(test: &str, agent: &str, customer: &str, calls: u32, rate: u32, hold_ms: u32) -> Ivrpay {
    let dir = scratch(test);
    let agent_media = free_ports(2);
    let agent =
        SippSpec::uas("agent", agent, &dir, calls).key("agent_rtp_port", agent_media).start();
    let ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent.addr()), 5);
    let customer = SippSpec {
        rate,
        hold_ms,
        ..SippSpec::uac("customer", customer, &dir, ivrpay.sip_udp, calls)
    }
    .start();
    customer.finish(RUN).assert_all("customer", calls.into(), &ivrpay);
    agent.finish(RUN).assert_all("agent", calls.into(), &ivrpay);
    ivrpay.wait_metric("calls_active", 0, Duration::from_secs(5));
    assert_eq!(ivrpay.metric("calls_started_total"), u64::from(calls));
    assert_eq!(ivrpay.metric("calls_ended_total"), u64::from(calls));
    ivrpay
}

/// 100 calls, each hung up by the customer (BYE relayed to the agent), all succeed.
#[test]
fn a_hundred_calls_customer_hangs_up() {
    let ivrpay = flow("hundred", "agent", "customer", 100, 50, 300);
    assert_eq!(ivrpay.metric("calls_answered_total"), 100);
}

/// The agent hangs up: its BYE reaches the customer.
#[test]
fn the_agent_hangs_up() {
    let ivrpay = flow("agent-bye", "agent_bye", "customer_wait_bye", 3, 10, 0);
    assert_eq!(ivrpay.metric("calls_answered_total"), 3);
}

/// The customer cancels while the agent rings: CANCEL reaches the agent, 487 comes back.
#[test]
fn the_customer_cancels_before_the_answer() {
    let ivrpay = flow("cancel", "agent_ring", "customer_cancel", 3, 10, 0);
    assert_eq!(ivrpay.metric("calls_answered_total"), 0);
}

/// The agent's 486 is relayed to the customer.
#[test]
fn a_busy_agent_is_relayed() {
    let ivrpay = flow("busy", "agent_busy", "customer_busy", 3, 10, 0);
    assert_eq!(ivrpay.metric("calls_answered_total"), 0);
}

/// Hold (re-INVITE a=sendonly) and resume (a=sendrecv) pass both ways with the right
/// directions; the scenarios check the SDP of each re-INVITE and answer.
#[test]
fn hold_and_resume() {
    let ivrpay = flow("hold", "agent_hold", "customer_hold", 2, 10, 0);
    assert_eq!(ivrpay.metric("calls_answered_total"), 2);
}

/// The agent's 180 arrives after its 200 (a multi-worker proxy does that): absorbed.
#[test]
fn a_late_180_after_the_200_is_absorbed() {
    let ivrpay = flow("late-180", "agent_reordered", "customer", 3, 10, 200);
    assert_eq!(ivrpay.metric("calls_answered_total"), 3);
}

/// The first target is dead (a port nobody listens on): after the failover timeout the
/// call goes to the second target and succeeds.
#[test]
fn failover_after_a_dead_first_target() {
    let dir = scratch("failover");
    let dead = free_ports(1);
    let agent_media = free_ports(2);
    let calls = 3;
    let agent =
        SippSpec::uas("agent", "agent", &dir, calls).key("agent_rtp_port", agent_media).start();
    let profile = ProfileSpec {
        targets: vec![
            format!("sip:agents@127.0.0.1:{dead}"),
            format!("sip:agents@{}", agent.addr()),
        ],
        failover_timeout_ms: 300,
        latching: true,
    };
    let ivrpay = Ivrpay::start(&dir, &profile, 5);
    let customer = SippSpec {
        rate: 10,
        hold_ms: 100,
        ..SippSpec::uac("customer", "customer", &dir, ivrpay.sip_udp, calls)
    }
    .start();
    let result = customer.finish(RUN);
    result.assert_all("customer", calls.into(), &ivrpay);
    agent.finish(RUN).assert_all("agent", calls.into(), &ivrpay);
    // Each call waited out the dead target first: INVITE to 200 took the failover timeout.
    assert!(
        (300.0..2000.0).contains(&result.response_time_ms),
        "response time {} ms: the failover timeout (300 ms) should be in it",
        result.response_time_ms
    );
    assert_eq!(ivrpay.metric("calls_answered_total"), u64::from(calls));
}
