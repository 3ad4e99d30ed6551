//! Sequence-number bookkeeping for one RTP source (RFC 3550 appendix A.1): what is new, what
//! is a duplicate, what is too old, and when the sender restarted its numbering.

/// Forward jumps larger than this are a restart candidate.
const MAX_DROPOUT: u16 = 3000;
/// Backward jumps larger than this are a restart candidate.
const MAX_MISORDER: u16 = 100;
/// How far back duplicates are recognised.
const WINDOW: u16 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// The highest sequence number so far; `missing` numbers were skipped before it.
    New {
        missing: u16,
    },
    /// Older than the highest, not seen before.
    Reordered,
    Duplicate,
    /// Far outside the window; a second packet following it confirms a restart.
    Stray,
    /// The sender restarted its numbering (two packets in a row confirmed the jump).
    Restart,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqWindow {
    max: u16,
    /// Bit i: `max - i` has been seen.
    seen: u64,
    /// The number that would confirm a restart.
    bad: Option<u16>,
}

impl SeqWindow {
    pub(crate) fn new(first: u16) -> SeqWindow {
        SeqWindow { max: first, seen: 1, bad: None }
    }

    pub(crate) fn check(&mut self, seq: u16) -> SeqCheck {
        let ahead = seq.wrapping_sub(self.max);
        let behind = self.max.wrapping_sub(seq);
        if ahead != 0 && ahead <= MAX_DROPOUT {
            self.seen = if ahead >= 64 { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.max = seq;
            self.bad = None;
            return SeqCheck::New { missing: ahead - 1 };
        }
        if behind <= MAX_MISORDER {
            if behind >= WINDOW {
                return SeqCheck::Stray;
            }
            let bit = 1u64 << behind;
            if self.seen & bit != 0 {
                return SeqCheck::Duplicate;
            }
            self.seen |= bit;
            return SeqCheck::Reordered;
        }
        if self.bad == Some(seq) {
            *self = SeqWindow::new(seq);
            return SeqCheck::Restart;
        }
        self.bad = Some(seq.wrapping_add(1));
        SeqCheck::Stray
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_reordered_duplicate_across_the_wrap() {
        let mut w = SeqWindow::new(65534);
        assert_eq!(w.check(65535), SeqCheck::New { missing: 0 });
        assert_eq!(w.check(2), SeqCheck::New { missing: 2 });
        assert_eq!(w.check(0), SeqCheck::Reordered);
        assert_eq!(w.check(0), SeqCheck::Duplicate);
        assert_eq!(w.check(2), SeqCheck::Duplicate);
        assert_eq!(w.check(65535), SeqCheck::Duplicate);
        assert_eq!(w.check(1), SeqCheck::Reordered);
        assert_eq!(w.check(2u16.wrapping_sub(80)), SeqCheck::Stray);
    }

    #[test]
    fn a_restart_needs_two_packets_in_a_row() {
        let mut w = SeqWindow::new(1000);
        assert_eq!(w.check(40000), SeqCheck::Stray);
        assert_eq!(w.check(1001), SeqCheck::New { missing: 0 });
        assert_eq!(w.check(40000), SeqCheck::Stray);
        assert_eq!(w.check(40001), SeqCheck::Restart);
        assert_eq!(w.check(40002), SeqCheck::New { missing: 0 });
    }
}
