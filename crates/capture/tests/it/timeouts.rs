//! The inter-digit timeout and the optional first-digit timeout, on a simulated clock.

use std::time::Duration;

use ivrpay_capture::{CaptureError, Field};
use ivrpay_dtmf::Digit;

use crate::harness::{Harness, VISA, config};

#[test]
fn a_pause_mid_field_is_an_input_timeout() {
    let mut h = Harness::new(config(100));
    assert_eq!(h.session.poll_timeout(), None, "agent sessions wait for the first digit");
    h.keys("4242");
    assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(5)));
    h.wait(Duration::from_millis(4999));
    assert_eq!(h.errors(), []);
    h.wait(Duration::from_millis(1));
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InputTimeout)]);
    assert_eq!(h.session.current_field(), Some(Field::CardNumber));
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn a_late_digit_sees_the_timeout_first() {
    let mut h = Harness::new(config(100));
    h.keys("1");
    h.take();
    // The driver never woke up; the next key arrives 6 s later.
    let late = h.now + Duration::from_secs(6);
    h.session.handle_digit(late, Digit::from_char('4').expect("key"));
    let mut events = Vec::new();
    while let Some(e) = h.session.poll_event() {
        events.push(e);
    }
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ivrpay_capture::Event::Progress(p) => p.error,
            _ => None,
        })
        .collect();
    assert_eq!(errors, [CaptureError::InputTimeout]);
    // The late key starts the second attempt.
    assert!(
        matches!(events.last(), Some(ivrpay_capture::Event::Progress(p)) if p.attempt == 2 && p.masked == "•")
    );
}

#[test]
fn a_timeout_accepts_a_complete_value() {
    // A postal code has no fixed length: the pause ends it.
    let mut c = config(100);
    c.postal_code = true;
    let mut h = Harness::new(c);
    h.keys(VISA).keys("1230").keys("123").keys("94107");
    h.take();
    h.wait(Duration::from_secs(5));
    assert_eq!(h.errors(), []);
    assert!(h.session.is_ready());
    // So does a 13-digit Visa.
    let mut h = Harness::new(config(100));
    h.keys("4222222222222").wait(Duration::from_secs(5));
    assert_eq!(h.errors(), []);
    assert_eq!(h.session.current_field(), Some(Field::Expiry));
}

#[test]
fn first_digit_timeout_for_ivr_sessions() {
    let mut c = config(100);
    c.first_digit_timeout = Some(Duration::from_secs(10));
    c.inter_digit_timeout = Duration::from_secs(3);
    let mut h = Harness::new(c);
    assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    h.wait(Duration::from_secs(10));
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InputTimeout)]);
    // The next attempt waits again for its first digit, then 3 s between digits.
    assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    h.keys("42");
    assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(3)));
    // `*` goes back to waiting for a first digit.
    h.keys("*");
    assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    // Three timeouts fail the session.
    h.wait(Duration::from_secs(10)).wait(Duration::from_secs(10));
    assert_eq!(h.session.failed(), Some(Field::CardNumber));
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn captured_fields_stop_the_timer() {
    let mut h = Harness::new(config(100));
    h.keys(VISA);
    assert_eq!(h.session.poll_timeout(), None, "next field waits for its first digit");
    h.keys("1230").keys("123");
    assert_eq!(h.session.poll_timeout(), None);
    h.wait(Duration::from_secs(60));
    assert_eq!(h.errors(), []);
}

#[test]
fn an_ivr_starts_the_first_digit_timer_when_its_prompt_ends() {
    // No first-digit timeout in the config: the IVR starts it after each prompt.
    let mut h = Harness::new(config(100));
    assert_eq!(h.session.poll_timeout(), None);
    // A 7 s prompt plays; the caller then has 10 s.
    h.wait(Duration::from_secs(7));
    let now = h.now;
    let ten = Duration::from_secs(10);
    assert!(h.session.start_first_digit_timer(now, Field::CardNumber, 1, ten));
    assert_eq!(h.session.poll_timeout(), Some(now + ten));
    h.wait(ten);
    assert_eq!(h.errors(), [(Field::CardNumber, CaptureError::InputTimeout)]);
    // The second attempt waits for the error prompt and the field prompt to finish: a
    // timer for the first attempt, another field, or a field already typed into is refused.
    assert_eq!(h.session.poll_timeout(), None);
    let now = h.now;
    assert!(!h.session.start_first_digit_timer(now, Field::CardNumber, 1, ten));
    assert!(!h.session.start_first_digit_timer(now, Field::Expiry, 1, ten));
    h.keys("42");
    let now = h.now;
    assert!(!h.session.start_first_digit_timer(now, Field::CardNumber, 2, ten));
    assert_eq!(h.session.poll_timeout(), Some(now + Duration::from_secs(5)), "inter-digit");
    // A key cancels the first-digit timer in favour of the inter-digit one.
    h.keys("*");
    let now = h.now;
    assert_eq!(h.session.poll_timeout(), None);
    assert!(h.session.start_first_digit_timer(now, Field::CardNumber, 2, ten));
    h.keys("4");
    assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(5)));
}
