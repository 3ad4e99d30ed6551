//! Money as integer minor units of an ISO 4217 currency. Never `f64`.

use std::fmt;

/// An ISO 4217 currency: its alphabetic code and its minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// A currency code that is not an active ISO 4217 currency with a minor unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCurrency;

impl fmt::Display for UnknownCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown ISO 4217 currency code")
    }
}

impl std::error::Error for UnknownCurrency {}

/// Active ISO 4217 currencies (list 1, 2024–2025), sorted. Fund codes are included;
/// precious metals, testing and "no currency" codes (`XAU`, `XTS`, `XXX`, …) have no minor
/// unit and are not money here.
const ISO_4217: &str = "\
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL \
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK \
    DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR \
    ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD \
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK \
    NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD \
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD \
    USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// The currencies above whose minor unit is not two digits.
const EXPONENT_0: &str = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
const EXPONENT_3: &str = "BHD IQD JOD KWD LYD OMR TND";
const EXPONENT_4: &str = "CLF UYW";

impl Currency {
    /// US dollar.
    pub const USD: Currency = Currency { code: *b"USD", exponent: 2 };
    /// Euro.
    pub const EUR: Currency = Currency { code: *b"EUR", exponent: 2 };
    /// Pound sterling.
    pub const GBP: Currency = Currency { code: *b"GBP", exponent: 2 };
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency { code: *b"JPY", exponent: 0 };

    /// The currency with this alphabetic code (case-insensitive).
    pub fn from_code(code: &str) -> Result<Currency, UnknownCurrency> {
        let upper = code.trim().to_ascii_uppercase();
        let listed = |list: &str| list.split_ascii_whitespace().any(|c| c == upper);
        if !listed(ISO_4217) {
            return Err(UnknownCurrency);
        }
        let exponent = if listed(EXPONENT_0) {
            0
        } else if listed(EXPONENT_3) {
            3
        } else if listed(EXPONENT_4) {
            4
        } else {
            2
        };
        let mut code = [0u8; 3];
        code.copy_from_slice(upper.as_bytes());
        Ok(Currency { code, exponent })
    }

    /// The upper-case alphabetic code, e.g. `USD`.
    pub fn code(&self) -> &str {
        // Built from the ASCII table above only.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Digits after the decimal point: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    fn scale(&self) -> u64 {
        10u64.pow(u32::from(self.exponent))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount: integer minor units (cents) of a currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: u64,
    currency: Currency,
}

/// Why an amount was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmountError {
    /// Not a plain non-negative decimal number.
    Malformed,
    /// More decimals than the currency has.
    TooPrecise {
        /// The currency's exponent.
        exponent: u8,
    },
    /// Too large to hold.
    Overflow,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Malformed => f.write_str("amount must be a non-negative decimal number"),
            AmountError::TooPrecise { exponent } => {
                write!(f, "amount has more than {exponent} decimal places")
            }
            AmountError::Overflow => f.write_str("amount is too large"),
        }
    }
}

impl std::error::Error for AmountError {}

impl Money {
    /// `minor` units (cents for USD, yen for JPY).
    pub fn from_minor(minor: u64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Zero of `currency` (a session with amount zero tokenizes).
    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// From major units as written: `"12.34"`, `"12"`, `"0.5"`. Exact; rejects more decimals
    /// than the currency has, signs, exponents and separators.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Money, AmountError> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (text.ends_with('.')) {
            return Err(AmountError::Malformed);
        }
        let exponent = currency.exponent;
        if frac.len() > usize::from(exponent) {
            return Err(AmountError::TooPrecise { exponent });
        }
        let mut minor: u64 = 0;
        let padded = frac.bytes().chain(std::iter::repeat(b'0')).take(usize::from(exponent));
        for b in int.bytes().chain(padded) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(b - b'0')))
                .ok_or(AmountError::Overflow)?;
        }
        Ok(Money { minor, currency })
    }

    /// The amount in minor units.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Major units as text, exact: `"12.34"`, `"1000"` for JPY, `"1.500"` for KWD.
    pub fn to_major_string(&self) -> String {
        let scale = self.currency.scale();
        if self.currency.exponent == 0 {
            return self.minor.to_string();
        }
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = usize::from(self.currency.exponent)
        )
    }

    /// `self - other`, `None` when the currencies differ or the result would be negative.
    pub fn checked_sub(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        self.minor.checked_sub(other.minor).map(|minor| Money { minor, currency: self.currency })
    }

    /// `self + other`, `None` when the currencies differ or on overflow.
    pub fn checked_add(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        self.minor.checked_add(other.minor).map(|minor| Money { minor, currency: self.currency })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_major_string(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_upper_case() {
        let all: Vec<&str> = ISO_4217.split_ascii_whitespace().collect();
        assert!(all.len() > 150);
        for w in all.windows(2) {
            assert!(w[0] < w[1], "{} {}", w[0], w[1]);
        }
        for c in &all {
            assert_eq!(c.len(), 3);
            assert!(c.bytes().all(|b| b.is_ascii_uppercase()));
        }
        for list in [EXPONENT_0, EXPONENT_3, EXPONENT_4] {
            for c in list.split_ascii_whitespace() {
                assert!(all.contains(&c), "{c}");
            }
        }
    }

    #[test]
    fn exponents() {
        assert_eq!(Currency::from_code("usd"), Ok(Currency::USD));
        assert_eq!(Currency::from_code("JPY").map(|c| c.exponent()), Ok(0));
        assert_eq!(Currency::from_code("KWD").map(|c| c.exponent()), Ok(3));
        assert_eq!(Currency::from_code("CLF").map(|c| c.exponent()), Ok(4));
        assert_eq!(Currency::from_code("XAU"), Err(UnknownCurrency));
        assert_eq!(Currency::from_code("US"), Err(UnknownCurrency));
    }

    #[test]
    fn parse_and_format_are_exact() {
        let usd = Currency::USD;
        let kwd = Currency::from_code("KWD").expect("kwd");
        let cases = [
            ("12.34", usd, 1234, "12.34"),
            ("12", usd, 1200, "12.00"),
            ("0.5", usd, 50, "0.50"),
            ("0.1", usd, 10, "0.10"),
            ("1000", Currency::JPY, 1000, "1000"),
            ("1.5", kwd, 1500, "1.500"),
            ("0", usd, 0, "0.00"),
        ];
        for (text, cur, minor, shown) in cases {
            let m = Money::parse_major(text, cur).expect(text);
            assert_eq!(m.minor(), minor, "{text}");
            assert_eq!(m.to_major_string(), shown);
        }
        assert_eq!(Money::parse_major("1.234", usd), Err(AmountError::TooPrecise { exponent: 2 }));
        assert_eq!(
            Money::parse_major("1.5", Currency::JPY),
            Err(AmountError::TooPrecise { exponent: 0 })
        );
        for bad in ["", ".5", "1.", "-1", "+1", "1e3", "1,00", " 1", "1.2.3"] {
            assert_eq!(Money::parse_major(bad, usd), Err(AmountError::Malformed), "{bad:?}");
        }
        assert_eq!(Money::parse_major("184467440737095516.16", usd), Err(AmountError::Overflow));
        assert_eq!(Money::from_minor(1999, usd).to_string(), "19.99 USD");
    }

    #[test]
    fn arithmetic_checks_currency_and_sign() {
        let a = Money::from_minor(1000, Currency::USD);
        let b = Money::from_minor(300, Currency::USD);
        assert_eq!(a.checked_sub(b).map(|m| m.minor()), Some(700));
        assert_eq!(b.checked_sub(a), None);
        assert_eq!(a.checked_add(Money::from_minor(1, Currency::EUR)), None);
    }
}
