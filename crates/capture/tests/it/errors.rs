//! Every error type, the attempt count, and the failed state.

use ivrpay_capture::{CaptureError, Event, Field, SessionError};
use ivrpay_card::BrandSet;

use crate::harness::{AMEX, Harness, VISA, config};

#[test]
fn invalid_card_number_luhn_and_length() {
    let mut h = Harness::new(config(100));
    // Fails Luhn: does not end by itself at 16; `#` ends it.
    h.keys("4242424242424241#");
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardNumber)]);
    assert_eq!(h.session.current_field(), Some(Field::CardNumber));
    // Amex with 14 digits.
    h.keys(&format!("{}#", &AMEX[..14]));
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardNumber)]);
    // Too short for any card.
    let mut h = Harness::new(config(100));
    h.keys("42424#");
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardNumber)]);
    // Mastercard is 16 digits only: 15 + `#`.
    h.keys("555555555555444#");
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardNumber)]);
}

#[test]
fn errors_carry_the_attempt_and_clear_the_field() {
    let mut h = Harness::new(config(100));
    h.keys("4242424242424241#");
    let events = h.take();
    let Event::Progress(p) = &events[events.len() - 2] else { panic!("{events:?}") };
    assert_eq!((p.attempt, p.partial, p.masked.as_str()), (1, false, ""));
    assert_eq!(p.error.map(CaptureError::name), Some("invalid-card-number"));
    assert_eq!(events.last(), Some(&Event::Capturing { field: Field::CardNumber, attempt: 2 }));
    h.keys(VISA);
    assert_eq!(h.progress()[0].attempt, 2);
}

#[test]
fn invalid_card_type() {
    // Discover is not in Twilio's default set: the number ends at 16 and is refused.
    let mut h = Harness::new(config(100));
    h.keys("6011111111111117");
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardType)]);
    // No brand at all: 19 digits end the field.
    h.keys("9999999999999999995");
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardType)]);
    // Accepted once the session takes Discover.
    let mut c = config(100);
    c.accepted_brands = BrandSet::parse_list("discover").expect("names");
    let mut h = Harness::new(c);
    h.keys("6011111111111117");
    assert_eq!(h.errors(), []);
    assert_eq!(h.session.current_field(), Some(Field::Expiry));
    // And Visa is then refused.
    h.capture(Field::CardNumber).expect("open");
    h.keys(VISA);
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InvalidCardType)]);
}

#[test]
fn invalid_date() {
    // Month 13 and 00, last month (today is May 2026), last year, short with `#`, empty.
    for bad in ["1330", "0030", "0426", "0125", "12#", "#"] {
        let mut h = Harness::new(config(100));
        h.keys(VISA).take();
        h.keys(bad);
        assert_eq!(h.errors(), [(Field::Expiry, CaptureError::InvalidDate)], "{bad}");
        assert_eq!(h.session.current_field(), Some(Field::Expiry));
    }
}

#[test]
fn this_month_is_still_valid() {
    let mut h = Harness::new(config(100));
    h.keys(VISA).keys("0526");
    assert_eq!(h.errors(), []);
    assert_eq!(h.session.current_field(), Some(Field::SecurityCode));
}

#[test]
fn invalid_security_code() {
    let mut h = Harness::new(config(100));
    h.keys(VISA).keys("1230").take();
    h.keys("12#");
    assert_eq!(h.errors(), [(Field::SecurityCode, CaptureError::InvalidSecurityCode)]);
    // Amex wants four: three and `#` fail.
    let mut h = Harness::new(config(100));
    h.keys(AMEX).keys("1230").take();
    h.keys("123#");
    assert_eq!(h.errors(), [(Field::SecurityCode, CaptureError::InvalidSecurityCode)]);
    h.keys("1234");
    assert!(h.session.is_ready());
}

#[test]
fn invalid_postal_code() {
    let mut c = config(100);
    c.postal_code = true;
    c.min_postal_code_length = 5;
    let mut h = Harness::new(c);
    h.keys(VISA).keys("1230").keys("123").take();
    h.keys("941#");
    assert_eq!(h.errors(), [(Field::PostalCode, CaptureError::InvalidPostalCode)]);
}

#[test]
fn too_many_failed_attempts_fail_the_session() {
    let mut h = Harness::new(config(100));
    h.keys(VISA).take();
    h.keys("1330").keys("1430");
    assert_eq!(h.errors().len(), 2);
    h.keys("1530");
    let events = h.take();
    assert_eq!(events.last(), Some(&Event::Failed { field: Field::Expiry }));
    assert_eq!(h.session.failed(), Some(Field::Expiry));
    assert_eq!(h.session.poll_timeout(), None);
    // Digits are ignored, capture and complete are refused, cancel works.
    h.keys("1230");
    assert!(h.take().is_empty());
    assert_eq!(h.capture(Field::Expiry), Err(SessionError::Failed(Field::Expiry)));
    let back = h.session.complete().expect_err("failed");
    assert_eq!(back.error, SessionError::Failed(Field::Expiry));
    let cancelled = back.session.cancel();
    assert_eq!(cancelled.idempotency_key.as_str(), "call-1-pay-1");
}

#[test]
fn max_attempts_is_configurable() {
    let mut c = config(100);
    c.max_attempts = 1;
    let mut h = Harness::new(c);
    h.keys("4242424242424241#");
    assert_eq!(h.session.failed(), Some(Field::CardNumber));
}

#[test]
fn error_names_are_twilios() {
    let names: Vec<&str> = [
        CaptureError::InvalidCardNumber,
        CaptureError::InvalidCardType,
        CaptureError::InvalidDate,
        CaptureError::InvalidSecurityCode,
        CaptureError::InvalidPostalCode,
        CaptureError::InputTimeout,
        CaptureError::InvalidCardNumberSecurityCodeCaptureSequence,
    ]
    .into_iter()
    .map(CaptureError::name)
    .collect();
    assert_eq!(
        names,
        [
            "invalid-card-number",
            "invalid-card-type",
            "invalid-date",
            "invalid-security-code",
            "invalid-postal-code",
            "input-timeout",
            "invalid-card-number-security-code-capture-sequence",
        ]
    );
}
