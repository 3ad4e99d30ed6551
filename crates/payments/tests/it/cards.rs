//! Test cards and requests.

use ivrpay_card::{CardData, Currency, Cvv, Expiry, IdempotencyKey, Money, Pan, PostalCode};

pub fn card(pan: &str) -> CardData {
    let cvv = if pan.starts_with("34") || pan.starts_with("37") { "1234" } else { "123" };
    CardData {
        pan: Pan::parse(pan).expect("test card"),
        expiry: Expiry::new(12, 2030).expect("valid"),
        cvv: Some(Cvv::parse(cvv).expect("valid")),
        postal_code: Some(PostalCode::parse("94107").expect("valid")),
    }
}

pub fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).expect("valid key")
}

pub fn usd(minor: u64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

/// Stripe's test cards and the decline code each must give (None: success).
pub const OUTCOMES: &[(&str, Option<&str>)] = &[
    ("4242424242424242", None),
    ("5555555555554444", None),
    ("4000000000000002", Some("generic_decline")),
    ("4000000000009995", Some("insufficient_funds")),
    ("4000000000009987", Some("lost_card")),
    ("4000000000009979", Some("stolen_card")),
    ("4000000000000069", Some("expired_card")),
    ("4000000000000127", Some("incorrect_cvc")),
    ("4242424242424241", Some("incorrect_number")),
    ("4000000000000341", Some("generic_decline")),
];
