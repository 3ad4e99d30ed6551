//! Signal levels in dBm0 for 16-bit linear audio.
//!
//! The reference is the G.711 convention used by spandsp: a full-scale sine (peak 32768)
//! is +3.14 dBm0, so a 0 dBm0 sine has a peak of about 22 827.

/// Level of a full-scale sine in dBm0 (G.711's +3.14 dBm0 overload point; not π).
#[allow(clippy::approx_constant, reason = "3.14 dB is a telephony constant, not π")]
const FULL_SCALE_SINE_DBM0: f32 = 3.14;
/// Peak of a full-scale sine.
const FULL_SCALE: f32 = 32768.0;

/// Peak amplitude of a sine at `dbm0`.
pub fn sine_amplitude(dbm0: f32) -> f32 {
    FULL_SCALE * 10f32.powf((dbm0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

/// Mean square of a sine at `dbm0` (amplitude² / 2).
pub(crate) fn sine_mean_square(dbm0: f32) -> f32 {
    let a = sine_amplitude(dbm0);
    a * a / 2.0
}

/// Level in dBm0 of a signal with this mean square (the level of the sine that has it).
pub fn mean_square_dbm0(mean_square: f32) -> f32 {
    let reference = sine_mean_square(0.0);
    10.0 * (mean_square.max(f32::MIN_POSITIVE) / reference).log10()
}

/// Converts decibels to a power ratio.
pub(crate) fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_points() {
        assert!((sine_amplitude(0.0) - 22_827.0).abs() < 1.0);
        assert!((sine_amplitude(FULL_SCALE_SINE_DBM0) - FULL_SCALE).abs() < 0.5);
        assert!((mean_square_dbm0(sine_mean_square(-20.0)) + 20.0).abs() < 1e-3);
    }
}
