//! Wall-clock instants, always UTC.
//!
//! The store never reads the clock (STYLE.md rule 2): every operation that stamps a row takes
//! `now` from the caller. Columns hold milliseconds since the Unix epoch as a 64-bit integer on
//! both backends, so there is no time zone anywhere to get wrong and the two dialects agree.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `ms` milliseconds after the epoch.
    #[must_use]
    pub const fn from_unix_ms(ms: i64) -> Self {
        Self(ms)
    }

    /// A `SystemTime` from a driver's clock, saturating outside ±292 million years.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => Self(-i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    /// `self + duration`, saturating.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// The calendar date and time in UTC: (year, month, day, hour, minute, second, millisecond).
    #[must_use]
    pub fn to_utc_parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        // ms_of_day < 86_400_000, so every part below fits in u32.
        let ms = u32::try_from(ms_of_day).unwrap_or(0);
        (year, month, day, ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
    }
}

/// Days since the epoch to a proleptic Gregorian (year, month, day), by counting 400-year eras
/// of 146,097 days from 0000-03-01 so that the leap day falls at the end of each year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// RFC 3339 with milliseconds and `Z`, e.g. `2026-11-26T03:04:05.678Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, ms) = self.to_utc_parts();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<i64> for Timestamp {
    fn from(ms: i64) -> Self {
        Self(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp::from_unix_ms(0).to_string(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789
        assert_eq!(
            Timestamp::from_unix_ms(951_827_696_789).to_string(),
            "2000-02-29T12:34:56.789Z"
        );
        assert_eq!(Timestamp::from_unix_ms(-1).to_string(), "1969-12-31T23:59:59.999Z");
        // 2100-03-01: 2100 is not a leap year.
        assert_eq!(
            Timestamp::from_unix_ms(4_107_542_400_000).to_string(),
            "2100-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn system_time_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        assert_eq!(Timestamp::from_system_time(t).unix_ms(), 1_764_000_000_123);
    }
}
