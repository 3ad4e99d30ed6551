//! The currency column: an ISO 4217 code stored as text, read back as
//! [`ivrpay_card::Currency`].

use std::fmt;
use std::ops::Deref;

use ivrpay_card::{Currency, Money};

use crate::error::StoreError;

/// A stored currency code. Derefs to the card crate's [`Currency`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrencyCode(pub Currency);

impl Deref for CurrencyCode {
    type Target = Currency;
    fn deref(&self) -> &Currency {
        &self.0
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code())
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code())
    }
}

impl serde::Serialize for CurrencyCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.code())
    }
}

impl TryFrom<String> for CurrencyCode {
    type Error = StoreError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::from_code(&code).map(Self).map_err(|_| StoreError::Corrupt { what: "currency" })
    }
}

/// Minor units as the database's signed 64-bit integer.
pub(crate) fn minor_to_db(money: Money) -> Result<i64, StoreError> {
    i64::try_from(money.minor())
        .map_err(|_| StoreError::InvalidState { operation: "store an amount above 2^63" })
}

/// A stored amount back as [`Money`] (the columns are `CHECK`ed non-negative).
pub(crate) fn money_from_db(amount_minor: i64, currency: CurrencyCode) -> Money {
    Money::from_minor(u64::try_from(amount_minor).unwrap_or(0), currency.0)
}
