//! Turns half blocks into decision blocks and tests them against a set of criteria.
//!
//! A decision block is 102 samples long and one ends every 51 samples. For each block we
//! know the tone energy at every DTMF frequency, the block's total energy, the dial-tone
//! energy, and the phase step of every DTMF bin since the previous block. The phase step
//! is the frequency estimate: a tone off its nominal frequency by Δf turns its bin by
//! 2π·Δf·51/8000 per block, so Δf is read to a fraction of a hertz where the magnitude of a
//! 102-sample bin could not tell 1.5 % from 3.5 % (spandsp's weakness at 697 Hz).

use std::f32::consts::PI;
use std::sync::LazyLock;

use crate::bank::{
    Complex, DIAL_HIGH, DIAL_LOW, FULL, HALF, HalfBlock, LANE_HZ, LANES, RATE, half_block_rotation,
};
use crate::digit::Digit;
use crate::level::db_to_power;

/// Number of DTMF lanes (rows then columns).
const DTMF_LANES: usize = 8;

/// The measurements of one 102-sample block. What only some tests need (frequency
/// estimates, half-block amplitudes, dial tone) is kept as bins and worked out on demand:
/// most blocks fail a cheap test first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    /// Tone energy at each DTMF frequency (sum of squares of that component over the block),
    /// with the leakage of the strongest row and column tones taken out of every lane.
    pub(crate) power: [f32; DTMF_LANES],
    /// Strongest row lane (0..4) and column lane (4..8).
    pub(crate) row: usize,
    pub(crate) col: usize,
    /// The row and column bins of this block and of the previous one (zero if none).
    bins: [Complex; 2],
    previous: [Complex; 2],
    /// The row and column bins of the block's first and second half.
    halves: [[Complex; 2]; 2],
    /// Sum of squares of the block.
    pub(crate) energy: f32,
    /// Energy of dial tone (350 and 440 Hz) in the block; not measured (0) in blocks with
    /// no tone pair.
    dial_energy: f32,
}

/// Thresholds a block must meet to count as a DTMF hit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Criteria {
    /// Minimum energy of the weaker tone over a block.
    pub(crate) min_tone_energy: f32,
    /// Largest row/column power ratio (low group louder).
    pub(crate) max_low_louder: f32,
    /// Largest column/row power ratio (high group louder).
    pub(crate) max_high_louder: f32,
    /// Each tone must exceed every other tone of its group by this power ratio.
    pub(crate) min_peak_ratio: f32,
    /// The two tones must carry this share of the block energy (dial tone excluded).
    pub(crate) min_energy_share: f32,
    /// Before the share test, undo the loss an off-centre tone suffers in a 102-sample bin,
    /// for frequency errors up to this fraction of nominal (0 = never). Compensating further
    /// than in-spec tones need would favour speech harmonics that happen to lie nearby.
    pub(crate) max_compensated_error: f32,
    /// Where the frequency error for that comes from.
    pub(crate) estimate: Estimate,
    /// The largest compensation each lane can get (at the capped error).
    pub(crate) max_gain: [f32; DTMF_LANES],
    /// The weaker half of the block must hold this share of the stronger half's tone
    /// amplitude (0 = no test). 0.5 means tone fills at least half of each half: four such
    /// blocks in a row need 26 ms of tone, so 23 ms tones never pass and 40 ms ones always
    /// have a block to spare.
    pub(crate) min_half_balance: f32,
}

/// Which phase step gives a block's frequency estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Estimate {
    /// Against the previous block: precise, but meaningless at a tone's onset.
    Blocks,
    /// Between the block's own halves: available in a tone's first block.
    Halves,
}

/// Dial tone may not be most of a block: the tone pair must hold at least this share of all
/// of it, or a loud 350/440 Hz signal would leave a tiny remainder that anything dominates.
const MIN_TOTAL_SHARE: f32 = 0.2;

/// [`Criteria`] as people write them: levels and ratios in decibels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    pub(crate) min_level_dbm0: f32,
    pub(crate) max_low_louder_db: f32,
    pub(crate) max_high_louder_db: f32,
    pub(crate) min_peak_db: f32,
    pub(crate) min_energy_share: f32,
    pub(crate) max_compensated_error: f32,
    pub(crate) estimate: Estimate,
    pub(crate) min_half_balance: f32,
}

impl From<Thresholds> for Criteria {
    fn from(t: Thresholds) -> Criteria {
        Criteria {
            min_tone_energy: crate::level::sine_mean_square(t.min_level_dbm0) * FULL as f32,
            max_low_louder: db_to_power(t.max_low_louder_db),
            max_high_louder: db_to_power(t.max_high_louder_db),
            min_peak_ratio: db_to_power(t.min_peak_db),
            min_energy_share: t.min_energy_share,
            max_compensated_error: t.max_compensated_error,
            estimate: t.estimate,
            max_gain: std::array::from_fn(|k| {
                let cap = t.max_compensated_error * LANE_HZ[k];
                offset_compensation(cap, cap)
            }),
            min_half_balance: t.min_half_balance,
        }
    }
}

impl Block {
    /// A block of silence (before the first one is measured).
    pub(crate) fn silent() -> Block {
        Block::not_tonal([0.0; DTMF_LANES], 0, 4, 0.0)
    }

    /// A block with no tone pair worth measuring.
    fn not_tonal(power: [f32; DTMF_LANES], row: usize, col: usize, energy: f32) -> Block {
        let zero = [Complex::ZERO; 2];
        let halves = [zero; 2];
        Block { power, row, col, bins: zero, previous: zero, halves, energy, dial_energy: 0.0 }
    }

    fn lanes(&self) -> [usize; 2] {
        [self.row, self.col]
    }

    /// The row and column bins times the conjugate of the previous block's, derotated: the
    /// argument is each tone's frequency error, the magnitude how much to trust it.
    pub(crate) fn step(&self) -> [Complex; 2] {
        let rotation = &*ROTATION;
        let [r, c] = self.lanes();
        [
            self.bins[0] * self.previous[0].conj() * rotation[r],
            self.bins[1] * self.previous[1].conj() * rotation[c],
        ]
    }

    /// The same for the block's second half against its first: a frequency estimate from
    /// this block alone, valid as soon as a tone fills most of it (the masker's first look).
    pub(crate) fn half_step(&self) -> [Complex; 2] {
        let rotation = &*ROTATION;
        let [r, c] = self.lanes();
        let [first, second] = self.halves;
        [second[0] * first[0].conj() * rotation[r], second[1] * first[1].conj() * rotation[c]]
    }

    /// Row plus column amplitude in each half: a tone that fills the block has equal
    /// halves, one that starts or stops inside it does not.
    fn half_amplitudes(&self) -> [f32; 2] {
        self.halves.map(|[r, c]| r.norm_sqr().sqrt() + c.norm_sqr().sqrt())
    }

    /// Whether lane `best` beats the other three lanes of its group (from `group`) by `ratio`.
    fn is_peak(&self, best: usize, group: usize, ratio: f32) -> bool {
        let limit = self.power[best] / ratio;
        (group..group + 4).all(|k| k == best || self.power[k] < limit)
    }

    /// Block energy without dial tone.
    pub(crate) fn signal_energy(&self) -> f32 {
        (self.energy - self.dial_energy).max(0.0)
    }

    /// The digit this block shows, if it meets `c`.
    pub(crate) fn classify(&self, c: &Criteria) -> Option<Digit> {
        let (row, col) = (self.row, self.col);
        let (row_p, col_p) = (self.power[row], self.power[col]);
        // Cheapest and most selective first: most blocks of speech or silence stop here.
        if row_p + col_p < MIN_TOTAL_SHARE * self.energy || row_p.min(col_p) < c.min_tone_energy {
            return None;
        }
        if row_p > col_p * c.max_low_louder || col_p > row_p * c.max_high_louder {
            return None;
        }
        if !self.is_peak(row, 0, c.min_peak_ratio) || !self.is_peak(col, 4, c.min_peak_ratio) {
            return None;
        }
        if c.min_half_balance > 0.0 {
            let [first, second] = self.half_amplitudes();
            if first.min(second) < c.min_half_balance * first.max(second) {
                return None;
            }
        }
        // The share test, compensating for frequency error only when the answer depends
        // on it (the estimate costs two arctangents).
        let needed = c.min_energy_share * self.signal_energy();
        if row_p + col_p < needed {
            if row_p * c.max_gain[row] + col_p * c.max_gain[col] < needed {
                return None;
            }
            let steps = match c.estimate {
                Estimate::Blocks => self.step(),
                Estimate::Halves => self.half_step(),
            };
            let cap = c.max_compensated_error;
            let row_c = row_p * offset_compensation(step_to_hz(steps[0]), cap * LANE_HZ[row]);
            let col_c = col_p * offset_compensation(step_to_hz(steps[1]), cap * LANE_HZ[col]);
            if row_c + col_c < needed {
                return None;
            }
        }
        Some(Digit::from_row_col(row, col - 4))
    }
}

/// Frequency error in Hz that a phase step shows.
pub(crate) fn step_to_hz(step: Complex) -> f32 {
    step.arg() * RATE / (2.0 * PI * HALF as f32)
}

/// 1 / sinc² of the frequency error (at most `max_hz`): the power a tone loses in a
/// rectangular 102-sample bin.
pub(crate) fn offset_compensation(error_hz: f32, max_hz: f32) -> f32 {
    let bins = error_hz.abs().min(max_hz) * FULL as f32 / RATE;
    if bins < 1e-4 {
        return 1.0;
    }
    let x = PI * bins;
    let sinc = x.sin() / x;
    1.0 / (sinc * sinc)
}

/// The rotation that moves each lane's half-block bin by 51 samples.
static ROTATION: LazyLock<[Complex; LANES]> =
    LazyLock::new(|| std::array::from_fn(half_block_rotation));

/// Combines consecutive half blocks into overlapping decision blocks.
#[derive(Clone, Debug)]
pub(crate) struct Analyzer {
    previous_half: Option<HalfBlock>,
    previous_bins: Option<[Complex; DTMF_LANES]>,
}

impl Analyzer {
    pub(crate) fn new() -> Analyzer {
        LazyLock::force(&LEAKAGE);
        LazyLock::force(&ROTATION);
        Analyzer { previous_half: None, previous_bins: None }
    }

    /// Forgets history (after a gap in the input): the next block needs two new halves.
    pub(crate) fn reset(&mut self) {
        self.previous_half = None;
        self.previous_bins = None;
    }

    /// Adds a half block; returns the decision block that ends with it, if there is one.
    pub(crate) fn push(&mut self, half: HalfBlock) -> Option<Block> {
        let first = self.previous_half.replace(half)?;
        let rotation = &*ROTATION;
        let full = |k: usize| first.bins[k] + rotation[k] * half.bins[k];
        let bins: [Complex; DTMF_LANES] = std::array::from_fn(full);
        let raw = bins.map(bin_energy);
        let (row, col) = (strongest(&raw, 0..4), strongest(&raw, 4..8));
        let energy = first.energy + half.energy;
        let previous = self.previous_bins.replace(bins);
        if raw[row] + raw[col] < 0.5 * MIN_TOTAL_SHARE * energy {
            // Not tonal: separating leakage moves lane powers by far less than 2×, so this
            // block fails every test however the rest is measured. Skip the rest.
            return Some(Block::not_tonal(raw, row, col, energy));
        }
        // Taking the strongest row and column as a tone pair, each lane's power is what is
        // left once both tones' leakage is removed.
        let leakage = &*LEAKAGE;
        let (row_bin, col_bin) = leakage.separate(row, col, bins[row], bins[col]);
        let (from_row, from_col) = (&leakage.0[row], &leakage.0[col]);
        let mut power = [0.0; DTMF_LANES];
        for (k, p) in power.iter_mut().enumerate() {
            *p = bin_energy(bins[k] - from_row[k] * row_bin - from_col[k] * col_bin);
        }
        power[row] = bin_energy(row_bin);
        power[col] = bin_energy(col_bin);
        let pick = |bins: &[Complex]| [bins[row], bins[col]];
        Some(Block {
            power,
            row,
            col,
            bins: pick(&bins),
            previous: previous.map_or([Complex::ZERO; 2], |p| pick(&p)),
            halves: [pick(&first.bins), pick(&half.bins)],
            energy,
            dial_energy: {
                let (low, high) =
                    leakage.separate(DIAL_LOW, DIAL_HIGH, full(DIAL_LOW), full(DIAL_HIGH));
                bin_energy(low) + bin_energy(high)
            },
        })
    }
}

/// Energy of a tone whose 102-sample bin is `bin`: 2|X|²/N (a clean sine scores its energy).
fn bin_energy(bin: Complex) -> f32 {
    2.0 * bin.norm_sqr() / FULL as f32
}

fn strongest(power: &[f32; DTMF_LANES], lanes: std::ops::Range<usize>) -> usize {
    let mut best = lanes.start;
    for k in lanes {
        if power[k] > power[best] {
            best = k;
        }
    }
    best
}

/// How much a tone on one lane's frequency shows in every other lane's 102-sample bin,
/// relative to its own: `D(ω_from − ω_to) / N` with D the Dirichlet kernel. A rectangular
/// block is short, so neighbours see a lot of each other (−13 dB one bin away, −21 dB for a
/// low tone in a high lane); knowing these responses lets the analysis take them out.
struct Leakage([[Complex; LANES]; LANES]);

static LEAKAGE: LazyLock<Leakage> = LazyLock::new(|| {
    let mut table = [[Complex::ZERO; LANES]; LANES];
    for (from, row) in table.iter_mut().enumerate() {
        for (to, cell) in row.iter_mut().enumerate() {
            let d = 2.0 * PI * (LANE_HZ[from] - LANE_HZ[to]) / RATE;
            let sum =
                (0..FULL).fold(Complex::ZERO, |sum, m| sum + Complex::from_angle(d * m as f32));
            *cell = sum.scale(1.0 / FULL as f32);
        }
    }
    Leakage(table)
});

impl Leakage {
    fn get(&self, from: usize, to: usize) -> Complex {
        self.0[from][to]
    }

    /// Given the bins of lanes `a` and `b`, the bins each tone would have alone: the 2×2
    /// leakage system solved.
    fn separate(&self, a: usize, b: usize, bin_a: Complex, bin_b: Complex) -> (Complex, Complex) {
        let (b_in_a, a_in_b) = (self.get(b, a), self.get(a, b));
        let det = Complex::ONE - b_in_a * a_in_b;
        let inverse = det.conj().scale(1.0 / det.norm_sqr());
        ((bin_a - b_in_a * bin_b) * inverse, (bin_b - a_in_b * bin_a) * inverse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::Bank;

    fn blocks(samples: &[i16]) -> Vec<Block> {
        let mut bank = Bank::new();
        let mut analyzer = Analyzer::new();
        let mut out = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let (n, half) = bank.feed(rest);
            rest = &rest[n..];
            if let Some(block) = half.and_then(|h| analyzer.push(h)) {
                out.push(block);
            }
        }
        out
    }

    fn sines(parts: &[(f32, f32)], n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE;
                parts.iter().map(|(hz, a)| a * (2.0 * PI * hz * t + 0.4).sin()).sum::<f32>() as i16
            })
            .collect()
    }

    #[test]
    fn phase_step_measures_frequency_error() {
        for (hz, lane) in [(697.0 * 1.015, 0), (697.0 * 0.965, 0), (1633.0 * 1.035, 7), (1336.0, 5)]
        {
            let b = blocks(&sines(&[(hz, 8000.0)], 8 * HALF));
            let measured = step_to_hz(b[3].step()[if lane < 4 { 0 } else { 1 }]);
            let expected = hz - LANE_HZ[lane];
            assert!((measured - expected).abs() < 1.5, "{hz}: {measured} vs {expected}");
        }
    }

    #[test]
    fn dial_tone_energy_is_separated() {
        let a = 6000.0;
        let b = blocks(&sines(&[(350.0, a), (440.0, a), (852.0, a), (1477.0, a)], 6 * HALF));
        let block = b[3];
        let expected = a * a / 2.0 * FULL as f32 * 2.0;
        assert!((block.energy / expected - 2.0).abs() < 0.2, "{}", block.energy / expected);
        assert!(
            (block.dial_energy / expected - 1.0).abs() < 0.05,
            "{}",
            block.dial_energy / expected
        );
    }
}
