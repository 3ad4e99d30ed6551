//! What a payment session is for and how it collects.

use std::time::Duration;

use ivrpay_card::{BrandSet, IdempotencyKey, Money, TokenType};

/// The parameters of a payment session (Twilio's `Payments` create call).
///
/// [`SessionConfig::new`] gives Twilio's defaults; the fields are public to adjust.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The amount to charge. Zero means tokenize only.
    pub amount: Money,
    /// What the payment is for (shown on the statement where the gateway supports it).
    pub description: String,
    /// The business's reference for the customer or invoice.
    pub customer_reference: Option<String>,
    /// The token asked for when tokenizing.
    pub token_type: TokenType,
    /// The key of this payment attempt, reused on every retry.
    pub idempotency_key: IdempotencyKey,
    /// The brands accepted (Twilio's `ValidCardTypes`; default `visa mastercard amex`).
    pub accepted_brands: BrandSet,
    /// Collect the security code (default true).
    pub security_code: bool,
    /// Collect the billing postal code (default false).
    pub postal_code: bool,
    /// The shortest postal code accepted (default 3).
    pub min_postal_code_length: usize,
    /// The longest pause between two digits of a field (Twilio's `Timeout`, default 5 s).
    pub inter_digit_timeout: Duration,
    /// How long a field waits for its first digit; `None` (the default, for agent-assisted
    /// sessions where the agent talks the caller through) waits for ever. IVR sessions set it.
    pub first_digit_timeout: Option<Duration>,
    /// Failed attempts per field before the session fails (default 3, like `<Pay>`).
    pub max_attempts: u8,
    /// Move to the next missing field by itself when one is captured (default true). When
    /// false the agent asks for every field with `capture`.
    pub auto_advance: bool,
}

impl SessionConfig {
    /// A session for `amount` (zero: tokenize) with Twilio's defaults.
    pub fn new(amount: Money, idempotency_key: IdempotencyKey) -> SessionConfig {
        SessionConfig {
            amount,
            description: String::new(),
            customer_reference: None,
            token_type: TokenType::default(),
            idempotency_key,
            accepted_brands: BrandSet::default(),
            security_code: true,
            postal_code: false,
            min_postal_code_length: 3,
            inter_digit_timeout: Duration::from_secs(5),
            first_digit_timeout: None,
            max_attempts: 3,
            auto_advance: true,
        }
    }
}
