//! One report per key press: the in-band detector and the telephone-event tracker may both
//! see the same press (phones often send both); whichever reports it first owns it, and the
//! other's report of an overlapping press of the same key is absorbed.

use std::collections::VecDeque;

use ivrpay_dtmf::Digit;

/// Presses of the same key from the two sources count as one when their spans overlap,
/// allowing this much misalignment between the event timestamps and the audio (20 ms; two
/// real presses are at least 40 ms apart).
const TOLERANCE: u64 = 160;
const REMEMBERED: usize = 8;

/// Where a digit was heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigitSource {
    /// DTMF tones in the customer's audio.
    InBand,
    /// RFC 4733 telephone-event packets.
    Rfc4733,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merged {
    /// Report it.
    Report,
    /// Already reported by the other source.
    Absorbed,
}

#[derive(Clone, Copy, Debug)]
struct Press {
    digit: Digit,
    source: DigitSource,
    start: u64,
    end: Option<u64>,
    reported: bool,
}

impl Press {
    fn overlaps(&self, start: u64, end: Option<u64>) -> bool {
        let self_end = self.end.map_or(u64::MAX, |e| e.saturating_add(TOLERANCE));
        let other_end = end.map_or(u64::MAX, |e| e.saturating_add(TOLERANCE));
        start <= self_end && self.start <= other_end
    }
}

#[derive(Debug)]
pub(crate) struct DigitMerger {
    presses: VecDeque<Press>,
}

impl DigitMerger {
    pub(crate) fn new() -> DigitMerger {
        DigitMerger { presses: VecDeque::with_capacity(REMEMBERED) }
    }

    /// A press began at sample `start`.
    pub(crate) fn began(&mut self, source: DigitSource, digit: Digit, start: u64) -> Merged {
        let reported = !self.owned_by_other(source, digit, start, None);
        self.remember(Press { digit, source, start, end: None, reported });
        if reported { Merged::Report } else { Merged::Absorbed }
    }

    /// A press that began at `start` ended at `end`.
    pub(crate) fn ended(
        &mut self,
        source: DigitSource,
        digit: Digit,
        start: u64,
        end: u64,
    ) -> Merged {
        let found = self.presses.iter_mut().rev().find(|p| {
            p.source == source && p.digit == digit && p.start == start && p.end.is_none()
        });
        if let Some(p) = found {
            p.end = Some(end);
            return if p.reported { Merged::Report } else { Merged::Absorbed };
        }
        // An end without a beginning: decide on the whole span.
        let reported = !self.owned_by_other(source, digit, start, Some(end));
        self.remember(Press { digit, source, start, end: Some(end), reported });
        if reported { Merged::Report } else { Merged::Absorbed }
    }

    fn owned_by_other(
        &self,
        source: DigitSource,
        digit: Digit,
        start: u64,
        end: Option<u64>,
    ) -> bool {
        self.presses
            .iter()
            .any(|p| p.source != source && p.digit == digit && p.reported && p.overlaps(start, end))
    }

    fn remember(&mut self, press: Press) {
        if self.presses.len() == REMEMBERED {
            self.presses.pop_front();
        }
        self.presses.push_back(press);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digit {
        Digit::from_char(c).expect("key")
    }

    #[test]
    fn the_same_press_from_both_sources_is_reported_once() {
        let mut m = DigitMerger::new();
        assert_eq!(m.began(DigitSource::Rfc4733, d('5'), 1000), Merged::Report);
        assert_eq!(m.began(DigitSource::InBand, d('5'), 1010), Merged::Absorbed);
        assert_eq!(m.ended(DigitSource::Rfc4733, d('5'), 1000, 1800), Merged::Report);
        assert_eq!(m.ended(DigitSource::InBand, d('5'), 1010, 1790), Merged::Absorbed);
        // The in-band detector first this time.
        assert_eq!(m.began(DigitSource::InBand, d('5'), 3000), Merged::Report);
        assert_eq!(m.began(DigitSource::Rfc4733, d('5'), 2990), Merged::Absorbed);
        assert_eq!(m.ended(DigitSource::InBand, d('5'), 3000, 3800), Merged::Report);
        assert_eq!(m.ended(DigitSource::Rfc4733, d('5'), 2990, 3810), Merged::Absorbed);
    }

    #[test]
    fn different_presses_are_all_reported() {
        let mut m = DigitMerger::new();
        assert_eq!(m.began(DigitSource::Rfc4733, d('1'), 0), Merged::Report);
        assert_eq!(m.ended(DigitSource::Rfc4733, d('1'), 0, 800), Merged::Report);
        // Another key at the same time, and the same key after a 40 ms pause.
        assert_eq!(m.began(DigitSource::InBand, d('2'), 100), Merged::Report);
        assert_eq!(m.began(DigitSource::InBand, d('1'), 1120), Merged::Report);
        // Same source, same key, overlapping: never merged (the detector decides that).
        assert_eq!(m.began(DigitSource::Rfc4733, d('9'), 5000), Merged::Report);
        assert_eq!(m.began(DigitSource::Rfc4733, d('9'), 5001), Merged::Report);
    }
}
