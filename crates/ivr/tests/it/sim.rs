//! A simulated call around the dialogue: the real capture session (as the payment service
//! runs it), a prompt player that takes as long as the built-in prompts do and stops on a
//! key when barge-in is allowed, a payment-request book, and a clock that moves only when
//! told.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ivrpay_capture::{Session, SessionConfig};
use ivrpay_card::{Currency, IdempotencyKey, Money, YearMonth};
use ivrpay_dtmf::Digit;
use ivrpay_ivr::dialogue::{Action, Dialogue, DialogueConfig, Ending, Found, Outcome, Start};
use ivrpay_ivr::prompts::{PromptSet, Utterance};

pub fn gbp(minor: u64) -> Money {
    Money::from_minor(minor, Currency::GBP)
}

/// One utterance as played: its prompts, whether a key could stop it, and when it started
/// (seconds into the call).
#[derive(Clone, Debug)]
pub struct Said {
    pub clips: Vec<&'static str>,
    pub barge_in: bool,
    pub at: Duration,
}

impl Said {
    pub fn text(&self) -> String {
        self.clips.join(" ")
    }
}

pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub dialogue: Dialogue,
    pub capture: Option<Session>,
    prompts: PromptSet,
    /// The utterance playing: barge-in, and when it ends.
    playing: Option<(bool, Instant)>,
    pub said: Vec<Said>,
    /// What `complete` answers.
    pub outcome: Outcome,
    pub completed: bool,
    pub cancelled: bool,
    /// First-digit timers the dialogue started, and whether the session took them.
    pub prompted: Vec<(ivrpay_capture::Field, u8, bool)>,
    /// Open payment requests by reference, and the references looked up.
    pub requests: HashMap<String, Money>,
    pub looked_up: Vec<String>,
    pub finished: Option<Ending>,
}

impl Sim {
    pub fn new(ending: Ending) -> Sim {
        #[allow(
            clippy::disallowed_methods,
            reason = "the simulation's epoch; time then moves by advance()"
        )]
        let now = Instant::now();
        let config = DialogueConfig {
            first_digit_timeout: Duration::from_secs(10),
            inter_digit_timeout: Duration::from_secs(5),
            max_reference_attempts: 3,
        };
        Sim {
            start: now,
            now,
            dialogue: Dialogue::new(config, ending),
            capture: None,
            prompts: PromptSet::builtin().expect("built-in prompts"),
            playing: None,
            said: Vec::new(),
            outcome: Outcome::Approved { last4: Some("4242".into()) },
            completed: false,
            cancelled: false,
            prompted: Vec::new(),
            requests: HashMap::new(),
            looked_up: Vec::new(),
            finished: None,
        }
    }

    /// Opens a capture session as the service does for the IVR (no first-digit timeout of
    /// its own; 5 s between keys; three attempts).
    pub fn open(&mut self, amount: Money) {
        let mut config = SessionConfig::new(amount, IdempotencyKey::new("ivr:test").expect("key"));
        config.inter_digit_timeout = Duration::from_secs(5);
        let today = YearMonth::new(2026, 5).expect("month");
        self.capture = Some(Session::new(config, today, self.now));
    }

    /// A self-service call with a session open for `amount`.
    pub fn opened(amount: Money) -> Sim {
        let mut sim = Sim::new(Ending::HangUp);
        sim.open(amount);
        sim.begin(Start::Opened { amount });
        sim
    }

    pub fn begin(&mut self, start: Start) {
        let now = self.now;
        self.dialogue.start(now, start);
        self.pump();
    }

    /// The last utterance played.
    pub fn last(&self) -> &Said {
        self.said.last().expect("something was said")
    }

    pub fn is_playing(&self) -> bool {
        self.playing.is_some()
    }

    /// Feeds capture events to the dialogue and carries out its actions until both are
    /// quiet.
    pub fn pump(&mut self) {
        loop {
            let mut busy = false;
            if let Some(capture) = self.capture.as_mut() {
                while let Some(event) = capture.poll_event() {
                    busy = true;
                    self.dialogue.capture(self.now, &event);
                }
            }
            while let Some(action) = self.dialogue.poll_action() {
                busy = true;
                self.act(action);
            }
            if !busy {
                return;
            }
        }
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Play { utterance, barge_in } => self.play(&utterance, barge_in),
            Action::Prompted { field, attempt, timeout } => {
                let took = self
                    .capture
                    .as_mut()
                    .is_some_and(|c| c.start_first_digit_timer(now, field, attempt, timeout));
                self.prompted.push((field, attempt, took));
            }
            Action::Complete => {
                let capture = self.capture.take().expect("a session to complete");
                let _card = capture.complete().expect("every field captured");
                self.completed = true;
                let outcome = self.outcome.clone();
                self.dialogue.completed(now, outcome);
            }
            Action::Cancel => {
                if let Some(capture) = self.capture.take() {
                    let _ = capture.cancel();
                }
                self.cancelled = true;
            }
            Action::FindReference(reference) => {
                self.looked_up.push(reference.clone());
                match self.requests.remove(&reference) {
                    Some(amount) => {
                        self.open(amount);
                        self.dialogue.reference_found(now, Found::Opened { amount });
                    }
                    None => self.dialogue.reference_found(now, Found::NotFound),
                }
            }
            Action::Finish(ending) => self.finished = Some(ending),
        }
    }

    fn play(&mut self, utterance: &Utterance, barge_in: bool) {
        let length = self.prompts.duration(utterance);
        assert!(!length.is_zero(), "every prompt of {:?} has audio", utterance.clips());
        self.said.push(Said {
            clips: utterance.clips(),
            barge_in,
            at: self.now.duration_since(self.start),
        });
        // A prompt that replaces another: the runner drops the old one's end.
        self.playing = Some((barge_in, self.now + length));
    }

    /// The caller presses keys, `gap` apart (the first now).
    pub fn keys(&mut self, keys: &str, gap: Duration) -> &mut Self {
        for (i, c) in keys.chars().enumerate() {
            if i > 0 {
                self.advance(gap);
            }
            self.key(c);
        }
        self
    }

    /// One key: a prompt that allows barge-in stops at once (the relay does that), the
    /// payment session and the dialogue (references) hear the key, then the dialogue hears
    /// of the prompt's end, unless it has started another prompt meanwhile (the runner drops
    /// the ends of prompts that are no longer the one playing).
    pub fn key(&mut self, c: char) {
        let digit = Digit::from_char(c).expect("a key");
        let now = self.now;
        let barged = matches!(self.playing, Some((true, _)));
        if barged {
            self.playing = None;
        }
        let plays = self.said.len();
        if let Some(capture) = self.capture.as_mut() {
            capture.handle_digit(now, digit);
        }
        self.dialogue.digit(now, digit);
        self.pump();
        if barged && self.said.len() == plays {
            self.dialogue.prompt_finished(now);
            self.pump();
        }
    }

    /// Moves the clock by `by`, firing prompt ends and timers on the way.
    pub fn advance(&mut self, by: Duration) -> &mut Self {
        let end = self.now + by;
        loop {
            let prompt = self.playing.map(|(_, at)| at);
            let capture = self.capture.as_ref().and_then(Session::poll_timeout);
            let dialogue = self.dialogue.poll_timeout();
            let Some(next) = [prompt, capture, dialogue].into_iter().flatten().min() else { break };
            if next > end {
                break;
            }
            self.now = next.max(self.now);
            let now = self.now;
            if prompt == Some(next) {
                self.playing = None;
                self.dialogue.prompt_finished(now);
            }
            if capture == Some(next) {
                if let Some(c) = self.capture.as_mut() {
                    c.handle_timeout(now);
                }
            }
            if dialogue == Some(next) {
                self.dialogue.handle_timeout(now);
            }
            self.pump();
        }
        self.now = end;
        self
    }

    /// Lets the prompt playing finish.
    pub fn listen(&mut self) -> &mut Self {
        if let Some((_, at)) = self.playing {
            let left = at.saturating_duration_since(self.now);
            self.advance(left);
        }
        self
    }
}
