//! The receipt a customer gets by email or SMS: amount, card brand and last four, the
//! reference, the time. Pure; built only from fields that are safe to show (PCI DSS 3.4.1:
//! brand and last four at most), never from the whole payload.

use ivrpay_card::Currency;
use serde_json::{Value, json};

use crate::csv::major;

/// What a receipt says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// `Payment receipt` or `Refund receipt`.
    pub title: String,
    /// `12.50 USD`.
    pub amount: String,
    /// Card brand.
    pub brand: String,
    /// Last four digits (exactly four digits, or empty).
    pub last4: String,
    /// Our reference (the payment or refund id).
    pub reference: String,
    /// When, RFC 3339.
    pub time: String,
    /// Statement text, if any.
    pub description: String,
    /// The whole receipt as plain text (email body, SMS).
    pub text: String,
}

fn four_digits(text: &str) -> String {
    if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
        text.to_owned()
    } else {
        String::new()
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The receipt for a payment or refund event. `card` is the payment's (brand, last four)
/// for a refund, whose event does not carry them; `time` the event's RFC 3339 time.
#[must_use]
pub fn receipt_for(
    event_type: &str,
    payload: &Value,
    card: Option<(&str, &str)>,
    time: &str,
) -> Receipt {
    let refund = event_type.starts_with("refund.");
    let minor = payload.get("amount_minor").and_then(Value::as_i64).unwrap_or(0);
    let code = str_field(payload, "currency");
    let exponent = Currency::from_code(code).map_or(2, |c| c.exponent());
    let amount = format!("{} {code}", major(minor, exponent));
    let (brand, last4) = match card {
        Some((brand, last4)) => (brand.to_owned(), four_digits(last4)),
        None => (str_field(payload, "brand").to_owned(), four_digits(str_field(payload, "last4"))),
    };
    let title = if refund { "Refund receipt" } else { "Payment receipt" }.to_owned();
    let reference = str_field(payload, "id").to_owned();
    let description = str_field(payload, "description").to_owned();
    let mut text = format!("{title}\nAmount: {amount}\n");
    if !last4.is_empty() {
        text.push_str(&format!("Card: {brand} ending {last4}\n"));
    }
    if !description.is_empty() {
        text.push_str(&format!("For: {description}\n"));
    }
    text.push_str(&format!("Reference: {reference}\nDate: {time}\n"));
    Receipt { title, amount, brand, last4, reference, time: time.to_owned(), description, text }
}

impl Receipt {
    /// As template context.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_brand_and_last_four_only() {
        let payload = json!({"id": "pay_1", "amount_minor": 1250, "currency": "USD", "brand": "visa",
            "last4": "4242", "description": "invoice 17"});
        let r = receipt_for("payment.succeeded", &payload, None, "2026-01-02T03:04:05.000Z");
        assert_eq!(r.amount, "12.50 USD");
        assert!(r.text.contains("Card: visa ending 4242"), "{}", r.text);
        let sneaky = json!({"id": "pay_2", "amount_minor": 5, "currency": "JPY", "last4": "4242424242424242"});
        let r = receipt_for("payment.succeeded", &sneaky, None, "t");
        assert_eq!((r.amount.as_str(), r.last4.as_str()), ("5 JPY", ""));
        assert!(!r.text.contains("4242"));
        let refund = receipt_for("refund.succeeded", &payload, Some(("mastercard", "4444")), "t");
        assert!(refund.text.starts_with("Refund receipt"));
        assert!(refund.text.contains("mastercard ending 4444"));
    }
}
