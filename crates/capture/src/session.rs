//! The payment session: a sans-IO state machine from keypad digits to card data.

use std::collections::VecDeque;
use std::time::Instant;

use ivrpay_card::{Brand, CardData, Cvv, Expiry, Pan, PostalCode, YearMonth};
use ivrpay_dtmf::Digit;

use crate::config::SessionConfig;
use crate::entry::{Entry, Rules, Value, masked_value};
use crate::error::{CaptureError, SessionError};
use crate::field::{Field, FieldSet};
use crate::outcome::{Cancelled, Completed, Incomplete, Operation};

/// What a session tells its driver (the agent feed, an IVR prompt player).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A field is now being collected: prompt the caller for it. `attempt` counts from 1.
    Capturing {
        /// The field.
        field: Field,
        /// Which attempt at the field this is.
        attempt: u8,
    },
    /// A digit was typed, a field was cleared, ended, or failed.
    Progress(Progress),
    /// Every required field is captured: [`Session::complete`] will succeed.
    Ready,
    /// A field failed the maximum number of attempts (`<Pay>`'s `too-many-failed-attempts`);
    /// only [`Session::cancel`] is left.
    Failed {
        /// The field that failed.
        field: Field,
    },
}

/// One progress update (Twilio's update callback). Carries masked values only: never a
/// card digit beyond the last four of a complete card number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The field being captured.
    pub field: Field,
    /// True while digits are still arriving; false once the field ended (captured, or
    /// failed with `error`).
    pub partial: bool,
    /// The masked value: bullets while a card number is typed and brand grouping plus last
    /// four once it is complete; the expiry in clear (`12/2`, `12/30`); the security code as
    /// bullets; the postal code in clear. Empty after `*` or an error.
    pub masked: String,
    /// The card brand, as soon as the IIN decides it.
    pub brand: Option<Brand>,
    /// The fields still missing.
    pub required: FieldSet,
    /// Why the field failed, when it did.
    pub error: Option<CaptureError>,
    /// Which attempt at the field this is, from 1.
    pub attempt: u8,
}

/// Where the session is (the transition table is [`Session::step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No field is being collected (waiting for the agent, or everything captured): digits
    /// are ignored (the media path still masks them).
    Idle,
    /// Digits go into this field.
    Entering(Field),
    /// This field failed too often: only cancel is left.
    Failed(Field),
}

/// The inputs of the transition table.
#[derive(Clone, Copy)]
enum Input {
    /// `0`–`9`, as ASCII.
    Key(u8),
    /// `*`: clear the field being typed.
    Clear,
    /// `#`: end the field being typed.
    End,
    /// The field's deadline passed.
    Timeout,
}

/// The values captured so far.
#[derive(Debug, Default)]
struct Captured {
    pan: Option<Pan>,
    expiry: Option<Expiry>,
    cvv: Option<Cvv>,
    postal: Option<PostalCode>,
}

impl Captured {
    fn has(&self, f: Field) -> bool {
        match f {
            Field::CardNumber => self.pan.is_some(),
            Field::Expiry => self.expiry.is_some(),
            Field::SecurityCode => self.cvv.is_some(),
            Field::PostalCode => self.postal.is_some(),
        }
    }

    fn forget(&mut self, f: Field) {
        match f {
            Field::CardNumber => self.pan = None,
            Field::Expiry => self.expiry = None,
            Field::SecurityCode => self.cvv = None,
            Field::PostalCode => self.postal = None,
        }
    }
}

/// A payment session on one call.
///
/// ## Run loop
///
/// ```
/// use std::time::{Duration, Instant};
/// use ivrpay_capture::{Event, Session, SessionConfig};
/// use ivrpay_card::{Currency, IdempotencyKey, Money, YearMonth};
/// use ivrpay_dtmf::Digit;
///
/// # #[allow(clippy::disallowed_methods, reason = "a doc example owns its clock")]
/// let now = Instant::now();
/// let key = IdempotencyKey::new("call-42-payment-1").unwrap();
/// let config = SessionConfig::new(Money::from_minor(1999, Currency::USD), key);
/// let today = YearMonth::new(2026, 5).unwrap();
/// let mut session = Session::new(config, today, now);
/// for c in "4242424242424242".chars().chain("1230".chars()).chain("123".chars()) {
///     session.handle_digit(now, Digit::from_char(c).unwrap());
/// }
/// while let Some(event) = session.poll_event() {
///     if let Event::Progress(p) = event { /* to the agent feed: p.masked, p.error */ }
/// }
/// let done = session.complete().unwrap(); // card data for the vault and the gateway
/// assert_eq!(done.card.masked().to_string(), "•••• •••• •••• 4242");
/// ```
///
/// Timers: after every call, [`Session::poll_timeout`] gives the instant at which
/// [`Session::handle_timeout`] must be called if no digit came first.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    today: YearMonth,
    phase: Phase,
    entry: Entry,
    captured: Captured,
    /// Failed attempts per field, indexed by [`Field::index`].
    failures: [u8; 4],
    deadline: Option<Instant>,
    events: VecDeque<Event>,
}

impl Session {
    /// Opens a session. `today` is the calendar month expiry dates are judged against (the
    /// driver reads it from its wall clock). With `auto_advance` the first required field
    /// is asked for at once.
    pub fn new(config: SessionConfig, today: YearMonth, now: Instant) -> Session {
        let mut s = Session {
            config,
            today,
            phase: Phase::Idle,
            entry: Entry::new(),
            captured: Captured::default(),
            failures: [0; 4],
            deadline: None,
            events: VecDeque::new(),
        };
        if s.config.auto_advance {
            s.advance(now);
        }
        s
    }

    /// The session's parameters.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The fields this session collects.
    pub fn fields(&self) -> FieldSet {
        Field::ALL.into_iter().filter(|&f| self.collects(f)).collect()
    }

    /// The fields still missing (Twilio's `Required`).
    pub fn required(&self) -> FieldSet {
        self.fields().iter().filter(|&f| !self.captured.has(f)).collect()
    }

    /// The field digits go to now, if any.
    pub fn current_field(&self) -> Option<Field> {
        match self.phase {
            Phase::Entering(f) => Some(f),
            _ => None,
        }
    }

    /// True when every required field is captured.
    pub fn is_ready(&self) -> bool {
        self.required().is_empty() && !matches!(self.phase, Phase::Failed(_))
    }

    /// The field that failed too often, if the session has failed.
    pub fn failed(&self) -> Option<Field> {
        match self.phase {
            Phase::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] is due, if a timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// A key from the caller: in-band, RFC 4733 or SIP INFO. `0`-`9` go into the field being
    /// typed, `*` clears it, `#` ends it; `A`-`D` are ignored.
    pub fn handle_digit(&mut self, now: Instant, digit: Digit) {
        // A timer that expired before this key is handled first, as if the driver had woken.
        self.handle_timeout(now);
        let input = match digit.as_char() {
            c @ '0'..='9' => Input::Key(c as u8),
            '*' => Input::Clear,
            '#' => Input::End,
            _ => return,
        };
        self.step(now, input);
    }

    /// Fires the timer if `now` has reached it.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.step(now, Input::Timeout);
        }
    }

    /// The caller has just been prompted for `field` (attempt `attempt`, from
    /// [`Event::Capturing`]): the field fails with `input-timeout` unless its first key comes
    /// within `timeout`. An IVR opens its sessions without `first_digit_timeout` and calls
    /// this when the prompt has finished playing, so that the caller's time starts when the
    /// prompt ends (prompts differ in length; a field starts while its prompt plays). Does
    /// nothing and returns false when that field and attempt are no longer current, or a key
    /// of it was typed already (the inter-digit timer runs then).
    pub fn start_first_digit_timer(
        &mut self,
        now: Instant,
        field: Field,
        attempt: u8,
        timeout: std::time::Duration,
    ) -> bool {
        if self.phase != Phase::Entering(field) || self.attempt(field) != attempt {
            return false;
        }
        if !self.entry.is_empty() {
            return false;
        }
        self.deadline = Some(now + timeout);
        true
    }

    /// The agent asks for `field` (again): whatever was captured for it is discarded and the
    /// next digits go there. A field being typed is abandoned.
    pub fn capture(&mut self, now: Instant, field: Field) -> Result<(), SessionError> {
        if let Phase::Failed(f) = self.phase {
            return Err(SessionError::Failed(f));
        }
        if !self.collects(field) {
            return Err(SessionError::FieldNotInSession(field));
        }
        if field == Field::SecurityCode && self.captured.pan.is_none() {
            let error = CaptureError::InvalidCardNumberSecurityCodeCaptureSequence;
            self.progress(field, false, String::new(), None, Some(error));
            return Err(SessionError::CaptureSequence);
        }
        self.captured.forget(field);
        self.start(now, field);
        Ok(())
    }

    /// Ends the session with the card data, ready for the vault and the gateway: a charge
    /// of the amount, or a tokenization when it is zero. Fails (giving the session back)
    /// while a required field is missing or after a field failed.
    pub fn complete(mut self) -> Result<Completed, Incomplete> {
        if let Phase::Failed(f) = self.phase {
            return Err(Incomplete { session: Box::new(self), error: SessionError::Failed(f) });
        }
        // `required()` always lists a missing card number or expiry, so an empty list means
        // both are here; matching on them keeps that from being an unchecked assumption.
        let missing = self.required();
        let (pan, expiry) = match (self.captured.pan.take(), self.captured.expiry.take()) {
            (Some(pan), Some(expiry)) if missing.is_empty() => (pan, expiry),
            (pan, expiry) => {
                self.captured.pan = pan;
                self.captured.expiry = expiry;
                return Err(Incomplete {
                    session: Box::new(self),
                    error: SessionError::Incomplete(missing),
                });
            }
        };
        let Session { config, mut captured, .. } = self;
        let operation = if config.amount.is_zero() {
            Operation::Tokenize(config.token_type)
        } else {
            Operation::Charge(config.amount)
        };
        Ok(Completed {
            card: CardData {
                pan,
                expiry,
                cvv: captured.cvv.take(),
                postal_code: captured.postal.take(),
            },
            operation,
            idempotency_key: config.idempotency_key,
            description: config.description,
            customer_reference: config.customer_reference,
        })
    }

    /// Ends the session without a payment; everything captured is wiped.
    pub fn cancel(self) -> Cancelled {
        Cancelled { idempotency_key: self.config.idempotency_key.clone() }
    }

    fn collects(&self, f: Field) -> bool {
        match f {
            Field::CardNumber | Field::Expiry => true,
            Field::SecurityCode => self.config.security_code,
            Field::PostalCode => self.config.postal_code,
        }
    }

    fn rules(&self) -> Rules {
        Rules {
            accepted: self.config.accepted_brands,
            today: self.today,
            card_brand: self.captured.pan.as_ref().and_then(Pan::brand),
            min_postal: self.config.min_postal_code_length,
        }
    }

    /// The transition table for keypad input and timers. Agent requests go through
    /// [`Session::capture`], which may enter any state but `Failed`.
    ///
    /// | phase        | digit                  | `*`          | `#`       | timeout                   |
    /// |--------------|------------------------|--------------|-----------|---------------------------|
    /// | Idle         | ignored                | ignored      | ignored   | —                         |
    /// | Entering(f)  | append; finish if full | clear        | finish    | accept if valid, else `input-timeout` |
    /// | Failed(f)    | ignored                | ignored      | ignored   | —                         |
    ///
    /// *finish* validates: a valid value is captured (then the next missing field, or
    /// `Ready`); an invalid one is an error and another attempt, or `Failed` at the limit.
    fn step(&mut self, now: Instant, input: Input) {
        let Phase::Entering(field) = self.phase else {
            return;
        };
        match input {
            Input::Key(d) => {
                let rules = self.rules();
                self.entry.push(field, d, &rules);
                self.deadline = Some(now + self.config.inter_digit_timeout);
                if self.entry.is_finished(field, &rules) {
                    self.finish(now, field, None);
                } else {
                    let masked = self.entry.masked_partial(field);
                    let brand = self.entry.brand(field);
                    self.progress(field, true, masked, brand, None);
                }
            }
            Input::Clear => {
                self.entry.clear();
                self.deadline = self.config.first_digit_timeout.map(|t| now + t);
                self.progress(field, true, String::new(), None, None);
            }
            Input::End => self.finish(now, field, None),
            Input::Timeout => self.finish(now, field, Some(CaptureError::InputTimeout)),
        }
    }

    /// The field ended: capture it or count a failure. `on_invalid` replaces the
    /// validation error (a timeout reports `input-timeout`, not what the half-typed value
    /// lacked).
    fn finish(&mut self, now: Instant, field: Field, on_invalid: Option<CaptureError>) {
        let result = if self.entry.is_empty() && on_invalid.is_some() {
            Err(CaptureError::InputTimeout)
        } else {
            self.entry.validate(field, &self.rules())
        };
        self.entry.clear();
        self.deadline = None;
        match result {
            Ok(value) => self.accept(now, field, value),
            Err(e) => self.fail(now, field, on_invalid.unwrap_or(e)),
        }
    }

    fn accept(&mut self, now: Instant, field: Field, value: Value) {
        let masked = masked_value(&value);
        let mut brand = None;
        match value {
            Value::Pan(pan) => {
                brand = pan.brand();
                // A security code taken for another card number stays only if it still fits.
                if let (Some(b), Some(cvv)) = (brand, &self.captured.cvv) {
                    if !cvv.fits_brand(b) {
                        self.captured.cvv = None;
                    }
                }
                self.captured.pan = Some(pan);
            }
            Value::Expiry(e) => self.captured.expiry = Some(e),
            Value::Cvv(c) => self.captured.cvv = Some(c),
            Value::Postal(p) => self.captured.postal = Some(p),
        }
        self.progress(field, false, masked, brand, None);
        self.phase = Phase::Idle;
        if self.config.auto_advance {
            self.advance(now);
        } else if self.required().is_empty() {
            self.events.push_back(Event::Ready);
        }
    }

    fn fail(&mut self, now: Instant, field: Field, error: CaptureError) {
        // Reported with the number of the attempt that failed.
        self.progress(field, false, String::new(), None, Some(error));
        let i = field.index();
        self.failures[i] = self.failures[i].saturating_add(1);
        if self.failures[i] >= self.config.max_attempts {
            self.phase = Phase::Failed(field);
            self.deadline = None;
            self.events.push_back(Event::Failed { field });
        } else {
            self.start(now, field);
        }
    }

    /// Asks for the first missing field, or reports `Ready`.
    fn advance(&mut self, now: Instant) {
        match self.required().first() {
            Some(next) => self.start(now, next),
            None => {
                self.phase = Phase::Idle;
                self.events.push_back(Event::Ready);
            }
        }
    }

    fn start(&mut self, now: Instant, field: Field) {
        self.entry.clear();
        self.phase = Phase::Entering(field);
        self.deadline = self.config.first_digit_timeout.map(|t| now + t);
        let attempt = self.attempt(field);
        self.events.push_back(Event::Capturing { field, attempt });
    }

    /// The number of the current (or next) attempt at `field`, from 1.
    fn attempt(&self, field: Field) -> u8 {
        self.failures[field.index()].saturating_add(1)
    }

    fn progress(
        &mut self,
        field: Field,
        partial: bool,
        masked: String,
        brand: Option<Brand>,
        error: Option<CaptureError>,
    ) {
        let attempt = self.attempt(field);
        let required = self.required();
        self.events.push_back(Event::Progress(Progress {
            field,
            partial,
            masked,
            brand,
            required,
            error,
            attempt,
        }));
    }
}
