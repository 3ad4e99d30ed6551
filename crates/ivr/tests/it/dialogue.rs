//! The dialogue against the real capture session, on a simulated clock with prompts as long
//! as the built-in ones.

use std::time::Duration;

use ivrpay_capture::Field;
use ivrpay_ivr::dialogue::{Ending, Outcome, Start};

use crate::sim::{Sim, gbp};

const KEY: Duration = Duration::from_millis(250);
const VISA: &str = "4242424242424242";
const AMEX: &str = "378282246310005";

fn texts(sim: &Sim) -> Vec<String> {
    sim.said.iter().map(|s| s.text()).collect()
}

#[test]
fn a_self_service_payment_from_welcome_to_goodbye() {
    let mut sim = Sim::opened(gbp(1250));
    // Welcome, the amount, and the card number prompt, in one barge-in utterance.
    assert_eq!(sim.last().text(), "welcome amount-due n12 pounds and n50 pence enter-card-number");
    assert!(sim.last().barge_in);
    sim.listen();
    // The caller's 10 s start when the prompt has ended.
    assert_eq!(sim.prompted, [(Field::CardNumber, 1, true)]);
    sim.advance(Duration::from_secs(2)).keys(VISA, KEY);
    // The card number ends by itself (16 digits, valid): the expiry is asked for.
    assert_eq!(sim.last().text(), "enter-expiry");
    sim.listen().keys("1230", KEY);
    assert_eq!(sim.last().text(), "enter-security-code");
    sim.listen().keys("123", KEY);
    // Every field is in: charging, while "please wait" plays (no barge-in).
    assert!(sim.completed);
    assert_eq!(sim.last().text(), "processing");
    assert!(!sim.last().barge_in);
    // The result waits for "processing" to end, then the last four and goodbye.
    let before = sim.said.len();
    sim.listen();
    assert_eq!(sim.said.len(), before + 1);
    assert_eq!(sim.last().text(), "payment-approved card-ending-in n4 n2 n4 n2 goodbye");
    assert!(!sim.last().barge_in);
    assert_eq!(sim.finished, None);
    sim.listen();
    assert_eq!(sim.finished, Some(Ending::HangUp));
    assert!(sim.dialogue.is_done());
    assert!(!sim.cancelled);
}

#[test]
fn a_key_stops_the_prompt_and_the_caller_can_type_over_it() {
    let mut sim = Sim::opened(gbp(1250));
    sim.advance(Duration::from_secs(1));
    assert!(sim.is_playing());
    sim.keys(VISA, KEY);
    // The first key stopped the welcome; the digits went to the card number anyway.
    assert_eq!(sim.said[1].text(), "enter-expiry");
    assert!(sim.said[1].at < Duration::from_secs(6), "no waiting for the welcome to end");
    // The barge-in counted as the prompt's end, but the timer was not needed: keys came.
    assert_eq!(sim.prompted, [(Field::CardNumber, 1, false)]);
}

#[test]
fn a_wrong_card_number_gets_its_error_and_a_second_attempt() {
    let mut sim = Sim::opened(gbp(1250));
    sim.listen();
    sim.keys("4242424242424241#", KEY);
    assert_eq!(sim.last().text(), "invalid-card-number enter-card-number");
    assert!(sim.last().barge_in);
    sim.listen();
    assert_eq!(sim.prompted.last(), Some(&(Field::CardNumber, 2, true)));
    sim.keys(VISA, KEY);
    assert_eq!(sim.last().text(), "enter-expiry");
    // An expiry in the past, then a good one.
    sim.listen().keys("0120", KEY);
    assert_eq!(sim.last().text(), "invalid-date enter-expiry");
    sim.listen().keys("1230", KEY).listen().keys("123", KEY);
    assert!(sim.completed);
}

#[test]
fn amex_asks_for_the_four_digits_on_the_front() {
    let mut sim = Sim::opened(gbp(1250));
    sim.listen().keys(AMEX, KEY).listen().keys("1230", KEY);
    assert_eq!(sim.last().text(), "enter-security-code-amex");
    // Three digits are not an Amex code.
    sim.listen().keys("123#", KEY);
    assert_eq!(sim.last().text(), "invalid-security-code enter-security-code-amex");
    sim.listen().keys("1234", KEY);
    assert!(sim.completed);
}

#[test]
fn star_starts_the_field_again() {
    let mut sim = Sim::opened(gbp(1250));
    sim.listen().keys("4242424", KEY).keys("*", KEY);
    assert_eq!(sim.last().text(), "cleared enter-card-number");
    // Not a failed attempt: still the first, and its timer starts after this prompt.
    sim.listen();
    assert_eq!(sim.prompted.last(), Some(&(Field::CardNumber, 1, true)));
    sim.keys(VISA, KEY);
    assert_eq!(sim.last().text(), "enter-expiry");
}

#[test]
fn silence_after_the_prompt_is_an_input_timeout_then_three_strikes() {
    let mut sim = Sim::opened(gbp(1250));
    sim.listen();
    let prompt_end = sim.now;
    sim.advance(Duration::from_millis(9_999));
    assert_eq!(sim.said.len(), 1, "10 s from the end of the prompt");
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.last().text(), "input-timeout enter-card-number");
    assert_eq!(sim.now.duration_since(prompt_end), Duration::from_secs(10));
    // A pause mid-number is a timeout too (5 s between keys).
    sim.listen().keys("4242", KEY).advance(Duration::from_secs(5));
    assert_eq!(sim.last().text(), "input-timeout enter-card-number");
    // Third failure: the session has failed; cancel, tell the caller, hang up.
    sim.listen().keys("4242424242424241#", KEY);
    assert!(sim.cancelled);
    assert_eq!(sim.last().text(), "invalid-card-number too-many-attempts not-charged goodbye");
    assert!(!sim.last().barge_in);
    sim.listen();
    assert_eq!(sim.finished, Some(Ending::HangUp));
    assert!(!sim.completed);
}

#[test]
fn declined_and_unknown_outcomes_are_told_apart() {
    for (outcome, said) in [
        (Outcome::Declined, "payment-declined not-charged goodbye"),
        (Outcome::Failed, "payment-failed not-charged goodbye"),
        // The gateway did not answer: no promise that nothing was charged.
        (Outcome::Unknown, "payment-failed goodbye"),
    ] {
        let mut sim = Sim::opened(gbp(1250));
        sim.outcome = outcome;
        sim.listen().keys(VISA, KEY).listen().keys("1230", KEY).listen().keys("123", KEY);
        sim.listen();
        assert_eq!(sim.last().text(), said);
    }
}

#[test]
fn the_caller_hangs_up_mid_entry() {
    let mut sim = Sim::opened(gbp(1250));
    sim.listen().keys("42424", KEY);
    sim.dialogue.hung_up();
    assert!(sim.dialogue.is_done());
    assert_eq!(sim.dialogue.poll_action(), None);
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.said.len(), 1);
    assert_eq!(sim.finished, None, "no goodbye, no hang-up of our own");
}

#[test]
fn a_hand_off_returns_the_caller_to_the_agent() {
    let mut sim = Sim::new(Ending::ReturnToAgent);
    sim.open(gbp(9900));
    sim.begin(Start::Opened { amount: gbp(9900) });
    assert_eq!(sim.last().text(), "handoff amount-due n90 n9 pounds enter-card-number");
    sim.listen().keys(VISA, KEY).listen().keys("1230", KEY).listen().keys("123", KEY);
    sim.listen();
    assert_eq!(sim.last().text(), "payment-approved card-ending-in n4 n2 n4 n2 returning-to-agent");
    sim.listen();
    assert_eq!(sim.finished, Some(Ending::ReturnToAgent));
    // The agent cancelling mid-way sends the customer back too.
    let mut sim = Sim::new(Ending::ReturnToAgent);
    sim.open(gbp(9900));
    sim.begin(Start::Opened { amount: gbp(9900) });
    sim.listen().keys("4242", KEY);
    let now = sim.now;
    sim.dialogue.cancelled(now);
    sim.pump();
    assert_eq!(sim.last().text(), "not-charged returning-to-agent", "{:?}", texts(&sim));
    sim.listen();
    assert_eq!(sim.finished, Some(Ending::ReturnToAgent));
}

#[test]
fn a_payment_request_is_found_by_its_reference() {
    let mut sim = Sim::new(Ending::HangUp);
    sim.requests.insert("1234566".into(), gbp(4000));
    sim.begin(Start::Reference);
    assert_eq!(sim.last().text(), "welcome enter-reference");
    sim.listen();
    // A wrong reference, then `*` mid-way, then the right one ended with `#`.
    sim.keys("7654321#", KEY);
    assert_eq!(sim.looked_up, ["7654321"]);
    assert_eq!(sim.last().text(), "reference-not-found enter-reference");
    sim.keys("12*", KEY);
    assert_eq!(sim.last().text(), "cleared enter-reference");
    sim.listen().keys("1234566#", KEY);
    assert_eq!(sim.looked_up, ["7654321", "1234566"]);
    // The amount, not the welcome again, then the card.
    assert_eq!(sim.last().text(), "amount-due n40 pounds enter-card-number");
    sim.listen().keys(VISA, KEY).listen().keys("1230", KEY).listen().keys("123", KEY).listen();
    assert!(sim.completed);
}

#[test]
fn reference_timeouts_and_attempts() {
    let mut sim = Sim::new(Ending::HangUp);
    sim.requests.insert("1234566".into(), gbp(4000));
    sim.begin(Start::Reference);
    sim.listen().advance(Duration::from_secs(10));
    assert_eq!(sim.last().text(), "input-timeout enter-reference");
    // A pause after some digits submits them.
    sim.listen().keys("1234566", KEY).advance(Duration::from_secs(5));
    assert_eq!(sim.looked_up, ["1234566"]);
    assert_eq!(sim.last().text(), "amount-due n40 pounds enter-card-number");
    // Three misses and the call ends.
    let mut sim = Sim::new(Ending::HangUp);
    sim.begin(Start::Reference);
    for _ in 0..3 {
        sim.listen().keys("1111111#", KEY);
    }
    assert_eq!(sim.last().text(), "reference-not-found goodbye");
    sim.listen();
    assert_eq!(sim.finished, Some(Ending::HangUp));
    assert_eq!(sim.looked_up.len(), 3);
}

#[test]
fn nothing_to_pay_and_unavailable() {
    let mut sim = Sim::new(Ending::HangUp);
    sim.begin(Start::NothingToPay);
    assert_eq!(sim.last().text(), "welcome no-payment goodbye");
    sim.listen();
    assert_eq!(sim.finished, Some(Ending::HangUp));
    let mut sim = Sim::new(Ending::HangUp);
    sim.begin(Start::Unavailable);
    assert_eq!(sim.last().text(), "payment-failed goodbye");
}

#[test]
fn a_zero_amount_only_tokenizes_and_reads_no_amount() {
    let sim = Sim::opened(gbp(0));
    assert_eq!(sim.last().text(), "welcome enter-card-number");
}
