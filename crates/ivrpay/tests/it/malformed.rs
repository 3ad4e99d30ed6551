//! Broken SIP over UDP and TCP while calls run: each message gets its error response (or is
//! dropped when nothing can be answered), and the calls carry on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::harness::{Ivrpay, ProfileSpec, SippSpec, free_ports, scratch};

/// A valid offer, for messages whose fault is elsewhere.
const SDP: &str = "v=0
o=c 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 4000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

/// One broken message: `{via}` becomes a Via with a fresh branch, `{call}` a fresh Call-ID,
/// `{len}` the body's length. The expected final status over UDP and over TCP (`None`: no
/// response at all).
struct Case {
    name: &'static str,
    text: String,
    udp: Option<u16>,
    tcp: Option<u16>,
}

fn case(name: &'static str, text: &str, expected: Option<u16>) -> Case {
    Case { name, text: text.to_owned(), udp: expected, tcp: expected }
}

/// An INVITE with these extra headers, Content-Type and body.
fn invite(extra: &str, content_type: &str, body: &str) -> String {
    format!(
        "INVITE sip:agents@127.0.0.1 SIP/2.0
{{via}}
Max-Forwards: 70
From: <sip:fuzz@127.0.0.1>;tag=f1
To: <sip:agents@127.0.0.1>
Call-ID: {{call}}
CSeq: 1 INVITE
Contact: <sip:fuzz@127.0.0.1>
{extra}Content-Type: {content_type}
Content-Length: {{len}}

{body}"
    )
}

fn request(method: &str, uri: &str, cseq: &str, extra: &str) -> String {
    format!(
        "{method} {uri} SIP/2.0
{{via}}
Max-Forwards: 70
From: <sip:fuzz@127.0.0.1>;tag=f1
To: <sip:agents@127.0.0.1>
Call-ID: {{call}}
CSeq: {cseq}
{extra}Content-Length: {{len}}

"
    )
}

fn corpus() -> Vec<Case> {
    let sdp_with = |from: &str, to: &str| SDP.replace(from, to);
    vec![
        // Nothing to answer to: dropped.
        case("binary garbage", "\u{1}\u{2}\u{3}garbage\u{7f}\n\n", None),
        case("no start line", "hello there\nVia: x\n\n", None),
        case("a response with no status", "SIP/2.0 abc Nope\n{via}\nCall-ID: {call}\n\n", None),
        case(
            "no Call-ID",
            &request("OPTIONS", "sip:agents@127.0.0.1", "1 OPTIONS", "")
                .replace("Call-ID: {call}\n", ""),
            None,
        ),
        case(
            "no Via",
            &request("OPTIONS", "sip:agents@127.0.0.1", "1 OPTIONS", "").replace("{via}\n", ""),
            None,
        ),
        case("a stray ACK", &request("ACK", "sip:agents@127.0.0.1", "1 ACK", ""), None),
        // Answerable but malformed: 400.
        case(
            "Via without branch",
            &invite("", "application/sdp", SDP)
                .replace("{via}", "Via: SIP/2.0/{transport} 127.0.0.1:9"),
            Some(400),
        ),
        case(
            "CSeq method differs",
            &request("OPTIONS", "sip:a@127.0.0.1", "1 INVITE", ""),
            Some(400),
        ),
        case(
            "CSeq not a number",
            &request("OPTIONS", "sip:a@127.0.0.1", "one OPTIONS", ""),
            Some(400),
        ),
        case(
            "header line without a colon",
            &request("OPTIONS", "sip:a@127.0.0.1", "1 OPTIONS", "This is not a header\n"),
            Some(400),
        ),
        Case {
            name: "Content-Length beyond the datagram",
            text: request("OPTIONS", "sip:a@127.0.0.1", "1 OPTIONS", "").replace("{len}", "400"),
            udp: Some(400),
            // On a stream it only means "more to come": nothing to answer yet.
            tcp: None,
        },
        case("Request-URI not SIP", &request("OPTIONS", "tel:+441234", "1 OPTIONS", ""), Some(416)),
        case(
            "Max-Forwards 0",
            &invite("", "application/sdp", SDP).replace("Max-Forwards: 70", "Max-Forwards: 0"),
            Some(483),
        ),
        // Methods.
        case("unknown method", &request("FROB", "sip:a@127.0.0.1", "1 FROB", ""), Some(501)),
        case("REGISTER", &request("REGISTER", "sip:127.0.0.1", "1 REGISTER", ""), Some(405)),
        case(
            "SUBSCRIBE",
            &request("SUBSCRIBE", "sip:a@127.0.0.1", "1 SUBSCRIBE", "Event: presence\n"),
            Some(405),
        ),
        case("MESSAGE", &request("MESSAGE", "sip:a@127.0.0.1", "1 MESSAGE", ""), Some(405)),
        case("BYE for no dialog", &request("BYE", "sip:a@127.0.0.1", "2 BYE", ""), Some(481)),
        case(
            "CANCEL for no INVITE",
            &request("CANCEL", "sip:a@127.0.0.1", "1 CANCEL", ""),
            Some(481),
        ),
        case(
            "INVITE requiring 100rel",
            &invite("Require: 100rel\n", "application/sdp", SDP),
            Some(420),
        ),
        // Offers that cannot be relayed: 488 (415 for a body that is not SDP).
        case("SDP that is not SDP", &invite("", "application/sdp", "this is not SDP\n"), Some(488)),
        case(
            "SDP without audio",
            &invite("", "application/sdp", &sdp_with("m=audio", "m=video")),
            Some(488),
        ),
        case(
            "SDP with SRTP",
            &invite("", "application/sdp", &sdp_with("RTP/AVP", "RTP/SAVP")),
            Some(488),
        ),
        case(
            "SDP with no allowed codec",
            &invite(
                "",
                "application/sdp",
                &sdp_with("RTP/AVP 0\na=rtpmap:0 PCMU/8000", "RTP/AVP 18\na=rtpmap:18 G729/8000"),
            ),
            Some(488),
        ),
        case(
            "SDP with a host name",
            &invite(
                "",
                "application/sdp",
                &sdp_with("c=IN IP4 127.0.0.1", "c=IN IP4 media.example"),
            ),
            Some(488),
        ),
        case("a body that is not SDP", &invite("", "text/plain", "hello\n"), Some(415)),
        // Not broken: the service still answers what it should.
        case("OPTIONS", &request("OPTIONS", "sip:a@127.0.0.1", "1 OPTIONS", ""), Some(200)),
    ]
}

/// The message with its placeholders filled and CRLF line ends.
fn render(case: &Case, n: usize, tcp: bool, local: SocketAddr) -> Vec<u8> {
    let transport = if tcp { "TCP" } else { "UDP" };
    let text = case
        .text
        .replace(
            "{via}",
            &format!("Via: SIP/2.0/{transport} {local};branch=z9hG4bKfuzz{n}{transport}"),
        )
        .replace("{transport}", transport)
        .replace("{call}", &format!("fuzz-{n}-{transport}@127.0.0.1"))
        .replace('\n', "\r\n");
    let body_len = text.split_once("\r\n\r\n").map(|(_, b)| b.len()).unwrap_or(0);
    text.replace("{len}", &body_len.to_string()).into_bytes()
}

/// The status of the first final response in `data` (skipping 1xx), if complete.
fn final_status(data: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(data);
    text.split("SIP/2.0 ")
        .filter_map(|part| part.get(..3)?.parse::<u16>().ok())
        .find(|code| *code >= 200)
}

fn over_udp(ivrpay: &Ivrpay, case: &Case, n: usize) -> Option<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let local = socket.local_addr().expect("bound");
    socket.send_to(&render(case, n, false, local), ivrpay.sip_udp).expect("send");
    let wait = if case.udp.is_some() { Duration::from_secs(3) } else { Duration::from_millis(400) };
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        socket.set_read_timeout(Some(deadline - Instant::now() + Duration::from_millis(1))).ok();
        let Ok(len) = socket.recv(&mut buf) else { break };
        if let Some(code) = final_status(&buf[..len]) {
            return Some(code);
        }
    }
    None
}

fn over_tcp(ivrpay: &Ivrpay, case: &Case, n: usize) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&ivrpay.sip_tcp, Duration::from_secs(2)).expect("tcp connect");
    let local = stream.local_addr().expect("local");
    stream.write_all(&render(case, n, true, local)).expect("write");
    let wait = if case.tcp.is_some() { Duration::from_secs(3) } else { Duration::from_millis(400) };
    let deadline = Instant::now() + wait;
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        stream.set_read_timeout(Some(deadline - Instant::now() + Duration::from_millis(1))).ok();
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break, // closed, or quiet
            Ok(len) => data.extend_from_slice(&buf[..len]),
        }
        if let Some(code) = final_status(&data) {
            return Some(code);
        }
    }
    None
}

#[test]
fn broken_messages_get_their_errors_and_calls_carry_on() {
    let dir = scratch("malformed");
    let calls = 30;
    let agent_media = free_ports(2);
    let agent =
        SippSpec::uas("agent", "agent", &dir, calls).key("agent_rtp_port", agent_media).start();
    let ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent.addr()), 5);
    let customer = SippSpec {
        rate: 5,
        hold_ms: 2000,
        ..SippSpec::uac("customer", "customer", &dir, ivrpay.sip_udp, calls)
    }
    .start();
    ivrpay.wait_metric_at_least("calls_answered_total", 1, Duration::from_secs(10));

    let mut wrong = Vec::new();
    for (n, case) in corpus().iter().enumerate() {
        let udp = over_udp(&ivrpay, case, n);
        let tcp = over_tcp(&ivrpay, case, n);
        if udp != case.udp {
            wrong.push(format!("{} over UDP: got {udp:?}, expected {:?}", case.name, case.udp));
        }
        if tcp != case.tcp {
            wrong.push(format!("{} over TCP: got {tcp:?}, expected {:?}", case.name, case.tcp));
        }
    }
    // Still serving, and every call that ran meanwhile completed.
    assert_eq!(ivrpay.get("/healthz").0, 200);
    customer.finish(Duration::from_secs(90)).assert_all("customer", calls.into(), &ivrpay);
    agent.finish(Duration::from_secs(90)).assert_all("agent", calls.into(), &ivrpay);
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        2 * corpus().len(),
        wrong.join("\n")
    );
    assert_eq!(
        ivrpay.metric("calls_started_total"),
        u64::from(calls),
        "no broken INVITE made a call"
    );
}
