//! The masker: hides every DTMF tone from the agent's audio, from its first sample.
//!
//! The confirming detector needs four decision blocks (about 27 ms of tone) before it
//! declares a digit; anything it lets through before that is enough for an eavesdropper
//! (multimon-ng decodes 17 ms fragments). So masking is driven by a *suspect* test instead:
//! the same decision blocks against liberal thresholds (no frequency test, any level above
//! the codec's noise floor, wide twist, half the block energy). A tone passes the suspect
//! test on the first block that is half tone, at most 13 ms after its onset. The output is
//! held back by a lookahead delay (default 20 ms), so when the suspect test fires, the
//! tone's first samples have not left yet and the mask reaches back over them (plus one
//! half block, 6.4 ms, of margin). Masking lasts while suspect blocks keep coming or the
//! confirmed digit is sounding, plus a hangover.
//!
//! Masked samples are replaced (see [`MaskMode`]); all other samples pass bit-exact, only
//! delayed.

use std::collections::VecDeque;

use crate::analysis::{Criteria, Estimate, Thresholds};
use crate::bank::{FULL, HALF, RATE};
use crate::delay::DelayLine;
use crate::detector::{Decided, Detector, DetectorConfig, DetectorEvent};
use crate::replacement::{MaskMode, Replacement};

/// Mask this far before the first suspect block: a tone may start up to half a block
/// before a block that is half tone.
const PRE_ROLL: u64 = HALF as u64;
/// Masked spans closer than this are joined, so no sliver of a tone is left between them;
/// digits 40 ms apart keep separate spans (the agent hears one beep per key).
const JOIN_GAP: u64 = 80;

/// Masker settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskerConfig {
    pub mode: MaskMode,
    /// Delay of the output, in samples. 160 (20 ms, one packet) by default. Below about
    /// 110 samples the start of a tone can no longer be masked.
    pub lookahead: usize,
    /// Masking continues this many samples after the last tone block (and after a confirmed
    /// digit has ended). The last block that looks like tone ends within half a block of the
    /// tone's end, so one half block (51 samples) is enough.
    pub hangover: usize,
    pub detector: DetectorConfig,
}

impl Default for MaskerConfig {
    fn default() -> Self {
        MaskerConfig {
            mode: MaskMode::Tone,
            lookahead: 160,
            hangover: HALF,
            detector: DetectorConfig::default(),
        }
    }
}

impl MaskerConfig {
    /// Sets the lookahead in milliseconds.
    pub fn with_lookahead_ms(mut self, ms: f32) -> Self {
        self.lookahead = (ms.max(0.0) * RATE / 1000.0).round() as usize;
        self
    }
}

/// A run of masked input samples, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// What the masker reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaskerEvent {
    /// From the confirming detector.
    Digit(DetectorEvent),
    /// A masked span has been fully written out.
    Masked(Span),
}

/// The suspect test: a single block that looks like a tone pair. Wider than the detector
/// where an eavesdropper's decoder is (any level above the codec's noise floor, twist to
/// 12 dB either way, 4 dB peak ratio, no frequency test), strict on the energy share (85 %,
/// compensated for in-spec frequency errors from the block's own halves) because that is
/// what speech and music fail. Tuned on the talk-off corpus against the onset latency of
/// 3 000 in-spec tones (levels 0 to −36 dBm0, twist, ±1.5 %, noise): it fires at most 149
/// samples after a tone starts, within the 160-sample lookahead, and on 8 blocks of 44
/// minutes of speech and music.
fn suspect_criteria() -> Criteria {
    Criteria::from(Thresholds {
        min_level_dbm0: -70.0,
        max_low_louder_db: 12.0,
        max_high_louder_db: 12.0,
        min_peak_db: 4.0,
        min_energy_share: 0.85,
        max_compensated_error: 0.015,
        estimate: Estimate::Halves,
        min_half_balance: 0.0,
    })
}

/// Which input samples to mask: spans decided on the input side, consumed on the output
/// side `lookahead` samples later.
#[derive(Clone, Debug)]
struct MaskPlan {
    suspect: Criteria,
    lookahead: u64,
    hangover: u64,
    /// Spans that have not been fully written out, in order.
    pending: VecDeque<Span>,
    /// Output samples written so far. Output sample j is input sample j − lookahead.
    written: u64,
}

impl MaskPlan {
    /// Input index of the next sample to be written out (0 while the delay line still
    /// holds its initial silence).
    fn next_out(&self) -> u64 {
        self.written.saturating_sub(self.lookahead)
    }

    fn on_block(&mut self, decided: &Decided) {
        let block_start = decided.end - FULL as u64;
        let start = if decided.block.classify(&self.suspect).is_some() {
            block_start.saturating_sub(PRE_ROLL)
        } else if decided.sounding {
            // The confirmed digit is still there in a block the suspect test did not like
            // (noise, a drop-out's edge): keep masking it.
            block_start
        } else {
            return;
        };
        let span = Span { start: start.max(self.next_out()), end: decided.end + self.hangover };
        match self.pending.back_mut() {
            Some(last) if span.start <= last.end + JOIN_GAP => last.end = last.end.max(span.end),
            _ => self.pending.push_back(span),
        }
    }
}

/// Masks DTMF in a stream. Feed input frames of any size; each call writes as many output
/// samples, delayed by the lookahead.
#[derive(Clone, Debug)]
pub struct Masker {
    config: MaskerConfig,
    detector: Detector,
    plan: MaskPlan,
    delay: DelayLine,
    replacement: Replacement,
    events: VecDeque<MaskerEvent>,
}

impl Default for Masker {
    fn default() -> Self {
        Masker::new(MaskerConfig::default())
    }
}

impl Masker {
    pub fn new(config: MaskerConfig) -> Masker {
        Masker {
            config,
            detector: Detector::new(config.detector),
            plan: MaskPlan {
                suspect: suspect_criteria(),
                lookahead: config.lookahead as u64,
                hangover: config.hangover as u64,
                pending: VecDeque::with_capacity(4),
                written: 0,
            },
            delay: DelayLine::new(config.lookahead),
            replacement: Replacement::new(config.mode),
            events: VecDeque::with_capacity(8),
        }
    }

    pub fn config(&self) -> &MaskerConfig {
        &self.config
    }

    /// Whether the masker is masking, or about to: a tone is sounding or under suspicion.
    pub fn is_masking(&self) -> bool {
        !self.plan.pending.is_empty() || self.detector.is_active()
    }

    /// Masks `input` into `output` (same length), `lookahead` samples later.
    ///
    /// # Panics
    /// If the two slices differ in length (a programming error, not an input error).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) {
        assert_eq!(input.len(), output.len(), "masker input and output must have the same length");
        // Decide on every block of the frame first, then write the frame out: a decision
        // can only reach further back that way, never less far.
        let mut done = 0;
        while done < input.len() {
            let (taken, decided) = self.detector.feed(&input[done..]);
            if let Some(decided) = decided {
                self.plan.on_block(decided);
            }
            done += taken;
        }
        self.write(input, output);
        self.collect_detector_events();
    }

    /// `samples` samples of input are missing (lost packets): the detector is told, and
    /// silence goes through the delay line in their place (so `output` gets `samples`
    /// samples, delayed audio first).
    ///
    /// # Panics
    /// If `output` is not `samples` long.
    pub fn fill_in(&mut self, samples: usize, output: &mut [i16]) {
        assert_eq!(samples, output.len(), "fill_in output must be as long as the gap");
        self.detector.fill_in(samples);
        let silence = [0i16; HALF];
        for chunk in output.chunks_mut(HALF) {
            let n = chunk.len();
            self.write(&silence[..n], chunk);
        }
        self.collect_detector_events();
    }

    /// Ends the stream: closes a digit still sounding and reports spans cut off by the end.
    /// Whatever is still in the delay line can be drained first with [`Masker::process`]
    /// on `lookahead` samples of silence.
    pub fn finish(&mut self) {
        self.detector.finish();
        self.collect_detector_events();
        let output_end = self.plan.next_out();
        while let Some(span) = self.plan.pending.pop_front() {
            let clipped = Span { start: span.start, end: span.end.min(output_end) };
            if !clipped.is_empty() {
                self.events.push_back(MaskerEvent::Masked(clipped));
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<MaskerEvent> {
        self.events.pop_front()
    }

    fn collect_detector_events(&mut self) {
        while let Some(e) = self.detector.poll_event() {
            self.events.push_back(MaskerEvent::Digit(e));
        }
    }

    /// Pushes input through the delay line and replaces what falls in masked spans.
    fn write(&mut self, input: &[i16], output: &mut [i16]) {
        self.delay.push(input, output);
        let plan = &mut self.plan;
        let before_stream = plan.lookahead.saturating_sub(plan.written);
        let skip = (before_stream as usize).min(output.len());
        plan.written += output.len() as u64;
        // Input index of output[skip].
        let mut index = plan.next_out() - (output.len() - skip) as u64;
        let mut out = &mut output[skip..];
        while let Some(span) = plan.pending.front().copied() {
            if index >= span.end {
                plan.pending.pop_front();
                self.events.push_back(MaskerEvent::Masked(span));
                continue;
            }
            if out.is_empty() {
                break;
            }
            if index < span.start {
                let clear = ((span.start - index) as usize).min(out.len());
                out = &mut out[clear..];
                index += clear as u64;
                continue;
            }
            if index == span.start {
                self.replacement.restart();
            }
            let n = ((span.end - index) as usize).min(out.len());
            let (masked, rest) = out.split_at_mut(n);
            self.replacement.fill(masked, index - span.start, span.end - index);
            out = rest;
            index += n as u64;
        }
    }
}
