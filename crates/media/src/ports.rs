//! Local RTP/RTCP port pairs: taken from a configured range, least recently used first, and
//! kept in quarantine for a while after release so that late packets of an ended call never
//! reach the next call on the same ports.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::MediaError;

/// An RTP port (even) and its RTCP port (the next one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortPair {
    pub rtp: u16,
}

impl PortPair {
    pub fn rtcp(self) -> u16 {
        self.rtp + 1
    }
}

/// Hands out port pairs. Sans-IO: it does not bind anything, and time is an argument.
#[derive(Clone, Debug)]
pub struct PortAllocator {
    min: u16,
    max: u16,
    free: VecDeque<PortPair>,
    quarantine: VecDeque<(PortPair, Instant)>,
    quarantine_for: Duration,
    in_use: usize,
}

impl PortAllocator {
    /// Pairs `(p, p + 1)` with `p` even and both in `min..=max`.
    pub fn new(min: u16, max: u16, quarantine: Duration) -> Result<PortAllocator, MediaError> {
        let first = min.checked_add(min % 2).ok_or(MediaError::InvalidPortRange { min, max })?;
        let free: VecDeque<PortPair> = (first..max)
            .step_by(2)
            .map(|rtp| PortPair { rtp })
            .filter(|p| p.rtcp() <= max)
            .collect();
        if free.is_empty() {
            return Err(MediaError::InvalidPortRange { min, max });
        }
        Ok(PortAllocator {
            min,
            max,
            free,
            quarantine: VecDeque::new(),
            quarantine_for: quarantine,
            in_use: 0,
        })
    }

    /// Takes the least recently used free pair.
    pub fn allocate(&mut self, now: Instant) -> Result<PortPair, MediaError> {
        self.expire(now);
        let pair = self
            .free
            .pop_front()
            .ok_or(MediaError::PortsExhausted { min: self.min, max: self.max })?;
        self.in_use += 1;
        Ok(pair)
    }

    /// Gives a pair back; it becomes free after the quarantine.
    pub fn release(&mut self, pair: PortPair, now: Instant) {
        self.in_use = self.in_use.saturating_sub(1);
        self.quarantine.push_back((pair, now + self.quarantine_for));
    }

    /// Pairs in use by calls.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Pairs released but not yet reusable.
    pub fn quarantined(&self) -> usize {
        self.quarantine.len()
    }

    /// Pairs ready to allocate now.
    pub fn available(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.free.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(pair, until)) = self.quarantine.front() {
            if until > now {
                break;
            }
            self.quarantine.pop_front();
            self.free.push_back(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An origin for test time, which the tests then advance by hand.
    #[allow(clippy::disallowed_methods, reason = "tests need one origin instant")]
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn pairs_are_even_and_inside_the_range() {
        let now = origin();
        let mut a = PortAllocator::new(30001, 30006, Duration::ZERO).expect("range");
        let pairs: Vec<_> = std::iter::from_fn(|| a.allocate(now).ok()).collect();
        assert_eq!(pairs, [PortPair { rtp: 30002 }, PortPair { rtp: 30004 }]);
        assert_eq!(a.allocate(now), Err(MediaError::PortsExhausted { min: 30001, max: 30006 }));
        assert!(PortAllocator::new(30001, 30002, Duration::ZERO).is_err());
        assert!(PortAllocator::new(65535, 65535, Duration::ZERO).is_err());
    }

    #[test]
    fn released_pairs_wait_out_the_quarantine_and_are_reused_last() {
        let t0 = origin();
        let q = Duration::from_secs(30);
        let mut a = PortAllocator::new(40000, 40005, q).expect("range");
        let first = a.allocate(t0).expect("free");
        let second = a.allocate(t0).expect("free");
        a.release(first, t0);
        assert_eq!(a.in_use(), 1);
        assert_eq!(a.quarantined(), 1);
        let third = a.allocate(t0).expect("free");
        assert_ne!(third, first);
        assert!(a.allocate(t0 + q - Duration::from_millis(1)).is_err(), "still in quarantine");
        assert_eq!(a.allocate(t0 + q), Ok(first));
        a.release(second, t0 + q);
        a.release(third, t0 + q);
        assert_eq!(a.available(t0 + 2 * q), 2);
        assert_eq!(a.allocate(t0 + 2 * q), Ok(second), "oldest release first");
    }
}
