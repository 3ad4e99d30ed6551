//! Idempotency keys and token types: what travels with card data through the flow.

use std::fmt;

/// An idempotency key: one per payment attempt, reused on every retry of that attempt
/// (research/payments.md §3). 1–255 visible ASCII characters, so it fits an HTTP header
/// (`Idempotency-Key`) unchanged. Not secret: it is logged and stored.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// An idempotency key that is empty, too long or not visible ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidIdempotencyKey;

impl fmt::Display for InvalidIdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("idempotency key must be 1 to 255 visible ASCII characters")
    }
}

impl std::error::Error for InvalidIdempotencyKey {}

impl IdempotencyKey {
    /// Longest key (Stripe's limit).
    pub const MAX_LEN: usize = 255;

    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<IdempotencyKey, InvalidIdempotencyKey> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= Self::MAX_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(IdempotencyKey(key)) } else { Err(InvalidIdempotencyKey) }
    }

    /// The key derived from this one for a sub-operation (`<key>:refund:1`), still valid
    /// when the base key is long (it is shortened from the left, keeping the suffix).
    pub fn derive(&self, suffix: &str) -> Result<IdempotencyKey, InvalidIdempotencyKey> {
        let mut key = format!("{}:{suffix}", self.0);
        if key.len() > Self::MAX_LEN {
            key = key.split_off(key.len() - Self::MAX_LEN);
        }
        IdempotencyKey::new(key)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

/// The kind of token a tokenize-only session asks for (Twilio's `TokenType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TokenType {
    /// Single use (a Stripe `tok_…`).
    OneTime,
    /// Reusable, attached to a customer (Twilio's default).
    #[default]
    Reusable,
    /// A gateway payment method (a Stripe `pm_…`).
    PaymentMethod,
}

impl TokenType {
    /// Twilio's spelling: `one-time`, `reusable`, `payment-method`.
    pub fn name(self) -> &'static str {
        match self {
            TokenType::OneTime => "one-time",
            TokenType::Reusable => "reusable",
            TokenType::PaymentMethod => "payment-method",
        }
    }

    /// Parses Twilio's spelling.
    pub fn parse(s: &str) -> Option<TokenType> {
        [TokenType::OneTime, TokenType::Reusable, TokenType::PaymentMethod]
            .into_iter()
            .find(|t| t.name() == s)
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(IdempotencyKey::new("pay_123-abc").is_ok());
        assert_eq!(IdempotencyKey::new(""), Err(InvalidIdempotencyKey));
        assert_eq!(IdempotencyKey::new("a b"), Err(InvalidIdempotencyKey));
        assert_eq!(IdempotencyKey::new("é"), Err(InvalidIdempotencyKey));
        assert!(IdempotencyKey::new("x".repeat(255)).is_ok());
        assert_eq!(IdempotencyKey::new("x".repeat(256)), Err(InvalidIdempotencyKey));
        let long = IdempotencyKey::new("k".repeat(255)).expect("valid");
        let d = long.derive("refund:1").expect("derived");
        assert!(d.as_str().ends_with(":refund:1") && d.as_str().len() == 255);
        let short = IdempotencyKey::new("k1").expect("valid");
        assert_eq!(short.derive("refund:2").expect("derived").as_str(), "k1:refund:2");
    }

    #[test]
    fn token_types() {
        for t in [TokenType::OneTime, TokenType::Reusable, TokenType::PaymentMethod] {
            assert_eq!(TokenType::parse(t.name()), Some(t));
        }
        assert_eq!(TokenType::parse("forever"), None);
    }
}
