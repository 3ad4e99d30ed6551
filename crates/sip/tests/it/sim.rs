//! A simulated network around the B2BUA core: the test plays the customer (127.0.0.1:6000)
//! and the agents (127.0.0.1:5080 and :5082), the clock moves only when told.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ezk_sip_types::{Headers, Name};
use ivrpay_sip::b2bua::{CallEvent, Core, CoreConfig, IdSeed};
use ivrpay_sip::media::{CallId, Leg, MediaControl, MediaPorts, MediaSettings, MediaUnavailable};
use ivrpay_sip::message::{self, Message, Request, Response};
use ivrpay_sip::profile::Profile;
use ivrpay_sip::sdp::StreamInfo;
use ivrpay_sip::transaction::Timers;
use ivrpay_sip::transport::Peer;

pub const IVRPAY: &str = "127.0.0.1:5060";
pub const CUSTOMER: &str = "127.0.0.1:6000";
pub const AGENT: &str = "127.0.0.1:5080";
pub const AGENT2: &str = "127.0.0.1:5082";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// What the relay was told.
#[derive(Debug, Default)]
pub struct Recorder {
    pub opened: Vec<CallId>,
    pub settings: Vec<MediaSettings>,
    pub updates: Vec<(CallId, Leg, StreamInfo)>,
    /// The SIP peer given with each update, in the same order.
    pub sip_peers: Vec<Option<IpAddr>>,
    pub closed: Vec<CallId>,
    pub next_port: u16,
    pub fail: bool,
}

impl MediaControl for Recorder {
    fn open(
        &mut self,
        call: &CallId,
        settings: &MediaSettings,
    ) -> Result<MediaPorts, MediaUnavailable> {
        if self.fail {
            return Err(MediaUnavailable("no ports".into()));
        }
        self.opened.push(call.clone());
        self.settings.push(settings.clone());
        let base = 30000 + self.next_port;
        self.next_port += 4;
        Ok(MediaPorts {
            customer: SocketAddr::new(settings.address, base),
            agent: Some(SocketAddr::new(settings.address, base + 2)),
        })
    }

    fn update(&mut self, call: &CallId, leg: Leg, stream: &StreamInfo, sip_peer: Option<IpAddr>) {
        self.updates.push((call.clone(), leg, stream.clone()));
        self.sip_peers.push(sip_peer);
    }

    fn close(&mut self, call: &CallId) {
        self.closed.push(call.clone());
    }
}

pub const PROFILE: &str = r#"
    listen = ["udp:127.0.0.1:5060"]
    allowed_sources = ["127.0.0.0/8"]
    [routing]
    targets = ["sip:agents@127.0.0.1:5080", "sip:agents@127.0.0.1:5082"]
    failover_timeout_ms = 1000
    [headers]
    pass = ["X-Customer-*"]
    agent = "X-Agent-Id"
    [limits]
    max_calls = 5
"#;

pub struct Sim {
    pub core: Core<Recorder>,
    pub now: Instant,
    /// Messages ivrpay sent, not yet taken: (destination, message).
    pub sent: VecDeque<(SocketAddr, Message)>,
    pub events: Vec<CallEvent>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with_profile(PROFILE)
    }

    pub fn with_profile(text: &str) -> Sim {
        Sim::with_profiles(&[text])
    }

    pub fn with_profiles(texts: &[&str]) -> Sim {
        let profiles = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Profile::from_toml(text, &format!("test{i}.toml")).expect("profile"))
            .collect();
        let config = CoreConfig { profiles, timers: Timers::default(), seed: IdSeed::fixed(7) };
        #[allow(
            clippy::disallowed_methods,
            reason = "the simulation's epoch; time then only moves by advance()"
        )]
        let now = Instant::now();
        Sim {
            core: Core::new(config, Recorder::default()),
            now,
            sent: VecDeque::new(),
            events: Vec::new(),
        }
    }

    /// A datagram from `from` to ivrpay.
    pub fn send(&mut self, from: &str, text: &str) {
        let bytes = Bytes::from(text.replace('\n', "\r\n"));
        self.core.handle_datagram(self.now, addr(IVRPAY), Peer::udp(addr(from)), bytes);
        self.collect();
    }

    pub fn send_message(&mut self, from: &str, message: &Message) {
        let mut bytes = bytes::BytesMut::new();
        message.encode(&mut bytes);
        self.core.handle_datagram(self.now, addr(IVRPAY), Peer::udp(addr(from)), bytes.freeze());
        self.collect();
    }

    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= end) {
            self.now = at.max(self.now);
            self.core.handle_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }

    fn collect(&mut self) {
        while let Some(t) = self.core.poll_transmit() {
            let message = message::parse(t.bytes.clone()).expect("ivrpay sends valid SIP");
            self.sent.push_back((t.to.addr, message));
        }
        while let Some(e) = self.core.poll_event() {
            self.events.push(e);
        }
    }

    /// The next message ivrpay sent to `to`, dropping nothing else.
    pub fn take_to(&mut self, to: &str) -> Message {
        let to = addr(to);
        let index = self.sent.iter().position(|(dest, _)| *dest == to);
        let Some(index) = index else {
            panic!("nothing was sent to {to}; sent: {:?}", self.summary())
        };
        self.sent.remove(index).map(|(_, m)| m).expect("present")
    }

    pub fn take_request(&mut self, to: &str) -> Request {
        match self.take_to(to) {
            Message::Request(r) => r,
            Message::Response(r) => {
                panic!("expected a request to {to}, got {} {:?}", r.status(), r.headers)
            }
        }
    }

    pub fn take_response(&mut self, to: &str) -> Response {
        match self.take_to(to) {
            Message::Response(r) => r,
            Message::Request(r) => panic!("expected a response to {to}, got {}", r.method),
        }
    }

    /// Takes responses to `to` until one that is not 100 Trying.
    pub fn take_final_or_provisional(&mut self, to: &str) -> Response {
        loop {
            let r = self.take_response(to);
            if r.status() != 100 {
                return r;
            }
        }
    }

    pub fn nothing_sent(&self) -> bool {
        self.sent.is_empty()
    }

    pub fn summary(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(to, m)| match m {
                Message::Request(r) => format!("{to} <- {}", r.method),
                Message::Response(r) => format!("{to} <- {}", r.status()),
            })
            .collect()
    }
}

pub fn header(headers: &Headers, name: &str) -> Option<String> {
    let name = Name::unknown(bytesstr::BytesStr::from(name.to_owned()));
    headers.get_raw(&name).next().map(|v| v.to_string())
}

pub fn header_named(headers: &Headers, name: &Name) -> Option<String> {
    headers.get_raw(name).next().map(|v| v.to_string())
}

pub const OFFER: &str = "v=0
o=customer 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 7000 RTP/AVP 0 8 18 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
";

pub fn answer(port: u16, direction: &str) -> String {
    format!(
        "v=0
o=agent 2 2 IN IP4 127.0.0.1
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

/// The customer's INVITE.
pub fn invite(call_id: &str, branch: &str, body: Option<&str>, extra: &str) -> String {
    let body = body.unwrap_or("");
    let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\n".into() };
    format!(
        "INVITE sip:pay@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:6000;branch={branch}
Max-Forwards: 70
From: \"Customer\" <sip:+441234567890@127.0.0.1:6000>;tag=cust1
To: <sip:pay@127.0.0.1:5060>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:customer@127.0.0.1:6000>
{extra}{ct}Content-Length: {}

{body}",
        body.replace('\n', "\r\n").len()
    )
}

/// A response from the test's UA to a request ivrpay sent, with `tag` on To.
pub fn reply(
    request: &Request,
    code: u16,
    tag: Option<&str>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> Message {
    let mut headers = Headers::new();
    for name in [Name::VIA, Name::FROM] {
        for v in request.headers.get_raw(&name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    let to = header_named(&request.headers, &Name::TO).expect("To");
    let to = match tag {
        Some(tag) if !to.contains("tag=") => format!("{to};tag={tag}"),
        _ => to,
    };
    headers.insert(Name::TO, to);
    for name in [Name::CALL_ID, Name::CSEQ] {
        for v in request.headers.get_raw(&name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    for (name, value) in extra {
        headers
            .insert(Name::unknown(bytesstr::BytesStr::from(name.to_string())), value.to_string());
    }
    let mut response = Response::new(ezk_sip_types::StatusCode::from(code), headers);
    if let Some(body) = body {
        response.headers.insert(Name::CONTENT_TYPE, "application/sdp");
        response.body = Bytes::from(body.replace('\n', "\r\n"));
    }
    Message::Response(response)
}
