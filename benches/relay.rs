//! The relay's per-packet work without sockets: what one 20 ms packet costs the `Session` in
//! each direction, against a plain forwarding baseline measured in the same run (parse the
//! RTP header, write a rewritten one, copy the payload: what any relay does per packet).
//!
//! - *downlink*: agent → customer passthrough through the session;
//! - *uplink*: customer → agent: decode, DTMF detection, lookahead, masking, encode, with
//!   real speech (`IVRPAY_TALKOFF_CORPUS`, prepared by the test script) and a key every 2 s.
//!
//! `IVRPAY_TALKOFF_CORPUS=target/test-support/talkoff cargo bench -p ivrpay-benches --bench relay`
//!
//! The sockets cost more than any of this (see `media-load.sh`): these figures are the part
//! the relay's own code adds.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Digit, ToneSpec, to_i16};
use ivrpay_media::rtp::{HEADER_LEN, Header, RtpPacket};
use ivrpay_media::{Codec, Leg, MediaProfile, PayloadTypes, RemoteMedia, Session, SocketKind};

const PACKETS: usize = 3000; // one minute

fn packets(pcm: &[i16], ssrc: u32) -> Vec<Vec<u8>> {
    pcm.chunks(160)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = vec![0u8; HEADER_LEN + chunk.len()];
            let h = Header {
                marker: i == 0,
                payload_type: 0,
                sequence: i as u16,
                timestamp: (i * 160) as u32,
                ssrc,
            };
            h.write(&mut p);
            Law::Ulaw.encode_slice(chunk, &mut p[HEADER_LEN..]);
            p
        })
        .collect()
}

fn speech() -> Result<Vec<i16>, String> {
    let dir = std::env::var("IVRPAY_TALKOFF_CORPUS")
        .map_err(|_| "IVRPAY_TALKOFF_CORPUS is not set (scripts/test.sh prepares the corpus)")?;
    let path = std::path::Path::new(&dir).join("speech-en.wav");
    let wav =
        ivrpay_audio::wav::read_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(wav.samples[8000 * 60..8000 * 60 + PACKETS * 160].to_vec())
}

/// The baseline: what a relay does with a packet at the least.
fn forward(packet: &[u8], out: &mut [u8], seq_offset: u16) -> usize {
    let Ok(p) = RtpPacket::parse(packet) else { return 0 };
    let h = Header {
        marker: p.marker,
        payload_type: p.payload_type,
        sequence: p.sequence.wrapping_add(seq_offset),
        timestamp: p.timestamp,
        ssrc: p.ssrc,
    };
    h.write(out);
    out[HEADER_LEN..HEADER_LEN + p.payload.len()].copy_from_slice(p.payload);
    HEADER_LEN + p.payload.len()
}

/// Runs a minute of packets through a fresh session; returns the bytes it sent.
fn run_session(leg: Leg, packets: &[Vec<u8>], t0: Instant) -> usize {
    let customer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
    let agent: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
    let mut s = Session::new(MediaProfile::default(), 1).expect("session");
    let types = PayloadTypes::only(Codec::Pcmu).with_telephone_event(101);
    s.set_remote(Leg::Customer, RemoteMedia::new(customer, types)).expect("sdp");
    s.set_remote(Leg::Agent, RemoteMedia::new(agent, types)).expect("sdp");
    let from = if leg == Leg::Customer { customer } else { agent };
    let mut sent = 0;
    for (i, p) in packets.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        s.handle_datagram(now, leg, SocketKind::Rtp, from, p);
        while let Some(t) = s.poll_transmit() {
            sent += t.payload.len();
        }
        while s.poll_event().is_some() {}
    }
    sent
}

fn main() {
    let mut pcm = match speech() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("relay bench: {e}");
            std::process::exit(1);
        }
    };
    // A key every two seconds, in a pause.
    for (n, at) in (8000..pcm.len() - 8000).step_by(16_000).enumerate() {
        let digit = Digit::ALL[n % 16];
        let mut tone = vec![0.0f32; 800];
        ToneSpec::new(digit, 800).add_to(&mut tone);
        pcm[at - 480..at + 1280].fill(0);
        pcm[at..at + 800].copy_from_slice(&to_i16(&tone));
    }
    let up = packets(&pcm, 7);
    let down = packets(&pcm, 9);
    #[allow(clippy::disallowed_methods, reason = "the simulated clock needs an origin")]
    let t0 = Instant::now();

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(PACKETS as u64));
    let mut out = vec![0u8; 2048];
    group.bench_function("baseline forward", |b| {
        b.iter(|| up.iter().map(|p| forward(black_box(p), &mut out, 3)).sum::<usize>())
    });
    group.bench_function("session downlink", |b| b.iter(|| run_session(Leg::Agent, &down, t0)));
    group.bench_function("session uplink (masked)", |b| {
        b.iter(|| run_session(Leg::Customer, &up, t0))
    });
    group.finish();
    c.final_summary();

    // Back to back, for the ratios.
    #[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
    let time = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        let mut sink = 0;
        for _ in 0..20 {
            sink += f();
        }
        black_box(sink);
        start.elapsed().as_nanos() as f64 / (20 * PACKETS) as f64
    };
    let (base, downlink, uplink) = (
        time(&mut || up.iter().map(|p| forward(p, &mut out, 3)).sum()),
        time(&mut || run_session(Leg::Agent, &down, t0)),
        time(&mut || run_session(Leg::Customer, &up, t0)),
    );
    println!("per 20 ms packet, one core:");
    println!("  baseline forward         {base:>9.0} ns  (1.00x)");
    println!("  session downlink         {downlink:>9.0} ns  ({:.1}x)", downlink / base);
    println!("  session uplink (masked)  {uplink:>9.0} ns  ({:.1}x)", uplink / base);
}
