//! Strangers and bodies against the real `ivrpay serve`, over UDP on loopback. The test plays
//! the customer, the agent and a stranger with its own sockets, so it sees exactly what each
//! gets: a stranger who knows a call's Call-ID can neither hang it up nor type a digit into
//! it (481), and the agent never gets a key press or anything but ivrpay's own SDP, whatever
//! body type the customer uses.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::harness::{Ivrpay, ProfileSpec, scratch};

/// How long a message may take to arrive, and how long "nothing arrives" is watched for.
const ARRIVES_WITHIN: Duration = Duration::from_secs(5);
const QUIET_FOR: Duration = Duration::from_millis(500);

/// A SIP message as text, read just enough for the test.
#[derive(Clone, Debug)]
struct Msg(String);

impl Msg {
    fn status(&self) -> Option<u16> {
        self.0.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    fn method(&self) -> Option<&str> {
        (!self.0.starts_with("SIP/2.0")).then(|| self.0.split(' ').next()).flatten()
    }

    fn reason(&self) -> &str {
        self.0.lines().next().and_then(|l| l.get(12..)).unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head().lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn head(&self) -> &str {
        self.0.split_once("\r\n\r\n").map_or(&self.0, |(head, _)| head)
    }

    fn body(&self) -> &str {
        self.0.split_once("\r\n\r\n").map_or("", |(_, body)| body)
    }
}

/// One side's UDP socket.
struct Ua {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl Ua {
    fn bind(ip: &str) -> Ua {
        let socket = UdpSocket::bind((ip, 0)).expect("bind a loopback socket");
        let addr = socket.local_addr().expect("bound");
        Ua { socket, addr }
    }

    /// Sends `text` (LF line ends, `{len}` for the body's length) to `to`.
    fn send(&self, to: SocketAddr, text: &str) {
        let text = text.replace('\n', "\r\n");
        let len = text.split_once("\r\n\r\n").map_or(0, |(_, body)| body.len());
        let text = text.replace("{len}", &len.to_string());
        self.socket.send_to(text.as_bytes(), to).expect("send");
    }

    /// The next message for which `wanted` holds (others are skipped: retransmissions).
    fn recv(&self, what: &str, wanted: impl Fn(&Msg) -> bool) -> Msg {
        self.recv_within(ARRIVES_WITHIN, wanted)
            .unwrap_or_else(|| panic!("{} got no {what} within {ARRIVES_WITHIN:?}", self.addr))
    }

    fn recv_within(&self, limit: Duration, wanted: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).ok();
            let Ok(len) = self.socket.recv(&mut buf) else { continue };
            let msg = Msg(String::from_utf8_lossy(&buf[..len]).into_owned());
            if wanted(&msg) {
                return Some(msg);
            }
        }
    }

    /// The final response to the request with CSeq `cseq` (1xx and retransmitted answers to
    /// earlier requests skipped).
    fn final_response(&self, method: &str, cseq: u32) -> Msg {
        let expected = format!("{cseq} {method}");
        self.recv(&format!("final response to {expected}"), |m| {
            m.status().is_some_and(|s| s >= 200) && m.header("CSeq") == Some(expected.as_str())
        })
    }

    /// No request other than an ACK arrives for a while.
    fn gets_no_request(&self, context: &str) {
        let got = self.recv_within(QUIET_FOR, |m| m.method().is_some_and(|m| m != "ACK"));
        assert!(got.is_none(), "{context}: {} got {:?}", self.addr, got.map(|m| m.0));
    }

    /// Answers `request` (which ivrpay sent from `ivrpay`) with `code` and an optional SDP,
    /// tagging its To with `agent1`.
    fn respond(&self, ivrpay: SocketAddr, request: &Msg, code: u16, sdp: Option<&str>) {
        let via: Vec<&str> = request.head().lines().filter(|l| l.starts_with("Via:")).collect();
        let to = request.header("To").expect("To");
        let to = if to.contains("tag=") { to.to_owned() } else { format!("{to};tag=agent1") };
        let body =
            sdp.map(|s| format!("Content-Type: application/sdp\nContent-Length: {{len}}\n\n{s}"));
        self.send(
            ivrpay,
            &format!(
                "SIP/2.0 {code} Whatever
{via}
From: {from}
To: {to}
Call-ID: {call_id}
CSeq: {cseq}
Contact: <sip:agent@{me}>
{body}",
                via = via.join("\n"),
                from = request.header("From").expect("From"),
                call_id = request.header("Call-ID").expect("Call-ID"),
                cseq = request.header("CSeq").expect("CSeq"),
                me = self.addr,
                body = body.unwrap_or_else(|| "Content-Length: 0\n\n".to_owned()),
            ),
        );
    }
}

fn sdp(port: u16, direction: &str) -> String {
    format!(
        "v=0
o=peer 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a={direction}
"
    )
}

/// A `multipart/mixed` body (boundary `bnd`): SDP and an ISUP part that may be ignored,
/// which carries a card number that must go nowhere.
fn sdp_and_isup(sdp: &str) -> String {
    format!(
        "--bnd
Content-Type: application/sdp

{sdp}
--bnd
Content-Type: application/isup;version=itu-t92+
Content-Disposition: signal;handling=optional

IAM 4111111111111111
--bnd--
"
    )
}

/// A call as the customer's dialog knows it.
struct Call {
    call_id: String,
    /// The customer's From, with its tag.
    from: String,
    /// The To of ivrpay's 200, with ivrpay's tag.
    to: String,
    cseq: u32,
}

impl Call {
    /// A new request in the dialog from `ua` (its own Via and Contact), with this To.
    fn request(
        &mut self,
        ua: &Ua,
        method: &str,
        to: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> String {
        self.cseq += 1;
        self.message(ua, method, self.cseq, to, content_type, body)
    }

    /// The ACK of ivrpay's 2xx to the INVITE with CSeq `cseq`.
    fn ack(&self, ua: &Ua, cseq: u32) -> String {
        self.message(ua, "ACK", cseq, &self.to, None, "")
    }

    fn message(
        &self,
        ua: &Ua,
        method: &str,
        cseq: u32,
        to: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> String {
        let content_type = content_type.map(|c| format!("Content-Type: {c}\n")).unwrap_or_default();
        format!(
            "{method} sip:ivrpay@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP {addr};branch=z9hG4bK{method}{cseq}x{port}
Max-Forwards: 70
From: {from}
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
Contact: <sip:customer@{addr}>
{content_type}Content-Length: {{len}}

{body}",
            addr = ua.addr,
            port = ua.addr.port(),
            from = self.from,
            call_id = self.call_id,
        )
    }
}

/// The test's customer calls through ivrpay to the test's agent with `content_type` and
/// `body` as the offer; both answer and acknowledge. Returns the call and the agent's view of
/// the INVITE.
fn place_call(
    ivrpay: &Ivrpay,
    customer: &Ua,
    agent: &Ua,
    content_type: &str,
    body: &str,
) -> (Call, Msg) {
    let call_id = format!("dialogs-{}@127.0.0.1", customer.addr.port());
    let from = format!("<sip:+441234567890@{}>;tag=cust{}", customer.addr, customer.addr.port());
    customer.send(
        ivrpay.sip_udp,
        &format!(
            "INVITE sip:agents@{ivr} SIP/2.0
Via: SIP/2.0/UDP {me};branch=z9hG4bKinvite{port}
Max-Forwards: 70
From: {from}
To: <sip:agents@{ivr}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:customer@{me}>
Content-Type: {content_type}
Content-Length: {{len}}

{body}",
            ivr = ivrpay.sip_udp,
            me = customer.addr,
            port = customer.addr.port(),
        ),
    );
    let invite = agent.recv("INVITE", |m| m.method() == Some("INVITE"));
    agent.respond(ivrpay.sip_udp, &invite, 200, Some(&sdp(agent.addr.port() + 2, "sendrecv")));
    agent.recv("ACK", |m| m.method() == Some("ACK"));
    let ok = customer.final_response("INVITE", 1);
    assert_eq!(ok.status(), Some(200), "{}", ok.0);
    let to = ok.header("To").expect("To").to_owned();
    let call = Call { call_id, from, to, cseq: 1 };
    customer.send(ivrpay.sip_udp, &call.ack(customer, 1));
    (call, invite)
}

/// The customer hangs up; the agent gets the BYE and answers it.
fn hang_up(ivrpay: &Ivrpay, customer: &Ua, agent: &Ua, call: &mut Call) {
    let to = call.to.clone();
    customer.send(ivrpay.sip_udp, &call.request(customer, "BYE", &to, None, ""));
    assert_eq!(customer.final_response("BYE", call.cseq).status(), Some(200));
    let bye = agent.recv("BYE", |m| m.method() == Some("BYE"));
    agent.respond(ivrpay.sip_udp, &bye, 200, None);
    ivrpay.wait_metric("calls_active", 0, ARRIVES_WITHIN);
}

#[test]
fn a_stranger_can_neither_end_a_call_nor_type_into_it() {
    let dir = scratch("dialogs-stranger");
    let agent = Ua::bind("127.0.0.1");
    let ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent.addr), 5);
    let customer = Ua::bind("127.0.0.1");
    let offer = sdp(40_000, "sendrecv");
    let (mut call, _) = place_call(&ivrpay, &customer, &agent, "application/sdp", &offer);
    ivrpay.wait_metric("calls_active", 1, ARRIVES_WITHIN);
    let key = ("application/dtmf-relay", "Signal=5\nDuration=160\n");

    // Another port on the customer's address with a made-up To tag, and another address with
    // the right tags (learned, say, from a trace): refused as if there were no such call.
    let same_ip = Ua::bind("127.0.0.1");
    let other_ip = Ua::bind("127.0.0.2");
    let strangers =
        [(&same_ip, call.to.replace(";tag=", ";tag=guessed")), (&other_ip, call.to.clone())];
    for (stranger, to) in &strangers {
        for (method, content_type, body) in [("INFO", Some(key.0), key.1), ("BYE", None, "")] {
            stranger.send(ivrpay.sip_udp, &call.request(stranger, method, to, content_type, body));
            let refused = stranger.final_response(method, call.cseq);
            assert_eq!(
                refused.status(),
                Some(481),
                "{method} from {}: {}",
                stranger.addr,
                refused.0
            );
        }
    }
    agent.gets_no_request("after the strangers' INFO and BYE");
    assert_eq!(ivrpay.metric("calls_active"), 1, "the call goes on");
    assert_eq!(ivrpay.metric("digits_sip_info_total"), 0, "no digit was injected");

    // The customer's own key from another port of its address (a carrier SBC may send from
    // several): taken, and not relayed.
    let to = call.to.clone();
    same_ip.send(ivrpay.sip_udp, &call.request(&same_ip, "INFO", &to, Some(key.0), key.1));
    assert_eq!(same_ip.final_response("INFO", call.cseq).status(), Some(200));
    ivrpay.wait_metric("digits_sip_info_total", 1, ARRIVES_WITHIN);
    agent.gets_no_request("after the customer's key press");
    hang_up(&ivrpay, &customer, &agent, &mut call);
}

#[test]
fn the_agent_gets_neither_keys_nor_foreign_bodies_only_ivrpays_sdp() {
    let dir = scratch("dialogs-bodies");
    let agent = Ua::bind("127.0.0.1");
    let ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent.addr), 5);
    let customer = Ua::bind("127.0.0.1");
    let assert_ivrpay_sdp_only = |msg: &Msg, what: &str| {
        assert_eq!(msg.header("Content-Type"), Some("application/sdp"), "{what}: {}", msg.0);
        let body = msg.body();
        assert!(body.contains("o=ivrpay"), "{what}: {body}");
        for leaked in ["audio 40000", "audio 40100", "bnd", "IAM", "4111111111111111"] {
            assert!(!body.contains(leaked), "{what}: {leaked} reached the agent: {body}");
        }
    };

    // A carrier's INVITE: SDP with ISUP, multipart. The agent gets ivrpay's SDP alone.
    let offer = sdp_and_isup(&sdp(40_000, "sendrecv"));
    let (mut call, invite) =
        place_call(&ivrpay, &customer, &agent, "multipart/mixed;boundary=bnd", &offer);
    assert_ivrpay_sdp_only(&invite, "the INVITE");
    let to = call.to.clone();

    // Keys in the DTMF types ivrpay did not read before, alone and inside multipart.
    let in_multipart = "--bnd\nContent-Type: application/dtmf\n\n7\n--bnd--\n";
    for (n, (content_type, body)) in [
        ("application/vnd.nortelnetworks.digits", "d=4\n"),
        ("application/x-dtmf-relay", "Signal=1\nDuration=160\n"),
        ("application/x-dtmf", "1"),
        ("multipart/mixed;boundary=bnd", in_multipart),
    ]
    .into_iter()
    .enumerate()
    {
        customer
            .send(ivrpay.sip_udp, &call.request(&customer, "INFO", &to, Some(content_type), body));
        assert_eq!(
            customer.final_response("INFO", call.cseq).status(),
            Some(200),
            "{content_type}"
        );
        ivrpay.wait_metric("digits_sip_info_total", n as u64 + 1, ARRIVES_WITHIN);
    }
    agent.gets_no_request("after the key presses");

    // A body off the list: 415 with the list; nothing relayed.
    customer.send(ivrpay.sip_udp, &call.request(&customer, "INFO", &to, Some("text/plain"), "5"));
    let refused = customer.final_response("INFO", call.cseq);
    assert_eq!(refused.status(), Some(415), "{}", refused.0);
    assert!(
        refused.header("Accept").is_some_and(|a| a.contains("multipart/mixed")),
        "{}",
        refused.0
    );
    // A multipart body cut short: 400 saying so.
    let cut = sdp_and_isup(&sdp(40_000, "sendonly")).replace("--bnd--\n", "");
    customer.send(
        ivrpay.sip_udp,
        &call.request(&customer, "INVITE", &to, Some("multipart/mixed;boundary=bnd"), &cut),
    );
    let refused = customer.final_response("INVITE", call.cseq);
    assert_eq!(refused.status(), Some(400), "{}", refused.0);
    assert!(refused.reason().contains("closing delimiter"), "{}", refused.0);
    agent.gets_no_request("after the refused bodies");

    // A multipart re-INVITE (hold): rewritten, single-part, to the agent.
    let hold = sdp_and_isup(&sdp(40_100, "sendonly"));
    customer.send(
        ivrpay.sip_udp,
        &call.request(&customer, "INVITE", &to, Some("multipart/mixed;boundary=bnd"), &hold),
    );
    let reinvite = agent.recv("re-INVITE", |m| m.method() == Some("INVITE"));
    assert_ivrpay_sdp_only(&reinvite, "the re-INVITE");
    assert!(reinvite.body().contains("a=sendonly"), "{}", reinvite.0);
    agent.respond(ivrpay.sip_udp, &reinvite, 200, Some(&sdp(agent.addr.port() + 2, "recvonly")));
    agent.recv("ACK", |m| m.method() == Some("ACK"));
    let ok = customer.final_response("INVITE", call.cseq);
    assert_eq!(ok.status(), Some(200), "{}", ok.0);
    assert!(ok.body().contains("a=recvonly") && ok.body().contains("o=ivrpay"), "{}", ok.0);
    customer.send(ivrpay.sip_udp, &call.ack(&customer, call.cseq));
    assert_eq!(ivrpay.metric("digits_sip_info_total"), 4);
    hang_up(&ivrpay, &customer, &agent, &mut call);
}
