//! DTMF tone generation: test signals, the offline `generate` tool, RFC 4733 playback.

use crate::bank::RATE;
use crate::digit::Digit;
use crate::level::sine_amplitude;

/// One key press to synthesise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToneSpec {
    pub digit: Digit,
    /// Length in samples.
    pub duration: usize,
    /// Level of the louder tone, in dBm0.
    pub level_dbm0: f32,
    /// High-group level minus low-group level, in dB. The quieter tone is attenuated, the
    /// louder one stays at `level_dbm0`.
    pub twist_db: f32,
    /// Frequency error of the low tone, as a fraction (0.015 is +1.5 %).
    pub low_offset: f32,
    /// Frequency error of the high tone, as a fraction.
    pub high_offset: f32,
    /// Start phases of the low and high tones, in radians.
    pub low_phase: f32,
    pub high_phase: f32,
}

impl ToneSpec {
    /// A clean tone at −10 dBm0 per tone, no twist, exact frequencies.
    pub fn new(digit: Digit, duration: usize) -> ToneSpec {
        ToneSpec {
            digit,
            duration,
            level_dbm0: -10.0,
            twist_db: 0.0,
            low_offset: 0.0,
            high_offset: 0.0,
            low_phase: 0.0,
            high_phase: 0.0,
        }
    }

    /// Levels of the (low, high) tones in dBm0.
    pub fn levels_dbm0(&self) -> (f32, f32) {
        if self.twist_db >= 0.0 {
            (self.level_dbm0 - self.twist_db, self.level_dbm0)
        } else {
            (self.level_dbm0, self.level_dbm0 + self.twist_db)
        }
    }

    /// Adds this tone to `out` (which must hold at least `duration` samples), in f32 so that
    /// callers can mix noise or speech before converting with [`to_i16`].
    pub fn add_to(&self, out: &mut [f32]) {
        let (low_hz, high_hz) = self.digit.frequencies();
        let (low_db, high_db) = self.levels_dbm0();
        let parts = [
            (f64::from(low_hz * (1.0 + self.low_offset)), sine_amplitude(low_db), self.low_phase),
            (
                f64::from(high_hz * (1.0 + self.high_offset)),
                sine_amplitude(high_db),
                self.high_phase,
            ),
        ];
        for (hz, amplitude, phase) in parts {
            let step = 2.0 * std::f64::consts::PI * hz / f64::from(RATE);
            for (i, s) in out.iter_mut().take(self.duration).enumerate() {
                *s += amplitude * (step * i as f64 + f64::from(phase)).sin() as f32;
            }
        }
    }
}

/// Converts to 16-bit samples, saturating (two tones at 0 dBm0 each exceed full scale, as
/// they would in a real codec).
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| s.round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// A keyed digit string: tone and pause lengths and levels for every key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keying {
    pub on_ms: f32,
    pub off_ms: f32,
    pub level_dbm0: f32,
    pub twist_db: f32,
}

impl Default for Keying {
    fn default() -> Self {
        Keying { on_ms: 100.0, off_ms: 100.0, level_dbm0: -10.0, twist_db: 0.0 }
    }
}

/// A character that is not a DTMF key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAKey {
    /// Position in the string.
    pub position: usize,
}

impl std::fmt::Display for NotAKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "character {} is not a DTMF key (use 0-9, *, #, A-D)", self.position + 1)
    }
}

impl std::error::Error for NotAKey {}

/// Renders `digits` with a pause before, between and after the tones.
pub fn key_string(digits: &str, keying: &Keying) -> Result<Vec<i16>, NotAKey> {
    let ms = |ms: f32| (ms.max(0.0) * RATE / 1000.0).round() as usize;
    let (on, off) = (ms(keying.on_ms), ms(keying.off_ms));
    let keys = digits
        .chars()
        .enumerate()
        .map(|(position, c)| Digit::from_char(c).ok_or(NotAKey { position }))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = vec![0.0f32; off + keys.len() * (on + off)];
    for (i, digit) in keys.into_iter().enumerate() {
        let start = off + i * (on + off);
        let spec = ToneSpec {
            level_dbm0: keying.level_dbm0,
            twist_db: keying.twist_db,
            ..ToneSpec::new(digit, on)
        };
        spec.add_to(&mut out[start..]);
    }
    Ok(to_i16(&out))
}
