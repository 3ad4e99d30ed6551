//! The IVR dialogue of one call, as a sans-IO state machine: what happened in (the capture's
//! events, prompt ends, keys while a payment reference is typed, the payment's outcome, time),
//! what to do out (utterances to play, a reference to look up, `complete`, `cancel`, the
//! first-digit timer of a field, the end of the dialogue). The runner does the I/O.
//!
//! ## Run loop
//!
//! ```text
//! dialogue.start(now, start)
//! loop:
//!   capture event from the service      ──▶ dialogue.capture(now, &event)
//!   the prompt playing ended            ──▶ dialogue.prompt_finished(now)
//!   a key (reference entry)             ──▶ dialogue.digit(now, digit)
//!   the reference was looked up         ──▶ dialogue.reference_found(now, found)
//!   complete() answered                 ──▶ dialogue.completed(now, outcome)
//!   timer at poll_timeout()             ──▶ dialogue.handle_timeout(now)
//!   after each: while let Some(action) = dialogue.poll_action() { … }
//! ```
//!
//! ## What it says
//!
//! The card fields come from the payment session, which asks for them in order and retries a
//! field that failed (three attempts, `*` to start a field again): the dialogue prompts for
//! each field the session asks for, with the error that failed the previous attempt first
//! ("That card number is not valid. Please enter your card number…") and the security code's
//! wording after the brand (Amex: four digits on the front). Every field prompt and the
//! reference prompt allow barge-in: a key stops them. The caller's time for a field's first
//! key starts when its prompt ends (the session's inter-digit timer runs once a key came).
//! After the last field: "processing" (no barge-in), then the result with the card's last
//! four, then goodbye (self-service) or "returning you to your agent" (hand-off), and the
//! dialogue is over.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ivrpay_capture::{CaptureError, Event, Field};
use ivrpay_card::{Brand, Money};
use ivrpay_dtmf::Digit;

use crate::prompts::Utterance;
use crate::speech;

/// The longest payment reference accepted.
pub const MAX_REFERENCE_LEN: usize = 16;

/// Dialogue settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialogueConfig {
    /// The caller's time for the first key of a field once its prompt has ended.
    pub first_digit_timeout: Duration,
    /// The pause allowed between two keys of a payment reference.
    pub inter_digit_timeout: Duration,
    /// Tries at a payment reference.
    pub max_reference_attempts: u8,
}

impl Default for DialogueConfig {
    fn default() -> Self {
        DialogueConfig {
            first_digit_timeout: Duration::from_secs(10),
            inter_digit_timeout: Duration::from_secs(5),
            max_reference_attempts: 3,
        }
    }
}

/// How the dialogue ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Self-service: ivrpay hangs up after the goodbye.
    HangUp,
    /// Hand-off: the customer goes back to the agent.
    ReturnToAgent,
}

/// How the dialogue starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A payment session is open on the call for this amount (read back before the first
    /// field; nothing is read for a zero amount, which only tokenizes).
    Opened { amount: Money },
    /// Ask for a payment request's reference; the session opens once it is found.
    Reference,
    /// There is nothing to pay on this call.
    NothingToPay,
    /// The payment cannot be taken now (the session could not be opened).
    Unavailable,
}

/// What a reference lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A payment request, now claimed, with a session open for its amount.
    Opened { amount: Money },
    /// No open request has that reference (unknown, paid, expired, or being paid).
    NotFound,
    /// The lookup or the session failed.
    Unavailable,
}

/// How the payment ended, as the caller is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Charged (or tokenized): the card's last four are read back.
    Approved { last4: Option<String> },
    /// The issuer declined: nothing was charged.
    Declined,
    /// The gateway failed the payment: nothing was charged.
    Failed,
    /// The gateway's answer is not known (it did not answer): the caller is told it could
    /// not be processed, not that nothing was charged.
    Unknown,
}

/// What the runner must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Play this, replacing whatever plays; `barge_in`: a key stops it.
    Play { utterance: Utterance, barge_in: bool },
    /// Claim the open payment request with this reference and open its payment; answer with
    /// [`Dialogue::reference_found`]. The reference is not card data, but it is what the
    /// caller typed: not for logs.
    FindReference(String),
    /// The caller has heard the prompt for this field: start its first-digit timer
    /// (`Service::prompted`).
    Prompted { field: Field, attempt: u8, timeout: Duration },
    /// Every field is in: charge (`Service::complete`) and answer with
    /// [`Dialogue::completed`].
    Complete,
    /// Give up the session (`Service::cancel`).
    Cancel,
    /// The dialogue is over.
    Finish(Ending),
}

/// Where the dialogue is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// The caller types a payment reference.
    Reference {
        attempt: u8,
        digits: String,
    },
    /// The reference typed at this attempt is being looked up.
    Finding {
        attempt: u8,
    },
    /// The session collects the card; prompts follow its fields.
    Capturing,
    /// `complete` is running.
    Processing,
    /// The last utterance plays; then [`Action::Finish`].
    Closing,
    Done,
}

/// What the utterance playing is for: what its end leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Playing {
    Nothing,
    /// A field's prompt: its end starts the first-digit timer.
    Field(Field, u8),
    /// The reference prompt: its end starts the first-digit timer.
    Reference,
    /// "Please wait…": the result waits for it to end.
    Processing,
    /// The last words: their end finishes the dialogue.
    Closing,
}

/// What is said before the first field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intro {
    /// "Welcome…" (self-service).
    Welcome,
    /// "You are now in our secure payment system…" (hand-off).
    HandOff,
    /// The welcome was said already (before the reference): the amount only.
    AmountOnly,
}

/// The dialogue of one call.
#[derive(Debug)]
pub struct Dialogue {
    config: DialogueConfig,
    ending: Ending,
    intro: Intro,
    /// The intro (and amount) has yet to be said.
    intro_pending: bool,
    amount: Option<Money>,
    phase: Phase,
    playing: Playing,
    /// The field the session asks for now, and which attempt.
    field: Option<(Field, u8)>,
    /// Why the last attempt at a field failed: said before the next prompt.
    last_error: Option<CaptureError>,
    brand: Option<Brand>,
    /// The result, waiting for "processing" to end.
    result: Option<Utterance>,
    deadline: Option<Instant>,
    actions: VecDeque<Action>,
}

impl Dialogue {
    /// A dialogue that ends with `ending` (hang up, or back to the agent).
    pub fn new(config: DialogueConfig, ending: Ending) -> Dialogue {
        Dialogue {
            config,
            ending,
            intro: match ending {
                Ending::HangUp => Intro::Welcome,
                Ending::ReturnToAgent => Intro::HandOff,
            },
            intro_pending: true,
            amount: None,
            phase: Phase::Idle,
            playing: Playing::Nothing,
            field: None,
            last_error: None,
            brand: None,
            result: None,
            deadline: None,
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Dialogue::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once [`Action::Finish`] was given (or the caller hung up).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Starts the dialogue.
    pub fn start(&mut self, _now: Instant, start: Start) {
        if self.phase != Phase::Idle {
            return;
        }
        match start {
            Start::Opened { amount } => {
                self.amount = Some(amount);
                self.phase = Phase::Capturing;
            }
            Start::Reference => {
                self.phase = Phase::Reference { attempt: 1, digits: String::new() };
                let words = self.intro_words().clip("enter-reference");
                self.intro = Intro::AmountOnly;
                self.play(words, true, Playing::Reference);
            }
            Start::NothingToPay => {
                let words = self.intro_words().clip("no-payment");
                self.close(words);
            }
            Start::Unavailable => self.close(Utterance::new().clip("payment-failed")),
        }
    }

    /// The caller hung up (or the call ended): nothing more to do.
    pub fn hung_up(&mut self) {
        self.phase = Phase::Done;
        self.deadline = None;
        self.actions.clear();
    }

    /// A key, as the relay or SIP INFO reported it. Only a payment reference is typed to the
    /// dialogue itself; card keys go to the payment session.
    pub fn digit(&mut self, now: Instant, digit: Digit) {
        let Phase::Reference { digits, .. } = &mut self.phase else { return };
        match digit.as_char() {
            c @ '0'..='9' => {
                if digits.len() < MAX_REFERENCE_LEN {
                    digits.push(c);
                }
                self.deadline = Some(now + self.config.inter_digit_timeout);
            }
            '*' => {
                digits.clear();
                self.deadline = None;
                let words = Utterance::new().clip("cleared").clip("enter-reference");
                self.play(words, true, Playing::Reference);
            }
            '#' => self.submit_reference(),
            _ => {}
        }
    }

    /// The utterance playing has ended: played out, or stopped by a key.
    pub fn prompt_finished(&mut self, now: Instant) {
        let playing = std::mem::replace(&mut self.playing, Playing::Nothing);
        match playing {
            Playing::Nothing => {}
            Playing::Field(field, attempt) => {
                if self.phase == Phase::Capturing {
                    let timeout = self.config.first_digit_timeout;
                    self.actions.push_back(Action::Prompted { field, attempt, timeout });
                }
            }
            Playing::Reference => {
                if let Phase::Reference { digits, .. } = &self.phase {
                    if digits.is_empty() {
                        self.deadline = Some(now + self.config.first_digit_timeout);
                    }
                }
            }
            Playing::Processing => {
                if let Some(result) = self.result.take() {
                    self.play(result, false, Playing::Closing);
                }
            }
            Playing::Closing => {
                self.phase = Phase::Done;
                self.actions.push_back(Action::Finish(self.ending));
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.deadline = None;
        let Phase::Reference { attempt, digits } = &self.phase else { return };
        if digits.is_empty() {
            let attempt = *attempt;
            self.retry_reference(attempt, "input-timeout");
        } else {
            // A pause after some digits ends the reference, as `#` would.
            self.submit_reference();
        }
    }

    /// What the reference lookup found.
    pub fn reference_found(&mut self, _now: Instant, found: Found) {
        let Phase::Finding { attempt } = self.phase else { return };
        match found {
            Found::Opened { amount } => {
                self.amount = Some(amount);
                self.phase = Phase::Capturing;
            }
            Found::NotFound => self.retry_reference(attempt, "reference-not-found"),
            Found::Unavailable => self.close(Utterance::new().clip("payment-failed")),
        }
    }

    /// An event of the payment session's capture.
    pub fn capture(&mut self, _now: Instant, event: &Event) {
        if self.phase != Phase::Capturing {
            return;
        }
        match event {
            Event::Capturing { field, attempt } => {
                self.field = Some((*field, *attempt));
                let mut words = Utterance::new();
                if std::mem::take(&mut self.intro_pending) {
                    words = words.then(self.intro_words());
                }
                if let Some(error) = self.last_error.take() {
                    words = words.clip(error_clip(error)).pause(300);
                }
                words = words.clip(self.field_clip(*field));
                self.play(words, true, Playing::Field(*field, *attempt));
            }
            Event::Progress(progress) => {
                if progress.field == Field::CardNumber && progress.brand.is_some() {
                    self.brand = progress.brand;
                }
                if let Some(error) = progress.error {
                    self.last_error = Some(error);
                } else if progress.partial && progress.masked.is_empty() {
                    // `*`: the field starts again.
                    if let Some((field, attempt)) = self.field.filter(|(f, _)| *f == progress.field)
                    {
                        let words = Utterance::new().clip("cleared").clip(self.field_clip(field));
                        self.play(words, true, Playing::Field(field, attempt));
                    }
                }
            }
            Event::Ready => {
                self.phase = Phase::Processing;
                self.actions.push_back(Action::Complete);
                self.play(Utterance::new().clip("processing"), false, Playing::Processing);
            }
            Event::Failed { .. } => {
                let mut words = Utterance::new();
                if let Some(error) = self.last_error.take() {
                    words = words.clip(error_clip(error)).pause(300);
                }
                words = words.clip("too-many-attempts").clip("not-charged");
                self.actions.push_back(Action::Cancel);
                self.close(words);
            }
            // A kind of event this version does not prompt for.
            _ => {}
        }
    }

    /// The payment's outcome (`complete` answered).
    pub fn completed(&mut self, _now: Instant, outcome: Outcome) {
        if self.phase != Phase::Processing {
            return;
        }
        let words = match outcome {
            Outcome::Approved { last4 } => {
                let mut words = Utterance::new().clip("payment-approved");
                if let Some(last4) = last4.filter(|l| l.len() == 4) {
                    words = words.pause(200).clip("card-ending-in").then(speech::digits(&last4));
                }
                words
            }
            Outcome::Declined => Utterance::new().clip("payment-declined").clip("not-charged"),
            Outcome::Failed => Utterance::new().clip("payment-failed").clip("not-charged"),
            Outcome::Unknown => Utterance::new().clip("payment-failed"),
        };
        let words = words.pause(300).then(self.ending_words());
        self.phase = Phase::Closing;
        if self.playing == Playing::Processing {
            self.result = Some(words);
        } else {
            self.play(words, false, Playing::Closing);
        }
    }

    /// The session was cancelled by someone else (the agent, during a hand-off).
    pub fn cancelled(&mut self, _now: Instant) {
        if matches!(self.phase, Phase::Capturing | Phase::Reference { .. }) {
            self.deadline = None;
            self.close(Utterance::new().clip("not-charged"));
        }
    }

    // ---- helpers ----

    fn play(&mut self, utterance: Utterance, barge_in: bool, playing: Playing) {
        self.playing = playing;
        self.actions.push_back(Action::Play { utterance, barge_in });
    }

    /// Says `words` and the ending, then finishes.
    fn close(&mut self, words: Utterance) {
        self.phase = Phase::Closing;
        self.deadline = None;
        let words = words.pause(300).then(self.ending_words());
        self.play(words, false, Playing::Closing);
    }

    fn ending_words(&self) -> Utterance {
        match self.ending {
            Ending::HangUp => Utterance::new().clip("goodbye"),
            Ending::ReturnToAgent => Utterance::new().clip("returning-to-agent"),
        }
    }

    fn intro_words(&self) -> Utterance {
        let mut words = match self.intro {
            Intro::Welcome => Utterance::new().clip("welcome").pause(300),
            Intro::HandOff => Utterance::new().clip("handoff").pause(300),
            Intro::AmountOnly => Utterance::new(),
        };
        if let Some(amount) = self.amount.filter(|a| !a.is_zero()) {
            words = words.clip("amount-due").then(speech::amount(amount)).pause(400);
        }
        words
    }

    fn field_clip(&self, field: Field) -> &'static str {
        match field {
            Field::CardNumber => "enter-card-number",
            Field::Expiry => "enter-expiry",
            Field::SecurityCode if self.brand == Some(Brand::Amex) => "enter-security-code-amex",
            Field::SecurityCode => "enter-security-code",
            Field::PostalCode => "enter-postal-code",
        }
    }

    fn submit_reference(&mut self) {
        let Phase::Reference { attempt, digits } = &mut self.phase else { return };
        self.deadline = None;
        let (attempt, reference) = (*attempt, std::mem::take(digits));
        if reference.is_empty() {
            self.retry_reference(attempt, "reference-not-found");
            return;
        }
        self.phase = Phase::Finding { attempt };
        // A prompt still playing (the caller typed over it) is cut short by the key already.
        self.playing = Playing::Nothing;
        self.actions.push_back(Action::FindReference(reference));
    }

    /// Attempt `attempt` at the reference failed with `clip`: ask again, or give up.
    fn retry_reference(&mut self, attempt: u8, clip: &'static str) {
        if attempt >= self.config.max_reference_attempts {
            self.close(Utterance::new().clip(clip));
            return;
        }
        self.phase = Phase::Reference { attempt: attempt + 1, digits: String::new() };
        let words = Utterance::new().clip(clip).pause(300).clip("enter-reference");
        self.play(words, true, Playing::Reference);
    }
}

/// What the caller is told when a field's attempt fails.
fn error_clip(error: CaptureError) -> &'static str {
    match error {
        CaptureError::InvalidCardNumber => "invalid-card-number",
        CaptureError::InvalidCardType => "invalid-card-type",
        CaptureError::InvalidDate => "invalid-date",
        CaptureError::InvalidSecurityCode => "invalid-security-code",
        CaptureError::InvalidPostalCode => "invalid-postal-code",
        CaptureError::InputTimeout => "input-timeout",
        _ => "invalid-entry",
    }
}
