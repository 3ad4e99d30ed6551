//! The retry schedule: how long to wait after each failed attempt, with jitter. Pure.

use std::time::Duration;

/// Delays after the 1st, 2nd, … failure; when they are spent the delivery is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// Jitter: each delay is scaled by a factor in `[1 - JITTER, 1 + JITTER]`.
const JITTER: f64 = 0.2;

impl RetrySchedule {
    /// Svix's default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 h, 8 attempts).
    #[must_use]
    pub fn standard() -> Self {
        Self::from_secs(&[5, 300, 1800, 7200, 18_000, 36_000, 36_000])
    }

    /// A schedule of the given delays.
    #[must_use]
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// A schedule in seconds.
    #[must_use]
    pub fn from_secs(secs: &[u64]) -> Self {
        Self { delays: secs.iter().map(|s| Duration::from_secs(*s)).collect() }
    }

    /// The delays.
    #[must_use]
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Attempts in all before a delivery is dead-lettered.
    #[must_use]
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The wait after failure number `failures` (1 for the first), scaled by jitter drawn
    /// as `unit` in `[0, 1)`; `None` when the schedule is spent (dead-letter).
    #[must_use]
    pub fn delay_after(&self, failures: u32, unit: f64) -> Option<Duration> {
        let index = usize::try_from(failures).ok()?.checked_sub(1)?;
        let base = *self.delays.get(index)?;
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        Some(base.mul_f64(factor))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedule_with_jitter_and_dead_letter() {
        let s = RetrySchedule::standard();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.delay_after(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(s.delay_after(2, 0.0), Some(Duration::from_secs(240)));
        assert_eq!(s.delay_after(7, 1.0), Some(Duration::from_secs(43_200)));
        assert_eq!(s.delay_after(8, 0.5), None, "schedule spent");
        assert_eq!(s.delay_after(0, 0.5), None);
        let total: Duration = s.delays().iter().sum();
        assert_eq!(total.as_secs(), 99_305); // ~27.6 h
    }
}
