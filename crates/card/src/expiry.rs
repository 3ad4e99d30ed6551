//! Card expiry dates and calendar months.
//!
//! Nothing here reads the clock: "in the past" is judged against a [`YearMonth`] the
//! caller passes in (STYLE.md rule 2).

use std::fmt;

/// Why a date was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryError {
    /// Not `MMYY` digits.
    Malformed,
    /// Month outside 1–12.
    Month,
    /// Year outside 2000–2099.
    Year,
    /// The card expired before the given month.
    Past,
}

impl fmt::Display for ExpiryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpiryError::Malformed => "expiry date must be four digits MMYY",
            ExpiryError::Month => "expiry month must be 01 to 12",
            ExpiryError::Year => "expiry year must be 2000 to 2099",
            ExpiryError::Past => "card has expired",
        })
    }
}

impl std::error::Error for ExpiryError {}

/// A calendar month: the "today" that expiry dates are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    // Field order makes the derived `Ord` chronological.
    year: u16,
    month: u8,
}

impl YearMonth {
    /// The month `month` (1–12) of `year` (2000–2099).
    pub fn new(year: u16, month: u8) -> Result<YearMonth, ExpiryError> {
        if !(1..=12).contains(&month) {
            return Err(ExpiryError::Month);
        }
        if !(2000..=2099).contains(&year) {
            return Err(ExpiryError::Year);
        }
        Ok(YearMonth { year, month })
    }

    /// The year (2000–2099).
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month (1–12).
    pub fn month(self) -> u8 {
        self.month
    }
}

/// A card's expiry month. The card is valid through the last day of that month.
///
/// Twilio shows the expiry to agents in clear ("not PCI data"); it still counts as card
/// data in logs here, so `Debug` shows nothing and [`Expiry::mmyy`] is the explicit
/// display.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Expiry(YearMonth);

impl Expiry {
    /// The expiry `month` (1–12) of `year` (2000–2099, or 0–99 for 20YY).
    pub fn new(month: u8, year: u16) -> Result<Expiry, ExpiryError> {
        let year = if year < 100 { 2000 + year } else { year };
        YearMonth::new(year, month).map(Expiry)
    }

    /// From the four digits `MMYY` a caller types.
    pub fn from_mmyy(digits: &[u8]) -> Result<Expiry, ExpiryError> {
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ExpiryError::Malformed);
        }
        let two = |i: usize| (digits[i] - b'0') * 10 + (digits[i + 1] - b'0');
        Expiry::new(two(0), u16::from(two(2)))
    }

    /// The month (1–12).
    pub fn month(self) -> u8 {
        self.0.month
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.0.year
    }

    /// The expiry as a calendar month.
    pub fn year_month(self) -> YearMonth {
        self.0
    }

    /// True when the card can no longer be used in `today`'s month.
    pub fn is_expired(self, today: YearMonth) -> bool {
        today > self.0
    }

    /// `Err(Past)` when expired in `today`'s month.
    pub fn check(self, today: YearMonth) -> Result<Expiry, ExpiryError> {
        if self.is_expired(today) { Err(ExpiryError::Past) } else { Ok(self) }
    }

    /// The `MM/YY` form shown to agents.
    pub fn mmyy(self) -> MmYy {
        MmYy(self.0)
    }
}

impl fmt::Debug for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Expiry(<redacted>)")
    }
}

/// Displays an expiry as `MM/YY`.
#[derive(Clone, Copy)]
pub struct MmYy(YearMonth);

impl fmt::Display for MmYy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:02}", self.0.month, self.0.year % 100)
    }
}

impl fmt::Debug for MmYy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MmYy(<redacted>)")
    }
}
