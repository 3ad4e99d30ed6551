//! Typed, prefixed identifiers (STYLE.md rule 15, the svix convention).
//!
//! Every row id is a newtype over its text form `prefix_body`, so a payment id can never be
//! passed where a token id is expected and an id read from a log says what it names. Ids the
//! store mints are time-ordered (48 bits of milliseconds, then 80 random bits, in lowercase
//! Crockford base32: ULID's layout), which keeps B-tree inserts local. Token ids are purely
//! random: a token must say nothing about the card or when it was seen.

use std::fmt;

use rand::Rng as _;

use crate::time::Timestamp;

/// Crockford's base32 alphabet, lowercase: no i, l, o, u.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters in a minted body: 130 bits of room for 128 bits.
const BODY_LEN: usize = 26;

/// Longest body accepted by [`parse`](PaymentId::parse): minted bodies are 26 characters,
/// operator-chosen ones (`ten_default`) may be longer but stay bounded.
const MAX_BODY_LEN: usize = 64;

/// An identifier that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The text does not start with the expected `prefix_`.
    WrongPrefix {
        /// The prefix this id type requires.
        expected: &'static str,
    },
    /// The part after the prefix is empty, too long or holds characters other than ASCII
    /// letters, digits and `-`.
    BadBody,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongPrefix { expected } => write!(f, "identifier must start with `{expected}_`"),
            Self::BadBody => f.write_str(
                "identifier body must be 1 to 64 ASCII letters, digits or `-` after the prefix",
            ),
        }
    }
}

impl std::error::Error for IdError {}

/// Encodes 128 bits as 26 base32 characters, most significant first.
fn encode(value: u128) -> String {
    let mut out = [0u8; BODY_LEN];
    let mut v = value;
    for slot in out.iter_mut().rev() {
        // The mask keeps the index below 32.
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// A new time-ordered body: milliseconds since the epoch in the top 48 bits, randomness below.
pub(crate) fn time_ordered_body(now: Timestamp) -> String {
    let millis = u128::from(now.unix_ms().max(0).unsigned_abs()) & ((1u128 << 48) - 1);
    let random: u128 = rand::rng().next_u64().into();
    let random_hi: u128 = (rand::rng().next_u32() & 0xffff).into();
    encode((millis << 80) | (random_hi << 64) | random)
}

/// A new body of 128 random bits.
pub(crate) fn random_body() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode(u128::from_be_bytes(bytes))
}

/// Checks `text` is `prefix_body` with an acceptable body.
pub(crate) fn check(text: &str, prefix: &'static str) -> Result<(), IdError> {
    let body = text
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .ok_or(IdError::WrongPrefix { expected: prefix })?;
    let ok = !body.is_empty()
        && body.len() <= MAX_BODY_LEN
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok { Ok(()) } else { Err(IdError::BadBody) }
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix before the `_`.
            pub const PREFIX: &'static str = $prefix;

            /// A new time-ordered id.
            #[must_use]
            pub fn generate(now: $crate::time::Timestamp) -> Self {
                Self(format!("{}_{}", $prefix, $crate::id::time_ordered_body(now)))
            }

            /// A new id of 128 random bits, with no time component.
            #[must_use]
            pub fn random() -> Self {
                Self(format!("{}_{}", $prefix, $crate::id::random_body()))
            }

            /// Parses `prefix_body`.
            ///
            /// # Errors
            /// [`IdError`](crate::IdError) when the prefix or the body is wrong.
            pub fn parse(text: &str) -> Result<Self, $crate::id::IdError> {
                $crate::id::check(text, $prefix)?;
                Ok(Self(text.to_owned()))
            }

            /// The text form, `prefix_body`.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::id::IdError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::id::IdError;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                $crate::id::check(&text, $prefix)?;
                Ok(Self(text))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

typed_id!(
    /// A tenant: the merchant whose payments, keys and events these are.
    TenantId, "ten");
typed_id!(
    /// A call through the B2BUA.
    CallId, "call");
typed_id!(
    /// An agent-assisted or IVR payment session on a call.
    SessionId, "sess");
typed_id!(
    /// A payment attempt (one gateway charge, identified by its idempotency key).
    PaymentId, "pay");
typed_id!(
    /// A refund of part or all of a payment.
    RefundId, "rfd");
typed_id!(
    /// A vault token standing for a card; random, with no relation to the PAN.
    TokenId, "tok");
typed_id!(
    /// A per-tenant data key, stored wrapped by a master key.
    DataKeyId, "dk");
typed_id!(
    /// An event in the outbox (and the per-tenant feed); stable across delivery retries.
    EventId, "evt");
typed_id!(
    /// A downstream sink (webhook endpoint, CRM, receipts, ledger).
    SinkId, "snk");
typed_id!(
    /// One event's delivery to one sink.
    DeliveryId, "dlv");
typed_id!(
    /// An API key (only its hash is stored).
    ApiKeyId, "key");
typed_id!(
    /// A ledger journal entry.
    LedgerEntryId, "led");
typed_id!(
    /// A payment request for IVR self-service.
    PaymentRequestId, "preq");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_parse_and_sort_by_time() {
        let early = PaymentId::generate(Timestamp::from_unix_ms(1_000));
        let late = PaymentId::generate(Timestamp::from_unix_ms(2_000));
        assert!(early < late);
        assert_eq!(PaymentId::parse(early.as_str()), Ok(early.clone()));
        assert_eq!(early.as_str().len(), "pay_".len() + BODY_LEN);
        assert_ne!(TokenId::random(), TokenId::random());
    }

    #[test]
    fn wrong_prefix_and_bad_bodies_are_rejected() {
        assert_eq!(PaymentId::parse("tok_0123"), Err(IdError::WrongPrefix { expected: "pay" }));
        assert_eq!(PaymentId::parse("pay0123"), Err(IdError::WrongPrefix { expected: "pay" }));
        assert_eq!(PaymentId::parse("pay_"), Err(IdError::BadBody));
        assert_eq!(PaymentId::parse("pay_a b"), Err(IdError::BadBody));
        assert_eq!(PaymentId::parse(&format!("pay_{}", "a".repeat(65))), Err(IdError::BadBody));
        assert!(TenantId::parse("ten_default").is_ok());
    }
}
