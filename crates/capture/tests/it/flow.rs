//! The default order: fields one after the other, masked progress, then completion.

use ivrpay_capture::{Event, Field, FieldSet, Operation};
use ivrpay_card::{Brand, Currency, Money, TokenType};

use crate::harness::{AMEX, Harness, VISA, config};

#[test]
fn default_order_captures_every_field_by_itself() {
    let mut h = Harness::new(config(1999));
    assert_eq!(h.session.current_field(), Some(Field::CardNumber));
    h.keys(VISA);
    let events = h.take();
    assert_eq!(events[0], Event::Capturing { field: Field::CardNumber, attempt: 1 });
    assert_eq!(events.len(), 18, "the first field, 16 progress events, the next field");
    let Event::Progress(last) = &events[16] else { panic!("progress expected") };
    assert!(!last.partial);
    assert_eq!(last.masked, "•••• •••• •••• 4242");
    assert_eq!(last.brand, Some(Brand::Visa));
    assert_eq!(last.error, None);
    assert_eq!(last.required.to_string(), "expiration-date security-code");
    assert_eq!(events[17], Event::Capturing { field: Field::Expiry, attempt: 1 });

    h.keys("1230");
    let p = h.progress();
    let masked: Vec<&str> = p.iter().map(|p| p.masked.as_str()).collect();
    assert_eq!(masked, ["1", "12", "12/3", "12/30"]);
    assert_eq!(p.iter().map(|p| p.partial).collect::<Vec<_>>(), [true, true, true, false]);
    assert_eq!(h.session.current_field(), Some(Field::SecurityCode));

    h.keys("739");
    let events = h.take();
    let masked: Vec<String> = events
        .iter()
        .filter_map(|e| if let Event::Progress(p) = e { Some(p.masked.clone()) } else { None })
        .collect();
    assert_eq!(masked, ["•", "••", "•••"]);
    assert_eq!(events.last(), Some(&Event::Ready));
    assert!(h.session.is_ready() && h.session.required().is_empty());
    assert_eq!(h.session.current_field(), None);

    let done = h.session.complete().expect("ready");
    assert_eq!(done.operation, Operation::Charge(Money::from_minor(1999, Currency::USD)));
    assert_eq!(done.card.pan.expose(), VISA);
    assert_eq!(done.card.expiry.mmyy().to_string(), "12/30");
    assert_eq!(done.card.cvv.as_ref().map(|c| c.expose()), Some("739"));
    assert!(done.card.postal_code.is_none());
    assert_eq!(done.idempotency_key.as_str(), "call-1-pay-1");
}

#[test]
fn brand_appears_as_soon_as_the_iin_decides_it() {
    let mut h = Harness::new(config(100));
    h.keys("5");
    assert_eq!(h.progress()[0].brand, None, "5 is Mastercard or Maestro");
    h.keys("5");
    assert_eq!(h.progress()[0].brand, Some(Brand::Mastercard));
    let mut h = Harness::new(config(100));
    h.keys("37");
    assert_eq!(h.progress().iter().map(|p| p.brand).collect::<Vec<_>>(), [None, Some(Brand::Amex)]);
}

#[test]
fn card_digits_are_never_shown_while_typed() {
    let mut h = Harness::new(config(100));
    h.keys(&VISA[..15]);
    for (i, p) in h.progress().iter().enumerate() {
        assert!(p.partial);
        assert!(!p.masked.chars().any(|c| c.is_ascii_digit()), "{}", p.masked);
        assert_eq!(p.masked.chars().filter(|&c| c == '•').count(), i + 1);
    }
}

#[test]
fn amex_grouping_and_four_digit_cid() {
    let mut h = Harness::new(config(5000));
    h.keys(AMEX);
    let p = h.progress();
    assert_eq!(p.len(), 15, "Amex ends by itself at 15 digits");
    assert_eq!(p[14].masked, "•••• •••••• •0005");
    h.keys("0130").keys("123");
    assert_eq!(h.session.current_field(), Some(Field::SecurityCode), "Amex wants four digits");
    h.keys("4");
    assert!(h.session.is_ready());
    let done = h.session.complete().expect("ready");
    assert_eq!(done.card.cvv.as_ref().map(|c| c.len()), Some(4));
}

#[test]
fn zero_amount_tokenizes() {
    let mut c = config(0);
    c.token_type = TokenType::PaymentMethod;
    let mut h = Harness::new(c);
    h.keys(VISA).keys("1230").keys("123");
    let done = h.session.complete().expect("ready");
    assert_eq!(done.operation, Operation::Tokenize(TokenType::PaymentMethod));
}

#[test]
fn postal_code_when_the_session_asks_for_it() {
    let mut c = config(100);
    c.postal_code = true;
    let mut h = Harness::new(c);
    assert_eq!(
        h.session.required().to_string(),
        "payment-card-number expiration-date security-code postal-code"
    );
    h.keys(VISA).keys("1230").keys("123");
    assert_eq!(h.session.current_field(), Some(Field::PostalCode));
    h.take();
    h.keys("94107#");
    let p = h.progress();
    assert_eq!(p.last().map(|p| (p.masked.as_str(), p.partial)), Some(("94107", false)));
    assert_eq!(h.session.required(), FieldSet::EMPTY);
    let done = h.session.complete().expect("ready");
    assert_eq!(done.card.postal_code.as_ref().map(|p| p.expose()), Some("94107"));
}

#[test]
fn security_code_off() {
    let mut c = config(100);
    c.security_code = false;
    let mut h = Harness::new(c);
    h.keys(VISA).keys("1230");
    assert!(h.session.is_ready());
    assert!(h.session.complete().expect("ready").card.cvv.is_none());
}

#[test]
fn nineteen_digit_visa_and_a_short_one_ended_with_hash() {
    // A 19-digit Visa runs to its maximum length and ends by itself.
    let pan19 = "4000000000000000006";
    assert!(ivrpay_card::luhn_valid(pan19.as_bytes()));
    let mut h = Harness::new(config(100));
    h.keys(pan19);
    assert_eq!(h.session.current_field(), Some(Field::Expiry));
    // A 13-digit Visa needs `#`.
    let pan13 = "4222222222222";
    let mut h = Harness::new(config(100));
    h.keys(pan13);
    assert_eq!(h.session.current_field(), Some(Field::CardNumber));
    h.keys("#");
    assert_eq!(h.session.current_field(), Some(Field::Expiry));
    let done = {
        h.keys("1230").keys("123");
        h.session.complete().expect("ready")
    };
    assert_eq!(done.card.pan.expose(), pan13);
}
