//! rtp-load: N concurrent calls through an RTP relay, both directions at 50 packets/s, with
//! the customer's audio (real speech with DTMF keys) masked by the relay. Measures the relay
//! process's CPU, packet loss, and the latency it adds beyond its lookahead.
//!
//! usage: rtp-load --target ivrpay --ports-file FILE | --target rtpengine [--ng IP:PORT]
//!                 --calls N --pid RELAY_PID [--seconds S] [--warmup S]
//!                 [--customer-port P] [--agent-port Q] [--label TEXT]
//!
//! The customer side (one socket for every call's customer) and the agent side (one socket
//! for every agent) bind 127.0.0.1:P and :Q. For ivrpay, FILE holds the relay's ports (see
//! `media-relay`); for rtpengine the calls are set up over ng (offer, answer, `block DTMF`
//! with `DTMF-security=silence`, `delay-buffer=40`, `detect DTMF`) and deleted afterwards.
//!
//! Latency is measured from kernel timestamps: the send time taken just before `sendto`, the
//! receive time stamped by the kernel (SO_TIMESTAMPNS), so the generator's own scheduling
//! never counts. The receivers poll every 250 µs instead of blocking, so that the relay's
//! sends never pay for waking them. *Added latency beyond the lookahead* is the time from the instant the relay
//! may release a customer packet to the moment it arrives at the agent: for ivrpay, whose
//! 20 ms lookahead is one packet, the arrival of the next customer packet; for rtpengine, 40 ms
//! after the packet's own arrival (its delay buffer). The agent → customer direction has no
//! lookahead. Prints one JSON line.

mod ng;
mod sys;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Digit, ToneSpec, to_i16};

const PERIOD_NS: u64 = 20_000_000;
const SAMPLES: usize = 160;
/// Send times kept per call and direction.
const RING: usize = 64;
/// Histogram resolution 1 µs, range 0-200 ms.
const HIST: usize = 200_000;
/// How often the receivers look for datagrams.
const POLL: Duration = Duration::from_micros(250);
/// Datagrams per `sendmmsg`.
const BATCH: usize = 32;
const UP: usize = 0;
const DOWN: usize = 1;

enum Target {
    Ivrpay { ports_file: String },
    Rtpengine { ng: SocketAddr },
}

struct Args {
    target: Target,
    calls: usize,
    pid: u32,
    seconds: u64,
    warmup: u64,
    customer_port: u16,
    agent_port: u16,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut target, mut ports_file, mut ng) = (None, None, "127.0.0.1:22222".to_string());
    let (mut calls, mut pid) = (None, None);
    let (mut seconds, mut warmup) = (10, 3);
    let (mut customer_port, mut agent_port) = (45_000, 45_002);
    let mut label = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--target" => target = Some(value()?),
            "--ports-file" => ports_file = Some(value()?),
            "--ng" => ng = value()?,
            "--calls" => calls = Some(num(value()?)? as usize),
            "--pid" => pid = Some(num(value()?)? as u32),
            "--seconds" => seconds = num(value()?)?,
            "--warmup" => warmup = num(value()?)?,
            "--customer-port" => customer_port = num(value()?)? as u16,
            "--agent-port" => agent_port = num(value()?)? as u16,
            "--label" => label = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let target = match target.as_deref() {
        Some("ivrpay") => {
            Target::Ivrpay { ports_file: ports_file.ok_or("--ports-file is required")? }
        }
        Some("rtpengine") => {
            Target::Rtpengine { ng: ng.parse().map_err(|e| format!("--ng: {e}"))? }
        }
        _ => return Err("--target ivrpay|rtpengine".into()),
    };
    let label = label.unwrap_or_else(|| match target {
        Target::Ivrpay { .. } => "ivrpay".into(),
        Target::Rtpengine { .. } => "rtpengine".into(),
    });
    Ok(Args {
        target,
        calls: calls.ok_or("--calls is required")?,
        pid: pid.ok_or("--pid is required")?,
        seconds,
        warmup,
        customer_port,
        agent_port,
        label,
    })
}

/// Where each call's packets go: the relay's customer-side and agent-side RTP ports.
struct Calls {
    to_customer_side: Vec<u16>,
    to_agent_side: Vec<u16>,
    rtpengine_ids: Vec<String>,
}

fn set_up(args: &Args) -> Result<Calls, String> {
    match &args.target {
        Target::Ivrpay { ports_file } => {
            let text =
                std::fs::read_to_string(ports_file).map_err(|e| format!("{ports_file}: {e}"))?;
            let mut calls = Calls {
                to_customer_side: Vec::new(),
                to_agent_side: Vec::new(),
                rtpengine_ids: Vec::new(),
            };
            for line in text.lines().take(args.calls) {
                let (c, a) = line.split_once(' ').ok_or("bad ports line")?;
                calls.to_customer_side.push(c.parse().map_err(|e| format!("{e}"))?);
                calls.to_agent_side.push(a.parse().map_err(|e| format!("{e}"))?);
            }
            if calls.to_customer_side.len() != args.calls {
                return Err(format!("{ports_file} has fewer than {} calls", args.calls));
            }
            Ok(calls)
        }
        Target::Rtpengine { ng } => {
            let mut client = ng::Ng::new(*ng).map_err(|e| e.to_string())?;
            let mut calls = Calls {
                to_customer_side: Vec::new(),
                to_agent_side: Vec::new(),
                rtpengine_ids: Vec::new(),
            };
            for i in 0..args.calls {
                let id = format!("load-{}-{i}", std::process::id());
                let (c, a) = client.masked_call(&id, args.customer_port, args.agent_port)?;
                calls.to_customer_side.push(c);
                calls.to_agent_side.push(a);
                calls.rtpengine_ids.push(id);
            }
            Ok(calls)
        }
    }
}

/// The audio: ten seconds of real speech for each side, the customer's with a DTMF key
/// every 2.5 s, as µ-law packets.
/// Payloads, one per 20 ms packet.
type Packets = Vec<Vec<u8>>;

/// The key packets of the customer's audio.
fn key_packets(len: usize) -> Vec<bool> {
    (0..len)
        .map(|i| KEY_AT.iter().any(|&at| (at / SAMPLES..(at + KEY_LEN) / SAMPLES).contains(&i)))
        .collect()
}

/// Where the customer's keys are, in samples, and how long they last.
const KEY_AT: [usize; 4] = [8000, 28_000, 48_000, 68_000];
const KEY_LEN: usize = 800;

fn audio() -> Result<(Packets, Packets), String> {
    let dir = std::env::var("IVRPAY_TALKOFF_CORPUS").map_err(|_| {
        "IVRPAY_TALKOFF_CORPUS is not set: run test-audio/prepare-talkoff.sh (the bench script does)".to_string()
    })?;
    let path = std::path::Path::new(&dir).join("speech-en.wav");
    let speech = ivrpay_audio::wav::read_path(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .samples;
    let len = 10 * 8000;
    let mut customer: Vec<i16> = speech[8000 * 30..8000 * 30 + len].to_vec();
    for (at, key) in KEY_AT.into_iter().zip("4731".chars()) {
        let digit = Digit::from_char(key).ok_or("key")?;
        let mut tone = vec![0.0f32; KEY_LEN];
        ToneSpec::new(digit, KEY_LEN).add_to(&mut tone);
        customer[at - 480..at + KEY_LEN + 480].fill(0);
        customer[at..at + KEY_LEN].copy_from_slice(&to_i16(&tone));
    }
    let agent = &speech[8000 * 120..8000 * 120 + len];
    let packets = |x: &[i16]| {
        x.chunks(SAMPLES)
            .map(|c| {
                let mut v = vec![0u8; SAMPLES];
                Law::Ulaw.encode_slice(c, &mut v);
                v
            })
            .collect::<Vec<_>>()
    };
    Ok((packets(&customer), packets(agent)))
}

/// Send times, per call, direction and packet (a ring of the last `RING`).
struct SendTimes(Vec<AtomicU64>);

impl SendTimes {
    fn slot(&self, call: usize, dir: usize, k: u64) -> &AtomicU64 {
        &self.0[(call * 2 + dir) * RING + (k as usize % RING)]
    }
}

fn ts0(call: usize) -> u32 {
    (call as u32).wrapping_mul(7919 * 160)
}

/// What one receiving socket measured.
struct Measured {
    received: u64,
    /// Packets that carried a DTMF key's audio, and those that arrived unchanged (unmasked).
    key_packets: u64,
    keys_unmasked: u64,
    added: Vec<u32>,
    total: Vec<u32>,
    early: u64,
    foreign: u64,
}

fn percentile(hist: &[u32], q: f64) -> u64 {
    let n: u64 = hist.iter().map(|&c| u64::from(c)).sum();
    if n == 0 {
        return 0;
    }
    let rank = ((q * n as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, &c) in hist.iter().enumerate() {
        seen += u64::from(c);
        if seen >= rank {
            return i as u64;
        }
    }
    hist.len() as u64
}

struct Receiver {
    socket: UdpSocket,
    dir: usize,
    /// Relay source port → call index + 1.
    by_port: Vec<u32>,
    times: Arc<SendTimes>,
    stop: Arc<AtomicBool>,
    /// Packets with index in `window` are measured.
    window: std::ops::Range<u64>,
    /// Release instant of packet k: send time of packet k + `trigger`, plus `delay_ns`.
    trigger: u64,
    delay_ns: u64,
    /// What was sent, to tell masked key packets from unmasked ones (uplink only).
    sent_audio: Option<(Arc<Packets>, Vec<bool>)>,
}

impl Receiver {
    fn run(self) -> Measured {
        let mut m = Measured {
            received: 0,
            key_packets: 0,
            keys_unmasked: 0,
            added: vec![0; HIST],
            total: vec![0; HIST],
            early: 0,
            foreign: 0,
        };
        let mut batch = sys::Batch::new(64);
        while !self.stop.load(Ordering::Relaxed) {
            // Poll rather than block: a blocked reader would make every packet the relay
            // sends wake a thread, and that cost would be charged to the relay's CPU. The
            // kernel's receive timestamps keep the latency exact.
            let Ok(n) = self.batch_recv(&mut batch) else {
                std::thread::sleep(POLL);
                continue;
            };
            for i in 0..n {
                let d = batch.get(i);
                let call = self.by_port[usize::from(d.from_port)];
                if call == 0 || d.data.len() < 12 {
                    m.foreign += 1;
                    continue;
                }
                let call = call as usize - 1;
                let ts = u32::from_be_bytes([d.data[4], d.data[5], d.data[6], d.data[7]]);
                let k = u64::from(ts.wrapping_sub(ts0(call)) / SAMPLES as u32);
                if !self.window.contains(&k) {
                    continue;
                }
                m.received += 1;
                if let Some((audio, is_key)) = &self.sent_audio {
                    let index = (k as usize + call * 37) % audio.len();
                    if is_key[index] {
                        m.key_packets += 1;
                        m.keys_unmasked += u64::from(d.data[12..] == audio[index][..]);
                    }
                }
                let sent = self.times.slot(call, self.dir, k).load(Ordering::Relaxed);
                let trigger =
                    self.times.slot(call, self.dir, k + self.trigger).load(Ordering::Relaxed);
                let release = trigger + self.delay_ns;
                let us = |ns: u64| ((ns / 1000) as usize).min(HIST - 1);
                if d.rx_ns >= release {
                    m.added[us(d.rx_ns - release)] += 1;
                } else {
                    m.early += 1;
                    m.added[0] += 1;
                }
                m.total[us(d.rx_ns.saturating_sub(sent))] += 1;
            }
        }
        m
    }

    fn batch_recv(&self, batch: &mut sys::Batch) -> std::io::Result<usize> {
        batch.recv(&self.socket)
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rtp-load: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("rtp-load: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let (up_audio, down_audio) = audio()?;
    let up_audio = Arc::new(up_audio);
    let is_key = key_packets(up_audio.len());
    let bind = |port: u16| -> Result<UdpSocket, String> {
        let s = UdpSocket::bind(("127.0.0.1", port)).map_err(|e| format!("bind {port}: {e}"))?;
        sys::prepare(&s, 32 << 20).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
        Ok(s)
    };
    let customer = bind(args.customer_port)?;
    let agent = bind(args.agent_port)?;
    let calls = set_up(args)?;
    let n = args.calls;
    let times = Arc::new(SendTimes((0..n * 2 * RING).map(|_| AtomicU64::new(0)).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let k0 = args.warmup * 50;
    let k1 = k0 + args.seconds * 50;
    let (trigger, delay_ns) = match args.target {
        Target::Ivrpay { .. } => (1, 0),
        Target::Rtpengine { .. } => (0, 40_000_000),
    };
    // The agent hears the customer (uplink) from the relay's agent-side port, and the
    // customer hears the agent (downlink) from its customer-side port.
    let mut by_agent_side = vec![0u32; 65_536];
    let mut by_customer_side = vec![0u32; 65_536];
    for i in 0..n {
        by_agent_side[usize::from(calls.to_agent_side[i])] = i as u32 + 1;
        by_customer_side[usize::from(calls.to_customer_side[i])] = i as u32 + 1;
    }
    let receivers = [
        Receiver {
            socket: agent.try_clone().map_err(|e| e.to_string())?,
            dir: UP,
            by_port: by_agent_side,
            times: Arc::clone(&times),
            stop: Arc::clone(&stop),
            window: k0..k1,
            trigger,
            delay_ns,
            sent_audio: Some((Arc::clone(&up_audio), is_key)),
        },
        Receiver {
            socket: customer.try_clone().map_err(|e| e.to_string())?,
            dir: DOWN,
            by_port: by_customer_side,
            times: Arc::clone(&times),
            stop: Arc::clone(&stop),
            window: k0..k1,
            trigger: 0,
            delay_ns: 0,
            sent_audio: None,
        },
    ];
    let threads: Vec<_> =
        receivers.into_iter().map(|r| std::thread::spawn(move || r.run())).collect();

    // Every call sends one packet each way every 20 ms; calls are spread evenly over the
    // period. One extra tick at the end releases the last measured packet of a relay with a
    // one-packet lookahead.
    let start = sys::realtime_ns() + 200_000_000;
    let (mut cpu_start, mut own_start, mut wall_start) = (Duration::ZERO, Duration::ZERO, 0);
    let mut machine = Duration::ZERO;
    let mut lag = vec![0u32; 100_001];
    // Packets go out in batches (one `sendmmsg` per socket for whatever is due); each
    // packet's send time is interpolated across its batch's system call.
    let mut batches = [sys::SendBatch::new(BATCH), sys::SendBatch::new(BATCH)];
    let mut pending: [Vec<(usize, u64)>; 2] =
        [Vec::with_capacity(BATCH), Vec::with_capacity(BATCH)];
    let flush = |batches: &mut [sys::SendBatch; 2], pending: &mut [Vec<(usize, u64)>; 2]| {
        for (dir, socket) in [(UP, &customer), (DOWN, &agent)] {
            let n = batches[dir].len();
            if n == 0 {
                continue;
            }
            let before = sys::realtime_ns();
            // A provisional time first: the relay may answer before the call returns.
            for &(call, k) in &pending[dir] {
                times.slot(call, dir, k).store(before, Ordering::Relaxed);
            }
            batches[dir].send(socket);
            let after = sys::realtime_ns();
            for (j, &(call, k)) in pending[dir].iter().enumerate() {
                let at = before + (after - before) * (j as u64 + 1) / n as u64;
                times.slot(call, dir, k).store(at, Ordering::Relaxed);
            }
            pending[dir].clear();
        }
    };
    for k in 0..k1 + 3 {
        if k == k0 {
            cpu_start =
                sys::process_cpu(args.pid).map_err(|e| format!("relay pid {}: {e}", args.pid))?;
            own_start = sys::own_cpu();
            wall_start = sys::realtime_ns();
            machine = sys::machine_busy().map_err(|e| e.to_string())?;
        }
        if k == k1 {
            let (cpu, own, wall) = (
                sys::process_cpu(args.pid).map_err(|e| e.to_string())?,
                sys::own_cpu(),
                sys::realtime_ns(),
            );
            cpu_start = cpu - cpu_start;
            own_start = own - own_start;
            wall_start = wall - wall_start;
            machine = sys::machine_busy().map_err(|e| e.to_string())? - machine;
        }
        for i in 0..n {
            let due = start + k * PERIOD_NS + i as u64 * PERIOD_NS / n as u64;
            let now = sys::realtime_ns();
            if due > now + 100_000 {
                flush(&mut batches, &mut pending);
                let now = sys::realtime_ns();
                if due > now {
                    std::thread::sleep(Duration::from_nanos(due - now));
                }
            } else if now > due {
                lag[((now - due) / 1000).min(100_000) as usize] += 1;
            }
            let ts = ts0(i).wrapping_add(k as u32 * SAMPLES as u32);
            let seq = (k as u16).wrapping_add(i as u16);
            for (dir, port, audio, ssrc) in [
                (UP, calls.to_customer_side[i], &*up_audio, 0x1000_0000 + i as u32),
                (DOWN, calls.to_agent_side[i], &down_audio, 0x2000_0000 + i as u32),
            ] {
                batches[dir].push(port, |out| {
                    out[0] = 0x80;
                    out[1] = 0;
                    out[2..4].copy_from_slice(&seq.to_be_bytes());
                    out[4..8].copy_from_slice(&ts.to_be_bytes());
                    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    out[12..12 + SAMPLES]
                        .copy_from_slice(&audio[(k as usize + i * 37) % audio.len()]);
                    12 + SAMPLES
                });
                pending[dir].push((i, k));
                if batches[dir].is_full() {
                    flush(&mut batches, &mut pending);
                }
            }
        }
    }
    flush(&mut batches, &mut pending);
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let measured: Vec<Measured> =
        threads.into_iter().map(|t| t.join().expect("receiver")).collect();
    if let Target::Rtpengine { ng } = &args.target {
        let mut client = ng::Ng::new(*ng).map_err(|e| e.to_string())?;
        for id in &calls.rtpengine_ids {
            let _ = client.delete(id);
        }
    }

    let wall = wall_start as f64 / 1e9;
    let relay_cpu = cpu_start.as_secs_f64();
    let streams = 2 * n;
    let expected = (k1 - k0) * n as u64;
    let dir_json = |m: &Measured| {
        format!(
            "{{\"expected\":{expected},\"received\":{},\"lost\":{},\"added_us\":{{\"p50\":{},\"p99\":{},\
             \"p999\":{},\"max\":{}}},\"one_way_us\":{{\"p50\":{},\"p99\":{}}},\"key_packets\":{},\"keys_unmasked\":{},\
             \"early\":{},\"foreign\":{}}}",
            m.received,
            expected.saturating_sub(m.received),
            percentile(&m.added, 0.5),
            percentile(&m.added, 0.99),
            percentile(&m.added, 0.999),
            percentile(&m.added, 1.0),
            percentile(&m.total, 0.5),
            percentile(&m.total, 0.99),
            m.key_packets,
            m.keys_unmasked,
            m.early,
            m.foreign,
        )
    };
    println!(
        "{{\"label\":\"{}\",\"calls\":{n},\"streams\":{streams},\"seconds\":{wall:.2},\
         \"relay_cpu_pct\":{:.2},\"cpu_per_stream_pct\":{:.5},\"loadgen_cpu_pct\":{:.2},\"others_cpu_pct\":{:.1},\
         \"sender_lag_us\":{{\"p99\":{},\"max\":{}}},\"uplink\":{},\"downlink\":{}}}",
        args.label,
        100.0 * relay_cpu / wall,
        100.0 * relay_cpu / wall / streams as f64,
        100.0 * own_start.as_secs_f64() / wall,
        100.0 * (machine.as_secs_f64() - relay_cpu - own_start.as_secs_f64()).max(0.0) / wall,
        percentile(&lag, 0.99),
        percentile(&lag, 1.0),
        dir_json(&measured[0]),
        dir_json(&measured[1]),
    );
    Ok(())
}
