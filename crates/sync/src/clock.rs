//! Wall time for the dispatcher (STYLE.md rule 2): everything else takes `now` as an
//! argument; the driver asks its [`Clock`], which tests may replace.

use ivrpay_store::Timestamp;

/// A source of wall time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC milliseconds.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "the one place the sync reads the wall clock")]
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(std::time::SystemTime::now())
    }
}
