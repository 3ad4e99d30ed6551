//! Time, passed in (STYLE.md rule 2): the wall clock for records and expiry checks, the
//! monotonic clock for the capture's timers.

use std::fmt::Debug;
use std::time::{Instant, SystemTime};

use ivrpay_card::YearMonth;
use ivrpay_store::Timestamp;

/// Where the service reads the time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Wall time, for records.
    fn now(&self) -> Timestamp;
    /// Monotonic time, for timers.
    fn instant(&self) -> Instant;
    /// The current month, for card expiry.
    fn today(&self) -> YearMonth {
        let (year, month, ..) = self.now().to_utc_parts();
        let year = u16::try_from(year).unwrap_or(0);
        let month = u8::try_from(month).unwrap_or(0);
        // Card expiry years are 2000–2099 (two digits on the card): a clock outside them is
        // broken beyond what a payment service can work with.
        #[allow(clippy::expect_used, reason = "invariant: a working clock is in 2000-2099")]
        YearMonth::new(year, month).expect("the system clock is between 2000 and 2099")
    }
}

/// The system's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "the system clock is where wall time comes from")]
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the system clock is where monotonic time comes from"
    )]
    fn instant(&self) -> Instant {
        Instant::now()
    }
}
