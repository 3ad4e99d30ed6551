//! What the running service knows about its calls, shared by the event loop and HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use ivrpay_ivr::Ivr;
use ivrpay_media::{DigitEvent, DigitPhase, DigitSource, MediaEngine, MediaEvent};
use ivrpay_service::{IncomingCall, Service};
use ivrpay_sip::b2bua::{CallEvent, EndReason};
use ivrpay_sip::media::CallId;
use tracing::{info, warn};

/// A call in progress.
#[derive(Clone, Debug)]
pub(crate) struct CallInfo {
    pub(crate) agent: Option<String>,
    pub(crate) answered: bool,
}

/// Counters exported on /metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls_started: AtomicU64,
    pub(crate) calls_answered: AtomicU64,
    pub(crate) calls_ended: AtomicU64,
    pub(crate) digits_in_band: AtomicU64,
    pub(crate) digits_rfc4733: AtomicU64,
    pub(crate) digits_sip_info: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) engine: MediaEngine,
    /// Calls, payment sessions and the feed.
    pub(crate) service: Service,
    calls: Mutex<HashMap<CallId, CallInfo>>,
    pub(crate) counters: Counters,
    /// The downstream sync's counters (zero when it is disabled).
    pub(crate) sync: std::sync::Arc<ivrpay_sync::SyncMetrics>,
    /// The IVR (set once the SIP side runs: it hangs calls up through it).
    pub(crate) ivr: OnceLock<Ivr>,
}

impl AppState {
    pub(crate) fn new(engine: MediaEngine, service: Service) -> AppState {
        AppState {
            engine,
            service,
            calls: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            sync: std::sync::Arc::default(),
            ivr: OnceLock::new(),
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, CallInfo>> {
        // A poisoned lock means a panic while holding it; the map itself is still usable.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn active_calls(&self) -> usize {
        self.calls().len()
    }

    pub(crate) fn on_call_event(&self, event: CallEvent) {
        match event {
            CallEvent::Started {
                call, sip_call_id, profile, caller, called, agent, ivr, ..
            } => {
                // Caller and called numbers are personal data: not logged.
                info!(%call, %profile, "call started");
                self.counters.calls_started.fetch_add(1, Ordering::Relaxed);
                self.calls()
                    .insert(call.clone(), CallInfo { agent: agent.clone(), answered: false });
                if let Some(id) = service_call_id(&call) {
                    self.service.call_started(IncomingCall {
                        id: id.clone(),
                        sip_call_id,
                        profile: profile.clone(),
                        caller: Some(caller),
                        called: Some(called),
                        agent,
                    });
                    // An IVR profile's call: ivrpay answered it and runs the payment itself.
                    if let (Some(params), Some(ivr)) = (ivr, self.ivr.get()) {
                        ivr.start_self_service(id, &profile, &params);
                    }
                }
            }
            CallEvent::Answered { call, agent } => {
                info!(%call, "call answered");
                self.counters.calls_answered.fetch_add(1, Ordering::Relaxed);
                if let Some(info) = self.calls().get_mut(&call) {
                    info.answered = true;
                    info.agent = agent.clone().or(info.agent.take());
                }
                if let Some(id) = service_call_id(&call) {
                    self.service.call_answered(&id, agent);
                }
            }
            CallEvent::Ended { call, reason } => {
                info!(%call, ?reason, "call ended");
                self.counters.calls_ended.fetch_add(1, Ordering::Relaxed);
                self.calls().remove(&call);
                if let Some(id) = service_call_id(&call) {
                    self.service.call_ended(&id, end_reason(reason));
                    if let Some(ivr) = self.ivr.get() {
                        ivr.call_ended(&id);
                    }
                }
            }
            CallEvent::Digit { call, digit } => {
                // Which key is card data: counted, never logged.
                self.counters.digits_sip_info.fetch_add(1, Ordering::Relaxed);
                if let Some(id) = service_call_id(&call) {
                    self.service.digit(&id, digit);
                    if let Some(ivr) = self.ivr.get() {
                        ivr.digit(&id, digit);
                    }
                }
            }
            _ => {}
        }
    }

    /// What the relay reports: keys, and the ends of the IVR's prompts.
    pub(crate) fn on_media_event(&self, call: &CallId, event: MediaEvent) {
        match event {
            MediaEvent::Digit(digit) => self.on_media_digit(call, &digit),
            MediaEvent::PromptEnded { id, end } => {
                if let (Some(ivr), Some(call)) = (self.ivr.get(), service_call_id(call)) {
                    ivr.prompt_ended(&call, id, end);
                }
            }
            _ => {}
        }
    }

    /// A key the relay heard: the capture takes it when it begins (masking already covers
    /// it on the agent leg), once, whether it came in-band or as telephone-events.
    pub(crate) fn on_media_digit(&self, call: &CallId, digit: &DigitEvent) {
        if digit.phase != DigitPhase::Began {
            return;
        }
        let counter = match digit.source {
            DigitSource::InBand => &self.counters.digits_in_band,
            _ => &self.counters.digits_rfc4733,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(id) = service_call_id(call) {
            self.service.digit(&id, digit.digit);
            if let Some(ivr) = self.ivr.get() {
                ivr.digit(&id, digit.digit);
            }
        }
    }
}

/// The B2BUA's call id as the store's (the same `call_…` text).
fn service_call_id(call: &CallId) -> Option<ivrpay_store::CallId> {
    let id = ivrpay_store::CallId::parse(&call.0);
    if id.is_err() {
        warn!(%call, "a call id the store does not accept: no payment can be taken on it");
    }
    id.ok()
}

/// Why a call ended, as recorded and put on the feed.
fn end_reason(reason: EndReason) -> &'static str {
    match reason {
        EndReason::CustomerHangup => "customer_hangup",
        EndReason::AgentHangup => "agent_hangup",
        EndReason::Cancelled => "cancelled",
        EndReason::Rejected(_) => "rejected",
        EndReason::NoAnswer => "no_answer",
        EndReason::Finished => "completed",
        _ => "terminated",
    }
}
