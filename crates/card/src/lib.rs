//! # ivrpay-card
//!
//! Card data as types that cannot leak by accident, and the small values that travel with
//! it through a payment (money, idempotency keys, token types). No I/O, no clock, one
//! dependency (`zeroize`).
//!
//! - [`Secret`]: redacting `Debug`/`Display`, explicit [`Secret::expose`], no `Clone`
//!   (only [`Secret::duplicate`]), zeroized on drop.
//! - [`Pan`], [`Cvv`], [`PostalCode`]: validated shapes in fixed-size secret buffers;
//!   [`Expiry`] judged against a [`YearMonth`] the caller passes in; [`CardData`] holds one
//!   card.
//! - [`Brand`]: the IIN table (longest prefix wins), PAN and security-code lengths, and
//!   [`Brand::detect`] for the brand of a number still being typed.
//! - [`luhn_valid`]; [`MaskedPan`]: brand and last four, as agents see them.
//! - [`Money`] in integer minor units of an ISO 4217 [`Currency`]; [`IdempotencyKey`];
//!   [`TokenType`].
//!
//! ## Why the types look like this
//!
//! PCI DSS lets an agent see at most the BIN and last four (3.4.1) and forbids keeping the
//! security code after authorisation (3.3.1.2). Card data therefore prints as
//! `<redacted>` everywhere (so a stray `{:?}` in a log, a panic or an error message shows
//! nothing), is copied only on purpose, and is wiped from memory when dropped. Digits live
//! in fixed buffers ([`AsciiBuf`]) rather than growing `String`s, because a reallocating
//! string leaves copies behind that no zeroize can reach.

// The card-vault panic lints (STYLE.md rule 7, after hyperswitch-card-vault): card data
// flows through here, so no code path may panic on it.
#![cfg_attr(
    not(test),
    warn(
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::panic,
        clippy::panic_in_result_fn,
        clippy::unwrap_in_result,
        clippy::unreachable,
        clippy::missing_panics_doc
    )
)]

mod brand;
mod card_data;
mod cvv;
mod expiry;
mod keys;
mod luhn;
mod money;
mod pan;
mod postal;
mod secret;

pub use brand::{Brand, BrandSet, Detection, UnknownBrand};
pub use card_data::CardData;
pub use cvv::{Cvv, CvvError};
pub use expiry::{Expiry, ExpiryError, MmYy, YearMonth};
pub use keys::{IdempotencyKey, InvalidIdempotencyKey, TokenType};
pub use luhn::{luhn_check_digit, luhn_valid};
pub use money::{AmountError, Currency, Money, UnknownCurrency};
pub use pan::{Bin, Last4, MASK_CHAR, MaskedPan, PAN_MAX_LEN, PAN_MIN_LEN, Pan, PanError};
pub use postal::{POSTAL_MAX_LEN, PostalCode, PostalCodeError};
pub use secret::{AsciiBuf, Secret};
pub use zeroize::Zeroize;
