//! Pseudo-random key streams (a seeded xorshift, so failures replay): sessions never panic,
//! never show more than the last four card digits, and never put the typed number in an
//! event.

use std::time::Duration;

use ivrpay_capture::{Event, Field, Session};
use ivrpay_dtmf::Digit;

use crate::harness::{config, today};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_streams() {
    const KEYS: &[u8] = b"0123456789012345678901234567890123456789*#*#A";
    const SESSIONS: usize = 5000;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let start = std::time::Instant::now();
    let mut completed = 0;
    for _ in 0..SESSIONS {
        let mut c = config(rng.next() % 3);
        c.postal_code = rng.next() % 2 == 0;
        c.auto_advance = rng.next() % 4 != 0;
        c.accepted_brands = ivrpay_card::BrandSet::all();
        let mut s = Session::new(c, today(), start);
        let mut now = start;
        let mut typed = String::new();
        for _ in 0..(rng.next() % 80) {
            now += Duration::from_millis(rng.next() % 7000);
            s.handle_timeout(now);
            if rng.next() % 10 == 0 {
                let f = Field::ALL[(rng.next() % 4) as usize];
                let _ = s.capture(now, f);
            }
            let k = KEYS[(rng.next() as usize) % KEYS.len()];
            typed.push(char::from(k));
            s.handle_digit(now, Digit::from_char(char::from(k)).expect("key"));
            while let Some(e) = s.poll_event() {
                if let Event::Progress(p) = &e {
                    let digits = p.masked.chars().filter(char::is_ascii_digit).count();
                    match p.field {
                        Field::CardNumber => assert!(digits <= 4 && (digits == 0 || !p.partial)),
                        Field::SecurityCode => assert_eq!(digits, 0),
                        Field::Expiry => assert!(digits <= 4),
                        Field::PostalCode => assert!(digits <= 10),
                    }
                }
                // No run of 12+ typed digits appears in an event.
                let shown = format!("{e:?}");
                for run in typed.split(|c: char| !c.is_ascii_digit()).filter(|r| r.len() >= 12) {
                    assert!(!shown.contains(run), "{shown}");
                }
            }
        }
        if let Ok(done) = s.complete() {
            completed += 1;
            assert!(done.card.pan.is_luhn_valid());
        }
    }
    // The streams are random digits: some Luhn-valid numbers do get through end to end.
    println!("random streams: {SESSIONS} sessions, {completed} completed");
}
