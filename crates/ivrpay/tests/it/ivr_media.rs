//! What the IVR suites hear: RTP captured on its way to SIPp's customer (a raw socket, so
//! SIPp keeps its own port), split into the prompts ivrpay played, compared with what the
//! prompt set says they are; tone files for the customer to key; levels and tones.

use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Keying, key_string};
use ivrpay_ivr::prompts::{PromptSet, Utterance};
use socket2::{Domain, Protocol, Socket, Type};

/// One RTP packet as it arrived.
#[derive(Clone, Debug)]
pub struct Rtp {
    pub at: Instant,
    pub marker: bool,
    pub payload_type: u8,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

/// RFC 3550 fixed header (CSRCs, extension and padding handled).
pub fn parse_rtp(data: &[u8], at: Instant) -> Option<Rtp> {
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
    Some(Rtp {
        at,
        marker: data[1] & 0x80 != 0,
        payload_type: data[1] & 0x7f,
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        payload: data.get(start..end)?.to_vec(),
    })
}

/// Copies of every UDP datagram sent to a local port, taken with a raw IPv4 socket (needs
/// root, as SIPp's pcap play does): what the customer's phone received.
pub struct Tap {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Rtp>>,
}

impl Tap {
    pub fn start(port: u16) -> Tap {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))
            .expect("a raw socket (run the tests as root)");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let _ = socket.set_recv_buffer_size(8 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut packets = Vec::new();
            let mut buf = [0u8; 65536];
            while !flag.load(Ordering::Relaxed) {
                let Ok(n) = (&socket).read(&mut buf) else { continue };
                let at = Instant::now();
                let ip = &buf[..n];
                if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
                    continue;
                }
                let header = usize::from(ip[0] & 0x0f) * 4;
                let Some(udp) = ip.get(header..) else { continue };
                if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != port {
                    continue;
                }
                if let Some(rtp) = parse_rtp(&udp[8..], at) {
                    packets.push(rtp);
                }
            }
            packets
        });
        Tap { stop, thread }
    }

    pub fn finish(self) -> Vec<Rtp> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("tap thread")
    }
}

/// What ivrpay played to the customer, one entry per prompt: the relay marks the first
/// packet of each prompt (and of each new stretch of the agent's audio).
#[derive(Clone, Debug)]
pub struct Segment {
    pub start: Instant,
    pub end: Instant,
    /// µ-law payload, in order.
    pub ulaw: Vec<u8>,
}

impl Segment {
    pub fn samples(&self) -> Vec<i16> {
        let mut pcm = vec![0i16; self.ulaw.len()];
        Law::Ulaw.decode_slice(&self.ulaw, &mut pcm);
        pcm
    }

    pub fn seconds(&self) -> f64 {
        self.ulaw.len() as f64 / 8000.0
    }
}

pub fn segments(packets: &[Rtp]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for p in packets.iter().filter(|p| p.payload_type == 0) {
        match out.last_mut() {
            Some(s) if !p.marker => {
                s.ulaw.extend_from_slice(&p.payload);
                s.end = p.at;
            }
            _ => out.push(Segment { start: p.at, end: p.at, ulaw: p.payload.clone() }),
        }
    }
    out
}

/// The µ-law bytes the relay sends for an utterance of the built-in set.
pub fn expected_ulaw(prompts: &PromptSet, utterance: &Utterance) -> Vec<u8> {
    let pcm = prompts.render(utterance);
    let mut ulaw = vec![0u8; pcm.len_samples()];
    Law::Ulaw.encode_slice(pcm.samples(), &mut ulaw);
    ulaw
}

/// Mean power in dBFS.
pub fn level_db(samples: &[i16]) -> f64 {
    let power =
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    10.0 * (power / f64::from(i16::MAX).powi(2)).log10()
}

/// The share of 250 ms windows above -45 dBFS: speech has pauses, silence has none of this.
pub fn speech_share(samples: &[i16]) -> f64 {
    let windows: Vec<&[i16]> = samples.chunks(2000).filter(|w| w.len() == 2000).collect();
    let loud = windows.iter().filter(|w| level_db(w) > -45.0).count();
    loud as f64 / windows.len().max(1) as f64
}

/// The power of one frequency relative to the whole signal, in dB (a Goertzel bin).
pub fn tone_share_db(samples: &[i16], hz: f64) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let bin = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    let tone = 2.0 * bin / (n * n);
    let total = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / n;
    10.0 * (tone / total.max(1e-9)).log10()
}

/// A sine at `hz`, `ms` long, at about -20 dBFS.
pub fn sine(hz: f64, ms: u32) -> Vec<i16> {
    (0..ms as usize * 8)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * hz / 8000.0).sin() * 3300.0) as i16)
        .collect()
}

/// The customer's audio, built on a timeline: silence, tones, keys at given instants.
#[derive(Default)]
pub struct Script {
    pub samples: Vec<i16>,
}

/// 80 ms keys with 80 ms between them, as a caller types.
pub const KEYING: Keying = Keying { on_ms: 80.0, off_ms: 80.0, level_dbm0: -10.0, twist_db: 0.0 };

impl Script {
    pub fn ms(&self) -> u32 {
        (self.samples.len() / 8) as u32
    }

    /// Silence up to `at_ms` into the call.
    pub fn until(&mut self, at_ms: u32) -> &mut Self {
        let n = at_ms as usize * 8;
        if self.samples.len() < n {
            self.samples.resize(n, 0);
        }
        self
    }

    /// Keys `keys` now; returns when the last one ends (ms).
    pub fn keys(&mut self, keys: &str) -> u32 {
        let tones = key_string(keys, &KEYING).expect("keys");
        self.samples.extend_from_slice(&tones);
        self.ms()
    }

    pub fn audio(&mut self, samples: &[i16]) -> u32 {
        self.samples.extend_from_slice(samples);
        self.ms()
    }

    /// Writes the raw µ-law file SIPp's rtp_stream plays, padded to whole 20 ms packets.
    pub fn write(&mut self, path: &std::path::Path) {
        self.samples.resize(self.samples.len().div_ceil(160) * 160 + 1600, 0);
        let mut ulaw = vec![0u8; self.samples.len()];
        Law::Ulaw.encode_slice(&self.samples, &mut ulaw);
        std::fs::write(path, ulaw).expect("customer keys file");
    }
}

/// How long an utterance of the built-in set plays, in ms.
pub fn ms_of(prompts: &PromptSet, utterance: &Utterance) -> u32 {
    prompts.duration(utterance).as_millis() as u32
}

/// RFC 2833 keys in a pcap for SIPp's `play_pcap_audio`: one stream (one SSRC, sequence
/// numbers and timestamps moving forward), each key 80 ms of events (start with the marker,
/// an update every 20 ms, three end packets), at the times given.
#[derive(Default)]
pub struct EventPcap {
    /// (ms into the file, packet).
    packets: Vec<(u32, Vec<u8>)>,
    seq: u16,
    at_ms: u32,
}

impl EventPcap {
    pub fn until(&mut self, at_ms: u32) -> &mut Self {
        self.at_ms = self.at_ms.max(at_ms);
        self
    }

    /// Keys `keys` now, one every `every_ms`; returns when the last one ends (ms).
    pub fn keys(&mut self, keys: &str, every_ms: u32) -> u32 {
        if self.packets.is_empty() {
            // SIPp plays the first packet at once and the rest relative to it: a packet of
            // silence at 0 ms keeps the keys at their times.
            let mut rtp = vec![0x80, 0];
            rtp.extend_from_slice(&self.seq.to_be_bytes());
            rtp.extend_from_slice(&0u32.to_be_bytes());
            rtp.extend_from_slice(&0x2833_0001u32.to_be_bytes());
            rtp.extend_from_slice(&[0xff; 160]);
            self.seq = self.seq.wrapping_add(1);
            self.packets.push((0, rtp));
        }
        for c in keys.chars() {
            let event = match c {
                '0'..='9' => c as u8 - b'0',
                '*' => 10,
                '#' => 11,
                _ => panic!("not a key: {c}"),
            };
            let start = self.at_ms;
            // The event's timestamp: its start on an 8 kHz clock.
            let timestamp = start * 8;
            for i in 0..7u32 {
                let end = i >= 4;
                let duration = (i.min(4) * 160 + 160) as u16;
                let mut rtp = vec![0x80, 101 | if i == 0 { 0x80 } else { 0 }];
                rtp.extend_from_slice(&self.seq.to_be_bytes());
                rtp.extend_from_slice(&timestamp.to_be_bytes());
                rtp.extend_from_slice(&0x2833_0001u32.to_be_bytes());
                rtp.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
                rtp.extend_from_slice(&duration.to_be_bytes());
                self.seq = self.seq.wrapping_add(1);
                self.packets.push((start + i.min(4) * 20, rtp));
            }
            self.at_ms = start + every_ms;
        }
        self.at_ms
    }

    /// Writes the pcap (Ethernet, IPv4, UDP; SIPp rewrites the addresses and ports).
    pub fn write(&self, path: &std::path::Path) {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (ms, rtp) in &self.packets {
            let udp_len = 8 + rtp.len();
            let ip_len = 20 + udp_len;
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&[0x08, 0x00]);
            frame.extend_from_slice(&[
                0x45,
                0,
                (ip_len >> 8) as u8,
                ip_len as u8,
                0,
                0,
                0x40,
                0,
                64,
                17,
                0,
                0,
            ]);
            frame.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
            frame.extend_from_slice(&[
                0x17,
                0x70,
                0x17,
                0x72,
                (udp_len >> 8) as u8,
                udp_len as u8,
                0,
                0,
            ]);
            frame.extend_from_slice(rtp);
            out.extend_from_slice(&(1_700_000_000 + ms / 1000).to_le_bytes());
            out.extend_from_slice(&((ms % 1000) * 1000).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        }
        std::fs::write(path, out).expect("pcap");
    }
}
