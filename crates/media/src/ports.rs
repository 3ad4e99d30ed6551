//! Local RTP/RTCP port pairs: taken at random from the free pairs of a configured range, and
//! kept in quarantine for a while after release so that late packets of an ended call never
//! reach the next call on the same ports.
//!
//! Random, not least recently used first: a predictable next pair lets a stranger race a
//! call's customer to its ports before the SDP naming them is even sent (the latching rules
//! in `session::latch` refuse such a racer; this makes it guess as well). The generator is
//! ChaCha (`rand`'s `StdRng`), so seen pairs do not give the next ones away.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::error::MediaError;

/// An RTP port (even) and its RTCP port (the next one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair {
    pub rtp: u16,
}

impl PortPair {
    pub fn rtcp(self) -> u16 {
        self.rtp + 1
    }
}

/// Hands out port pairs. Sans-IO: it does not bind anything, time is an argument and its
/// randomness comes from the seed it is given.
#[derive(Debug)]
pub struct PortAllocator {
    min: u16,
    max: u16,
    /// Pairs out of quarantine, in no particular order.
    free: Vec<PortPair>,
    /// Released pairs and when each may be used again, oldest first.
    quarantine: VecDeque<(PortPair, Instant)>,
    quarantine_for: Duration,
    in_use: usize,
    rng: StdRng,
}

impl PortAllocator {
    /// Pairs `(p, p + 1)` with `p` even and both in `min..=max`; the choice among free pairs
    /// follows `seed` (give it fresh randomness; tests give a fixed one).
    pub fn new(
        min: u16,
        max: u16,
        quarantine: Duration,
        seed: u64,
    ) -> Result<PortAllocator, MediaError> {
        let first = min.checked_add(min % 2).ok_or(MediaError::InvalidPortRange { min, max })?;
        let free: Vec<PortPair> = (first..max)
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
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// Takes a free pair chosen at random (never one in quarantine).
    pub fn allocate(&mut self, now: Instant) -> Result<PortPair, MediaError> {
        self.expire(now);
        if self.free.is_empty() {
            return Err(MediaError::PortsExhausted { min: self.min, max: self.max });
        }
        let pick = self.rng.random_range(0..self.free.len());
        let pair = self.free.swap_remove(pick);
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
            self.free.push(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// An origin for test time, which the tests then advance by hand.
    #[allow(clippy::disallowed_methods, reason = "tests need one origin instant")]
    fn origin() -> Instant {
        Instant::now()
    }

    fn take(a: &mut PortAllocator, n: usize, now: Instant) -> Vec<PortPair> {
        (0..n).map(|_| a.allocate(now).expect("a free pair")).collect()
    }

    #[test]
    fn pairs_are_even_and_inside_the_range() {
        let now = origin();
        let mut a = PortAllocator::new(30001, 30006, Duration::ZERO, 1).expect("range");
        let pairs: BTreeSet<_> = std::iter::from_fn(|| a.allocate(now).ok()).collect();
        assert_eq!(pairs, BTreeSet::from([PortPair { rtp: 30002 }, PortPair { rtp: 30004 }]));
        assert_eq!(a.allocate(now), Err(MediaError::PortsExhausted { min: 30001, max: 30006 }));
        assert!(PortAllocator::new(30001, 30002, Duration::ZERO, 1).is_err());
        assert!(PortAllocator::new(65535, 65535, Duration::ZERO, 1).is_err());
    }

    #[test]
    fn the_choice_is_random_not_the_order_of_the_range() {
        let now = origin();
        let allocate_50 = |seed| {
            let mut a = PortAllocator::new(20000, 29999, Duration::ZERO, seed).expect("range");
            take(&mut a, 50, now)
        };
        let first = allocate_50(1);
        // Least recently used first would hand out 20000, 20002, 20004, ...
        let in_order: Vec<PortPair> = (0..50).map(|i| PortPair { rtp: 20000 + 2 * i }).collect();
        assert_ne!(first, in_order);
        // Nor any run of neighbours: the next pair cannot be told from the last.
        let neighbours = first.windows(2).filter(|w| w[1].rtp.abs_diff(w[0].rtp) == 2).count();
        assert!(neighbours <= 2, "{neighbours} of 49 steps went to the neighbouring pair");
        assert_eq!(first.iter().collect::<BTreeSet<_>>().len(), 50, "every pair once");
        assert_ne!(allocate_50(2), first, "another seed, another sequence");
        assert_eq!(allocate_50(1), first, "the seed alone decides");
    }

    #[test]
    fn a_pair_in_quarantine_is_never_chosen() {
        let t0 = origin();
        let q = Duration::from_secs(30);
        let mut a = PortAllocator::new(40000, 40039, q, 3).expect("range"); // 20 pairs
        let first: BTreeSet<_> = take(&mut a, 10, t0).into_iter().collect();
        for &pair in &first {
            a.release(pair, t0);
        }
        assert_eq!((a.in_use(), a.quarantined(), a.available(t0)), (0, 10, 10));
        let second: BTreeSet<_> = take(&mut a, 10, t0).into_iter().collect();
        assert!(first.is_disjoint(&second), "a pair in quarantine was handed out");
        assert!(a.allocate(t0 + q - Duration::from_millis(1)).is_err(), "still in quarantine");
        let third: BTreeSet<_> = take(&mut a, 10, t0 + q).into_iter().collect();
        assert_eq!(third, first, "back after the quarantine");
    }

    #[test]
    fn over_many_calls_no_pair_is_given_twice_or_early() {
        let t0 = origin();
        let q = Duration::from_secs(10);
        let mut a = PortAllocator::new(50000, 50199, q, 4).expect("range"); // 100 pairs
        let mut held: Vec<PortPair> = Vec::new();
        let mut resting: Vec<(PortPair, Instant)> = Vec::new();
        for step in 0..2000u64 {
            let now = t0 + Duration::from_millis(step * 250);
            resting.retain(|&(_, until)| until > now);
            if step % 3 != 2 {
                if let Ok(pair) = a.allocate(now) {
                    assert!(!held.contains(&pair), "step {step}: {pair:?} is in use");
                    assert!(resting.iter().all(|r| r.0 != pair), "step {step}: {pair:?} rests");
                    held.push(pair);
                }
            }
            if !held.is_empty() && (held.len() > 30 || step % 3 == 2) {
                let pair = held.swap_remove((step as usize * 7) % held.len());
                a.release(pair, now);
                resting.push((pair, now + q));
            }
        }
    }
}
