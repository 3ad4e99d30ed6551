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

/// Masks DTMF in a stream. Feed input frames of any size; each call writes as many output
/// samples, delayed by the lookahead.
#[derive(Clone, Debug)]
pub struct Masker {
    config: MaskerConfig,
    suspect: Criteria,
    detector: Detector,
    delay: DelayLine,
    replacement: Replacement,
    /// Spans to mask that have not been fully written out, in order.
    pending: VecDeque<Span>,
    /// Output samples written so far. Output sample j is input sample j − lookahead.
    written: u64,
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
            suspect: suspect_criteria(),
            detector: Detector::new(config.detector),
            delay: DelayLine::new(config.lookahead),
            replacement: Replacement::new(config.mode),
            pending: VecDeque::with_capacity(4),
            written: 0,
            events: VecDeque::with_capacity(8),
        }
    }

    pub fn config(&self) -> &MaskerConfig {
        &self.config
    }

    /// Whether the masker is masking, or about to: a tone is sounding or under suspicion.
    pub fn is_masking(&self) -> bool {
        !self.pending.is_empty() || self.detector.is_active()
    }

    /// Masks `input` into `output` (same length), `lookahead` samples later.
    ///
    /// # Panics
    /// If the two slices differ in length (a programming error, not an input error).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) {
        assert_eq!(input.len(), output.len(), "masker input and output must have the same length");
        let mut done = 0;
        while done < input.len() {
            let (taken, block) = self.detector.feed(&input[done..]);
            if let Some(decided) = block {
                self.on_block(&decided);
            }
            self.write(&input[done..done + taken], &mut output[done..done + taken]);
            done += taken;
        }
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
        let output_end = self.written.saturating_sub(self.config.lookahead as u64);
        while let Some(span) = self.pending.pop_front() {
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

    /// Input index of the next sample to be written out (may be "before the stream" while
    /// the delay line still holds its initial silence).
    fn next_out(&self) -> u64 {
        self.written.saturating_sub(self.config.lookahead as u64)
    }

    fn on_block(&mut self, decided: &Decided) {
        let end = decided.end;
        let hangover = self.config.hangover as u64;
        if decided.block.classify(&self.suspect).is_some() {
            let start = (end - FULL as u64).saturating_sub(PRE_ROLL).max(self.next_out());
            self.mask(Span { start, end: end + hangover });
        } else if decided.sounding {
            // The confirmed digit is still there in a block the suspect test did not like
            // (noise, a drop-out's edge): keep masking it.
            let start = (end - FULL as u64).max(self.next_out());
            self.mask(Span { start, end: end + hangover });
        }
    }

    fn mask(&mut self, span: Span) {
        match self.pending.back_mut() {
            Some(last) if span.start <= last.end + JOIN_GAP => last.end = last.end.max(span.end),
            _ => self.pending.push_back(span),
        }
    }

    /// Pushes input through the delay line and replaces what falls in masked spans.
    fn write(&mut self, input: &[i16], output: &mut [i16]) {
        self.delay.push(input, output);
        let before_stream = (self.config.lookahead as u64).saturating_sub(self.written);
        let skip = (before_stream as usize).min(output.len());
        self.written += output.len() as u64;
        // Input index of output[skip].
        let mut index = self.next_out() - (output.len() - skip) as u64;
        let mut out = &mut output[skip..];
        while !out.is_empty() {
            let Some(span) = self.pending.front().copied() else { break };
            if index >= span.end {
                self.pending.pop_front();
                self.events.push_back(MaskerEvent::Masked(span));
                continue;
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
        // A span that ended exactly here is complete.
        if let Some(span) = self.pending.front().copied() {
            if index >= span.end {
                self.pending.pop_front();
                self.events.push_back(MaskerEvent::Masked(span));
            }
        }
    }
}
