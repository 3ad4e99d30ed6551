//! The IVR of a running ivrpay: starts a dialogue for each self-service call and each
//! hand-off, routes the calls' keys and prompt ends to them, and serves payment requests.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ivrpay_card::{BrandSet, Currency, IdempotencyKey, Money, TokenType};
use ivrpay_dtmf::Digit;
use ivrpay_media::{CallHandle, HoldAudio, PromptEnd, PromptId};
use ivrpay_service::{Clock, OpenPayment, PaymentView, Service};
use ivrpay_sip::b2bua::IvrParams;
use ivrpay_sip::profile::{AgentHold, IvrSettings};
use ivrpay_store::CallId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::dialogue::{DialogueConfig, Ending, Start};
use crate::error::IvrError;
use crate::prompts::{PromptError, PromptSet, Utterance};
use crate::requests::{self, CreatePaymentRequest, PaymentRequestView};
use crate::runner::{Input, Runner};

/// Ends calls: the self-service dialogue hangs up after its goodbye (`ivrpay serve` sends
/// the BYE through the SIP driver).
pub trait CallControl: Send + Sync + fmt::Debug + 'static {
    fn hangup(&self, call: &CallId);
}

/// The relay's handle on a call in progress (prompts, hold, reconnect).
pub trait MediaCalls: Send + Sync + fmt::Debug + 'static {
    fn media(&self, call: &CallId) -> Option<CallHandle>;
}

/// What the IVR needs from the configuration.
#[derive(Clone, Debug)]
pub struct IvrConfig {
    /// Each SIP profile's IVR settings, by profile name (calls are started under their
    /// profile's name; an unknown name gets the defaults).
    pub profiles: Vec<(String, IvrSettings)>,
    /// The pause allowed between the keys of a payment reference (the payment service's
    /// inter-digit timeout, so card fields and references behave alike).
    pub inter_digit_timeout: Duration,
}

/// `POST /v1/calls/{id}/ivr`: the customer of an agent-assisted call goes to the IVR for
/// the card payment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandOff {
    /// Decimal amount in major units (`"12.50"`); `"0"` tokenizes the card only.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    pub description: Option<String>,
    pub customer_ref: Option<String>,
    /// The session's idempotency key (default: one per hand-off).
    pub idempotency_key: Option<String>,
    /// Ask for the billing postal code too.
    #[serde(default)]
    pub postal_code: bool,
    /// Brands accepted, space-separated (`visa mastercard amex`, the default).
    pub accepted_brands: Option<String>,
}

/// What a hand-off started.
#[derive(Clone, Debug, Serialize)]
pub struct HandOffView {
    pub call_id: String,
    /// The payment session the IVR collects the card for (also on the feed).
    pub payment: PaymentView,
}

/// The prompts and settings of one profile.
#[derive(Clone, Debug)]
struct ProfileIvr {
    settings: IvrSettings,
    prompts: PromptSet,
}

pub(crate) struct Inner {
    pub(crate) service: Service,
    pub(crate) clock: Arc<dyn Clock>,
    profiles: HashMap<String, ProfileIvr>,
    default: ProfileIvr,
    inter_digit_timeout: Duration,
    media: Arc<dyn MediaCalls>,
    pub(crate) control: Arc<dyn CallControl>,
    /// The input of each running dialogue.
    running: Mutex<HashMap<CallId, mpsc::UnboundedSender<Input>>>,
    /// Numbers hand-offs, for their default idempotency keys.
    hand_offs: AtomicU64,
}

impl Inner {
    fn running(&self) -> MutexGuard<'_, HashMap<CallId, mpsc::UnboundedSender<Input>>> {
        // A poisoned lock means a panic while holding it; the map itself is whole.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn finished(&self, call: &CallId) {
        self.running().remove(call);
    }

    fn profile(&self, name: &str) -> &ProfileIvr {
        self.profiles.get(name).unwrap_or(&self.default)
    }

    fn dialogue_config(&self, profile: &ProfileIvr) -> DialogueConfig {
        DialogueConfig {
            first_digit_timeout: profile.settings.first_digit_timeout,
            inter_digit_timeout: self.inter_digit_timeout,
            ..DialogueConfig::default()
        }
    }
}

/// The IVR. Cheap to clone.
#[derive(Clone)]
pub struct Ivr {
    inner: Arc<Inner>,
}

impl fmt::Debug for Ivr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ivr").field("running", &self.active()).finish_non_exhaustive()
    }
}

impl Ivr {
    /// Loads each profile's prompt set (the built-in one, or its directory over it).
    ///
    /// # Errors
    /// [`PromptError`] naming a prompt file or directory that cannot be used.
    pub fn new(
        service: Service,
        clock: Arc<dyn Clock>,
        config: IvrConfig,
        media: Arc<dyn MediaCalls>,
        control: Arc<dyn CallControl>,
    ) -> Result<Ivr, PromptError> {
        let builtin = PromptSet::builtin()?;
        let mut sets: HashMap<PathBuf, PromptSet> = HashMap::new();
        let mut profiles = HashMap::new();
        for (name, settings) in config.profiles {
            let prompts = match &settings.prompts {
                None => builtin.clone(),
                Some(dir) => match sets.get(dir) {
                    Some(set) => set.clone(),
                    None => {
                        let set = PromptSet::with_overrides(dir)?;
                        sets.insert(dir.clone(), set.clone());
                        set
                    }
                },
            };
            profiles.insert(name, ProfileIvr { settings, prompts });
        }
        let default = ProfileIvr { settings: IvrSettings::default(), prompts: builtin };
        Ok(Ivr {
            inner: Arc::new(Inner {
                service,
                clock,
                profiles,
                default,
                inter_digit_timeout: config.inter_digit_timeout,
                media,
                control,
                running: Mutex::new(HashMap::new()),
                hand_offs: AtomicU64::new(0),
            }),
        })
    }

    /// Dialogues running.
    pub fn active(&self) -> usize {
        self.inner.running().len()
    }

    /// Whether the call is in the IVR.
    pub fn is_running(&self, call: &CallId) -> bool {
        self.inner.running().contains_key(call)
    }

    fn register(&self, call: &CallId) -> Option<mpsc::UnboundedReceiver<Input>> {
        let mut running = self.inner.running();
        if running.contains_key(call) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        running.insert(call.clone(), tx);
        Some(rx)
    }

    fn send(&self, call: &CallId, input: Input) {
        if let Some(tx) = self.inner.running().get(call) {
            let _ = tx.send(input);
        }
    }

    /// A key on the call (in-band, telephone-event or SIP INFO), once per press.
    pub fn digit(&self, call: &CallId, digit: Digit) {
        self.send(call, Input::Digit(digit));
    }

    /// A prompt the relay played on the call ended.
    pub fn prompt_ended(&self, call: &CallId, id: PromptId, end: PromptEnd) {
        self.send(call, Input::PromptEnded(id, end));
    }

    /// The call ended: its dialogue stops (the payment service cancels an open session).
    pub fn call_ended(&self, call: &CallId) {
        self.send(call, Input::CallEnded);
    }

    /// An IVR profile answered a call: the self-service dialogue starts. `params` are the
    /// router's `X-Ivrpay-*` headers. The service must know the call already
    /// (`Service::call_started`).
    pub fn start_self_service(&self, call: CallId, profile: &str, params: &IvrParams) {
        let Some(inputs) = self.register(&call) else { return };
        let inner = Arc::clone(&self.inner);
        let profile = inner.profile(profile).clone();
        let params = params.clone();
        tokio::spawn(async move {
            let Some(media) = inner.media.media(&call) else {
                warn!(call = %call.as_str(), "IVR call without media: hanging up");
                inner.finished(&call);
                inner.control.hangup(&call);
                return;
            };
            let updates = match inner.service.observe(&call) {
                Ok(updates) => updates,
                Err(_) => {
                    inner.finished(&call);
                    return;
                }
            };
            let mut session = None;
            let start = match payment_of(&params, &profile.settings, &call) {
                Ok(Some(open)) => {
                    let amount = open.amount;
                    match inner.service.open_payment(&call, open).await {
                        Ok(view) => {
                            session = Some(view.id);
                            Start::Opened { amount }
                        }
                        Err(e) => {
                            let id = call.as_str();
                            warn!(call = %id, error = %e, "IVR could not open the payment");
                            Start::Unavailable
                        }
                    }
                }
                Ok(None) if profile.settings.payment_requests => Start::Reference,
                Ok(None) => Start::NothingToPay,
                Err(problem) => {
                    // The router's headers are the operator's to fix; the caller hears
                    // that there is nothing to pay.
                    let id = call.as_str();
                    warn!(call = %id, %problem, "IVR call with unusable X-Ivrpay-* headers");
                    Start::NothingToPay
                }
            };
            info!(call = %call.as_str(), "IVR self-service started");
            let config = inner.dialogue_config(&profile);
            let mut runner = Runner::new(
                inner,
                call,
                media,
                profile.prompts,
                config,
                Ending::HangUp,
                inputs,
                updates,
            );
            if let Some(session) = session {
                runner = runner.with_session(session);
            }
            runner.run(start).await;
        });
    }

    /// Sends the customer of an agent-assisted call to the IVR for the payment: the agent
    /// hears the hold announcement (or silence) and none of the customer's keys; when the
    /// payment ends the customer is reconnected to the agent. The session is opened before
    /// this returns, so its errors (one already open, an idempotency conflict) are this
    /// call's.
    ///
    /// # Errors
    /// [`IvrError::UnknownCall`], [`IvrError::CallEnded`], [`IvrError::NotAnswered`],
    /// [`IvrError::AlreadyInIvr`], [`IvrError::Invalid`] for the amount, currency, key or
    /// brands, [`IvrError::Service`] from opening the session.
    pub async fn hand_off(&self, call: &CallId, request: HandOff) -> Result<HandOffView, IvrError> {
        let open = hand_off_payment(&request, call, &self.inner.hand_offs)?;
        let record = self.inner.service.call(call).await?;
        if record.ended_at_ms.is_some() {
            return Err(IvrError::CallEnded);
        }
        if record.answered_at_ms.is_none() {
            return Err(IvrError::NotAnswered);
        }
        let media = self.inner.media.media(call).ok_or(IvrError::CallEnded)?;
        let profile = self.inner.profile(&record.profile).clone();
        let inputs = self.register(call).ok_or(IvrError::AlreadyInIvr)?;
        let opened = async {
            let updates = self.inner.service.observe(call)?;
            let amount = open.amount;
            let view = self.inner.service.open_payment(call, open).await?;
            Ok::<_, IvrError>((updates, amount, view))
        }
        .await;
        let (updates, amount, view) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.inner.finished(call);
                return Err(e);
            }
        };
        let hold = match profile.settings.agent_hold {
            AgentHold::Silence => HoldAudio::Silence,
            AgentHold::Announcement => HoldAudio::Loop(
                profile.prompts.render(&Utterance::new().clip("agent-hold").pause(1500)),
            ),
        };
        if media.hold(hold).is_err() {
            self.inner.finished(call);
            return Err(IvrError::CallEnded);
        }
        info!(call = %call.as_str(), payment = %view.id.as_str(), "hand-off to the IVR");
        let inner = Arc::clone(&self.inner);
        let config = inner.dialogue_config(&profile);
        let runner = Runner::new(
            inner,
            call.clone(),
            media,
            profile.prompts,
            config,
            Ending::ReturnToAgent,
            inputs,
            updates,
        )
        .with_session(view.id.clone());
        tokio::spawn(runner.run(Start::Opened { amount }));
        Ok(HandOffView { call_id: call.as_str().to_owned(), payment: view })
    }

    /// Creates a payment request; the caller keys its `reference` in the IVR.
    ///
    /// # Errors
    /// [`IvrError::Invalid`] for the amount, currency, texts or expiry; [`IvrError::Store`].
    pub async fn create_payment_request(
        &self,
        request: &CreatePaymentRequest,
    ) -> Result<PaymentRequestView, IvrError> {
        let service = &self.inner.service;
        let record =
            requests::create(service.store(), service.tenant(), request, self.inner.clock.now())
                .await?;
        Ok(PaymentRequestView::from(&record))
    }

    /// A payment request by id (`preq_…`).
    ///
    /// # Errors
    /// [`IvrError::UnknownPaymentRequest`], [`IvrError::Store`].
    pub async fn payment_request(&self, id: &str) -> Result<PaymentRequestView, IvrError> {
        let service = &self.inner.service;
        let record = requests::read(service.store(), service.tenant(), id).await?;
        Ok(PaymentRequestView::from(&record))
    }
}

/// The payment the router's headers ask for; `None` without an amount. One per call: the
/// call names its idempotency key.
fn payment_of(
    params: &IvrParams,
    settings: &IvrSettings,
    call: &CallId,
) -> Result<Option<OpenPayment>, String> {
    let Some(amount) = params.amount.as_deref() else { return Ok(None) };
    let code = params.currency.as_deref().unwrap_or(&settings.currency);
    let currency = Currency::from_code(code).map_err(|_| "X-Ivrpay-Currency is not a currency")?;
    let amount =
        Money::parse_major(amount, currency).map_err(|e| format!("X-Ivrpay-Amount: {e}"))?;
    Ok(Some(OpenPayment {
        amount,
        description: None,
        customer_ref: params.customer.clone(),
        token_type: TokenType::default(),
        postal_code: false,
        accepted_brands: None,
        idempotency_key: IdempotencyKey::new(format!("ivr:{}", call.as_str()))
            .map_err(|e| e.to_string())?,
        first_digit_timeout: None,
    }))
}

fn hand_off_payment(
    request: &HandOff,
    call: &CallId,
    counter: &AtomicU64,
) -> Result<OpenPayment, IvrError> {
    let invalid = |what: &str| IvrError::Invalid(what.to_owned());
    let currency = Currency::from_code(request.currency.trim())
        .map_err(|_| invalid("currency: expected an ISO 4217 code such as GBP"))?;
    let amount = Money::parse_major(request.amount.trim(), currency).map_err(|e| {
        IvrError::Invalid(format!("amount: {e} (a decimal amount in major units, \"12.50\")"))
    })?;
    let key = match &request.idempotency_key {
        Some(key) => key.clone(),
        None => format!("handoff:{}:{}", call.as_str(), counter.fetch_add(1, Ordering::Relaxed)),
    };
    let idempotency_key = IdempotencyKey::new(key)
        .map_err(|_| invalid("idempotency_key: 1 to 255 visible ASCII characters"))?;
    let accepted_brands = match &request.accepted_brands {
        None => None,
        Some(list) => Some(
            BrandSet::parse_list(list)
                .map_err(|_| invalid("accepted_brands: a space-separated list of card brands"))?,
        ),
    };
    Ok(OpenPayment {
        amount,
        description: request.description.clone(),
        customer_ref: request.customer_ref.clone(),
        token_type: TokenType::default(),
        postal_code: request.postal_code,
        accepted_brands,
        idempotency_key,
        first_digit_timeout: None,
    })
}
