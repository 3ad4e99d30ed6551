//! The point of ivrpay: the customer keys digits (in-band tones and RFC 2833 events), the
//! agent hears none of them, and ivrpay hears every one, and none from a stranger racing the
//! customer to the relay's ports.

use std::net::UdpSocket;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::rfc4733::key_press;
use ivrpay_dtmf::{Digit, Keying, key_string};
use ivrpay_testkit::oracle;

use crate::harness::{Ivrpay, ProfileSpec, SippSpec, scratch};

/// The in-band digits of `customer_tones.ulaw` (a card number and its end key).
const IN_BAND: &str = "4111111111111111#";
/// The RFC 2833 pcaps `customer_dtmf.xml` plays, in order.
const RFC2833: &str = "129#";

/// One RTP packet as the agent received it.
#[derive(Clone, Debug)]
struct Packet {
    payload_type: u8,
    timestamp: u32,
    payload: Vec<u8>,
}

/// Records every RTP packet sent to the agent's media port, until stopped.
struct Recorder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<Packet>, usize)>,
}

impl Recorder {
    fn start(socket: UdpSocket) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("read timeout");
        let thread = std::thread::spawn(move || {
            let (mut packets, mut malformed) = (Vec::new(), 0);
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
                match parse_rtp(&buf[..n]) {
                    Some(packet) => packets.push(packet),
                    None => malformed += 1,
                }
            }
            (packets, malformed)
        });
        Recorder { stop, thread }
    }

    fn finish(self) -> (Vec<Packet>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("recorder thread")
    }
}

/// RFC 3550 fixed header (with CSRCs, an extension and padding handled).
fn parse_rtp(data: &[u8]) -> Option<Packet> {
    if data.len() < 12 || data[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(data[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if data[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*data.get(start + 2)?, *data.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = data.len();
    if data[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*data.last()?))?;
    }
    Some(Packet {
        payload_type: data[1] & 0x7f,
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        payload: data.get(start..end)?.to_vec(),
    })
}

/// The agent's audio on one timeline: each PCMU packet decoded at its timestamp, gaps silent.
fn agent_audio(packets: &[Packet]) -> Vec<i16> {
    let audio: Vec<&Packet> = packets.iter().filter(|p| p.payload_type == 0).collect();
    let Some(first) = audio.first() else { return Vec::new() };
    let mut out = Vec::new();
    for packet in &audio {
        let offset = packet.timestamp.wrapping_sub(first.timestamp) as usize;
        if offset > 8000 * 60 {
            continue; // not on this timeline (it would be a bug the count below shows)
        }
        let end = offset + packet.payload.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        Law::Ulaw.decode_slice(&packet.payload, &mut out[offset..end]);
    }
    out
}

/// SIPp's `play_pcap_audio` (the RFC 2833 keys) and the oracles need root and Debian tools.
fn require_keying_tools() {
    crate::harness::require_tool("multimon-ng", "multimon-ng");
    crate::harness::require_tool("sox", "sox");
    let uid = std::process::Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "SIPp's play_pcap_audio (the RFC 2833 digits) needs root: run the tests as root"
    );
}

/// The customer's in-band keys, as SIPp will stream them (µ-law, 20 ms packets), written to
/// `dir`; returns the audio.
fn write_customer_tones(dir: &Path) -> Vec<u8> {
    let keying = Keying { on_ms: 80.0, off_ms: 80.0, ..Keying::default() };
    let mut tones = key_string(IN_BAND, &keying).expect("keys");
    tones.resize(tones.len() + 8000 / 4, 0);
    tones.resize(tones.len().div_ceil(160) * 160, 0);
    let mut ulaw = vec![0u8; tones.len()];
    Law::Ulaw.encode_slice(&tones, &mut ulaw);
    std::fs::write(dir.join("customer_tones.ulaw"), &ulaw).expect("tone file");
    ulaw
}

/// One call on which the customer keys `IN_BAND` then `RFC2833`, as ivrpay and the agent
/// saw it.
struct KeyedCall {
    ivrpay: Ivrpay,
    /// How long the customer's in-band keys last.
    tones_ms: u32,
    /// Keys ivrpay reported during the call, in-band and as telephone-events.
    in_band: u64,
    events: u64,
    /// What reached the agent's media port.
    packets: Vec<Packet>,
    malformed: usize,
}

/// Runs a [`KeyedCall`] through a new ivrpay in `dir`; `before_dialling` runs once ivrpay is
/// up, before the customer dials (its result is handed back).
fn keyed_call<T>(dir: &Path, before_dialling: impl FnOnce(&Ivrpay) -> T) -> (KeyedCall, T) {
    let tones_ms = (write_customer_tones(dir).len() / 8) as u32;
    let agent_socket = UdpSocket::bind("127.0.0.1:0").expect("agent media socket");
    let agent_media = agent_socket.local_addr().expect("bound").port();
    let recorder = Recorder::start(agent_socket);
    let agent = SippSpec::uas("agent", "agent", dir, 1).key("agent_rtp_port", agent_media).start();
    let ivrpay = Ivrpay::start(dir, &ProfileSpec::to(agent.addr()), 5);
    let in_band_before = ivrpay.metric("digits_in_band_total");
    let events_before = ivrpay.metric("digits_rfc4733_total");
    let during = before_dialling(&ivrpay);
    let customer = SippSpec {
        hold_ms: tones_ms + 300,
        ..SippSpec::uac("customer", "customer_dtmf", dir, ivrpay.sip_udp, 1)
    }
    .start();
    customer.finish(Duration::from_secs(60)).assert_all("customer", 1, &ivrpay);
    agent.finish(Duration::from_secs(60)).assert_all("agent", 1, &ivrpay);
    let (packets, malformed) = recorder.finish();
    ivrpay.wait_metric("calls_active", 0, Duration::from_secs(5));
    let in_band = ivrpay.metric("digits_in_band_total") - in_band_before;
    let events = ivrpay.metric("digits_rfc4733_total") - events_before;
    (KeyedCall { ivrpay, tones_ms, in_band, events, packets, malformed }, during)
}

impl KeyedCall {
    /// ivrpay heard every key, each once, by the way it came; the agent got the call's audio,
    /// not one telephone-event, and no decoder finds a digit in it. Returns the agent's
    /// audio length in ms.
    fn assert_keys_heard_by_ivrpay_alone(&self) -> usize {
        assert_eq!(
            (self.in_band, self.events),
            (IN_BAND.len() as u64, RFC2833.len() as u64),
            "digits reported (in-band, RFC 2833)"
        );
        assert_eq!(self.malformed, 0, "malformed RTP at the agent");
        let events_at_agent = self.packets.iter().filter(|p| p.payload_type == 101).count();
        assert_eq!(events_at_agent, 0, "telephone-event packets reached the agent");
        let audio = agent_audio(&self.packets);
        let audio_ms = audio.len() / 8;
        assert!(
            audio_ms as u32 >= self.tones_ms,
            "the agent got {audio_ms} ms of audio from {} packets, the customer sent {} ms of \
             tones and then 4 RFC 2833 keys",
            self.packets.len(),
            self.tones_ms
        );
        assert_eq!(oracle::spandsp(&audio, false), "", "spandsp on the agent's audio");
        assert_eq!(oracle::spandsp(&audio, true), "", "spandsp (relaxed) on the agent's audio");
        assert_eq!(oracle::multimon(&audio), "", "multimon-ng on the agent's audio");
        audio_ms
    }
}

#[test]
fn the_agent_hears_no_digit_and_ivrpay_hears_them_all() {
    require_keying_tools();
    let dir = scratch("digits");
    // Control: the oracles hear every key in the unmasked file.
    let ulaw = write_customer_tones(&dir);
    let mut heard = vec![0i16; ulaw.len()];
    Law::Ulaw.decode_slice(&ulaw, &mut heard);
    assert_eq!(oracle::spandsp(&heard, false), IN_BAND, "spandsp on the customer's audio");
    assert_eq!(oracle::multimon(&heard), IN_BAND, "multimon-ng on the customer's audio");

    let (call, ()) = keyed_call(&dir, |_| ());
    let audio_ms = call.assert_keys_heard_by_ivrpay_alone();
    #[allow(clippy::print_stdout, reason = "the figures for the closing note")]
    {
        println!(
            "sip digits: customer keyed {} in-band + {} RFC 2833; ivrpay reported {} + {}; \
             agent got {} packets ({audio_ms} ms), 0 telephone-events, 0 digits for spandsp \
             and multimon-ng",
            IN_BAND.len(),
            RFC2833.len(),
            call.in_band,
            call.events,
            call.packets.len()
        );
    }
}

/// A stranger on another address (127.0.0.2) who sweeps ivrpay's whole RTP range, as one
/// would who cannot see the signalling: every 20 ms a packet to every even port, alternately
/// the next 20 ms of key 5 tones and the next telephone-event of a key 5 press, from before
/// the call until stopped. It counts what comes back.
struct Racer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, u64)>,
}

/// The key the racer tries to put into the call (the customer never presses it).
const RACER_KEY: char = '5';

impl Racer {
    fn start(ports: RangeInclusive<u16>) -> Racer {
        let socket = UdpSocket::bind("127.0.0.2:0").expect("a socket on 127.0.0.2");
        socket.set_nonblocking(true).expect("non-blocking");
        let keying = Keying { on_ms: 100.0, off_ms: 60.0, ..Keying::default() };
        let tones = key_string(&RACER_KEY.to_string().repeat(8), &keying).expect("keys");
        let mut audio = vec![0u8; tones.len() / 160 * 160];
        Law::Ulaw.encode_slice(&tones[..audio.len()], &mut audio);
        let digit = Digit::from_char(RACER_KEY).expect("key");
        let press = key_press(digit, 800, 160, 10);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut sent, mut received) = (0u64, 0u64);
            let mut buf = [0u8; 2048];
            let (mut seq, mut event_ts) = (0u16, 0u32);
            for round in 0usize.. {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let step = round / 2;
                let ts = (step * 160) as u32;
                let packet = if round % 2 == 0 {
                    let at = step * 160 % audio.len();
                    rtp(0, false, seq, ts, &audio[at..at + 160])
                } else {
                    let (marker, report) = press[step % press.len()];
                    if marker {
                        event_ts = ts;
                    }
                    rtp(101, marker, seq, event_ts, &report.to_bytes())
                };
                seq = seq.wrapping_add(1);
                for port in ports.clone().step_by(2) {
                    if socket.send_to(&packet, ("127.0.0.1", port)).is_ok() {
                        sent += 1;
                    }
                }
                while socket.recv_from(&mut buf).is_ok() {
                    received += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (sent, received)
        });
        Racer { stop, thread }
    }

    /// Stops; returns (datagrams sent, datagrams received).
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("racer thread")
    }
}

/// An RTP packet of the racer's own stream.
fn rtp(payload_type: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type | if marker { 0x80 } else { 0 }];
    packet.extend(seq.to_be_bytes());
    packet.extend(ts.to_be_bytes());
    packet.extend(0x5A5A_5A5Au32.to_be_bytes());
    packet.extend(payload);
    packet
}

/// Issue 17, finding 5: a stranger who reaches the relay's ports before the customer (and
/// keeps sending through the call) neither takes the call's audio nor keys digits into it,
/// and the customer's media still flows.
#[test]
fn a_racer_sweeping_the_rtp_ports_gets_nothing_and_keys_nothing() {
    require_keying_tools();
    let dir = scratch("racer");
    let (call, racer) = keyed_call(&dir, |ivrpay| Racer::start(ivrpay.rtp_ports.clone()));
    let (sent, received) = racer.finish();
    // Only the customer's keys were reported (any of the racer's would add to them), and
    // the agent heard the customer's audio, masked.
    let audio_ms = call.assert_keys_heard_by_ivrpay_alone();
    assert_eq!(received, 0, "the racer got {received} datagrams of the call");
    // The racer's packets did reach the call's ports, and were refused there.
    let refused =
        |leg: &str| call.ivrpay.metric(&format!("media_foreign_source_total{{leg=\"{leg}\"}}"));
    let (customer, agent) = (refused("customer"), refused("agent"));
    assert!(customer >= 20 && agent >= 20, "refused: customer leg {customer}, agent leg {agent}");
    assert_eq!(call.ivrpay.metric("media_relatched_total{leg=\"customer\"}"), 0);
    #[allow(clippy::print_stdout, reason = "the figures for the closing note")]
    {
        println!(
            "racer: {sent} datagrams swept over the RTP range from 127.0.0.2, {customer} + \
             {agent} refused on the call's customer and agent ports, 0 received; ivrpay \
             reported only the customer's {} + {} keys; agent got {audio_ms} ms of audio",
            call.in_band, call.events
        );
    }
}
