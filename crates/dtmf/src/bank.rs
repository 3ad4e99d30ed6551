//! The filter bank: single-bin DFTs at the eight DTMF frequencies and the two dial-tone
//! frequencies, computed over half blocks of 51 samples.
//!
//! Why half blocks: the decision logic wants 102-sample blocks (12.75 ms, the spandsp block, fine
//! enough to separate neighbouring DTMF tones) evaluated every 51 samples, so that a tone is
//! seen early (the masker) and durations are measured finely (the detector). A DFT bin is
//! linear, so a 102-sample bin is the sum of two 51-sample bins with the second rotated by
//! the phase the frequency advances over 51 samples: one bank pass per sample gives
//! overlapping full blocks for free. The phase step between consecutive blocks also
//! measures each tone's frequency precisely (see `analysis`).
//!
//! Each bin is a plain correlation with a precomputed table rather than a Goertzel
//! recurrence: the recurrence is a serial dependency per sample, the correlation is a set
//! of independent multiply-adds that the compiler vectorises. The real and imaginary parts
//! of the ten bins are laid out as one vector of twenty accumulators (eight DTMF real
//! parts, eight DTMF imaginary parts, then the dial tone's four): three AVX2 FMAs or five
//! SSE multiply-adds per sample.

use std::ops::{Add, Mul, Sub};
use std::sync::LazyLock;

use crate::digit::{COL_HZ, ROW_HZ};

/// Samples per half block.
pub(crate) const HALF: usize = 51;
/// Samples per full (decision) block.
pub(crate) const FULL: usize = 2 * HALF;
/// Sample rate in Hz.
pub(crate) const RATE: f32 = 8000.0;
/// Lanes 0-3: rows, 4-7: columns, 8-9: dial tone (350 and 440 Hz).
pub(crate) const LANES: usize = 10;
/// Accumulators per sample: a real and an imaginary part per lane.
const WIDTH: usize = 2 * LANES;
pub(crate) const DIAL_LOW: usize = 8;
pub(crate) const DIAL_HIGH: usize = 9;

/// The frequency of each lane in Hz.
pub(crate) const LANE_HZ: [f32; LANES] = [
    ROW_HZ[0], ROW_HZ[1], ROW_HZ[2], ROW_HZ[3], COL_HZ[0], COL_HZ[1], COL_HZ[2], COL_HZ[3], 350.0,
    440.0,
];

/// Where lane `k`'s real and imaginary parts sit among the accumulators.
const fn slots(k: usize) -> (usize, usize) {
    if k < 8 { (k, 8 + k) } else { (16 + (k - 8), 18 + (k - 8)) }
}

/// A complex number, enough of one for the bank and the analysis.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Complex {
    pub(crate) re: f32,
    pub(crate) im: f32,
}

impl Complex {
    pub(crate) const ZERO: Complex = Complex { re: 0.0, im: 0.0 };
    pub(crate) const ONE: Complex = Complex { re: 1.0, im: 0.0 };

    pub(crate) fn from_angle(radians: f32) -> Complex {
        Complex { re: radians.cos(), im: radians.sin() }
    }

    pub(crate) fn conj(self) -> Complex {
        Complex { re: self.re, im: -self.im }
    }

    pub(crate) fn scale(self, k: f32) -> Complex {
        Complex { re: self.re * k, im: self.im * k }
    }

    pub(crate) fn norm_sqr(self) -> f32 {
        self.re * self.re + self.im * self.im
    }

    pub(crate) fn arg(self) -> f32 {
        self.im.atan2(self.re)
    }
}

impl Add for Complex {
    type Output = Complex;
    fn add(self, o: Complex) -> Complex {
        Complex { re: self.re + o.re, im: self.im + o.im }
    }
}

impl Sub for Complex {
    type Output = Complex;
    fn sub(self, o: Complex) -> Complex {
        Complex { re: self.re - o.re, im: self.im - o.im }
    }
}

impl Mul for Complex {
    type Output = Complex;
    fn mul(self, o: Complex) -> Complex {
        Complex { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re }
    }
}

/// For every position m in a half block, cos(ω·m) and −sin(ω·m) of every lane, in
/// accumulator order.
struct Tables([[f32; WIDTH]; HALF]);

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut t = Tables([[0.0; WIDTH]; HALF]);
    for (m, row) in t.0.iter_mut().enumerate() {
        for (k, hz) in LANE_HZ.iter().enumerate() {
            // f64 so that the table itself adds no error worth measuring.
            let w = 2.0 * std::f64::consts::PI * f64::from(*hz) / f64::from(RATE);
            let (re, im) = slots(k);
            row[re] = (w * m as f64).cos() as f32;
            row[im] = -(w * m as f64).sin() as f32;
        }
    }
    t
});

/// Adds each sample times its table row to the accumulators: the whole cost of the bank.
/// Compiled twice, for plain x86-64 (SSE2) and for AVX2 with FMA, picked at run time.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn correlate(input: &[i16], table: &[[f32; WIDTH]], acc: &mut [f32; WIDTH]) {
    // Rust never fuses a multiply and an add by itself; with FMA available, ask for it.
    let fused = multiversion::target::target_cfg_f!(target_feature = "fma");
    // Two sets of accumulators, for even and odd samples: each multiply-add waits for the
    // previous one on its accumulator, so one set alone would leave the core idle.
    let mut odd = [0.0f32; WIDTH];
    for (x, rows) in input.chunks_exact(2).zip(table.chunks_exact(2)) {
        let (x0, x1) = (f32::from(x[0]), f32::from(x[1]));
        let (t0, t1) = (&rows[0], &rows[1]);
        for k in 0..WIDTH {
            if fused {
                acc[k] = x0.mul_add(t0[k], acc[k]);
                odd[k] = x1.mul_add(t1[k], odd[k]);
            } else {
                acc[k] += x0 * t0[k];
                odd[k] += x1 * t1[k];
            }
        }
    }
    if input.len() % 2 == 1 {
        let last = input.len() - 1;
        let x = f32::from(input[last]);
        for k in 0..WIDTH {
            acc[k] += x * table[last][k];
        }
    }
    for k in 0..WIDTH {
        acc[k] += odd[k];
    }
}

/// The rotation that moves a lane's half-block bin by 51 samples: e^(−jω·51).
pub(crate) fn half_block_rotation(lane: usize) -> Complex {
    Complex::from_angle(-2.0 * std::f32::consts::PI * LANE_HZ[lane] * HALF as f32 / RATE)
}

/// The result of one half block: each lane's DFT bin (phase referenced to the half block's
/// first sample) and the sum of squares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HalfBlock {
    pub(crate) bins: [Complex; LANES],
    pub(crate) energy: f32,
}

/// Accumulates samples into the current half block.
#[derive(Clone, Debug)]
pub(crate) struct Bank {
    acc: [f32; WIDTH],
    /// Exact integer energy: an i64 sum vectorises and cannot lose precision.
    energy: i64,
    pos: usize,
}

impl Bank {
    pub(crate) fn new() -> Bank {
        // Build the tables now rather than on the first packet.
        LazyLock::force(&TABLES);
        Bank { acc: [0.0; WIDTH], energy: 0, pos: 0 }
    }

    /// Samples still needed to complete the current half block.
    pub(crate) fn remaining(&self) -> usize {
        HALF - self.pos
    }

    /// Feeds at most [`Bank::remaining`] samples; returns how many were taken and, when the
    /// half block is complete, its result (the bank is then ready for the next one).
    pub(crate) fn feed(&mut self, samples: &[i16]) -> (usize, Option<HalfBlock>) {
        let take = samples.len().min(self.remaining());
        let input = &samples[..take];
        correlate(input, &TABLES.0[self.pos..self.pos + take], &mut self.acc);
        self.energy += input.iter().map(|&x| i64::from(i32::from(x) * i32::from(x))).sum::<i64>();
        self.pos += take;
        if self.pos < HALF {
            return (take, None);
        }
        let bins = std::array::from_fn(|k| {
            let (re, im) = slots(k);
            Complex { re: self.acc[re], im: self.acc[im] }
        });
        let half = HalfBlock { bins, energy: self.energy as f32 };
        *self = Bank { acc: [0.0; WIDTH], energy: 0, pos: 0 };
        (take, Some(half))
    }

    /// Throws away the partial half block (after a gap in the input).
    pub(crate) fn reset(&mut self) {
        *self = Bank { acc: [0.0; WIDTH], energy: 0, pos: 0 };
    }

    /// Position inside the current half block.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amplitude: f32, n: usize, phase: f32) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = 2.0 * std::f32::consts::PI * hz * i as f32 / RATE + phase;
                (amplitude * t.cos()).round() as i16
            })
            .collect()
    }

    #[test]
    fn a_tone_on_a_lane_frequency_gives_the_full_bin() {
        let x = tone(852.0, 10_000.0, HALF, 0.3);
        let mut bank = Bank::new();
        let (taken, half) = bank.feed(&x);
        assert_eq!(taken, HALF);
        let half = half.expect("a full half block completes");
        // |X| = A·N/2 for a tone exactly on the bin.
        let mag = half.bins[2].norm_sqr().sqrt();
        assert!((mag / (10_000.0 * HALF as f32 / 2.0) - 1.0).abs() < 0.02, "{mag}");
        // phase of the bin is the tone's phase at the first sample
        assert!((half.bins[2].arg() - 0.3).abs() < 0.02);
        let expected_energy: f32 = x.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
        assert!((half.energy - expected_energy).abs() < 1.0);
    }

    #[test]
    fn split_feeds_equal_one_feed() {
        let x = tone(1336.0, 8_000.0, HALF, 1.0);
        let mut one = Bank::new();
        let whole = one.feed(&x).1.expect("complete");
        let mut split = Bank::new();
        let mut result = None;
        let mut rest = &x[..];
        for chunk in [7usize, 1, 20, 23] {
            let (n, h) = split.feed(&rest[..chunk]);
            assert_eq!(n, chunk);
            rest = &rest[chunk..];
            result = h.or(result);
        }
        let split = result.expect("complete");
        for k in 0..LANES {
            assert!((whole.bins[k].re - split.bins[k].re).abs() < 1e-2);
            assert!((whole.bins[k].im - split.bins[k].im).abs() < 1e-2);
        }
    }

    #[test]
    fn two_half_blocks_combine_into_one_full_block() {
        let x = tone(1209.0, 5_000.0, FULL, 0.7);
        let mut bank = Bank::new();
        let first = bank.feed(&x[..HALF]).1.expect("complete");
        let second = bank.feed(&x[HALF..]).1.expect("complete");
        let full = first.bins[4] + half_block_rotation(4) * second.bins[4];
        let mag = full.norm_sqr().sqrt();
        assert!((mag / (5_000.0 * FULL as f32 / 2.0) - 1.0).abs() < 0.02, "{mag}");
    }
}
