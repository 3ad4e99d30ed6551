//! The point of ivrpay: the customer keys digits (in-band tones and RFC 2833 events), the
//! agent hears none of them, and ivrpay hears every one.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Keying, key_string};
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

#[test]
fn the_agent_hears_no_digit_and_ivrpay_hears_them_all() {
    crate::harness::require_tool("multimon-ng", "multimon-ng");
    crate::harness::require_tool("sox", "sox");
    let uid = std::process::Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "SIPp's play_pcap_audio (the RFC 2833 digits) needs root: run the tests as root"
    );
    let dir = scratch("digits");

    // The customer's in-band keys, as SIPp will stream them: µ-law, 20 ms packets.
    let keying = Keying { on_ms: 80.0, off_ms: 80.0, ..Keying::default() };
    let mut tones = key_string(IN_BAND, &keying).expect("keys");
    tones.resize(tones.len() + 8000 / 4, 0);
    tones.resize(tones.len().div_ceil(160) * 160, 0);
    let mut ulaw = vec![0u8; tones.len()];
    Law::Ulaw.encode_slice(&tones, &mut ulaw);
    std::fs::write(dir.join("customer_tones.ulaw"), &ulaw).expect("tone file");
    let tones_ms = (tones.len() / 8) as u32;

    // Control: the oracles hear every key in the unmasked file.
    let mut heard = vec![0i16; ulaw.len()];
    Law::Ulaw.decode_slice(&ulaw, &mut heard);
    assert_eq!(oracle::spandsp(&heard, false), IN_BAND, "spandsp on the customer's audio");
    assert_eq!(oracle::multimon(&heard), IN_BAND, "multimon-ng on the customer's audio");

    let agent_socket = UdpSocket::bind("127.0.0.1:0").expect("agent media socket");
    let agent_media = agent_socket.local_addr().expect("bound").port();
    let recorder = Recorder::start(agent_socket);
    let agent = SippSpec::uas("agent", "agent", &dir, 1).key("agent_rtp_port", agent_media).start();
    let ivrpay = Ivrpay::start(&dir, &ProfileSpec::to(agent.addr()), 5);
    let in_band_before = ivrpay.metric("digits_in_band_total");
    let events_before = ivrpay.metric("digits_rfc4733_total");
    let customer = SippSpec {
        hold_ms: tones_ms + 300,
        ..SippSpec::uac("customer", "customer_dtmf", &dir, ivrpay.sip_udp, 1)
    }
    .start();
    customer.finish(Duration::from_secs(60)).assert_all("customer", 1, &ivrpay);
    agent.finish(Duration::from_secs(60)).assert_all("agent", 1, &ivrpay);
    let (packets, malformed) = recorder.finish();

    // ivrpay heard every key, each once, by the way it came.
    ivrpay.wait_metric("calls_active", 0, Duration::from_secs(5));
    let in_band = ivrpay.metric("digits_in_band_total") - in_band_before;
    let events = ivrpay.metric("digits_rfc4733_total") - events_before;
    assert_eq!(
        (in_band, events),
        (IN_BAND.len() as u64, RFC2833.len() as u64),
        "digits reported (in-band, RFC 2833)"
    );

    // The agent got the call's audio, and not one telephone-event.
    assert_eq!(malformed, 0, "malformed RTP at the agent");
    let events_at_agent = packets.iter().filter(|p| p.payload_type == 101).count();
    assert_eq!(events_at_agent, 0, "telephone-event packets reached the agent");
    let audio = agent_audio(&packets);
    let audio_ms = audio.len() / 8;
    assert!(
        audio_ms as u32 >= tones_ms,
        "the agent got {audio_ms} ms of audio from {} packets, the customer sent {tones_ms} ms \
         of tones and then 4 RFC 2833 keys",
        packets.len()
    );
    // ... in which no decoder finds a digit.
    assert_eq!(oracle::spandsp(&audio, false), "", "spandsp on the agent's audio");
    assert_eq!(oracle::spandsp(&audio, true), "", "spandsp (relaxed) on the agent's audio");
    assert_eq!(oracle::multimon(&audio), "", "multimon-ng on the agent's audio");
    #[allow(clippy::print_stdout, reason = "the figures for the closing note")]
    {
        println!(
            "sip digits: customer keyed {} in-band + {} RFC 2833; ivrpay reported {in_band} + \
             {events}; agent got {} packets ({audio_ms} ms), 0 telephone-events, 0 digits for \
             spandsp and multimon-ng",
            IN_BAND.len(),
            RFC2833.len(),
            packets.len()
        );
    }
}
