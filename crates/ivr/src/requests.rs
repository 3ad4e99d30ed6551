//! Payment requests: an amount owed, created over the API before the call, that a caller pays
//! by keying its reference in the IVR.
//!
//! A reference is six random digits and a Luhn check digit (seven keys; a mistyped digit or
//! two swapped neighbours are caught before any lookup). References are unique among the
//! requests that can still be paid and are reused once a request is over.

use std::time::Duration;

use ivrpay_card::{Currency, Money, luhn_check_digit, luhn_valid};
use ivrpay_store::{
    NewPaymentRequest, PaymentRequestId, PaymentRequestRecord, Store, TenantId, Timestamp,
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::error::IvrError;

/// How long a request can be paid when its creator says nothing.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest expiry accepted.
pub const MAX_EXPIRY: Duration = Duration::from_secs(90 * 24 * 3600);
/// Random digits before the check digit.
const RANDOM_DIGITS: usize = 6;
/// Tries at a free reference before giving up (a tenant would need most of a million open
/// requests for this to matter).
const TRIES: usize = 20;

/// `POST /v1/payment-requests`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    /// Decimal amount in major units (`"12.50"`); more than zero.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    pub description: Option<String>,
    /// The merchant's customer or invoice reference.
    pub customer_ref: Option<String>,
    /// Seconds from now until it can no longer be paid (default 7 days, at most 90).
    pub expires_in: Option<u64>,
}

/// A payment request as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentRequestView {
    /// `preq_…`.
    pub id: String,
    /// The digits the caller keys in the IVR.
    pub reference: String,
    pub amount: String,
    pub currency: String,
    pub description: Option<String>,
    pub customer_ref: Option<String>,
    /// `open`, `claimed` (a call is paying it), `paid` or `expired`.
    pub status: String,
    pub expires_at: Option<String>,
    /// The payment session (`ses_…`) and payment (`pay_…`) that paid it.
    pub session_id: Option<String>,
    pub payment_id: Option<String>,
    /// The call paying it or that paid it.
    pub call_id: Option<String>,
    pub created_at: String,
}

impl From<&PaymentRequestRecord> for PaymentRequestView {
    fn from(r: &PaymentRequestRecord) -> PaymentRequestView {
        let amount = r.amount();
        PaymentRequestView {
            id: r.id.as_str().to_owned(),
            reference: r.reference.clone(),
            amount: amount.to_major_string(),
            currency: amount.currency().code().to_owned(),
            description: r.description.clone(),
            customer_ref: r.customer_ref.clone(),
            status: r.status.as_str().to_owned(),
            expires_at: r.expires_at_ms.map(|ms| Timestamp::from_unix_ms(ms).to_string()),
            session_id: r.session_id.as_ref().map(|s| s.as_str().to_owned()),
            payment_id: r.payment_id.as_ref().map(|p| p.as_str().to_owned()),
            call_id: r.call_id.as_ref().map(|c| c.as_str().to_owned()),
            created_at: r.created_at.to_string(),
        }
    }
}

/// Checks a request; returns the amount.
fn validate(request: &CreatePaymentRequest) -> Result<(Money, Duration), IvrError> {
    let currency = Currency::from_code(request.currency.trim())
        .map_err(|_| IvrError::Invalid("currency: expected an ISO 4217 code such as GBP".into()))?;
    let amount = Money::parse_major(request.amount.trim(), currency).map_err(|e| {
        IvrError::Invalid(format!("amount: {e} (a decimal amount in major units, \"12.50\")"))
    })?;
    if amount.is_zero() {
        return Err(IvrError::Invalid("amount: must be more than zero".into()));
    }
    for (name, value) in
        [("description", &request.description), ("customer_ref", &request.customer_ref)]
    {
        if value.as_ref().is_some_and(|v| v.len() > 255) {
            return Err(IvrError::Invalid(format!("{name}: at most 255 bytes")));
        }
    }
    let expiry = match request.expires_in {
        None => DEFAULT_EXPIRY,
        Some(s) if (60..=MAX_EXPIRY.as_secs()).contains(&s) => Duration::from_secs(s),
        Some(_) => {
            return Err(IvrError::Invalid(format!(
                "expires_in: 60 to {} seconds",
                MAX_EXPIRY.as_secs()
            )));
        }
    };
    Ok((amount, expiry))
}

/// A fresh reference: six random digits and their Luhn check digit.
pub fn new_reference() -> String {
    let mut rng = rand::rng();
    let mut digits: Vec<u8> =
        (0..RANDOM_DIGITS).map(|_| b'0' + (rng.next_u32() % 10) as u8).collect();
    // Six ASCII digits always have a check digit (ASCII too).
    digits.push(luhn_check_digit(&digits).unwrap_or(b'0'));
    digits.into_iter().map(char::from).collect()
}

/// Whether `typed` can be a reference at all (the right length, the check digit right):
/// what fails here is not looked up.
pub fn plausible_reference(typed: &str) -> bool {
    typed.len() == RANDOM_DIGITS + 1
        && typed.bytes().all(|b| b.is_ascii_digit())
        && luhn_valid(typed.as_bytes())
}

pub(crate) async fn create(
    store: &Store,
    tenant: &TenantId,
    request: &CreatePaymentRequest,
    now: Timestamp,
) -> Result<PaymentRequestRecord, IvrError> {
    let (amount, expiry) = validate(request)?;
    let mut last = None;
    for _ in 0..TRIES {
        let new = NewPaymentRequest {
            tenant_id: tenant.clone(),
            reference: new_reference(),
            amount,
            description: request.description.clone(),
            customer_ref: request.customer_ref.clone(),
            expires_at: Some(now.saturating_add(expiry)),
        };
        match store.create_payment_request(&new, now).await {
            Ok(record) => return Ok(record),
            Err(e) if e.is_unique_violation() => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or(IvrError::Invalid("no free reference".into()), IvrError::Store))
}

pub(crate) async fn read(
    store: &Store,
    tenant: &TenantId,
    id: &str,
) -> Result<PaymentRequestRecord, IvrError> {
    let id = PaymentRequestId::parse(id).map_err(|_| IvrError::UnknownPaymentRequest)?;
    Ok(store.payment_request(tenant, &id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_carry_a_check_digit() {
        for _ in 0..1000 {
            let r = new_reference();
            assert!(plausible_reference(&r), "{r}");
            // Any one digit changed is caught.
            let mut wrong = r.clone().into_bytes();
            wrong[2] = b'0' + (wrong[2] - b'0' + 1) % 10;
            assert!(!plausible_reference(std::str::from_utf8(&wrong).expect("ascii")));
        }
        assert!(!plausible_reference("123"));
        assert!(!plausible_reference("12345678"));
    }

    #[test]
    fn requests_are_checked() {
        let ok = CreatePaymentRequest {
            amount: "12.50".into(),
            currency: "GBP".into(),
            description: None,
            customer_ref: None,
            expires_in: None,
        };
        assert_eq!(validate(&ok).expect("valid").0, Money::from_minor(1250, Currency::GBP));
        for (bad, why) in [
            (CreatePaymentRequest { amount: "0".into(), ..ok.clone() }, "more than zero"),
            (CreatePaymentRequest { amount: "12.505".into(), ..ok.clone() }, "amount"),
            (CreatePaymentRequest { currency: "pounds".into(), ..ok.clone() }, "currency"),
            (CreatePaymentRequest { expires_in: Some(5), ..ok.clone() }, "expires_in"),
        ] {
            let err = validate(&bad).expect_err(why).to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
