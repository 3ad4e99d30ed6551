//! The primary account number (card number).

use std::fmt;

use crate::brand::Brand;
use crate::luhn::luhn_valid;
use crate::secret::{AsciiBuf, Secret};

/// Shortest PAN accepted (ISO/IEC 7812 allows 8; no brand in scope issues under 12).
pub const PAN_MIN_LEN: usize = 12;
/// Longest PAN (ISO/IEC 7812).
pub const PAN_MAX_LEN: usize = 19;

/// A card number: 12 to 19 ASCII digits, held in a [`Secret`].
///
/// The constructor checks only the shape (digits, length): the Luhn check and the brand's
/// lengths are separate questions ([`Pan::is_luhn_valid`], [`Pan::fits_brand`]), because
/// a gateway must be able to receive Stripe's deliberately wrong `4242424242424241`.
/// `Debug` shows nothing; [`Pan::masked`] is what an agent may see.
pub struct Pan(Secret<AsciiBuf<PAN_MAX_LEN>>);

/// Why a card number was refused. Carries no digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanError {
    /// Something other than an ASCII digit.
    NotDigits,
    /// Fewer than 12 or more than 19 digits.
    Length {
        /// The length given.
        len: usize,
    },
}

impl fmt::Display for PanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PanError::NotDigits => f.write_str("card number must be digits only"),
            PanError::Length { len } => {
                write!(f, "card number must have {PAN_MIN_LEN} to {PAN_MAX_LEN} digits, not {len}")
            }
        }
    }
}

impl std::error::Error for PanError {}

impl Pan {
    /// A PAN from ASCII digits.
    pub fn from_ascii(digits: &[u8]) -> Result<Pan, PanError> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(PanError::NotDigits);
        }
        if !(PAN_MIN_LEN..=PAN_MAX_LEN).contains(&digits.len()) {
            return Err(PanError::Length { len: digits.len() });
        }
        AsciiBuf::from_slice(digits)
            .map(|b| Pan(Secret::new(b)))
            .ok_or(PanError::Length { len: digits.len() })
    }

    /// A PAN from a string of digits (no spaces or dashes).
    pub fn parse(digits: &str) -> Result<Pan, PanError> {
        Pan::from_ascii(digits.as_bytes())
    }

    /// The digits. A place where card data is seen: the vault, a gateway request body.
    pub fn expose(&self) -> &str {
        self.0.expose().as_str()
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.0.expose().len()
    }

    /// Always false: a PAN has at least 12 digits (here for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The last four digits (PCI DSS 3.4.1 allows showing them).
    pub fn last4(&self) -> Last4 {
        let d = self.0.expose().as_bytes();
        let mut out = [0u8; 4];
        out.copy_from_slice(&d[d.len() - 4..]);
        Last4(out)
    }

    /// The first six digits, the BIN/IIN (PCI DSS 3.4.1 allows at most BIN and last four).
    pub fn bin(&self) -> Bin {
        let mut out = [0u8; 6];
        out.copy_from_slice(&self.0.expose().as_bytes()[..6]);
        Bin(out)
    }

    /// The brand by the longest matching IIN prefix, if any.
    pub fn brand(&self) -> Option<Brand> {
        Brand::of_pan(self.0.expose().as_bytes())
    }

    /// True when the number passes the Luhn check.
    pub fn is_luhn_valid(&self) -> bool {
        luhn_valid(self.0.expose().as_bytes())
    }

    /// True when the number has a length `brand` issues.
    pub fn fits_brand(&self, brand: Brand) -> bool {
        brand.pan_lengths().contains(&self.len())
    }

    /// The masked form shown to agents: brand and last four.
    pub fn masked(&self) -> MaskedPan {
        MaskedPan { brand: self.brand(), len: self.len() as u8, last4: self.last4() }
    }

    /// A second copy (for a vault that keeps one while a gateway uses the other).
    pub fn duplicate(&self) -> Pan {
        Pan(self.0.duplicate())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pan(<redacted>)")
    }
}

/// The last four digits of a PAN: display-safe.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Last4([u8; 4]);

impl Last4 {
    /// The four digits as text.
    pub fn as_str(&self) -> &str {
        // Built from a PAN's ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl fmt::Display for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first six digits of a PAN (BIN/IIN): display-safe under PCI DSS 3.4.1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Bin([u8; 6]);

impl Bin {
    /// The six digits as text.
    pub fn as_str(&self) -> &str {
        // Built from a PAN's ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or("??????")
    }
}

impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card number as an agent may see it: `•••• •••• •••• 4242`, Amex `•••• •••••• •0005`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MaskedPan {
    brand: Option<Brand>,
    len: u8,
    last4: Last4,
}

impl MaskedPan {
    /// The brand, when the IIN table knows it.
    pub fn brand(&self) -> Option<Brand> {
        self.brand
    }

    /// The last four digits.
    pub fn last4(&self) -> Last4 {
        self.last4
    }
}

/// The bullet that stands for a hidden digit.
pub const MASK_CHAR: char = '•';

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = usize::from(self.len);
        // Any brand's grouping works for unknown brands (groups of four).
        let groups = self.brand.unwrap_or(Brand::Visa).grouping(len);
        let shown_from = len.saturating_sub(4);
        let mut pos = 0;
        for (g, &size) in groups.iter().enumerate() {
            if g > 0 {
                f.write_str(" ")?;
            }
            for _ in 0..size {
                if pos >= shown_from {
                    let c = self.last4.0[pos - shown_from];
                    write!(f, "{}", char::from(c))?;
                } else {
                    write!(f, "{MASK_CHAR}")?;
                }
                pos += 1;
            }
        }
        Ok(())
    }
}
