//! The confirming detector: decides which digits were pressed, when, and how loud.
//!
//! Rules (ITU-T Q.24, AT&T column, with margin; see DESIGN.md §4):
//! - a digit begins after four consecutive decision blocks (hop 6.4 ms) show it;
//! - it ends after five blocks without it (32 ms): a 10 ms drop-out misses at most three
//!   blocks, a 40 ms pause at least seven;
//! - in every block each tone is at −42 dBm0 or louder (Q.24: −25; we accept to −36 with
//!   margin and reject −50), 5 dB above every other tone of its group, the pair holds 65 %
//!   of the block's energy once dial tone is set aside, and the tone fills both halves of
//!   the block (at least half of each): four such blocks need 26 ms of tone, which rejects
//!   23 ms tones and leaves 40 ms ones a block to spare;
//! - over the four blocks together, the pair holds 80 % of the energy, each tone is 8 dB
//!   above the others of its group, the twist is within 10 dB low-louder and 6 dB
//!   high-louder (Q.24 asks for 8 and 4), and each tone's measured frequency is within
//!   2.5 % of nominal (1.5 % is accepted, 3.5 % rejected: the estimate is good to a
//!   fraction of a hertz).
//!
//! Why some tests are made over four blocks: in a single 102-sample block the tones leak into
//! each other's bins (and dial tone into theirs), which moves a block's twist by ±1.3 dB, its
//! peak ratio by several dB when the tones are twisted and off-centre, and its energy share
//! by ±25 % under dial tone. The leak's sign changes from block to block, so the sums over
//! the run are accurate where any one block is not. Energy share and peak ratio are what
//! keep speech from passing.

use std::collections::VecDeque;

use crate::analysis::{
    Analyzer, Block, Criteria, Estimate, Thresholds, offset_compensation, step_to_hz,
};
use crate::bank::{Bank, Complex, FULL, HALF, LANE_HZ};
use crate::digit::Digit;
use crate::history::History;
use crate::level::{db_to_power, mean_square_dbm0};

const HITS_TO_BEGIN: u32 = 4;
const MISSES_TO_END: u32 = 5;
/// A gap from lost packets this long or shorter does not end a digit that carries on after it.
const MAX_BRIDGED_GAP: usize = 480;

/// Share of the energy the tone pair must hold over a run of blocks, and in each block.
const RUN_ENERGY_SHARE: f32 = 0.8;
const BLOCK_ENERGY_SHARE: f32 = 0.65;
/// Per-block twist limits are this much wider than the run's (see the module docs).
const BLOCK_TWIST_SLACK_DB: f32 = 3.0;
/// Each tone must be this far above every other tone of its group, over a run and in a block.
const RUN_PEAK_DB: f32 = 8.0;
const BLOCK_PEAK_DB: f32 = 5.0;

/// Tunable limits of the confirming detector. The defaults meet Q.24 with margin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Weakest tone accepted, per tone, in dBm0.
    pub min_level_dbm0: f32,
    /// Largest twist with the low-group tone louder, in dB ("normal" twist).
    pub max_low_louder_db: f32,
    /// Largest twist with the high-group tone louder, in dB ("reverse" twist).
    pub max_high_louder_db: f32,
    /// Largest frequency error of either tone, as a fraction of its nominal frequency.
    pub max_frequency_error: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            min_level_dbm0: -42.0,
            max_low_louder_db: 10.0,
            max_high_louder_db: 6.0,
            max_frequency_error: 0.025,
        }
    }
}

impl DetectorConfig {
    fn block_criteria(&self) -> Criteria {
        Criteria::from(Thresholds {
            min_level_dbm0: self.min_level_dbm0,
            max_low_louder_db: self.max_low_louder_db + BLOCK_TWIST_SLACK_DB,
            max_high_louder_db: self.max_high_louder_db + BLOCK_TWIST_SLACK_DB,
            min_peak_db: BLOCK_PEAK_DB,
            min_energy_share: BLOCK_ENERGY_SHARE,
            max_compensated_error: self.max_frequency_error,
            estimate: Estimate::Blocks,
            min_half_balance: 0.5,
        })
    }
}

/// A complete key press.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    pub digit: Digit,
    /// First sample of the tone.
    pub start: u64,
    /// One past the last sample of the tone.
    pub end: u64,
    /// Mean level of the two tones, in dBm0 per tone.
    pub level_dbm0: f32,
    /// High-group level minus low-group level, in dB.
    pub twist_db: f32,
}

/// What the detector reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DetectorEvent {
    /// A digit was confirmed; it is still sounding. `start` is its first sample.
    Began { digit: Digit, start: u64 },
    /// A digit ended.
    Ended(Tone),
}

/// A decision block as the masker sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decided {
    pub(crate) block: Block,
    /// Index one past the block's last sample.
    pub(crate) end: u64,
    /// The block shows the confirmed digit that is sounding.
    pub(crate) sounding: bool,
}

/// Consecutive blocks that showed the same digit.
#[derive(Clone, Copy, Debug)]
struct Run {
    digit: Digit,
    hits: u32,
    first_block_start: u64,
    /// Summed phase steps: their arguments are the averaged frequency errors.
    row_step: Complex,
    col_step: Complex,
    /// Summed tone energy of every DTMF lane.
    power: [f32; 8],
    /// Summed block energy without dial tone.
    signal_energy: f32,
}

impl Run {
    fn start(digit: Digit, block: &Block, block_start: u64) -> Run {
        Run {
            digit,
            hits: 0,
            first_block_start: block_start,
            row_step: Complex::ZERO,
            col_step: Complex::ZERO,
            power: [0.0; 8],
            signal_energy: 0.0,
        }
        .add(block)
    }

    fn add(mut self, block: &Block) -> Run {
        self.hits += 1;
        let [row_step, col_step] = block.step();
        self.row_step = self.row_step + row_step;
        self.col_step = self.col_step + col_step;
        for (sum, p) in self.power.iter_mut().zip(&block.power) {
            *sum += p;
        }
        self.signal_energy += block.signal_energy();
        self
    }

    fn row_power(&self) -> f32 {
        self.power[self.digit.row()]
    }

    fn col_power(&self) -> f32 {
        self.power[self.digit.col() + 4]
    }

    /// The run-wide tests: frequency, twist and energy share over all its blocks.
    fn is_dtmf(&self, config: &DetectorConfig) -> bool {
        let (row, col) = (self.digit.row(), self.digit.col() + 4);
        let (row_p, col_p) = (self.row_power(), self.col_power());
        let (row_err, col_err) = (step_to_hz(self.row_step), step_to_hz(self.col_step));
        let max = config.max_frequency_error;
        let frequency_ok =
            (row_err / LANE_HZ[row]).abs() <= max && (col_err / LANE_HZ[col]).abs() <= max;
        let twist_ok = row_p <= col_p * db_to_power(config.max_low_louder_db)
            && col_p <= row_p * db_to_power(config.max_high_louder_db);
        let peak = db_to_power(RUN_PEAK_DB);
        let peak_ok = (0..8)
            .filter(|&k| k != row && k != col)
            .all(|k| self.power[k] * peak < if k < 4 { row_p } else { col_p });
        let pair = row_p * offset_compensation(row_err, max * LANE_HZ[row])
            + col_p * offset_compensation(col_err, max * LANE_HZ[col]);
        frequency_ok && twist_ok && peak_ok && pair >= RUN_ENERGY_SHARE * self.signal_energy
    }
}

/// The digit currently sounding.
#[derive(Clone, Copy, Debug)]
struct Active {
    digit: Digit,
    start: u64,
    last_hit_end: u64,
    misses: u32,
    hits: u32,
    /// Summed tone energy of the row and column, for the level.
    row_power: f32,
    col_power: f32,
    /// Tone amplitude of a half block full of this tone, to place the end.
    steady_amplitude: f32,
}

/// The confirming DTMF detector. Feed it samples in frames of any size; poll events.
#[derive(Clone, Debug)]
pub struct Detector {
    config: DetectorConfig,
    criteria: Criteria,
    bank: Bank,
    analyzer: Analyzer,
    history: History,
    /// Samples consumed, gaps included: the index of the next sample.
    position: u64,
    run: Option<Run>,
    active: Option<Active>,
    events: VecDeque<DetectorEvent>,
    /// The last decision block, lent to the masker.
    decided: Decided,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(DetectorConfig::default())
    }
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Detector {
        Detector {
            config,
            criteria: config.block_criteria(),
            bank: Bank::new(),
            analyzer: Analyzer::new(),
            history: History::new(),
            position: 0,
            run: None,
            active: None,
            events: VecDeque::with_capacity(8),
            decided: Decided { block: Block::silent(), end: 0, sounding: false },
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Index of the next sample to be fed.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether a confirmed digit is sounding now.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Feeds samples (8 kHz, 16-bit linear). Poll [`Detector::poll_event`] afterwards.
    pub fn process(&mut self, samples: &[i16]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let (taken, _) = self.feed(rest);
            rest = &rest[taken..];
        }
    }

    /// Tells the detector that `samples` samples are missing here (lost packets). A digit in
    /// progress survives a gap of up to 60 ms if it carries on afterwards.
    pub fn fill_in(&mut self, samples: usize) {
        self.bank.reset();
        self.analyzer.reset();
        self.history.clear();
        self.run = None;
        self.position += samples as u64;
        if samples > MAX_BRIDGED_GAP {
            self.end_active();
        }
    }

    /// Ends the stream: a digit still sounding is reported as ended at its last tone block.
    pub fn finish(&mut self) {
        self.end_active();
        self.run = None;
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DetectorEvent> {
        self.events.pop_front()
    }

    /// Feeds samples up to the end of the current half block. Returns how many were taken
    /// and, when a decision block completed, what the masker needs to know about it.
    pub(crate) fn feed(&mut self, samples: &[i16]) -> (usize, Option<&Decided>) {
        let half_start = self.position - self.bank.position() as u64;
        let (taken, half) = self.bank.feed(samples);
        self.position += taken as u64;
        let Some(half) = half else { return (taken, None) };
        self.history.push(half_start, &half);
        let Some(block) = self.analyzer.push(half) else { return (taken, None) };
        let end = self.position;
        let hit = block.classify(&self.criteria);
        let sounding = self.active.is_some_and(|a| hit == Some(a.digit));
        self.on_block(&block, end, hit);
        self.decided = Decided { block, end, sounding };
        (taken, Some(&self.decided))
    }

    fn on_block(&mut self, block: &Block, end: u64, hit: Option<Digit>) {
        let start = end - FULL as u64;
        self.run = match (self.run, hit) {
            (Some(run), Some(d)) if run.digit == d => Some(run.add(block)),
            (_, Some(digit)) => Some(Run::start(digit, block, start)),
            (_, None) => None,
        };

        if let Some(active) = &mut self.active {
            if hit == Some(active.digit) {
                active.misses = 0;
                active.hits += 1;
                active.last_hit_end = end;
                active.row_power += block.power[block.row];
                active.col_power += block.power[block.col];
            } else {
                active.misses += 1;
                if active.misses >= MISSES_TO_END {
                    self.end_active();
                }
            }
        }

        if let Some(run) = self.run {
            let new_digit = self.active.is_none_or(|a| a.digit != run.digit);
            if run.hits >= HITS_TO_BEGIN && new_digit && run.is_dtmf(&self.config) {
                self.end_active();
                self.begin(run, end);
            }
        }
    }

    fn begin(&mut self, run: Run, end: u64) {
        let (row, col) = (run.digit.row(), run.digit.col() + 4);
        // The halves after the first hit block's first half are all tone.
        let steady = self.history.mean_amplitude(run.first_block_start + HALF as u64, row, col);
        let start = self.history.onset(run.first_block_start + HALF as u64, row, col, steady);
        self.active = Some(Active {
            digit: run.digit,
            start,
            last_hit_end: end,
            misses: 0,
            hits: run.hits,
            row_power: run.row_power(),
            col_power: run.col_power(),
            steady_amplitude: steady,
        });
        self.events.push_back(DetectorEvent::Began { digit: run.digit, start });
    }

    fn end_active(&mut self) {
        let Some(a) = self.active.take() else { return };
        let (row, col) = (a.digit.row(), a.digit.col() + 4);
        let last_full_half = a.last_hit_end - HALF as u64;
        let end =
            self.history.offset(last_full_half, row, col, a.steady_amplitude).max(a.start + 1);
        let per_block = |power: f32| mean_square_dbm0(power / a.hits as f32 / FULL as f32);
        let (low_db, high_db) = (per_block(a.row_power), per_block(a.col_power));
        self.events.push_back(DetectorEvent::Ended(Tone {
            digit: a.digit,
            start: a.start,
            end,
            level_dbm0: (low_db + high_db) / 2.0,
            twist_db: high_db - low_db,
        }));
    }
}
