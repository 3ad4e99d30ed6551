//! The billing postal code (personal data, checked by some gateways' AVS).

use std::fmt;

use crate::secret::{AsciiBuf, Secret};

/// Longest postal code accepted.
pub const POSTAL_MAX_LEN: usize = 10;

/// A postal code: 1–10 ASCII letters or digits (keypads give digits only; the API may
/// pass letters). Held in a [`Secret`]: it is personal data, so `Debug` shows nothing.
pub struct PostalCode(Secret<AsciiBuf<POSTAL_MAX_LEN>>);

/// Why a postal code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostalCodeError {
    /// Something other than an ASCII letter or digit.
    Characters,
    /// Empty or longer than 10.
    Length {
        /// The length given.
        len: usize,
    },
}

impl fmt::Display for PostalCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostalCodeError::Characters => f.write_str("postal code must be letters and digits"),
            PostalCodeError::Length { len } => {
                write!(f, "postal code must have 1 to {POSTAL_MAX_LEN} characters, not {len}")
            }
        }
    }
}

impl std::error::Error for PostalCodeError {}

impl PostalCode {
    /// A postal code from ASCII letters and digits.
    pub fn from_ascii(text: &[u8]) -> Result<PostalCode, PostalCodeError> {
        if !text.iter().all(u8::is_ascii_alphanumeric) {
            return Err(PostalCodeError::Characters);
        }
        if text.is_empty() || text.len() > POSTAL_MAX_LEN {
            return Err(PostalCodeError::Length { len: text.len() });
        }
        AsciiBuf::from_slice(text)
            .map(|b| PostalCode(Secret::new(b)))
            .ok_or(PostalCodeError::Length { len: text.len() })
    }

    /// A postal code from a string.
    pub fn parse(text: &str) -> Result<PostalCode, PostalCodeError> {
        PostalCode::from_ascii(text.as_bytes())
    }

    /// The text.
    pub fn expose(&self) -> &str {
        self.0.expose().as_str()
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.0.expose().len()
    }

    /// Always false: a postal code has at least one character.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Debug for PostalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostalCode(<redacted>)")
    }
}
