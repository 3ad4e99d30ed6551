//! What Stripe's test mode does with its public test cards (research/payments.md §3,
//! docs.stripe.com/testing), as the sandbox reproduces it.

use ivrpay_card::CardData;

/// What a card does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Charges and tokenizes.
    Succeed,
    /// Declined with this Stripe code.
    Decline(&'static str),
    /// `processing_error`: retryable.
    ProcessingError,
}

/// Cards that succeed: Stripe's test cards per brand. The 3-D Secure cards succeed too,
/// because MOTO payments are out of SCA scope (Stripe: the issuer decides, the test
/// cards authorise).
const SUCCEED: &[&str] = &[
    "4242424242424242",    // Visa
    "4000056655665556",    // Visa debit
    "5555555555554444",    // Mastercard
    "2223003122003222",    // Mastercard 2-series
    "5200828282828210",    // Mastercard debit
    "5105105105105100",    // Mastercard prepaid
    "378282246310005",     // American Express
    "371449635398431",     // American Express
    "6011111111111117",    // Discover
    "6011000990139424",    // Discover
    "6011981111111113",    // Discover debit
    "3056930009020004",    // Diners Club
    "36227206271667",      // Diners Club, 14 digits
    "3566002020360505",    // JCB
    "6200000000000005",    // UnionPay
    "6200000000000047",    // UnionPay debit
    "6205500000000000004", // UnionPay, 19 digits
    "4000002500003155",    // 3-D Secure required unless exempt: MOTO is exempt
    "4000000000003220",    // 3-D Secure 2 required: MOTO is exempt
    "4000000000000341",    // attaches (tokenizes), declines when charged
];

/// Cards declined (or failing) on every use, with Stripe's decline code.
const DECLINE: &[(&str, Behaviour)] = &[
    ("4000000000000002", Behaviour::Decline("generic_decline")),
    ("4000000000009995", Behaviour::Decline("insufficient_funds")),
    ("4000000000009987", Behaviour::Decline("lost_card")),
    ("4000000000009979", Behaviour::Decline("stolen_card")),
    ("4000000000000069", Behaviour::Decline("expired_card")),
    ("4000000000000127", Behaviour::Decline("incorrect_cvc")),
    ("4100000000000019", Behaviour::Decline("fraudulent")),
    ("4000000000000119", Behaviour::ProcessingError),
];

/// What a charge of `card` does.
pub(crate) fn charge(card: &CardData) -> Behaviour {
    if card.pan.expose() == "4000000000000341" {
        return Behaviour::Decline("generic_decline");
    }
    tokenize(card)
}

/// What a tokenization (Stripe: attaching a PaymentMethod, a $0 verification) of `card`
/// does.
pub(crate) fn tokenize(card: &CardData) -> Behaviour {
    let pan = card.pan.expose();
    if !card.pan.is_luhn_valid() {
        return Behaviour::Decline("incorrect_number");
    }
    if let Some(&(_, b)) = DECLINE.iter().find(|(p, _)| *p == pan) {
        return b;
    }
    // Stripe checks the security code's length for the brand (`invalid_cvc`).
    if let (Some(cvv), Some(brand)) = (&card.cvv, card.brand()) {
        if !cvv.fits_brand(brand) {
            return Behaviour::Decline("invalid_cvc");
        }
    }
    if SUCCEED.contains(&pan) {
        Behaviour::Succeed
    } else {
        // Stripe's test mode refuses real card numbers.
        Behaviour::Decline("test_mode_live_card")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_card_is_luhn_valid_and_branded() {
        for pan in SUCCEED.iter().chain(DECLINE.iter().map(|(p, _)| p)) {
            assert!(ivrpay_card::luhn_valid(pan.as_bytes()), "{pan}");
            assert!(ivrpay_card::Brand::of_pan(pan.as_bytes()).is_some(), "{pan}");
        }
    }
}
