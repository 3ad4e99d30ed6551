//! The errors a session reports: to the agent in progress events ([`CaptureError`]) and to
//! the caller of a method that cannot run now ([`SessionError`]).

use std::fmt;

use crate::field::{Field, FieldSet};

/// A validation or input error, reported in a progress event (Twilio's `ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaptureError {
    /// The card number has the wrong length for its brand or fails the Luhn check.
    InvalidCardNumber,
    /// The card's brand is unknown or not accepted by this session.
    InvalidCardType,
    /// The expiry date is malformed (month outside 01–12, not four digits) or in the past.
    InvalidDate,
    /// The security code does not have the brand's length (3, or 4 for Amex).
    InvalidSecurityCode,
    /// The postal code is shorter than the session's minimum.
    InvalidPostalCode,
    /// The caller stopped typing for longer than the session's timeout with the field
    /// incomplete.
    InputTimeout,
    /// The agent asked for the security code before the card number was captured.
    InvalidCardNumberSecurityCodeCaptureSequence,
}

impl CaptureError {
    /// Twilio's `ErrorType` spelling.
    pub fn name(self) -> &'static str {
        match self {
            CaptureError::InvalidCardNumber => "invalid-card-number",
            CaptureError::InvalidCardType => "invalid-card-type",
            CaptureError::InvalidDate => "invalid-date",
            CaptureError::InvalidSecurityCode => "invalid-security-code",
            CaptureError::InvalidPostalCode => "invalid-postal-code",
            CaptureError::InputTimeout => "input-timeout",
            CaptureError::InvalidCardNumberSecurityCodeCaptureSequence => {
                "invalid-card-number-security-code-capture-sequence"
            }
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for CaptureError {}

/// Why a session method could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The field is not collected by this session (security code or postal code turned
    /// off).
    FieldNotInSession(Field),
    /// The security code cannot be asked for before the card number.
    CaptureSequence,
    /// A field failed too many times; only `cancel` is left.
    Failed(Field),
    /// `complete` was called with fields still missing.
    Incomplete(FieldSet),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::FieldNotInSession(field) => {
                write!(f, "{field} is not collected in this session")
            }
            SessionError::CaptureSequence => {
                f.write_str(CaptureError::InvalidCardNumberSecurityCodeCaptureSequence.name())
            }
            SessionError::Failed(field) => write!(f, "too many failed attempts at {field}"),
            SessionError::Incomplete(missing) => write!(f, "required fields missing: {missing}"),
        }
    }
}

impl std::error::Error for SessionError {}
