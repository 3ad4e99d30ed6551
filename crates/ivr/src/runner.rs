//! The driver of one call's dialogue: feeds it the call's keys, prompt ends and capture
//! events, and carries out its actions on the relay (prompts), the payment service and the
//! store (payment requests). It owns the clock; the dialogue only gets instants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ivrpay_card::{IdempotencyKey, TokenType};
use ivrpay_dtmf::Digit;
use ivrpay_media::{CallHandle, PlayOptions, PromptEnd, PromptId};
use ivrpay_service::{OpenPayment, SessionUpdate, Status};
use ivrpay_store::{CallId, PaymentId, PaymentRequestRecord, SessionId};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::dialogue::{Action, Dialogue, DialogueConfig, Ending, Found, Outcome, Start};
use crate::hub::Inner;
use crate::prompts::PromptSet;
use crate::requests;

/// Lets the last words reach the caller before the BYE (the relay reports a prompt's end
/// when its last packet leaves).
const LAST_WORDS: Duration = Duration::from_millis(300);

/// What reaches a running dialogue from the call.
#[derive(Debug)]
pub(crate) enum Input {
    Digit(Digit),
    PromptEnded(PromptId, PromptEnd),
    CallEnded,
}

pub(crate) struct Runner {
    inner: Arc<Inner>,
    call: CallId,
    media: CallHandle,
    prompts: PromptSet,
    dialogue: Dialogue,
    ending: Ending,
    inputs: mpsc::UnboundedReceiver<Input>,
    updates: Option<mpsc::UnboundedReceiver<SessionUpdate>>,
    /// The prompt playing, as the relay numbered it: the end of any other is stale.
    playing: Option<PromptId>,
    session: Option<SessionId>,
    payment: Option<PaymentId>,
    /// The payment request this call claimed.
    claimed: Option<PaymentRequestRecord>,
    outcome: Option<Outcome>,
    call_ended: bool,
    /// The dialogue cancelled the session itself (its `Changed` is no news).
    cancelling: bool,
}

impl Runner {
    #[allow(clippy::too_many_arguments, reason = "one constructor, called from the hub only")]
    pub(crate) fn new(
        inner: Arc<Inner>,
        call: CallId,
        media: CallHandle,
        prompts: PromptSet,
        config: DialogueConfig,
        ending: Ending,
        inputs: mpsc::UnboundedReceiver<Input>,
        updates: mpsc::UnboundedReceiver<SessionUpdate>,
    ) -> Runner {
        Runner {
            inner,
            call,
            media,
            prompts,
            dialogue: Dialogue::new(config, ending),
            ending,
            inputs,
            updates: Some(updates),
            playing: None,
            session: None,
            payment: None,
            claimed: None,
            outcome: None,
            call_ended: false,
            cancelling: false,
        }
    }

    /// The session already open on the call (by the hub).
    pub(crate) fn with_session(mut self, session: SessionId) -> Runner {
        self.session = Some(session);
        self
    }

    fn now(&self) -> Instant {
        self.inner.clock.instant()
    }

    pub(crate) async fn run(mut self, start: Start) {
        let now = self.now();
        self.dialogue.start(now, start);
        self.act().await;
        while !self.dialogue.is_done() {
            let deadline = self.dialogue.poll_timeout();
            tokio::select! {
                input = self.inputs.recv() => self.input(input),
                update = next_update(&mut self.updates) => self.update(update),
                () = sleep_until(deadline) => {
                    let now = self.now();
                    self.dialogue.handle_timeout(now);
                }
            }
            self.act().await;
        }
        self.finish().await;
    }

    fn input(&mut self, input: Option<Input>) {
        let now = self.now();
        match input {
            None | Some(Input::CallEnded) => self.hung_up(),
            Some(Input::Digit(digit)) => self.dialogue.digit(now, digit),
            Some(Input::PromptEnded(id, end)) => {
                // Ends of prompts we replaced ourselves are no news.
                if self.playing == Some(id) && end != PromptEnd::Replaced {
                    self.playing = None;
                    self.dialogue.prompt_finished(now);
                }
            }
        }
    }

    fn update(&mut self, update: Option<SessionUpdate>) {
        let now = self.now();
        match update {
            Some(SessionUpdate::Capture(event)) => self.dialogue.capture(now, &event),
            Some(SessionUpdate::Changed(view)) => {
                if view.status == Status::Cancelled && !self.cancelling {
                    self.dialogue.cancelled(now);
                }
            }
            Some(_) => {}
            // The call's task is over: the call has ended.
            None => {
                self.updates = None;
                self.hung_up();
            }
        }
    }

    fn hung_up(&mut self) {
        self.call_ended = true;
        self.dialogue.hung_up();
    }

    async fn act(&mut self) {
        while let Some(action) = self.dialogue.poll_action() {
            match action {
                Action::Play { utterance, barge_in } => {
                    let prompt = self.prompts.render(&utterance);
                    match self.media.play_prompt(prompt, PlayOptions { barge_in }).await {
                        Ok(id) => self.playing = Some(id),
                        // The media is closed: the call is ending.
                        Err(_) => self.hung_up(),
                    }
                }
                Action::FindReference(reference) => {
                    let found = self.find(&reference).await;
                    let now = self.now();
                    self.dialogue.reference_found(now, found);
                }
                Action::Prompted { field, attempt, timeout } => {
                    self.inner.service.prompted(&self.call, field, attempt, timeout);
                }
                Action::Complete => {
                    let outcome = self.complete().await;
                    self.outcome = Some(outcome.clone());
                    let now = self.now();
                    self.dialogue.completed(now, outcome);
                }
                Action::Cancel => {
                    self.cancelling = true;
                    if let Some(session) = &self.session {
                        if let Err(e) = self.inner.service.cancel(session).await {
                            let call = self.call.as_str();
                            warn!(%call, error = %e, "IVR could not cancel its session");
                        }
                    }
                }
                Action::Finish(_) => {}
            }
        }
    }

    /// Claims the payment request with this reference and opens its payment.
    async fn find(&mut self, reference: &str) -> Found {
        if !requests::plausible_reference(reference) {
            return Found::NotFound;
        }
        let service = &self.inner.service;
        let now = self.inner.clock.now();
        let claimed = service
            .store()
            .claim_payment_request(service.tenant(), reference, &self.call, now)
            .await;
        let request = match claimed {
            Ok(Some(request)) => request,
            Ok(None) => return Found::NotFound,
            Err(e) => {
                let call = self.call.as_str();
                warn!(%call, error = %e, "IVR could not look a payment request up");
                return Found::Unavailable;
            }
        };
        let amount = request.amount();
        // One session per request and call: a caller who tries again on another call starts
        // a new attempt.
        let key = IdempotencyKey::new(format!("{}:{}", request.id.as_str(), self.call.as_str()));
        let open = key.map(|idempotency_key| OpenPayment {
            amount,
            description: request.description.clone(),
            customer_ref: request.customer_ref.clone(),
            token_type: TokenType::default(),
            postal_code: false,
            accepted_brands: None,
            idempotency_key,
            first_digit_timeout: None,
        });
        let (call, id) = (self.call.as_str(), request.id.as_str());
        info!(%call, request = %id, "IVR caller found a payment request");
        self.claimed = Some(request);
        let Ok(open) = open else { return Found::Unavailable };
        match service.open_payment(&self.call, open).await {
            Ok(view) => {
                self.session = Some(view.id);
                Found::Opened { amount }
            }
            Err(e) => {
                let call = self.call.as_str();
                warn!(%call, error = %e, "IVR could not open the payment of a request");
                Found::Unavailable
            }
        }
    }

    async fn complete(&mut self) -> Outcome {
        let Some(session) = self.session.clone() else { return Outcome::Unknown };
        match self.inner.service.complete(&session).await {
            Ok(view) => {
                self.payment = view.payment_id.as_deref().and_then(|p| PaymentId::parse(p).ok());
                match view.status {
                    Status::Succeeded => Outcome::Approved { last4: view.last4.clone() },
                    Status::Declined => Outcome::Declined,
                    Status::Failed => Outcome::Failed,
                    _ => Outcome::Unknown,
                }
            }
            Err(e) => {
                warn!(call = %self.call.as_str(), error = %e, "IVR payment did not complete");
                Outcome::Unknown
            }
        }
    }

    async fn finish(mut self) {
        let outcome = match &self.outcome {
            Some(Outcome::Approved { .. }) => "approved",
            Some(Outcome::Declined) => "declined",
            Some(Outcome::Failed) => "failed",
            Some(Outcome::Unknown) => "unknown",
            None if self.call_ended => "caller hung up",
            None => "no payment",
        };
        info!(call = %self.call.as_str(), outcome, "IVR dialogue over");
        if let Some(request) = self.claimed.take() {
            self.settle(&request).await;
        }
        if !self.call_ended {
            match self.ending {
                Ending::HangUp => {
                    tokio::time::sleep(LAST_WORDS).await;
                    self.inner.control.hangup(&self.call);
                }
                Ending::ReturnToAgent => {
                    let _ = self.media.reconnect();
                }
            }
        }
        self.inner.finished(&self.call);
    }

    /// The claimed payment request: paid, or given back for another try. One whose payment
    /// has an unknown outcome (the gateway did not answer) stays claimed: it must not be
    /// paid twice, and the session's retry with the same key settles it.
    async fn settle(&self, request: &PaymentRequestRecord) {
        let service = &self.inner.service;
        let (store, tenant, now) = (service.store(), service.tenant(), self.inner.clock.now());
        let result = match (&self.outcome, &self.session) {
            (Some(Outcome::Approved { .. }), Some(session)) => store
                .settle_payment_request(
                    tenant,
                    &request.id,
                    &self.call,
                    session,
                    self.payment.as_ref(),
                    now,
                )
                .await
                .map(|_| ()),
            (Some(Outcome::Unknown), _) => {
                let id = request.id.as_str();
                warn!(request = %id, "payment request left claimed: the gateway's answer is unknown");
                Ok(())
            }
            _ => store
                .release_payment_request(tenant, &request.id, &self.call, now)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            warn!(request = %request.id.as_str(), error = %e, "could not update a payment request");
        }
    }
}

async fn next_update(
    updates: &mut Option<mpsc::UnboundedReceiver<SessionUpdate>>,
) -> Option<SessionUpdate> {
    match updates {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
