//! What the agent does: ask for fields in any order, re-ask, and the capture sequence rule.
//! What the caller does: `*` and `#`.

use ivrpay_capture::{CaptureError, Event, Field, SessionError};

use crate::harness::{AMEX, Harness, VISA, config};

fn manual() -> Harness {
    let mut c = config(100);
    c.auto_advance = false;
    Harness::new(c)
}

#[test]
fn without_auto_advance_nothing_is_collected_until_asked() {
    let mut h = manual();
    assert_eq!(h.session.current_field(), None);
    h.keys(VISA);
    assert!(h.take().is_empty(), "digits outside a field are ignored");
    h.capture(Field::Expiry).expect("open");
    assert_eq!(h.take(), [Event::Capturing { field: Field::Expiry, attempt: 1 }]);
    h.keys("1230");
    assert_eq!(h.session.current_field(), None, "no auto-advance");
    h.capture(Field::CardNumber).expect("open");
    h.keys(VISA);
    h.capture(Field::SecurityCode).expect("card number is there");
    h.keys("123");
    let events = h.take();
    assert_eq!(events.last(), Some(&Event::Ready));
    assert!(h.session.complete().is_ok());
}

#[test]
fn security_code_before_card_number_is_a_sequence_error() {
    let mut h = manual();
    assert_eq!(h.capture(Field::SecurityCode), Err(SessionError::CaptureSequence));
    let p = h.progress();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].field, Field::SecurityCode);
    assert_eq!(p[0].error, Some(CaptureError::InvalidCardNumberSecurityCodeCaptureSequence));
    assert_eq!(h.session.current_field(), None);
    // Also with auto-advance, while the card number is being typed: the request is refused
    // and the card number goes on.
    let mut h = Harness::new(config(100));
    h.keys("4242");
    assert_eq!(h.capture(Field::SecurityCode), Err(SessionError::CaptureSequence));
    assert_eq!(h.session.current_field(), Some(Field::CardNumber));
}

#[test]
fn re_asking_a_field_replaces_it() {
    let mut h = Harness::new(config(100));
    h.keys(VISA).keys("1230").keys("123");
    assert!(h.session.is_ready());
    h.take();
    h.capture(Field::Expiry).expect("open");
    assert_eq!(h.session.required().to_string(), "expiration-date");
    assert!(!h.session.is_ready());
    h.keys("0631");
    assert_eq!(h.take().last(), Some(&Event::Ready));
    let done = h.session.complete().expect("ready");
    assert_eq!(done.card.expiry.mmyy().to_string(), "06/31");
    assert_eq!(done.card.cvv.as_ref().map(|c| c.expose()), Some("123"));
}

#[test]
fn re_asking_mid_field_abandons_the_digits() {
    let mut h = Harness::new(config(100));
    h.keys(VISA).keys("12"); // half an expiry
    h.capture(Field::CardNumber).expect("open");
    assert_eq!(
        h.session.required().to_string(),
        "payment-card-number expiration-date security-code"
    );
    h.keys("5555555555554444");
    // Auto-advance goes to the first missing field: the expiry, from scratch.
    assert_eq!(h.session.current_field(), Some(Field::Expiry));
    h.take();
    h.keys("1");
    assert_eq!(h.progress()[0].masked, "1");
}

#[test]
fn a_new_card_of_another_brand_drops_a_security_code_that_no_longer_fits() {
    let mut h = Harness::new(config(100));
    h.keys(VISA).keys("1230").keys("123");
    h.capture(Field::CardNumber).expect("open");
    h.keys(AMEX);
    assert_eq!(h.session.required().to_string(), "security-code");
    assert_eq!(h.session.current_field(), Some(Field::SecurityCode));
    h.keys("1234");
    assert!(h.session.is_ready());
    // Same brand: the code stays.
    let mut h = Harness::new(config(100));
    h.keys(VISA).keys("1230").keys("123");
    h.capture(Field::CardNumber).expect("open");
    h.keys("4000056655665556");
    assert!(h.session.is_ready());
}

#[test]
fn star_clears_the_field_being_typed() {
    let mut h = Harness::new(config(100));
    h.keys("4242*");
    let p = h.progress();
    assert_eq!(p.last().map(|p| (p.masked.as_str(), p.partial, p.error)), Some(("", true, None)));
    h.keys(VISA);
    assert_eq!(h.session.current_field(), Some(Field::Expiry));
    h.keys("13*1230");
    assert_eq!(h.errors(), []);
    assert_eq!(h.session.current_field(), Some(Field::SecurityCode));
    // `*` does not count as an attempt.
    h.keys("1*2*3*");
    h.keys("123");
    let done = h.session.complete().expect("ready");
    assert_eq!(done.card.cvv.as_ref().map(|c| c.expose()), Some("123"));
}

#[test]
fn hash_ends_a_field_and_letters_are_ignored() {
    let mut h = Harness::new(config(100));
    h.keys("4A2B4C2D");
    assert_eq!(h.progress().len(), 4, "A-D give no event");
    // Twelve more digits make 4242424242424242, which ends by itself at the 16th digit; the
    // `#` after it lands on the expiry, as an empty entry.
    h.keys("424242424242#");
    assert_eq!(h.errors(), [(Field::Expiry, CaptureError::InvalidDate)]);
}

#[test]
fn fields_outside_the_session_are_refused() {
    let mut h = Harness::new(config(100));
    assert_eq!(
        h.capture(Field::PostalCode),
        Err(SessionError::FieldNotInSession(Field::PostalCode))
    );
    let mut c = config(100);
    c.security_code = false;
    let mut h = Harness::new(c);
    assert_eq!(
        h.capture(Field::SecurityCode),
        Err(SessionError::FieldNotInSession(Field::SecurityCode))
    );
}

#[test]
fn complete_early_gives_the_session_back() {
    let mut h = Harness::new(config(100));
    h.keys(VISA);
    let back = h.session.complete().expect_err("incomplete");
    assert_eq!(back.error.to_string(), "required fields missing: expiration-date security-code");
    let mut session = back.session;
    assert_eq!(session.current_field(), Some(Field::Expiry));
    for c in "1230123".chars() {
        session.handle_digit(h.now, ivrpay_dtmf::Digit::from_char(c).expect("key"));
    }
    assert!(session.complete().is_ok());
}
