//! One field being typed: the digits so far, when the field ends by itself, validation and
//! the masked forms an agent sees.

use ivrpay_card::{
    AsciiBuf, Brand, BrandSet, Cvv, Detection, Expiry, MASK_CHAR, PAN_MAX_LEN, POSTAL_MAX_LEN, Pan,
    PostalCode, Secret, YearMonth, luhn_valid,
};

use crate::error::CaptureError;
use crate::field::Field;

/// What validation needs besides the digits.
pub(crate) struct Rules {
    pub(crate) accepted: BrandSet,
    pub(crate) today: YearMonth,
    /// The brand of the captured card number, for the security code's length.
    pub(crate) card_brand: Option<Brand>,
    pub(crate) min_postal: usize,
}

/// A validated field value.
pub(crate) enum Value {
    Pan(Pan),
    Expiry(Expiry),
    Cvv(Cvv),
    Postal(PostalCode),
}

/// The digits typed into the current field, wiped on clear and on drop.
#[derive(Debug)]
pub(crate) struct Entry(Secret<AsciiBuf<PAN_MAX_LEN>>);

impl Entry {
    pub(crate) fn new() -> Entry {
        Entry(Secret::new(AsciiBuf::new()))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.expose().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.expose().is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.0.expose_mut().clear();
    }

    fn digits(&self) -> &[u8] {
        self.0.expose().as_bytes()
    }

    /// Appends a digit unless the field is full. A full field has already ended, so this
    /// never silently drops a digit the caller meant.
    pub(crate) fn push(&mut self, field: Field, digit: u8, rules: &Rules) {
        if self.len() < max_len(field, rules) {
            self.0.expose_mut().push(digit);
        }
    }

    /// The brand the card number typed so far shows, once the IIN decides it.
    pub(crate) fn brand(&self, field: Field) -> Option<Brand> {
        match (field, Brand::detect(self.digits())) {
            (Field::CardNumber, Detection::Known(b)) => Some(b),
            _ => None,
        }
    }

    /// True when the field ends by itself after the digit just typed: the caller need not
    /// press `#`.
    pub(crate) fn is_finished(&self, field: Field, rules: &Rules) -> bool {
        let len = self.len();
        match field {
            Field::CardNumber => match self.brand(field) {
                // Full length for the brand, or its usual length and a valid check digit
                // (a longer card of that brand ends with `#` when the first digits happen
                // to pass Luhn: one time in ten).
                Some(b) => {
                    len >= *b.pan_lengths().end()
                        || (len == b.usual_pan_length() && luhn_valid(self.digits()))
                }
                None => len >= PAN_MAX_LEN,
            },
            _ => len >= max_len(field, rules),
        }
    }

    /// Validates the digits as a complete field.
    pub(crate) fn validate(&self, field: Field, rules: &Rules) -> Result<Value, CaptureError> {
        let d = self.digits();
        match field {
            Field::CardNumber => {
                let pan = Pan::from_ascii(d).map_err(|_| CaptureError::InvalidCardNumber)?;
                let brand = pan.brand().ok_or(CaptureError::InvalidCardType)?;
                if !rules.accepted.contains(brand) {
                    return Err(CaptureError::InvalidCardType);
                }
                if !pan.fits_brand(brand) || !pan.is_luhn_valid() {
                    return Err(CaptureError::InvalidCardNumber);
                }
                Ok(Value::Pan(pan))
            }
            Field::Expiry => Expiry::from_mmyy(d)
                .and_then(|e| e.check(rules.today))
                .map(Value::Expiry)
                .map_err(|_| CaptureError::InvalidDate),
            Field::SecurityCode => {
                let expected = rules.card_brand.map_or(3, Brand::cvv_len);
                match Cvv::from_ascii(d) {
                    Ok(cvv) if cvv.len() == expected => Ok(Value::Cvv(cvv)),
                    _ => Err(CaptureError::InvalidSecurityCode),
                }
            }
            Field::PostalCode => match PostalCode::from_ascii(d) {
                Ok(p) if p.len() >= rules.min_postal => Ok(Value::Postal(p)),
                _ => Err(CaptureError::InvalidPostalCode),
            },
        }
    }

    /// What the agent sees while the field is typed: no card digit at all for the card
    /// number and security code (one bullet per digit; the last four only appear once the
    /// number is complete, since mid-entry they would be middle digits), the expiry and
    /// postal code in clear.
    pub(crate) fn masked_partial(&self, field: Field) -> String {
        let d = self.digits();
        let mut out = String::with_capacity(d.len() * 4);
        match field {
            Field::CardNumber => {
                for i in 0..d.len() {
                    if i > 0 && i % 4 == 0 {
                        out.push(' ');
                    }
                    out.push(MASK_CHAR);
                }
            }
            Field::SecurityCode => out.extend(std::iter::repeat_n(MASK_CHAR, d.len())),
            Field::Expiry => {
                for (i, &b) in d.iter().enumerate() {
                    if i == 2 {
                        out.push('/');
                    }
                    out.push(char::from(b));
                }
            }
            Field::PostalCode => out.extend(d.iter().map(|&b| char::from(b))),
        }
        out
    }
}

/// The most digits a field takes.
fn max_len(field: Field, rules: &Rules) -> usize {
    match field {
        Field::CardNumber => PAN_MAX_LEN,
        Field::Expiry => 4,
        Field::SecurityCode => rules.card_brand.map_or(3, Brand::cvv_len),
        Field::PostalCode => POSTAL_MAX_LEN,
    }
}

/// What the agent sees of a captured value: brand grouping and last four, the expiry as
/// `MM/YY`, the security code as bullets, the postal code in clear.
pub(crate) fn masked_value(value: &Value) -> String {
    match value {
        Value::Pan(p) => p.masked().to_string(),
        Value::Expiry(e) => e.mmyy().to_string(),
        Value::Cvv(c) => std::iter::repeat_n(MASK_CHAR, c.len()).collect(),
        Value::Postal(p) => p.expose().to_string(),
    }
}
