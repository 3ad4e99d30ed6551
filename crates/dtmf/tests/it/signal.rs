//! Test signals: seeded randomness, noise, the G.711 path, and running the detector.

use ivrpay_audio::g711::Law;
use ivrpay_dtmf::{Detector, DetectorEvent, Digit, Tone, ToneSpec, level};

pub use ivrpay_testkit::Rng;

/// A tone with random start phases.
pub fn tone(rng: &mut Rng, digit: Digit, ms: f32) -> ToneSpec {
    ToneSpec {
        low_phase: rng.phase(),
        high_phase: rng.phase(),
        ..ToneSpec::new(digit, samples(ms))
    }
}

pub fn samples(ms: f32) -> usize {
    (ms * 8.0).round() as usize
}

/// Adds white Gaussian noise whose total power is `dbm0` (a sine of that level has the same
/// mean square).
pub fn add_noise(rng: &mut Rng, out: &mut [f32], dbm0: f32) {
    let sigma = level::sine_amplitude(dbm0) / std::f32::consts::SQRT_2;
    for s in out.iter_mut() {
        *s += sigma * rng.gaussian();
    }
}

/// Adds a sine.
pub fn add_sine(out: &mut [f32], hz: f32, dbm0: f32, phase: f32) {
    let a = level::sine_amplitude(dbm0);
    for (i, s) in out.iter_mut().enumerate() {
        *s += a * (std::f32::consts::TAU * hz * i as f32 / 8000.0 + phase).sin();
    }
}

/// Converts to 16-bit and passes the audio through µ-law, as an RTP leg would.
pub fn through_ulaw(samples: &[f32]) -> Vec<i16> {
    let mut x = ivrpay_dtmf::to_i16(samples);
    Law::Ulaw.round_trip_in_place(&mut x);
    x
}

/// Runs the detector over `samples` in 20 ms packets and returns the digits it reported.
pub fn detect(samples: &[i16]) -> Vec<Tone> {
    let mut detector = Detector::default();
    let mut tones = Vec::new();
    for packet in samples.chunks(160) {
        detector.process(packet);
        drain(&mut detector, &mut tones);
    }
    detector.finish();
    drain(&mut detector, &mut tones);
    tones
}

fn drain(detector: &mut Detector, tones: &mut Vec<Tone>) {
    while let Some(event) = detector.poll_event() {
        if let DetectorEvent::Ended(tone) = event {
            tones.push(tone);
        }
    }
}

pub fn digit_string(tones: &[Tone]) -> String {
    tones.iter().map(|t| t.digit.as_char()).collect()
}

/// A test signal: tones laid out in time with the truth about each.
pub struct Track {
    pub audio: Vec<f32>,
    pub truth: Vec<Placed>,
}

/// Where a tone went.
#[derive(Clone, Copy)]
pub struct Placed {
    pub spec: ToneSpec,
    pub start: usize,
}

impl Placed {
    pub fn end(&self) -> usize {
        self.start + self.spec.duration
    }
}

impl Track {
    pub fn new() -> Track {
        Track { audio: Vec::new(), truth: Vec::new() }
    }

    pub fn silence(&mut self, n: usize) {
        self.audio.resize(self.audio.len() + n, 0.0);
    }

    pub fn tone(&mut self, spec: ToneSpec) {
        let start = self.audio.len();
        self.silence(spec.duration);
        spec.add_to(&mut self.audio[start..]);
        self.truth.push(Placed { spec, start });
    }

    pub fn expected(&self) -> String {
        self.truth.iter().map(|p| p.spec.digit.as_char()).collect()
    }
}
