//! DTMF throughput: ivrpay's detector and masker against spandsp's `dtmf_rx`, on the same
//! audio, in 20 ms frames, on one core.
//!
//! Two minutes of audio, through µ-law:
//! - *keyed*: digits keyed without a break (100 ms on, 100 ms off, −10 dBm0) over low noise,
//!   the worst case for ivrpay (tones half the time, so the masker replaces half the audio);
//! - *call*: a contact-centre minute, real speech (Debian's asterisk-core-sounds-en-wav, from
//!   `IVRPAY_TALKOFF_CORPUS`, which the test script prepares) with a card number, expiry and
//!   security code keyed in the middle.
//!
//! Criterion times each receiver per minute of audio; the summary then runs them back to
//! back in 200 rounds and prints frames per second, the ratio to spandsp and the digits each
//! decoded (equal accuracy is part of the claim).
//!
//! `cargo bench -p ivrpay-benches --bench dtmf`

mod spandsp;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Detector, DetectorEvent, Keying, Masker, MaskerConfig, key_string};
use spandsp::SpandspRx;

const FRAME: usize = 160;
const MINUTE: usize = 60 * 8000;
const KEYS: &str = "4242424242424242123*0#5551234987654321ABCD";
/// Card number, expiry, security code.
const CARD: &str = "4242424242424242#1228#123#";

/// A minute of audio and the digits keyed in it.
struct Scenario {
    name: &'static str,
    audio: Vec<i16>,
    keyed: String,
}

/// Digits keyed back to back over −60 dBm0 noise.
fn keyed_line() -> Scenario {
    let keyed: String = KEYS.chars().cycle().take(299).collect();
    let mut audio = key_string(&keyed, &Keying::default()).expect("valid keys");
    let mut seed = 0x1234_5678u32;
    for s in audio.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *s = s.saturating_add((seed % 41) as i16 - 20);
    }
    audio.resize(MINUTE, 0);
    Law::Ulaw.round_trip_in_place(&mut audio);
    Scenario { name: "keyed", audio, keyed }
}

/// Speech, a card entry, more speech.
fn call(corpus: &str) -> Result<Scenario, String> {
    let path = std::path::Path::new(corpus).join("speech-en.wav");
    let speech = ivrpay_audio::wav::read_path(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .samples;
    let keys = key_string(CARD, &Keying::default()).expect("valid keys");
    let before = 20 * 8000;
    let mut audio: Vec<i16> = speech.iter().copied().take(before).collect();
    audio.extend_from_slice(&keys);
    audio.extend(speech.iter().copied().skip(before).take(MINUTE - audio.len()));
    audio.resize(MINUTE, 0);
    Law::Ulaw.round_trip_in_place(&mut audio);
    Ok(Scenario { name: "call", audio, keyed: CARD.to_string() })
}

fn run_detector(audio: &[i16]) -> usize {
    let mut detector = Detector::default();
    let mut digits = 0;
    for frame in audio.chunks(FRAME) {
        detector.process(black_box(frame));
        while let Some(e) = detector.poll_event() {
            digits += usize::from(matches!(e, DetectorEvent::Ended(_)));
        }
    }
    digits
}

fn run_masker(audio: &[i16]) -> usize {
    let mut masker = Masker::new(MaskerConfig::default());
    let mut out = [0i16; FRAME];
    let mut events = 0;
    for frame in audio.chunks(FRAME) {
        masker.process(black_box(frame), &mut out[..frame.len()]);
        black_box(&out);
        while masker.poll_event().is_some() {
            events += 1;
        }
    }
    events
}

fn run_spandsp(audio: &[i16]) -> usize {
    let mut rx = SpandspRx::load().expect("spandsp");
    let mut digits = 0;
    for frame in audio.chunks(FRAME) {
        rx.process(black_box(frame));
        digits += rx.take_digits().len();
    }
    digits
}

fn decoded(audio: &[i16]) -> (String, String) {
    let mut detector = Detector::default();
    let mut ours = String::new();
    let mut rx = SpandspRx::load().expect("spandsp");
    let mut theirs = String::new();
    for frame in audio.chunks(FRAME) {
        detector.process(frame);
        while let Some(e) = detector.poll_event() {
            if let DetectorEvent::Ended(t) = e {
                ours.push(t.digit.as_char());
            }
        }
        rx.process(frame);
        theirs.push_str(&rx.take_digits());
    }
    detector.finish();
    while let Some(e) = detector.poll_event() {
        if let DetectorEvent::Ended(t) = e {
            ours.push(t.digit.as_char());
        }
    }
    (ours, theirs)
}

/// Frames per second of one run of `f` over `audio`.
#[allow(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
fn frames_per_second(audio: &[i16], f: fn(&[i16]) -> usize) -> f64 {
    let start = Instant::now();
    black_box(f(audio));
    audio.len().div_ceil(FRAME) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Err(e) = SpandspRx::load() {
        eprintln!("{e}: the comparison needs spandsp (scripts/test.sh installs it)");
        std::process::exit(1);
    }
    let mut scenarios = vec![keyed_line()];
    match std::env::var("IVRPAY_TALKOFF_CORPUS") {
        Ok(dir) => match call(&dir) {
            Ok(call) => scenarios.push(call),
            Err(e) => {
                eprintln!("cannot build the call scenario: {e}");
                std::process::exit(1);
            }
        },
        Err(_) => eprintln!(
            "IVRPAY_TALKOFF_CORPUS is not set: measuring the keyed scenario only \
             (test-audio/prepare-talkoff.sh makes the speech for the call scenario)"
        ),
    }
    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(5));
    for scenario in &scenarios {
        let audio = &scenario.audio;
        let mut group =
            c.benchmark_group(format!("dtmf/{}: one minute in 20 ms frames", scenario.name));
        group.throughput(Throughput::Elements(audio.len().div_ceil(FRAME) as u64));
        group.bench_function("ivrpay detector", |b| b.iter(|| run_detector(audio)));
        group.bench_function("ivrpay masker", |b| b.iter(|| run_masker(audio)));
        group.bench_function("spandsp dtmf_rx", |b| b.iter(|| run_spandsp(audio)));
        group.finish();
    }
    for scenario in &scenarios {
        side_by_side(scenario);
    }
}

/// Runs the three back to back in each round; the ratios are taken within the round, so a
/// noisy neighbour slows all three alike.
fn side_by_side(scenario: &Scenario) {
    const ROUNDS: usize = 200;
    let audio = &scenario.audio;
    let (mut det, mut mask, mut span) = (Vec::new(), Vec::new(), Vec::new());
    let (mut det_ratio, mut mask_ratio) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let s = frames_per_second(audio, run_spandsp);
        let d = frames_per_second(audio, run_detector);
        let m = frames_per_second(audio, run_masker);
        det_ratio.push(d / s);
        mask_ratio.push(m / s);
        span.push(s);
        det.push(d);
        mask.push(m);
    }
    let (det, mask, span) = (median(det), median(mask), median(span));
    let (det_ratio, mask_ratio) = (median(det_ratio), median(mask_ratio));
    let (ours, theirs) = decoded(audio);
    println!(
        "\nDTMF throughput, {} audio: one core, 20 ms frames, 1 min of audio, median of {ROUNDS} rounds",
        scenario.name
    );
    println!("  spandsp dtmf_rx   {span:>12.0} frames/s  (1.00x)");
    println!("  ivrpay detector   {det:>12.0} frames/s  ({det_ratio:.2}x)");
    println!(
        "  ivrpay masker     {mask:>12.0} frames/s  ({mask_ratio:.2}x)  detector + lookahead + replacement"
    );
    println!(
        "  keyed {} digits: ivrpay decoded them exactly: {}; spandsp decoded them exactly: {}",
        scenario.keyed.len(),
        ours == scenario.keyed,
        theirs == scenario.keyed
    );
}
