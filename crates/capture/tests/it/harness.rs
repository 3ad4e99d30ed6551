//! A session on a simulated clock, fed keys as text.

use std::time::{Duration, Instant};

use ivrpay_capture::{CaptureError, Event, Field, Progress, Session, SessionConfig};
use ivrpay_card::{Currency, IdempotencyKey, Money, YearMonth};
use ivrpay_dtmf::Digit;

/// Time between two keys in these tests (a brisk caller).
pub const KEY_GAP: Duration = Duration::from_millis(250);

pub fn today() -> YearMonth {
    YearMonth::new(2026, 5).expect("valid")
}

pub fn config(minor: u64) -> SessionConfig {
    let key = IdempotencyKey::new("call-1-pay-1").expect("valid");
    SessionConfig::new(Money::from_minor(minor, Currency::USD), key)
}

pub struct Harness {
    pub session: Session,
    pub now: Instant,
    pub events: Vec<Event>,
}

impl Harness {
    pub fn new(config: SessionConfig) -> Harness {
        let now = Instant::now();
        let mut h =
            Harness { session: Session::new(config, today(), now), now, events: Vec::new() };
        h.drain();
        h
    }

    /// Types `keys` (`0-9*#A-D`), one every [`KEY_GAP`].
    pub fn keys(&mut self, keys: &str) -> &mut Self {
        for c in keys.chars() {
            self.now += KEY_GAP;
            let digit = Digit::from_char(c).expect("a keypad key");
            self.session.handle_digit(self.now, digit);
        }
        self.drain();
        self
    }

    /// Lets `d` pass, firing the session's timer when due.
    pub fn wait(&mut self, d: Duration) -> &mut Self {
        let until = self.now + d;
        while let Some(t) = self.session.poll_timeout().filter(|&t| t <= until) {
            self.now = t;
            self.session.handle_timeout(t);
        }
        self.now = until;
        self.drain();
        self
    }

    pub fn capture(&mut self, field: Field) -> Result<(), ivrpay_capture::SessionError> {
        let r = self.session.capture(self.now, field);
        self.drain();
        r
    }

    fn drain(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// Takes the events seen so far.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The progress events seen so far (and forgets all events).
    pub fn progress(&mut self) -> Vec<Progress> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                Event::Progress(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// The errors reported so far (and forgets all events).
    pub fn errors(&mut self) -> Vec<(Field, CaptureError)> {
        self.progress().into_iter().filter_map(|p| p.error.map(|e| (p.field, e))).collect()
    }
}

/// The card, expiry and security code of a payment that succeeds.
pub const VISA: &str = "4242424242424242";
pub const AMEX: &str = "378282246310005";
