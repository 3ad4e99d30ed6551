//! Test harness: phones that send G.711 and telephone-events, the relay driven either by a
//! simulated clock (sans-IO) or over real UDP sockets on loopback, and what the far end hears.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::rfc4733::key_press;
use ivrpay_dtmf::{Digit, ToneSpec, to_i16};
use ivrpay_media::rtp::{HEADER_LEN, Header, RtpPacket};
use ivrpay_media::{
    Codec, EngineConfig, HoldAudio, Leg, MediaEngine, MediaEvent, MediaProfile, MediaRuntime,
    PayloadTypes, PlayOptions, Prompt, RemoteMedia, RunningCall, RuntimeConfig, Session,
    SessionMetrics, SocketKind,
};
use ivrpay_testkit::oracle;

pub const TE: u8 = 101;

pub fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_micros(samples * 125)
}

pub fn ms(ms: u64) -> usize {
    (ms * 8) as usize
}

/// A datagram in a schedule: sent `at` after the start, from one of the two far ends.
#[derive(Clone, Debug)]
pub struct Timed {
    pub at: Duration,
    pub bytes: Vec<u8>,
}

/// What a phone sends: G.711 packets paced by their audio, and RFC 4733 key presses.
pub struct Phone {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub law: Law,
    pub pt: u8,
    pub ptime: usize,
    /// Samples of audio time elapsed (sent or suppressed).
    pub clock: u64,
    /// The next audio packet starts a talkspurt.
    pub marker: bool,
}

impl Phone {
    pub fn new(ssrc: u32, codec: Codec) -> Phone {
        Phone {
            ssrc,
            seq: 65_000,
            ts: u32::MAX - 4000,
            law: codec.law(),
            pt: codec.static_payload_type(),
            ptime: 160,
            clock: 0,
            marker: true,
        }
    }

    fn packet(&mut self, marker: bool, pt: u8, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + payload.len()];
        Header { marker, payload_type: pt, sequence: self.seq, timestamp: ts, ssrc: self.ssrc }
            .write(&mut out);
        out[HEADER_LEN..].copy_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        out
    }

    /// Sends `pcm`: one packet per `ptime`, each when its last sample has been spoken.
    pub fn audio(&mut self, pcm: &[i16]) -> Vec<Timed> {
        let mut out = Vec::new();
        for chunk in pcm.chunks(self.ptime) {
            let mut codes = vec![0u8; chunk.len()];
            self.law.encode_slice(chunk, &mut codes);
            let marker = std::mem::replace(&mut self.marker, false);
            let (pt, ts) = (self.pt, self.ts);
            let bytes = self.packet(marker, pt, ts, &codes);
            self.clock += chunk.len() as u64;
            self.ts = self.ts.wrapping_add(chunk.len() as u32);
            out.push(Timed { at: samples_to_duration(self.clock), bytes });
        }
        out
    }

    /// A key press sent as telephone-events only, `duration` samples long (no audio
    /// meanwhile); the audio clock moves on by the same amount.
    pub fn event_only(&mut self, digit: Digit, duration: u16) -> Vec<Timed> {
        let start = self.clock;
        let out = self.events(digit, duration, start);
        self.clock += u64::from(duration);
        self.ts = self.ts.wrapping_add(u32::from(duration));
        self.marker = true;
        out
    }

    /// Telephone-events for a key press starting now, without moving the audio clock.
    fn events(&mut self, digit: Digit, duration: u16, start: u64) -> Vec<Timed> {
        let ts = self.ts;
        let mut out = Vec::new();
        let mut end_copies = 0;
        for (marker, report) in key_press(digit, duration, self.ptime as u16, 10) {
            let at = if report.end {
                end_copies += 1;
                start + u64::from(duration) + end_copies - 1
            } else {
                start + u64::from(report.duration)
            };
            let bytes = self.packet(marker, TE, ts, &report.to_bytes());
            out.push(Timed { at: samples_to_duration(at), bytes });
        }
        out
    }

    /// A key press sent both ways, as phones often do: `pcm` (with the tone in it) as audio,
    /// and telephone-events alongside for the same time (each event packet first).
    pub fn both(&mut self, digit: Digit, pcm: &[i16]) -> Vec<Timed> {
        let start = self.clock;
        let events = self.events(digit, pcm.len() as u16, start);
        let audio = self.audio(pcm);
        let mut all: Vec<Timed> = events.into_iter().chain(audio).collect();
        all.sort_by_key(|t| t.at);
        all
    }

    /// Silence suppression: nothing is sent for `samples`.
    pub fn quiet(&mut self, samples: usize) {
        self.clock += samples as u64;
        self.ts = self.ts.wrapping_add(samples as u32);
        self.marker = true;
    }

    /// The phone becomes a new source: new SSRC, sequence numbers and timestamps.
    pub fn new_source(&mut self, ssrc: u32) {
        self.ssrc = ssrc;
        self.seq = self.seq.wrapping_add(20_000);
        self.ts = self.ts.wrapping_add(1_000_000_000);
        self.marker = true;
    }
}

/// A DTMF key at −10 dBm0 per tone, `len` samples.
pub fn tone(digit: Digit, len: usize) -> Vec<i16> {
    let mut x = vec![0.0f32; len];
    ToneSpec::new(digit, len).add_to(&mut x);
    to_i16(&x)
}

/// `len` samples of real speech (Debian's asterisk-core-sounds-en-wav, prepared by the test
/// script into `IVRPAY_TALKOFF_CORPUS`), from `offset_s` seconds in.
pub fn speech(offset_s: f32, len: usize) -> Vec<i16> {
    static CORPUS: OnceLock<Vec<i16>> = OnceLock::new();
    let corpus = CORPUS.get_or_init(|| {
        let dir = std::env::var_os("IVRPAY_TALKOFF_CORPUS").unwrap_or_else(|| {
            panic!(
                "IVRPAY_TALKOFF_CORPUS is not set: run scripts/test.sh, which prepares the \
                 speech corpus (Debian package asterisk-core-sounds-en-wav)"
            )
        });
        let path = std::path::Path::new(&dir).join("speech-en.wav");
        ivrpay_audio::wav::read_path(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .samples
    });
    let start = (offset_s * 8000.0) as usize;
    corpus[start..start + len].to_vec()
}

/// A phone's whole call: what it sends, and the truth about it for the checks.
pub struct Line {
    pub phone: Phone,
    pub schedule: Vec<Timed>,
    /// The code sent at each position (`None`: nothing sent there).
    pub sent: Vec<Option<u8>>,
    /// The audio sent (silence where nothing was).
    pub pcm: Vec<i16>,
    /// Every key, whichever way it was sent, and the positions it occupies.
    pub keys: Vec<(Digit, std::ops::Range<usize>)>,
    pub first_ts: u32,
    pub te_packets: usize,
    /// The agent leg's law: what `sent` records (transcoded when the phone's law differs).
    pub agent_law: Law,
    pub speech_at: f32,
}

impl Line {
    pub fn new(phone: Phone) -> Line {
        let first_ts = phone.ts;
        Line {
            phone,
            schedule: Vec::new(),
            sent: Vec::new(),
            pcm: Vec::new(),
            keys: Vec::new(),
            first_ts,
            te_packets: 0,
            agent_law: Law::Ulaw,
            speech_at: 12.0,
        }
    }

    pub fn position(&self) -> usize {
        self.phone.clock as usize
    }

    fn record(&mut self, x: &[i16]) {
        let (law, agent) = (self.phone.law, self.agent_law);
        self.pcm.extend_from_slice(x);
        self.sent.extend(x.iter().map(|&s| {
            let code = law.encode(s);
            Some(if law == agent { code } else { agent.encode(law.decode(code)) })
        }));
    }

    fn nothing(&mut self, n: usize) {
        self.pcm.extend(std::iter::repeat_n(0, n));
        self.sent.extend(std::iter::repeat_n(None, n));
    }

    pub fn audio(&mut self, x: &[i16]) {
        let packets = self.phone.audio(x);
        self.schedule.extend(packets);
        self.record(x);
    }

    /// Real speech, continuing through the corpus.
    pub fn speech(&mut self, ms_: u64) {
        let x = speech(self.speech_at, ms(ms_));
        self.speech_at += ms_ as f32 / 1000.0;
        self.audio(&x);
    }

    /// Quiet audio (sent, all zero).
    pub fn pause(&mut self, ms_: u64) {
        self.audio(&vec![0; ms(ms_)]);
    }

    /// An in-band key in a pause.
    pub fn key(&mut self, c: char, ms_: u64) {
        let digit = Digit::from_char(c).expect("key");
        self.pause(60);
        let start = self.position();
        self.audio(&tone(digit, ms(ms_)));
        self.keys.push((digit, start..self.position()));
        self.pause(60);
    }

    /// A key sent as telephone-events only.
    pub fn event_key(&mut self, c: char, ms_: u64) {
        let digit = Digit::from_char(c).expect("key");
        self.pause(60);
        let start = self.position();
        let events = self.phone.event_only(digit, ms(ms_) as u16);
        self.te_packets += events.len();
        self.schedule.extend(events);
        self.nothing(ms(ms_));
        self.keys.push((digit, start..self.position()));
        self.pause(60);
    }

    /// A key sent both as a tone in the audio and as telephone-events.
    pub fn both_key(&mut self, c: char, ms_: u64) {
        let digit = Digit::from_char(c).expect("key");
        self.pause(60);
        let start = self.position();
        let x = tone(digit, ms(ms_));
        let packets = self.phone.both(digit, &x);
        self.te_packets += packets.iter().filter(|t| t.bytes[1] & 0x7f == TE).count();
        self.schedule.extend(packets);
        self.record(&x);
        self.keys.push((digit, start..self.position()));
        self.pause(60);
    }

    /// Silence suppression: nothing sent.
    pub fn quiet(&mut self, ms_: u64) {
        self.phone.quiet(ms(ms_));
        self.nothing(ms(ms_));
    }

    pub fn expected(&self) -> String {
        self.keys.iter().map(|(d, _)| d.as_char()).collect()
    }
}

/// A received RTP packet.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

pub fn parse_all(datagrams: &[(Duration, Vec<u8>)]) -> Vec<Parsed> {
    datagrams
        .iter()
        .filter_map(|(_, d)| {
            let p = RtpPacket::parse(d).ok()?;
            Some(Parsed {
                marker: p.marker,
                pt: p.payload_type,
                seq: p.sequence,
                ts: p.timestamp,
                ssrc: p.ssrc,
                payload: p.payload.to_vec(),
            })
        })
        .collect()
}

/// What a far end heard, laid out on the sender's timeline (position 0 = `origin_ts`).
pub struct Heard {
    pub codes: Vec<Option<u8>>,
    pub pcm: Vec<i16>,
}

pub fn reassemble(packets: &[Parsed], origin_ts: u32, len: usize, law: Law) -> Heard {
    let mut codes = vec![None; len];
    for p in packets {
        let at = p.ts.wrapping_sub(origin_ts) as usize;
        for (i, &c) in p.payload.iter().enumerate() {
            if let Some(slot) = codes.get_mut(at + i) {
                assert!(slot.is_none(), "two packets carry position {}", at + i);
                *slot = Some(c);
            }
        }
    }
    let pcm = codes.iter().map(|c| c.map_or(0, |c| law.decode(c))).collect();
    Heard { codes, pcm }
}

/// The agent's stream is one clean stream: one SSRC, sequence numbers rising by one (plus
/// `allowed_gaps` skipped numbers in all), timestamps rising.
pub fn assert_one_clean_stream(packets: &[Parsed], allowed_gaps: u16) {
    assert!(!packets.is_empty(), "nothing arrived");
    let ssrc = packets[0].ssrc;
    let mut gaps = 0u32;
    for w in packets.windows(2) {
        assert_eq!(w[1].ssrc, ssrc, "the stream changed SSRC");
        let step = w[1].seq.wrapping_sub(w[0].seq);
        assert!((1..100).contains(&step), "sequence went from {} to {}", w[0].seq, w[1].seq);
        gaps += u32::from(step - 1);
        let advance = w[1].ts.wrapping_sub(w[0].ts) as i32;
        assert!(
            advance >= w[0].payload.len() as i32,
            "timestamp went from {} to {}",
            w[0].ts,
            w[1].ts
        );
    }
    assert!(
        gaps <= u32::from(allowed_gaps),
        "{gaps} sequence numbers skipped, {allowed_gaps} allowed"
    );
}

/// Every position outside `exclude` that the agent heard carries exactly the customer's
/// code; returns how many positions were compared.
/// Every position outside `exclude` that was sent and heard carries exactly the sent code.
/// Returns (positions compared, positions sent outside `exclude`).
pub fn assert_bit_exact(
    sent: &[Option<u8>],
    heard: &Heard,
    exclude: &[std::ops::Range<usize>],
) -> (usize, usize) {
    let (mut compared, mut total) = (0, 0);
    let mut missing: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, (s, h)) in sent.iter().zip(&heard.codes).enumerate() {
        let Some(s) = s else { continue };
        if exclude.iter().any(|r| r.contains(&i)) {
            continue;
        }
        total += 1;
        if let Some(h) = h {
            assert_eq!(h, s, "position {i}: the agent heard another code");
            compared += 1;
        } else {
            match missing.last_mut() {
                Some(r) if r.end == i => r.end = i + 1,
                _ => missing.push(i..i + 1),
            }
        }
    }
    if !missing.is_empty() {
        println!("not heard: {missing:?} of {}", sent.len());
    }
    (compared, total)
}

/// The tones' spans, widened by the masker's pre-roll/hangover and the replacement's fades.
pub fn key_windows(keys: &[(Digit, std::ops::Range<usize>)]) -> Vec<std::ops::Range<usize>> {
    keys.iter().map(|(_, r)| r.start.saturating_sub(ms(20))..r.end + ms(30)).collect()
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Datagrams that reached the agent's RTP address, with their arrival time.
    pub agent: Vec<(Duration, Vec<u8>)>,
    pub agent_rtcp: Vec<(Duration, Vec<u8>)>,
    pub customer: Vec<(Duration, Vec<u8>)>,
    pub customer_rtcp: Vec<(Duration, Vec<u8>)>,
    /// Datagrams that reached the third party.
    pub intruder: Vec<(Duration, Vec<u8>)>,
    pub events: Vec<MediaEvent>,
    pub metrics: SessionMetrics,
}

impl Outcome {
    /// Digits as reported: `(key, source)` per press, checking that each press was reported
    /// as Began then Ended, once.
    pub fn presses(&self) -> Vec<(char, ivrpay_media::DigitSource)> {
        let mut open: Vec<ivrpay_media::DigitEvent> = Vec::new();
        let mut done = Vec::new();
        for e in &self.events {
            let MediaEvent::Digit(d) = e else { continue };
            match d.phase {
                ivrpay_media::DigitPhase::Began => {
                    assert!(open.iter().all(|o| o.digit != d.digit), "began twice without an end");
                    open.push(*d);
                }
                ivrpay_media::DigitPhase::Ended { end } => {
                    let i = open
                        .iter()
                        .position(|o| {
                            o.digit == d.digit && o.start == d.start && o.source == d.source
                        })
                        .expect("an end matches a beginning");
                    let began = open.remove(i);
                    assert!(end > began.start, "a press ends after it starts");
                    done.push((began.start, d.digit.as_char(), d.source));
                }
            }
        }
        assert!(open.is_empty(), "{} presses never ended", open.len());
        done.sort_by_key(|d| d.0);
        done.into_iter().map(|(_, c, s)| (c, s)).collect()
    }

    pub fn digit_string(&self) -> String {
        self.presses().into_iter().map(|(c, _)| c).collect()
    }
}

/// A call to run: both legs' SDP and what each far end sends.
pub struct Scenario {
    pub profile: MediaProfile,
    pub customer_types: PayloadTypes,
    pub agent_types: PayloadTypes,
    pub from_customer: Vec<Timed>,
    pub from_agent: Vec<Timed>,
    /// RTCP from each far end.
    pub customer_rtcp: Vec<Timed>,
    pub agent_rtcp: Vec<Timed>,
    /// How long to keep going after the last datagram.
    pub tail: Duration,
    /// Datagrams from a third address to the relay's customer RTP port.
    pub intruder: Vec<Timed>,
    /// The third party's IP address (its port is its own).
    pub intruder_ip: IpAddr,
    /// The customer's SDP names this address instead of where it sends from (NAT).
    pub customer_sdp: Option<SocketAddr>,
    /// The customer's SIP peer, as the signalling tells the relay (127.0.0.1: where the
    /// customer sends from).
    pub customer_peer: Option<IpAddr>,
    /// Steering from the signalling side, at these times.
    pub controls: Vec<(Duration, Control)>,
    /// Over UDP: run the driver on a [`MediaRuntime`] like this one, as `ivrpay serve` does
    /// (`None`: as a task of the test's runtime).
    pub runtime: Option<RuntimeConfig>,
}

/// What the B2BUA or the IVR does to a call.
#[derive(Clone, Debug)]
pub enum Control {
    Play(Prompt, PlayOptions),
    StopPrompt,
    Hold(HoldAudio),
    Reconnect,
}

impl Scenario {
    pub fn new(from_customer: Vec<Timed>) -> Scenario {
        Scenario {
            profile: MediaProfile::default(),
            customer_types: PayloadTypes::only(Codec::Pcmu).with_telephone_event(TE),
            agent_types: PayloadTypes::only(Codec::Pcmu).with_telephone_event(TE),
            from_customer,
            from_agent: Vec::new(),
            customer_rtcp: Vec::new(),
            agent_rtcp: Vec::new(),
            tail: Duration::from_millis(200),
            intruder: Vec::new(),
            intruder_ip: IpAddr::from([127, 0, 0, 2]),
            customer_sdp: None,
            customer_peer: None,
            controls: Vec::new(),
            runtime: None,
        }
    }

    /// Everything sent, in time order: `(at, sender, to leg, to socket, bytes)`.
    fn schedule(&self) -> Vec<(Duration, Origin, Leg, SocketKind, &[u8])> {
        let mut all: Vec<_> = [
            (&self.from_customer, Origin::Customer, Leg::Customer, SocketKind::Rtp),
            (&self.from_agent, Origin::Agent, Leg::Agent, SocketKind::Rtp),
            (&self.customer_rtcp, Origin::CustomerRtcp, Leg::Customer, SocketKind::Rtcp),
            (&self.agent_rtcp, Origin::AgentRtcp, Leg::Agent, SocketKind::Rtcp),
            (&self.intruder, Origin::Intruder, Leg::Customer, SocketKind::Rtp),
        ]
        .into_iter()
        .flat_map(|(list, from, leg, kind)| {
            list.iter().map(move |t| (t.at, from, leg, kind, t.bytes.as_slice()))
        })
        .collect();
        all.sort_by_key(|e| e.0);
        all
    }
}

/// Who sends a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Customer,
    CustomerRtcp,
    Agent,
    AgentRtcp,
    Intruder,
}

impl Origin {
    fn index(self) -> usize {
        match self {
            Origin::Customer => 0,
            Origin::CustomerRtcp => 1,
            Origin::Agent => 2,
            Origin::AgentRtcp => 3,
            Origin::Intruder => 4,
        }
    }
}

/// Where the far ends send from in a simulation; the intruder's IP is the scenario's.
const SIM_ADDRESSES: [&str; 4] =
    ["127.0.0.1:5000", "127.0.0.1:5001", "127.0.0.1:6000", "127.0.0.1:6001"];
const SIM_INTRUDER_PORT: u16 = 7000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn remote(rtp: SocketAddr, rtcp: SocketAddr, types: PayloadTypes) -> RemoteMedia {
    RemoteMedia { rtcp: Some(rtcp), ..RemoteMedia::new(rtp, types) }
}

/// The customer leg's far end as the scenario's signalling describes it.
fn customer_remote(s: &Scenario, sends_from: SocketAddr, rtcp: SocketAddr) -> RemoteMedia {
    let rtp = s.customer_sdp.unwrap_or(sends_from);
    RemoteMedia { signalling_peer: s.customer_peer, ..remote(rtp, rtcp, s.customer_types) }
}

fn empty_outcome() -> Outcome {
    Outcome {
        agent: Vec::new(),
        agent_rtcp: Vec::new(),
        customer: Vec::new(),
        customer_rtcp: Vec::new(),
        intruder: Vec::new(),
        events: Vec::new(),
        metrics: SessionMetrics::default(),
    }
}

/// Runs the scenario through a [`Session`] on a simulated clock.
pub fn simulate(s: &Scenario) -> Outcome {
    #[allow(clippy::disallowed_methods, reason = "the simulated clock needs an origin")]
    let t0 = Instant::now();
    let mut session = Session::new(s.profile, 0xABCD).expect("profile");
    let mut peers: Vec<SocketAddr> = SIM_ADDRESSES.iter().map(|a| addr(a)).collect();
    peers.push(SocketAddr::new(s.intruder_ip, SIM_INTRUDER_PORT));
    session.set_remote(Leg::Customer, customer_remote(s, peers[0], peers[1])).expect("sdp");
    session.set_remote(Leg::Agent, remote(peers[2], peers[3], s.agent_types)).expect("sdp");
    let mut out = empty_outcome();
    let schedule = s.schedule();
    let end = schedule.last().map_or(Duration::ZERO, |e| e.0) + s.tail;
    let drain = |session: &mut Session, out: &mut Outcome, at: Duration| {
        while let Some(t) = session.poll_transmit() {
            // Only what is addressed to a far end reaches it.
            let list = match (t.leg, t.socket) {
                (Leg::Agent, SocketKind::Rtp) if t.destination == peers[2] => &mut out.agent,
                (Leg::Agent, SocketKind::Rtcp) if t.destination == peers[3] => &mut out.agent_rtcp,
                (Leg::Customer, SocketKind::Rtp) if t.destination == peers[0] => &mut out.customer,
                (Leg::Customer, SocketKind::Rtcp) if t.destination == peers[1] => {
                    &mut out.customer_rtcp
                }
                _ if t.destination == peers[4] => &mut out.intruder,
                _ => continue,
            };
            list.push((at, t.payload.to_vec()));
        }
        while let Some(e) = session.poll_event() {
            out.events.push(e);
        }
    };
    let run_timers = |session: &mut Session, out: &mut Outcome, until: Duration| {
        while let Some(due) = session.poll_timeout().filter(|&d| d <= t0 + until) {
            session.handle_timeout(due);
            drain(session, out, due - t0);
        }
    };
    let mut controls = s.controls.iter().peekable();
    for (at, from, leg, kind, bytes) in schedule {
        while let Some((when, control)) = controls.next_if(|c| c.0 <= at) {
            run_timers(&mut session, &mut out, *when);
            match control.clone() {
                Control::Play(p, o) => _ = session.play_prompt(t0 + *when, p, o),
                Control::StopPrompt => session.stop_prompt(),
                Control::Hold(a) => session.hold(a),
                Control::Reconnect => session.reconnect(),
            }
            drain(&mut session, &mut out, *when);
        }
        run_timers(&mut session, &mut out, at);
        session.handle_datagram(t0 + at, leg, kind, peers[from.index()], bytes);
        drain(&mut session, &mut out, at);
    }
    run_timers(&mut session, &mut out, end);
    session.finish(t0 + end);
    drain(&mut session, &mut out, end);
    out.metrics = *session.metrics();
    out
}

/// Runs the scenario over real UDP sockets on loopback: the relay's engine and driver, a
/// customer phone and an agent phone, all on 127.0.0.1. `ports` is this test's own range.
pub async fn over_udp(s: &Scenario, ports: u16) -> Outcome {
    use tokio::net::UdpSocket;
    let config = EngineConfig { port_min: ports, port_max: ports + 9, ..EngineConfig::default() };
    let engine = MediaEngine::new(config).expect("engine");
    let ip = "127.0.0.1".parse().expect("ip");
    let threads = s.runtime.map(|config| MediaRuntime::start(config).expect("media runtime"));
    let mut call = match &threads {
        Some(threads) => threads.create_call(&engine, ip, s.profile).expect("call"),
        None => {
            let call = engine.create_call(ip, s.profile).expect("call");
            tokio::spawn(call.driver.run());
            RunningCall { handle: call.handle, events: call.events }
        }
    };
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    }
    let intruder = UdpSocket::bind((s.intruder_ip, 0)).await.expect("bind the intruder");
    sockets.push(intruder);
    let local: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().expect("addr")).collect();
    let c_remote = customer_remote(s, local[0], local[1]);
    call.handle.set_remote(Leg::Customer, c_remote).expect("sdp");
    call.handle.set_remote(Leg::Agent, remote(local[2], local[3], s.agent_types)).expect("sdp");
    let relay = [call.handle.local(Leg::Customer), call.handle.local(Leg::Agent)];

    let schedule: Vec<(Duration, Origin, Leg, SocketKind, Vec<u8>)> = s
        .schedule()
        .into_iter()
        .map(|(at, from, leg, kind, b)| (at, from, leg, kind, b.to_vec()))
        .collect();
    let end = schedule.last().map_or(Duration::ZERO, |e| e.0) + s.tail;
    // Let the driver start before the clock does.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = tokio::time::Instant::now();
    let sockets = std::sync::Arc::new(sockets);
    let mut receivers = Vec::new();
    for i in 0..5 {
        let sockets = std::sync::Arc::clone(&sockets);
        receivers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            let deadline = start + end + Duration::from_millis(100);
            while let Ok(Ok((n, _))) =
                tokio::time::timeout_at(deadline, sockets[i].recv_from(&mut buf)).await
            {
                got.push((start.elapsed(), buf[..n].to_vec()));
            }
            got
        }));
    }
    let mut worst = Duration::ZERO;
    let mut controls = s.controls.iter().peekable();
    for (at, from, leg, kind, bytes) in &schedule {
        while let Some((when, control)) = controls.next_if(|c| c.0 <= *at) {
            tokio::time::sleep_until(start + *when).await;
            match control.clone() {
                Control::Play(p, o) => _ = call.handle.play_prompt(p, o).await.expect("play"),
                Control::StopPrompt => call.handle.stop_prompt().expect("stop"),
                Control::Hold(a) => call.handle.hold(a).expect("hold"),
                Control::Reconnect => call.handle.reconnect().expect("reconnect"),
            }
        }
        tokio::time::sleep_until(start + *at).await;
        worst = worst.max(start.elapsed().saturating_sub(*at));
        let to = match kind {
            SocketKind::Rtp => relay[leg_index(*leg)].rtp,
            SocketKind::Rtcp => relay[leg_index(*leg)].rtcp,
        };
        sockets[from.index()].send_to(bytes, to).await.expect("send");
    }
    let mut heard = Vec::new();
    for r in receivers {
        heard.push(r.await.expect("receiver"));
    }
    let metrics = tokio::time::timeout(Duration::from_secs(5), call.handle.close())
        .await
        .expect("the driver answers close within 5 s")
        .expect("close");
    println!("udp run: sender at most {worst:?} behind schedule");
    let mut events = Vec::new();
    while let Some(e) = call.events.recv().await {
        events.push(e);
    }
    drop(threads);
    let [customer, customer_rtcp, agent, agent_rtcp, intruder]: [Vec<_>; 5] =
        heard.try_into().expect("five receivers");
    Outcome { agent, agent_rtcp, customer, customer_rtcp, intruder, events, metrics }
}

fn leg_index(leg: Leg) -> usize {
    match leg {
        Leg::Customer => 0,
        Leg::Agent => 1,
    }
}

/// What the agent leg must show, beyond "no key can be heard".
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    /// Sequence numbers the agent may see skipped (lost customer packets).
    pub gaps: u16,
    /// Unmasked samples that may be missing (lost packets).
    pub missing: usize,
}

/// The agent leg: only audio in the agent's codec, one clean stream, the unmasked audio
/// bit-exact, no tone left unmasked, and nothing the decoders can read. Returns what the
/// agent heard, laid out on the customer's timeline.
pub fn check_agent(line: &Line, out: &Outcome, expect: Expect, label: &str) -> Heard {
    let packets = parse_all(&out.agent);
    let agent_pt = if line.agent_law == Law::Ulaw { 0 } else { 8 };
    assert!(
        packets.iter().all(|p| p.pt == agent_pt),
        "{label}: another payload type reached the agent"
    );
    assert_one_clean_stream(&packets, expect.gaps);
    let heard = reassemble(&packets, line.first_ts, line.pcm.len(), line.agent_law);
    let (compared, total) = assert_bit_exact(&line.sent, &heard, &key_windows(&line.keys));
    // The last lookahead of audio may still be in flight when the call ends.
    let allowed = expect.missing + 480;
    assert!(
        compared + allowed >= total,
        "{label}: only {compared} of {total} unmasked samples arrived"
    );
    // Tone left unmasked: samples of an in-band tone that reached the agent unchanged, in
    // runs of three or more (a replacement sample can equal the tone's by chance).
    let mut worst_leak = 0;
    for (_, r) in line.keys.iter().filter(|(_, r)| line.sent[r.start].is_some()) {
        let (mut leaked, mut run) = (0, 0);
        for i in r.clone().map(Some).chain(std::iter::once(None)) {
            let same =
                i.is_some_and(|i| heard.codes[i].is_some() && heard.codes[i] == line.sent[i]);
            if same {
                run += 1;
            } else {
                if run >= 3 {
                    leaked += run;
                }
                run = 0;
            }
        }
        worst_leak = worst_leak.max(leaked);
    }
    assert!(worst_leak <= 40, "{label}: {worst_leak} samples of a tone reached the agent");
    let decode = |pcm: &[i16]| {
        [oracle::spandsp(pcm, false), oracle::spandsp(pcm, true), oracle::multimon(pcm)]
    };
    let found = decode(&heard.pcm);
    // The decoders' verdict on the same call with the keys taken out: what they "hear" in
    // the speech itself (multimon-ng is lenient and reads the odd digit in speech).
    let mut reference: Vec<i16> =
        line.sent.iter().map(|c| c.map_or(0, |c| line.agent_law.decode(c))).collect();
    for (_, r) in &line.keys {
        reference[r.clone()].fill(0);
    }
    let talk_off = decode(&reference);
    println!(
        "relay leak, {label}: {} keys ({} as telephone-event packets): agent leg decoded by \
         spandsp {:?} / \
         spandsp relaxed {:?} / multimon-ng {:?} (the speech alone: {:?}); {compared} of \
         {total} unmasked samples bit-exact; unmasked tone at most {:.2} ms per key; {} \
         packets, {} masked",
        line.keys.len(),
        line.te_packets,
        found[0],
        found[1],
        found[2],
        talk_off,
        worst_leak as f32 / 8.0,
        packets.len(),
        out.metrics.masking.masked_frames,
    );
    assert_eq!(found, talk_off, "{label}: digits leaked");
    heard
}

/// Every key the customer pressed was reported exactly once, in order.
pub fn check_digits(line: &Line, out: &Outcome, label: &str) {
    assert_eq!(out.digit_string(), line.expected(), "{label}: digits reported");
}
