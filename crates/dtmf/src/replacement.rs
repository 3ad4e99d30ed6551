//! What the agent hears instead of a masked tone.

use crate::level::sine_amplitude;

/// How masked audio is replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MaskMode {
    /// One flat 520 Hz tone, the same for every key: the agent hears that a key was pressed,
    /// never which. 520 Hz and its harmonics (1040, 1560, 2080 Hz) all lie at least 73 Hz
    /// from every DTMF frequency; G.711 turns any periodic tone into harmonics, and those of
    /// the usual 400 Hz beep fall on 1209 and 1633 Hz.
    #[default]
    Tone,
    /// Digital silence.
    Silence,
    /// Low-level white noise, so the line does not sound dead.
    Noise,
}

impl MaskMode {
    /// The lower-case name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MaskMode::Tone => "tone",
            MaskMode::Silence => "silence",
            MaskMode::Noise => "noise",
        }
    }
}

impl std::str::FromStr for MaskMode {
    type Err = UnknownMaskMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tone" => Ok(MaskMode::Tone),
            "silence" => Ok(MaskMode::Silence),
            "noise" => Ok(MaskMode::Noise),
            _ => Err(UnknownMaskMode),
        }
    }
}

/// A mask mode name that is not `tone`, `silence` or `noise`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownMaskMode;

impl std::fmt::Display for UnknownMaskMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unknown mask mode: expected tone, silence or noise")
    }
}

impl std::error::Error for UnknownMaskMode {}

/// The tone repeats exactly after 200 samples (13 cycles of 520 Hz at 8 kHz).
const TONE_PERIOD: usize = 200;
const TONE_CYCLES: usize = 13;
/// Level of the flat tone: audible, below speech. G.711 adds quantisation noise about 38 dB
/// under any signal, so a louder beep would put more noise at the masked digit's frequencies.
const TONE_DBM0: f32 = -26.0;
/// Level of comfort noise (RMS): a quiet line. Louder noise would itself put energy at the
/// masked digit's frequencies (the leak suite measures −40 dB or less there).
const NOISE_DBM0: f32 = -65.0;
/// Raised-cosine fades of 8 ms at both ends: no click, and the gated tone's spectrum stays
/// narrow, so it puts no energy near the DTMF frequencies.
const RAMP: u64 = 64;

/// Generates replacement audio. Cheap and allocation-free: it runs on the relay's hot path.
#[derive(Clone, Debug)]
pub struct Replacement {
    mode: MaskMode,
    period: [i16; TONE_PERIOD],
    /// Raised-cosine fade, 0 to 1 over `RAMP` samples.
    ramp: [f32; RAMP as usize],
    phase: usize,
    noise_peak: f32,
    rng: u32,
}

impl Replacement {
    pub fn new(mode: MaskMode) -> Replacement {
        let amplitude = sine_amplitude(TONE_DBM0);
        let period = std::array::from_fn(|i| {
            let cycles = (i * TONE_CYCLES) as f32 / TONE_PERIOD as f32;
            (amplitude * (2.0 * std::f32::consts::PI * cycles).sin()).round() as i16
        });
        let ramp = std::array::from_fn(|i| {
            0.5 - 0.5 * (std::f32::consts::PI * i as f32 / RAMP as f32).cos()
        });
        // Uniform noise in [−a, a] has an RMS of a/√3; the sine reference has RMS A/√2.
        let noise_peak = sine_amplitude(NOISE_DBM0) * (3.0f32 / 2.0).sqrt();
        Replacement { mode, period, ramp, phase: 0, noise_peak, rng: 0x9E37_79B9 }
    }

    pub fn mode(&self) -> MaskMode {
        self.mode
    }

    /// Fills `out` with replacement audio. `since_start` is how far into the masked span the
    /// first sample lies and `until_end` how many samples of the span remain from it
    /// (`u64::MAX` when the end is not known), so that the tone fades at both edges.
    pub fn fill(&mut self, out: &mut [i16], since_start: u64, until_end: u64) {
        match self.mode {
            MaskMode::Silence => out.fill(0),
            MaskMode::Noise => {
                for s in out.iter_mut() {
                    // xorshift32: a fast generator, statistical quality is irrelevant here.
                    self.rng ^= self.rng << 13;
                    self.rng ^= self.rng >> 17;
                    self.rng ^= self.rng << 5;
                    let unit = self.rng as f32 / u32::MAX as f32 * 2.0 - 1.0;
                    *s = (unit * self.noise_peak) as i16;
                }
            }
            MaskMode::Tone => {
                // Fades at the edges, straight copies of the period in between.
                let n = out.len();
                let fade_in_end = (RAMP.saturating_sub(since_start) as usize).min(n);
                let fade_out_start =
                    (until_end.saturating_add(1).saturating_sub(RAMP).min(n as u64) as usize)
                        .max(fade_in_end);
                for i in (0..fade_in_end).chain(fade_out_start..n) {
                    if i == fade_out_start {
                        self.copy_period(&mut out[fade_in_end..fade_out_start]);
                    }
                    out[i] = self.faded(since_start + i as u64, until_end.saturating_sub(i as u64));
                }
                if fade_out_start == n {
                    self.copy_period(&mut out[fade_in_end..]);
                }
            }
        }
    }

    /// Fills `out` with the tone at full level.
    fn copy_period(&mut self, mut out: &mut [i16]) {
        while !out.is_empty() {
            let n = out.len().min(TONE_PERIOD - self.phase);
            out[..n].copy_from_slice(&self.period[self.phase..self.phase + n]);
            self.phase = (self.phase + n) % TONE_PERIOD;
            out = &mut out[n..];
        }
    }

    /// One tone sample at this distance from the span's edges, advancing the phase.
    fn faded(&mut self, from_start: u64, to_end: u64) -> i16 {
        let full = self.period[self.phase];
        self.phase = (self.phase + 1) % TONE_PERIOD;
        match self.ramp.get(from_start.min(to_end) as usize) {
            Some(&gain) => (f32::from(full) * gain) as i16,
            None => full,
        }
    }

    /// Starts the tone from zero phase (at the beginning of a new masked span).
    pub fn restart(&mut self) {
        self.phase = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path (fades plus copies) gives exactly what sample-by-sample filling gives,
    /// however a span is cut into frames.
    #[test]
    fn chunked_tone_equals_sample_by_sample() {
        let span = 1000u64;
        let mut reference = Replacement::new(MaskMode::Tone);
        let expected: Vec<i16> = (0..span)
            .map(|i| {
                let mut s = [0i16];
                reference.fill(&mut s, i, span - i);
                s[0]
            })
            .collect();
        for chunk in [1usize, 3, 51, 64, 65, 160, 1000] {
            let mut r = Replacement::new(MaskMode::Tone);
            let mut got = vec![0i16; span as usize];
            let mut at = 0usize;
            for piece in got.chunks_mut(chunk) {
                let n = piece.len() as u64;
                r.fill(piece, at as u64, span - at as u64);
                at += n as usize;
            }
            assert_eq!(got, expected, "chunks of {chunk}");
        }
        assert_eq!(expected[0], 0, "starts silent");
        assert!(expected[500].unsigned_abs() > 0 || expected[501].unsigned_abs() > 0);
    }
}
