//! A short history of half blocks, used to place a digit's start and end to the sample.
//!
//! Decisions are made on 102-sample blocks, which only says that a tone covered most of a
//! block. The bin magnitude of a 51-sample half block grows linearly with the number of
//! tone samples in it, so the half where a tone starts or stops tells how far into it the
//! edge lies.

use crate::bank::{Complex, HALF, HalfBlock};

const CAPACITY: usize = 16;
/// A half whose tone amplitude is below this share of the steady amplitude holds an edge.
/// The two tones leak into each other's 51-sample bins by up to ±10 %, so a full half may
/// read a little low.
const FULL_SHARE: f32 = 0.8;

#[derive(Clone, Copy, Debug)]
struct Entry {
    start: u64,
    /// Bins of the eight DTMF lanes (magnitudes are taken only when an edge is placed).
    bins: [Complex; 8],
}

/// Ring of the most recent contiguous half blocks.
#[derive(Clone, Debug)]
pub(crate) struct History {
    entries: [Entry; CAPACITY],
    /// Index of the next slot to write.
    head: usize,
    len: usize,
}

impl History {
    pub(crate) fn new() -> History {
        let empty = Entry { start: 0, bins: [Complex::ZERO; 8] };
        History { entries: [empty; CAPACITY], head: 0, len: 0 }
    }

    /// Forgets everything (after a gap: older halves are no longer contiguous).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    pub(crate) fn push(&mut self, start: u64, half: &HalfBlock) {
        let bins = std::array::from_fn(|k| half.bins[k]);
        self.entries[self.head] = Entry { start, bins };
        self.head = (self.head + 1) % CAPACITY;
        self.len = (self.len + 1).min(CAPACITY);
    }

    /// Entries from oldest to newest.
    fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        (0..self.len).map(move |i| &self.entries[(self.head + CAPACITY - self.len + i) % CAPACITY])
    }

    fn amplitude(e: &Entry, row: usize, col: usize) -> f32 {
        e.bins[row].norm_sqr().sqrt() + e.bins[col].norm_sqr().sqrt()
    }

    /// Mean tone amplitude (row + column lanes) of the halves starting at or after `from`.
    pub(crate) fn mean_amplitude(&self, from: u64, row: usize, col: usize) -> f32 {
        let (sum, n) = self
            .iter()
            .filter(|e| e.start >= from)
            .fold((0.0, 0u32), |(sum, n), e| (sum + Self::amplitude(e, row, col), n + 1));
        if n == 0 { 0.0 } else { sum / n as f32 }
    }

    /// Where the tone that fills the half starting at `inside` began, walking back through
    /// the halves before it.
    pub(crate) fn onset(&self, inside: u64, row: usize, col: usize, steady: f32) -> u64 {
        let mut onset = inside;
        for e in self.iter().rev().skip_while(|e| e.start > inside) {
            if e.start + HALF as u64 != onset && e.start != inside {
                break; // not contiguous
            }
            let share = Self::amplitude(e, row, col) / steady;
            if share < FULL_SHARE {
                return e.start + HALF as u64 - (share.max(0.0) * HALF as f32) as u64;
            }
            onset = e.start;
        }
        onset
    }

    /// Where the tone that fills the half starting at `inside` ended, walking forward.
    pub(crate) fn offset(&self, inside: u64, row: usize, col: usize, steady: f32) -> u64 {
        let mut end = inside + HALF as u64;
        for e in self.iter().skip_while(|e| e.start < inside) {
            if e.start != inside && e.start != end {
                break;
            }
            let share = Self::amplitude(e, row, col) / steady;
            if share < FULL_SHARE {
                return e.start + (share.clamp(0.0, 1.0) * HALF as f32) as u64;
            }
            end = e.start + HALF as u64;
        }
        end
    }
}
