//! The card security code (CVV2, CVC2, CID, CVN2): sensitive authentication data.

use std::fmt;

use crate::brand::Brand;
use crate::secret::{AsciiBuf, Secret};

/// A security code: 3 or 4 ASCII digits in a [`Secret`].
///
/// PCI DSS 3.3.1.2: it is never stored after authorisation, even encrypted. It lives here,
/// in memory, until the gateway answers, and is wiped when this value is dropped.
pub struct Cvv(Secret<AsciiBuf<4>>);

/// Why a security code was refused. Carries no digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CvvError {
    /// Something other than an ASCII digit.
    NotDigits,
    /// Not 3 or 4 digits.
    Length {
        /// The length given.
        len: usize,
    },
}

impl fmt::Display for CvvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CvvError::NotDigits => f.write_str("security code must be digits only"),
            CvvError::Length { len } => {
                write!(f, "security code must have 3 or 4 digits, not {len}")
            }
        }
    }
}

impl std::error::Error for CvvError {}

impl Cvv {
    /// A security code from ASCII digits.
    pub fn from_ascii(digits: &[u8]) -> Result<Cvv, CvvError> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(CvvError::NotDigits);
        }
        if !(3..=4).contains(&digits.len()) {
            return Err(CvvError::Length { len: digits.len() });
        }
        AsciiBuf::from_slice(digits)
            .map(|b| Cvv(Secret::new(b)))
            .ok_or(CvvError::Length { len: digits.len() })
    }

    /// A security code from a string of digits.
    pub fn parse(digits: &str) -> Result<Cvv, CvvError> {
        Cvv::from_ascii(digits.as_bytes())
    }

    /// The digits. Only a gateway request body should call this.
    pub fn expose(&self) -> &str {
        self.0.expose().as_str()
    }

    /// Number of digits (3 or 4).
    pub fn len(&self) -> usize {
        self.0.expose().len()
    }

    /// Always false: a security code has at least 3 digits.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True when the length is the one `brand` prints (4 for Amex, 3 for the others).
    pub fn fits_brand(&self, brand: Brand) -> bool {
        self.len() == brand.cvv_len()
    }
}

impl fmt::Debug for Cvv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvv(<redacted>)")
    }
}
