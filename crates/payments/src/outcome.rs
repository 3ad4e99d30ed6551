//! What a gateway answers: success or decline. Failures are [`crate::GatewayError`]s.

use std::fmt;

use ivrpay_card::Money;
use serde::{Deserialize, Serialize};

use crate::error::sanitize_code;

/// The result of an authorize-and-capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money was taken.
    Succeeded(Charged),
    /// The issuer or the gateway declined the card.
    Declined(Decline),
}

/// A successful charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charged {
    /// The gateway's id for the payment (Stripe: the PaymentIntent `pi_…`).
    pub charge_id: String,
    /// The amount charged.
    pub amount: Money,
    /// True when the gateway replayed an earlier answer for this idempotency key instead
    /// of charging (Stripe's `Idempotent-Replayed` header; the sandbox knows it exactly).
    pub replayed: bool,
}

/// The result of a tokenization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizeOutcome {
    /// The gateway stored the card and gave a token.
    Succeeded(Tokenized),
    /// The card was refused when verified.
    Declined(Decline),
}

/// A gateway token for a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenized {
    /// The token (Stripe `tok_…` or `pm_…`).
    pub token: String,
    /// The gateway's customer the card is attached to (Twilio's `ProfileId`), for reusable
    /// tokens.
    pub customer: Option<String>,
    /// True when replayed for a repeated idempotency key.
    pub replayed: bool,
}

/// A successful refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refunded {
    /// The gateway's refund id.
    pub refund_id: String,
    /// The amount refunded.
    pub amount: Money,
    /// True when replayed for a repeated idempotency key.
    pub replayed: bool,
}

/// A declined card: the agent tells the caller (without revealing lost/stolen reasons).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    /// Our classification.
    pub code: DeclineCode,
    /// The gateway's own code (`card_declined`, `insufficient_funds`, …), sanitized.
    pub gateway_code: Option<String>,
}

impl Decline {
    /// A decline with the gateway's code, classified.
    pub fn from_gateway_code(code: &str) -> Decline {
        Decline { code: DeclineCode::from_code(code), gateway_code: sanitize_code(code) }
    }
}

/// Why a card was declined (Stripe's decline codes, the ones an agent can act on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeclineCode {
    /// No reason given (`generic_decline`, `card_declined`, `do_not_honor`, …).
    Generic,
    /// `insufficient_funds`.
    InsufficientFunds,
    /// `lost_card`: shown to the agent as a generic decline.
    LostCard,
    /// `stolen_card`: shown to the agent as a generic decline.
    StolenCard,
    /// `expired_card`.
    ExpiredCard,
    /// `incorrect_cvc` / `invalid_cvc`.
    IncorrectCvc,
    /// `incorrect_number` / `invalid_number`.
    IncorrectNumber,
    /// `authentication_required`: the issuer wants 3-D Secure (should not happen for
    /// MOTO payments, which are out of SCA scope).
    AuthenticationRequired,
    /// A code we do not classify; see `gateway_code`.
    Other,
}

impl DeclineCode {
    /// Classifies a Stripe-style code.
    pub fn from_code(code: &str) -> DeclineCode {
        match code {
            "generic_decline"
            | "card_declined"
            | "do_not_honor"
            | "call_issuer"
            | "transaction_not_allowed"
            | "fraudulent"
            | "pickup_card" => DeclineCode::Generic,
            "insufficient_funds" => DeclineCode::InsufficientFunds,
            "lost_card" => DeclineCode::LostCard,
            "stolen_card" => DeclineCode::StolenCard,
            "expired_card" | "invalid_expiry_month" | "invalid_expiry_year" => {
                DeclineCode::ExpiredCard
            }
            "incorrect_cvc" | "invalid_cvc" => DeclineCode::IncorrectCvc,
            "incorrect_number" | "invalid_number" => DeclineCode::IncorrectNumber,
            "authentication_required" | "payment_intent_authentication_failure" => {
                DeclineCode::AuthenticationRequired
            }
            _ => DeclineCode::Other,
        }
    }

    /// Stripe's code for this class.
    pub fn name(self) -> &'static str {
        match self {
            DeclineCode::Generic => "generic_decline",
            DeclineCode::InsufficientFunds => "insufficient_funds",
            DeclineCode::LostCard => "lost_card",
            DeclineCode::StolenCard => "stolen_card",
            DeclineCode::ExpiredCard => "expired_card",
            DeclineCode::IncorrectCvc => "incorrect_cvc",
            DeclineCode::IncorrectNumber => "incorrect_number",
            DeclineCode::AuthenticationRequired => "authentication_required",
            DeclineCode::Other => "other",
        }
    }

    /// What the agent may tell the caller. Lost and stolen cards read as a plain decline
    /// (Stripe: do not reveal those reasons).
    pub fn agent_message(self) -> &'static str {
        match self {
            DeclineCode::InsufficientFunds => "insufficient funds",
            DeclineCode::ExpiredCard => "card expired",
            DeclineCode::IncorrectCvc => "security code incorrect",
            DeclineCode::IncorrectNumber => "card number incorrect",
            DeclineCode::AuthenticationRequired => "card requires authentication",
            _ => "card declined",
        }
    }
}

impl fmt::Display for DeclineCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
