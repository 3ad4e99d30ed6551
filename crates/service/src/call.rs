//! One task per call: it owns the call's payment session, so digits, agent commands and
//! timers for a call are handled one at a time, in order, without locks; a slow gateway on
//! one call holds up nobody else.

use std::time::Instant;

use ivrpay_capture::{Event, Field, Session, SessionConfig};
use ivrpay_card::{BrandSet, IdempotencyKey, Money, TokenType};
use ivrpay_dtmf::Digit;
use ivrpay_store::{
    CallId, EventType, FeedEvent, NewCall, NewSession, PaymentRecord, SessionId, SessionRecord,
    SessionStatus,
};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::error::ServiceError;
use crate::flow::{self, Finished};
use crate::observe::{Observers, SessionUpdate};
use crate::service::{Context, IncomingCall};
use crate::view::{self, Fields, PaymentView, Status};

/// What an agent (or an IVR) asks to open.
#[derive(Clone, Debug)]
pub struct OpenPayment {
    pub amount: Money,
    pub description: Option<String>,
    pub customer_ref: Option<String>,
    pub token_type: TokenType,
    /// Collect the billing postal code too.
    pub postal_code: bool,
    /// Brands accepted (default: Visa, Mastercard, Amex).
    pub accepted_brands: Option<BrandSet>,
    /// The same key for every retry of this payment.
    pub idempotency_key: IdempotencyKey,
    /// Seconds the caller has for the first digit of a field (IVR); none for agent mode.
    pub first_digit_timeout: Option<std::time::Duration>,
}

type Reply<T> = oneshot::Sender<Result<T, ServiceError>>;

/// What a call's task is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    Answered(Option<String>),
    Digit(Digit),
    Open(Box<OpenPayment>, Reply<PaymentView>),
    Capture(SessionId, Field, Reply<PaymentView>),
    Complete(SessionId, Reply<PaymentView>),
    Cancel(SessionId, Reply<PaymentView>),
    View(SessionId, oneshot::Sender<Option<PaymentView>>),
    Ended(String),
    Observe(mpsc::UnboundedSender<SessionUpdate>),
    /// An IVR has prompted for a field: its first-digit timer starts now.
    Prompted {
        field: Field,
        attempt: u8,
        timeout: std::time::Duration,
    },
}

/// The payment session of a call.
struct Active {
    /// What was asked for: a capture started again is configured the same way.
    request: OpenPayment,
    record: SessionRecord,
    /// The capture, while capturing (taken out while the gateway works).
    capture: Option<Session>,
    status: Status,
    fields: Fields,
    brand: Option<String>,
    last4: Option<String>,
    payment: Option<PaymentRecord>,
    token: Option<String>,
    error: Option<String>,
}

impl Active {
    fn view(&self) -> PaymentView {
        let amount = self.record.amount();
        let required = self
            .capture
            .as_ref()
            .map(|c| c.required().iter().map(Field::name).collect())
            .unwrap_or_default();
        PaymentView {
            id: self.record.id.clone(),
            call_id: self.record.call_id.as_ref().cloned(),
            status: self.status,
            amount: amount.to_major_string(),
            currency: amount.currency().code().to_owned(),
            description: self.record.description.clone(),
            customer_ref: self.record.customer_ref.clone(),
            token_type: self.record.token_type.clone(),
            required,
            capturing: self.capture.as_ref().and_then(Session::current_field).map(Field::name),
            fields: self.fields.list(),
            brand: self
                .brand
                .clone()
                .or_else(|| self.payment.as_ref().and_then(|p| p.brand.clone())),
            last4: self
                .last4
                .clone()
                .or_else(|| self.payment.as_ref().and_then(|p| p.last4.clone())),
            payment_id: self.payment.as_ref().map(|p| p.id.as_str().to_owned()),
            gateway_ref: self.payment.as_ref().and_then(|p| p.gateway_ref.clone()),
            decline_code: self
                .payment
                .as_ref()
                .and_then(|p| p.error_code.clone())
                .map(|code| view::agent_safe_code(&code)),
            token: self.token.clone(),
            error: self.error.clone(),
        }
    }
}

/// The task of one call.
pub(crate) struct CallTask {
    ctx: Context,
    call: CallId,
    commands: mpsc::UnboundedReceiver<Command>,
    session: Option<Active>,
    ended: bool,
    observers: Observers,
}

impl CallTask {
    pub(crate) fn new(
        ctx: Context,
        call: CallId,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> CallTask {
        CallTask {
            ctx,
            call,
            commands,
            session: None,
            ended: false,
            observers: Observers::default(),
        }
    }

    /// Records the call, then handles its commands until it ends.
    pub(crate) async fn run(mut self, incoming: IncomingCall) {
        let new = NewCall {
            id: incoming.id,
            tenant_id: self.ctx.config.tenant.clone(),
            sip_call_id: incoming.sip_call_id,
            profile: incoming.profile,
            agent: incoming.agent,
            caller: incoming.caller,
            called: incoming.called,
            node: self.ctx.config.node.clone(),
        };
        if let Err(e) = self.ctx.store.start_call(&new, self.ctx.clock.now()).await {
            // Without its record the call can carry no payment: refuse them all.
            error!(call = %self.call.as_str(), error = %e, "could not record a call; no payment can be taken on it");
            return;
        }
        self.ctx.feed.poke();
        loop {
            let deadline = self.capture_deadline();
            let command = tokio::select! {
                command = self.commands.recv() => command,
                () = sleep_until(deadline) => {
                    let now = self.ctx.clock.instant();
                    if let Some(capture) = self.session.as_mut().and_then(|s| s.capture.as_mut()) {
                        capture.handle_timeout(now);
                    }
                    self.publish_capture_events().await;
                    continue;
                }
            };
            let Some(command) = command else { break };
            let mut next = Some(command);
            while let Some(command) = next.take() {
                self.handle(command).await;
                // Keys that queued up while that ran go in before the events are written, so
                // a burst of keys is one commit.
                loop {
                    match self.commands.try_recv() {
                        Ok(Command::Digit(digit)) => self.digit(digit),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // A completion writes the keys' events with its own, one commit fewer
                // between the last key and the result.
                if !matches!(next, Some(Command::Complete(..))) {
                    self.publish_capture_events().await;
                }
            }
            if self.ended {
                break;
            }
        }
    }

    fn capture_deadline(&self) -> Option<Instant> {
        self.session.as_ref().and_then(|s| s.capture.as_ref()).and_then(Session::poll_timeout)
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Answered(agent) => {
                let now = self.ctx.clock.now();
                match self
                    .ctx
                    .store
                    .answer_call(&self.ctx.config.tenant, &self.call, agent.as_deref(), now)
                    .await
                {
                    Ok(_) => self.ctx.feed.poke(),
                    Err(e) => {
                        warn!(call = %self.call.as_str(), error = %e, "could not record the answer of a call")
                    }
                }
            }
            Command::Digit(digit) => self.digit(digit),
            Command::Open(request, reply) => {
                let _ = reply.send(self.open(*request).await);
            }
            Command::Capture(id, field, reply) => {
                let _ = reply.send(self.capture(&id, field));
            }
            Command::Complete(id, reply) => {
                let result = self.complete(&id).await;
                self.changed(&result);
                let _ = reply.send(result);
            }
            Command::Cancel(id, reply) => {
                let result = self.cancel(&id).await;
                self.changed(&result);
                let _ = reply.send(result);
            }
            Command::View(id, reply) => {
                let view = self.session.as_ref().filter(|s| s.record.id == id).map(Active::view);
                let _ = reply.send(view);
            }
            Command::Ended(reason) => self.end(&reason).await,
            Command::Observe(observer) => self.observers.add(observer),
            Command::Prompted { field, attempt, timeout } => {
                let now = self.ctx.clock.instant();
                if let Some(capture) = self.session.as_mut().and_then(|s| s.capture.as_mut()) {
                    capture.start_first_digit_timer(now, field, attempt, timeout);
                }
            }
        }
    }

    /// Tells the observers where a session stands after `complete` or `cancel`.
    fn changed(&mut self, result: &Result<PaymentView, ServiceError>) {
        if let Ok(view) = result {
            self.observers.send(|| SessionUpdate::Changed(Box::new(view.clone())));
        }
    }

    fn digit(&mut self, digit: Digit) {
        let now = self.ctx.clock.instant();
        if let Some(capture) = self.session.as_mut().and_then(|s| s.capture.as_mut()) {
            capture.handle_digit(now, digit);
        }
        // With no session open the digit is dropped: the media path masks every key anyway,
        // and a key typed before "take payment" is not collected.
    }

    async fn open(&mut self, request: OpenPayment) -> Result<PaymentView, ServiceError> {
        if self.ended {
            return Err(ServiceError::CallEnded);
        }
        if let Some(active) = &self.session {
            if matches!(active.status, Status::Open | Status::Processing) {
                // Opening again with the same key is a replay of the same request.
                if active.record.idempotency_key == request.idempotency_key.as_str() {
                    return Ok(active.view());
                }
                return Err(ServiceError::SessionAlreadyOpen);
            }
        }
        let new = NewSession {
            tenant_id: self.ctx.config.tenant.clone(),
            call_id: Some(self.call.clone()),
            idempotency_key: request.idempotency_key.clone(),
            amount: request.amount,
            description: request.description.clone(),
            customer_ref: request.customer_ref.clone(),
            token_type: request.token_type,
        };
        let record = self.ctx.store.open_session(&new, self.ctx.clock.now()).await?;
        self.ctx.feed.poke();
        if record.status != SessionStatus::Open {
            // The key belongs to a session that is over: its result stands.
            let payment = match record.payment_id.as_ref() {
                Some(id) => Some(self.ctx.store.payment(&self.ctx.config.tenant, id).await?),
                None => None,
            };
            return Ok(view::stored_view(&record, payment.as_ref()));
        }
        let config = session_config(&request, self.ctx.config.inter_digit_timeout);
        let capture = Session::new(config, self.ctx.clock.today(), self.ctx.clock.instant());
        if let Some(finished) = self.session.take() {
            self.ctx.sessions.forget(&finished.record.id);
        }
        self.ctx.sessions.register(&record.id, &self.call);
        self.session = Some(Active {
            request,
            record,
            capture: Some(capture),
            status: Status::Open,
            fields: Fields::default(),
            brand: None,
            last4: None,
            payment: None,
            token: None,
            error: None,
        });
        self.publish_capture_events().await;
        self.view_of_current()
    }

    fn current(&mut self, id: &SessionId) -> Result<&mut Active, ServiceError> {
        self.session.as_mut().filter(|s| s.record.id == *id).ok_or(ServiceError::UnknownPayment)
    }

    fn view_of_current(&self) -> Result<PaymentView, ServiceError> {
        self.session.as_ref().map(Active::view).ok_or(ServiceError::UnknownPayment)
    }

    fn capture(&mut self, id: &SessionId, field: Field) -> Result<PaymentView, ServiceError> {
        let now = self.ctx.clock.instant();
        let active = self.current(id)?;
        let capture = active.capture.as_mut().ok_or(ServiceError::NotOpen)?;
        capture.capture(now, field).map_err(ServiceError::Capture)?;
        Ok(active.view())
    }

    async fn complete(&mut self, id: &SessionId) -> Result<PaymentView, ServiceError> {
        // Not `current`: the observers and the call are borrowed beside the session.
        let active = self
            .session
            .as_mut()
            .filter(|s| s.record.id == *id)
            .ok_or(ServiceError::UnknownPayment)?;
        if active.status == Status::Processing && active.capture.is_none() {
            return Ok(active.view());
        }
        let mut capture = active.capture.take().ok_or(ServiceError::NotOpen)?;
        // The keys' events not written yet (see `run`) go with the processing event.
        let mut events = capture_feed_events(active, &mut capture, &mut self.observers, &self.call);
        let completed = match capture.complete() {
            Ok(completed) => completed,
            Err(incomplete) => {
                active.capture = Some(*incomplete.session);
                self.record_events(&events).await;
                return Err(ServiceError::Capture(incomplete.error));
            }
        };
        active.status = Status::Processing;
        active.error = None;
        let record = active.record.clone();
        events.push(FeedEvent {
            event_type: EventType::PaymentProcessing,
            subject_id: record.id.as_str().to_owned(),
            payload: json!({ "payment_id": record.id, "call_id": self.call }),
        });
        let result =
            flow::complete(&self.ctx, &record, completed, self.record_events(&events)).await;
        self.ctx.feed.poke();
        let Some(active) = self.session.as_mut() else { return Err(ServiceError::UnknownPayment) };
        match result {
            Ok(Finished::Payment(payment)) => {
                active.status = match payment.status {
                    ivrpay_store::PaymentStatus::Succeeded => Status::Succeeded,
                    ivrpay_store::PaymentStatus::Declined => Status::Declined,
                    ivrpay_store::PaymentStatus::Failed => Status::Failed,
                    _ => Status::Processing,
                };
                active.payment = Some(payment);
            }
            Ok(Finished::Token(token)) => {
                active.status = Status::Succeeded;
                active.token = Some(token.as_str().to_owned());
            }
            Ok(Finished::Unanswered { payment, error }) => {
                // The card is wiped; re-capturing it and completing again with the same key
                // resolves the pending attempt without a second charge.
                active.status = Status::Processing;
                active.payment = Some(payment);
                active.error =
                    Some(format!("gateway unavailable ({error}): capture the card again to retry"));
                let config = session_config(&active.request, self.ctx.config.inter_digit_timeout);
                active.capture =
                    Some(Session::new(config, self.ctx.clock.today(), self.ctx.clock.instant()));
                active.fields = Fields::default();
            }
            Err(error) => {
                active.status = Status::Failed;
                active.error = Some(error.to_string());
                return Err(error);
            }
        }
        Ok(active.view())
    }

    async fn cancel(&mut self, id: &SessionId) -> Result<PaymentView, ServiceError> {
        let active = self.current(id)?;
        if active.status == Status::Processing && active.payment.is_some() {
            // The gateway may have charged: cancelling would strand that charge.
            return Err(ServiceError::InvalidState(
                "cancel a payment the gateway may have charged (key the card again to settle it)",
            ));
        }
        if active.status != Status::Open {
            return Err(ServiceError::NotOpen);
        }
        if let Some(capture) = active.capture.take() {
            let _ = capture.cancel();
        }
        let record = self
            .ctx
            .store
            .cancel_session(&self.ctx.config.tenant, id, self.ctx.clock.now())
            .await?;
        self.ctx.feed.poke();
        let active = self.session.as_mut().ok_or(ServiceError::UnknownPayment)?;
        active.status = Status::Cancelled;
        active.record = record;
        Ok(active.view())
    }

    async fn end(&mut self, reason: &str) {
        self.ended = true;
        // A session still capturing is cancelled. One whose gateway call went unanswered stays
        // open: the customer who calls back finishes it under the same key (see
        // Store::open_session), and a charge the gateway did make is found, not repeated.
        let open = self.session.as_ref().is_some_and(|s| s.status == Status::Open);
        if open {
            if let Some(id) = self.session.as_ref().map(|s| s.record.id.clone()) {
                if let Err(e) = self.cancel(&id).await {
                    warn!(call = %self.call.as_str(), error = %e, "could not cancel the session of an ended call");
                }
            }
        }
        if let Err(e) = self
            .ctx
            .store
            .end_call(&self.ctx.config.tenant, &self.call, reason, self.ctx.clock.now())
            .await
        {
            warn!(call = %self.call.as_str(), error = %e, "could not record the end of a call");
        }
        self.ctx.feed.poke();
        if let Some(active) = &self.session {
            self.ctx.sessions.forget(&active.record.id);
        }
    }

    /// Turns the capture's events into feed events and commits them (one transaction).
    async fn publish_capture_events(&mut self) {
        let Some(active) = self.session.as_mut() else { return };
        let Some(mut capture) = active.capture.take() else { return };
        let events = capture_feed_events(active, &mut capture, &mut self.observers, &self.call);
        active.capture = Some(capture);
        self.record_events(&events).await;
    }

    async fn record_events(&self, events: &[FeedEvent]) {
        if events.is_empty() {
            return;
        }
        match self
            .ctx
            .store
            .record_events(&self.ctx.config.tenant, events, self.ctx.clock.now())
            .await
        {
            Ok(_) => self.ctx.feed.poke(),
            // Progress is for the live view: losing it must not stop the payment.
            Err(e) => {
                warn!(call = %self.call.as_str(), error = %e, "could not record capture progress")
            }
        }
    }
}

/// The capture's events not yet taken, as feed events (each also goes to the session's
/// observers); what they show is kept in `active` for its view.
fn capture_feed_events(
    active: &mut Active,
    capture: &mut Session,
    observers: &mut Observers,
    call: &CallId,
) -> Vec<FeedEvent> {
    let session = active.record.id.clone();
    let mut events = Vec::new();
    while let Some(event) = capture.poll_event() {
        observers.send(|| SessionUpdate::Capture(event.clone()));
        let (event_type, payload) = match event {
            Event::Capturing { field, attempt } => {
                active.fields.started(field, attempt);
                if field == Field::CardNumber {
                    // Another card, perhaps: what the last one showed no longer holds.
                    active.brand = None;
                    active.last4 = None;
                }
                (EventType::CaptureStarted, json!({ "field": field.name(), "attempt": attempt }))
            }
            Event::Progress(progress) => {
                active.fields.update(&progress);
                if let Some(brand) = progress.brand {
                    active.brand = Some(brand.name().to_owned());
                }
                if progress.field == Field::CardNumber
                    && !progress.partial
                    && progress.error.is_none()
                {
                    active.last4 = last4_of(&progress.masked);
                }
                let required: Vec<&str> = progress.required.iter().map(Field::name).collect();
                let data = json!({
                    "field": progress.field.name(),
                    "partial": progress.partial,
                    "masked": progress.masked,
                    "brand": progress.brand.map(|b| b.name()),
                    "required": required,
                    "attempt": progress.attempt,
                });
                let event_type = match (progress.error, progress.partial) {
                    (Some(error), _) => {
                        let mut data = data;
                        data["error"] = json!(error.name());
                        events.push(feed_event(
                            EventType::CaptureFieldInvalid,
                            &session,
                            call,
                            data,
                        ));
                        continue;
                    }
                    (None, false) if !progress.masked.is_empty() => {
                        EventType::CaptureFieldCompleted
                    }
                    _ => EventType::CaptureProgress,
                };
                (event_type, data)
            }
            Event::Ready => (EventType::CaptureProgress, json!({ "ready": true, "required": [] })),
            Event::Failed { field } => {
                active.error = Some(format!("{} failed too many times", field.name()));
                (
                    EventType::CaptureFieldInvalid,
                    json!({ "field": field.name(), "error": "too-many-failed-attempts" }),
                )
            }
            // A kind of event this version does not publish.
            _ => continue,
        };
        events.push(feed_event(event_type, &session, call, payload));
    }
    events
}

fn feed_event(
    event_type: EventType,
    session: &SessionId,
    call: &CallId,
    mut payload: serde_json::Value,
) -> FeedEvent {
    payload["payment_id"] = json!(session);
    payload["call_id"] = json!(call);
    FeedEvent { event_type, subject_id: session.as_str().to_owned(), payload }
}

/// The last four of a completed card number mask (`•••• •••• •••• 4242`).
fn last4_of(masked: &str) -> Option<String> {
    let digits: String = masked.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 4).then_some(digits)
}

/// The capture's settings for a request.
fn session_config(
    request: &OpenPayment,
    inter_digit_timeout: std::time::Duration,
) -> SessionConfig {
    let mut config = SessionConfig::new(request.amount, request.idempotency_key.clone());
    config.description = request.description.clone().unwrap_or_default();
    config.customer_reference = request.customer_ref.clone();
    config.token_type = request.token_type;
    config.postal_code = request.postal_code;
    config.first_digit_timeout = request.first_digit_timeout;
    if let Some(brands) = request.accepted_brands {
        config.accepted_brands = brands;
    }
    config.inter_digit_timeout = inter_digit_timeout;
    config
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
