//! Graceful shutdown: on SIGTERM ivrpay stops taking calls (503) and lets the call in
//! progress finish, then exits 0 by itself.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::harness::{Ivrpay, ProfileSpec, SippSpec, free_ports, scratch};

/// A well-formed INVITE (with a valid offer) from `socket`.
fn invite(socket: &UdpSocket) -> Vec<u8> {
    let local = socket.local_addr().expect("bound");
    let body = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:agents@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKlate1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:late@127.0.0.1>;tag=l1\r\n\
         To: <sip:agents@127.0.0.1>\r\n\
         Call-ID: late-caller@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:late@{local}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn sigterm_lets_the_call_finish_and_refuses_new_ones() {
    let dir = scratch("shutdown");
    let agent_media = free_ports(2);
    let agent = SippSpec::uas("agent", "agent", &dir, 1).key("agent_rtp_port", agent_media).start();
    let mut ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent.addr()), 20);
    let customer = SippSpec {
        hold_ms: 3000,
        ..SippSpec::uac("customer", "customer", &dir, ivrpay.sip_udp, 1)
    }
    .start();
    ivrpay.wait_metric("calls_answered_total", 1, Duration::from_secs(10));

    let asked = Instant::now();
    ivrpay.process.terminate();
    ivrpay.log.wait_for("shutting down", Duration::from_secs(5));

    // A new call is refused with 503 (and a Retry-After).
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    socket.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    socket.send_to(&invite(&socket), ivrpay.sip_udp).expect("send");
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).expect("a response to the late INVITE");
    let response = String::from_utf8_lossy(&buf[..len]);
    assert!(response.starts_with("SIP/2.0 503"), "late INVITE: {response}");
    assert!(response.to_ascii_lowercase().contains("retry-after:"), "{response}");

    // The call in progress ends normally (the customer's BYE after its 3 s hold).
    customer.finish(Duration::from_secs(30)).assert_all("customer", 1, &ivrpay);
    agent.finish(Duration::from_secs(30)).assert_all("agent", 1, &ivrpay);
    // Then ivrpay exits on its own, cleanly, well before the 20 s grace.
    let code = ivrpay.process.wait(Duration::from_secs(15));
    assert_eq!(code, 0, "ivrpay exit status\n{}", ivrpay.log.text());
    assert!(asked.elapsed() < Duration::from_secs(15));
    ivrpay.log.wait_for("stopped", Duration::from_secs(1));
    let ended = ivrpay.log.text().lines().filter(|l| l.contains("call ended")).count();
    assert_eq!(ended, 1, "one call, ended once");
}
