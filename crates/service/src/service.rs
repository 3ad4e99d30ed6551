//! The service handle: calls in, commands routed to each call's task, views and the feed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ivrpay_capture::Field;
use ivrpay_dtmf::Digit;
use ivrpay_payments::{Gateway, RetryPolicy};
use ivrpay_store::{CallId, CallRecord, RefundRecord, SessionId, Store, TenantId};
use ivrpay_vault::Vault;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::call::{CallTask, Command, OpenPayment};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::feed::Feed;
use crate::observe::SessionUpdate;
use crate::refund::{self, RefundPayment};
use crate::view::{self, PaymentView};

/// Service settings.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The tenant everything belongs to (one per deployment for now).
    pub tenant: TenantId,
    /// This node's name: the calls it carries are recorded under it, and those it left in
    /// progress when it stopped are ended when it starts again.
    pub node: String,
    /// The gateway connector's name, recorded on payments (`sandbox`, `stripe`, …).
    pub gateway_name: String,
    /// How often and how long an unanswered gateway call is retried with the same key.
    pub retry: RetryPolicy,
    /// The longest pause between two digits of a field.
    pub inter_digit_timeout: Duration,
}

/// A call as the B2BUA announces it.
#[derive(Clone, Debug)]
pub struct IncomingCall {
    pub id: CallId,
    pub sip_call_id: String,
    pub profile: String,
    pub caller: Option<String>,
    pub called: Option<String>,
    pub agent: Option<String>,
}

/// Shared by the handle and every call task.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) config: Arc<ServiceConfig>,
    pub(crate) store: Store,
    pub(crate) vault: Arc<Vault>,
    pub(crate) gateway: Arc<dyn Gateway>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) feed: Feed,
    pub(crate) sessions: Arc<SessionIndex>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("gateway", &self.gateway.name())
            .finish_non_exhaustive()
    }
}

/// Which call a session runs on (the API addresses sessions by id).
#[derive(Debug, Default)]
pub(crate) struct SessionIndex(Mutex<HashMap<SessionId, CallId>>);

impl SessionIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, CallId>> {
        // A poisoned lock means a panic while holding it; the map is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register(&self, session: &SessionId, call: &CallId) {
        self.lock().insert(session.clone(), call.clone());
    }

    pub(crate) fn forget(&self, session: &SessionId) {
        self.lock().remove(session);
    }

    fn call_of(&self, session: &SessionId) -> Option<CallId> {
        self.lock().get(session).cloned()
    }

    fn session_of(&self, call: &CallId) -> Option<SessionId> {
        self.lock().iter().find(|(_, c)| *c == call).map(|(s, _)| s.clone())
    }
}

/// The application core. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    ctx: Context,
    calls: Arc<Mutex<HashMap<CallId, mpsc::UnboundedSender<Command>>>>,
}

impl Service {
    /// Starts the service on an open store and vault; creates the tenant if needed.
    ///
    /// # Errors
    /// [`ServiceError::Store`] when the store cannot be read.
    pub async fn start(
        config: ServiceConfig,
        store: Store,
        vault: Vault,
        gateway: Arc<dyn Gateway>,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, ServiceError> {
        store.ensure_tenant(&config.tenant, config.tenant.as_str(), clock.now()).await?;
        // Calls this node carried before it stopped have no media any more.
        let left =
            store.end_calls_of_node(&config.tenant, &config.node, "restart", clock.now()).await?;
        if !left.is_empty() {
            warn!(calls = left.len(), "ended the calls left in progress by the previous run");
        }
        let feed = Feed::start(store.clone(), config.tenant.clone()).await?;
        let ctx = Context {
            config: Arc::new(config),
            store,
            vault: Arc::new(vault),
            gateway,
            clock,
            feed,
            sessions: Arc::default(),
        };
        Ok(Service { ctx, calls: Arc::default() })
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    pub fn tenant(&self) -> &TenantId {
        &self.ctx.config.tenant
    }

    pub fn feed(&self) -> &Feed {
        &self.ctx.feed
    }

    /// The longest pause between two digits of a field (an IVR uses it for what callers
    /// type to it directly, such as a payment reference).
    pub fn inter_digit_timeout(&self) -> Duration {
        self.ctx.config.inter_digit_timeout
    }

    fn calls(&self) -> MutexGuard<'_, HashMap<CallId, mpsc::UnboundedSender<Command>>> {
        // A poisoned lock means a panic while holding it; the map is still whole.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls().len()
    }

    /// The B2BUA took a call. Returns at once: the call's task records it, then handles the
    /// call's digits and commands in the order they arrive, so nothing sent after this call
    /// can overtake it.
    pub fn call_started(&self, call: IncomingCall) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = call.id.clone();
        self.calls().insert(id.clone(), tx);
        let calls = Arc::clone(&self.calls);
        let task = CallTask::new(self.ctx.clone(), id.clone(), rx);
        tokio::spawn(async move {
            task.run(call).await;
            calls.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }

    /// The agent answered (`agent` when the answer named them).
    pub fn call_answered(&self, call: &CallId, agent: Option<String>) {
        if let Some(tx) = self.calls().get(call) {
            let _ = tx.send(Command::Answered(agent));
        }
    }

    /// A call as recorded.
    ///
    /// # Errors
    /// [`ServiceError::UnknownCall`].
    pub async fn call(&self, call: &CallId) -> Result<CallRecord, ServiceError> {
        Ok(self.ctx.store.call(&self.ctx.config.tenant, call).await?)
    }

    /// The call ended: an open session is cancelled, the call recorded as ended.
    pub fn call_ended(&self, call: &CallId, reason: &str) {
        if let Some(tx) = self.calls().get(call) {
            let _ = tx.send(Command::Ended(reason.to_owned()));
        }
    }

    /// A key the customer pressed (in-band, telephone-event or SIP INFO), once per press.
    pub fn digit(&self, call: &CallId, digit: Digit) {
        if let Some(tx) = self.calls().get(call) {
            let _ = tx.send(Command::Digit(digit));
        }
    }

    /// Follows the payment sessions of a call in progress from inside the process (the IVR
    /// drives its prompts from this): every capture event of the call's open session, and
    /// each session's view after `complete` or `cancel`. Subscribe before opening a session
    /// to see all of its events. The channel closes when the call's task ends.
    ///
    /// # Errors
    /// [`ServiceError::CallEnded`] when the call is not in progress.
    pub fn observe(
        &self,
        call: &CallId,
    ) -> Result<mpsc::UnboundedReceiver<SessionUpdate>, ServiceError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(call, Command::Observe(tx))?;
        Ok(rx)
    }

    /// An IVR has finished prompting the caller for `field` (attempt `attempt`, as the
    /// capture's `Capturing` event said): the field fails with `input-timeout` unless its
    /// first key comes within `timeout`. IVR sessions are opened without
    /// `first_digit_timeout`, so the caller's time starts when the prompt ends.
    pub fn prompted(&self, call: &CallId, field: Field, attempt: u8, timeout: Duration) {
        let _ = self.send(call, Command::Prompted { field, attempt, timeout });
    }

    fn send(&self, call: &CallId, command: Command) -> Result<(), ServiceError> {
        let calls = self.calls();
        let tx = calls.get(call).ok_or(ServiceError::CallEnded)?;
        tx.send(command).map_err(|_| ServiceError::CallEnded)
    }

    async fn ask<T>(
        &self,
        call: &CallId,
        command: impl FnOnce(oneshot::Sender<Result<T, ServiceError>>) -> Command,
    ) -> Result<T, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(call, command(reply))?;
        answer.await.map_err(|_| ServiceError::Closed)?
    }

    /// Opens a payment session on a call in progress.
    ///
    /// # Errors
    /// [`ServiceError::UnknownCall`], [`ServiceError::CallEnded`],
    /// [`ServiceError::SessionAlreadyOpen`], [`ServiceError::IdempotencyConflict`].
    pub async fn open_payment(
        &self,
        call: &CallId,
        request: OpenPayment,
    ) -> Result<PaymentView, ServiceError> {
        if !self.calls().contains_key(call) {
            // An unknown id, or a call that ended.
            self.ctx.store.call(&self.ctx.config.tenant, call).await?;
            return Err(ServiceError::CallEnded);
        }
        self.ask(call, |reply| Command::Open(Box::new(request), reply)).await
    }

    /// The payment session open (or last opened) on a call in progress, if any.
    pub fn session_of_call(&self, call: &CallId) -> Option<SessionId> {
        self.ctx.sessions.session_of(call)
    }

    fn call_of(&self, session: &SessionId) -> Result<CallId, ServiceError> {
        self.ctx.sessions.call_of(session).ok_or(ServiceError::NotOpen)
    }

    /// Asks for a field (again).
    ///
    /// # Errors
    /// [`ServiceError::NotOpen`] once the session is over; [`ServiceError::Capture`].
    pub async fn capture(
        &self,
        session: &SessionId,
        field: Field,
    ) -> Result<PaymentView, ServiceError> {
        let call = self.call_of(session)?;
        self.ask(&call, |reply| Command::Capture(session.clone(), field, reply)).await
    }

    /// Charges (or tokenizes) with what was captured.
    ///
    /// # Errors
    /// [`ServiceError::Capture`] with the missing fields; storage and vault failures.
    pub async fn complete(&self, session: &SessionId) -> Result<PaymentView, ServiceError> {
        let call = self.call_of(session)?;
        self.ask(&call, |reply| Command::Complete(session.clone(), reply)).await
    }

    /// Cancels the session.
    ///
    /// # Errors
    /// [`ServiceError::NotOpen`] when it is over.
    pub async fn cancel(&self, session: &SessionId) -> Result<PaymentView, ServiceError> {
        let call = self.call_of(session)?;
        self.ask(&call, |reply| Command::Cancel(session.clone(), reply)).await
    }

    /// The session as it is now (live while its call runs, else from the store).
    ///
    /// # Errors
    /// [`ServiceError::UnknownPayment`].
    pub async fn payment(&self, session: &SessionId) -> Result<PaymentView, ServiceError> {
        if let Some(call) = self.ctx.sessions.call_of(session) {
            let (reply, answer) = oneshot::channel();
            if self.send(&call, Command::View(session.clone(), reply)).is_ok() {
                if let Ok(Some(view)) = answer.await {
                    return Ok(view);
                }
            }
        }
        let tenant = &self.ctx.config.tenant;
        let record = self.ctx.store.session(tenant, session).await?;
        let payment = match record.payment_id.as_ref() {
            Some(id) => Some(self.ctx.store.payment(tenant, id).await?),
            None => None,
        };
        Ok(view::stored_view(&record, payment.as_ref()))
    }

    /// Refunds all or part of a succeeded payment.
    ///
    /// # Errors
    /// [`ServiceError::UnknownPayment`], [`ServiceError::InvalidState`] unless it succeeded,
    /// [`ServiceError::RefundExceedsPayment`], [`ServiceError::IdempotencyConflict`],
    /// [`ServiceError::GatewayUnavailable`] (the refund stays pending: retry with the key).
    pub async fn refund(&self, request: RefundPayment) -> Result<RefundRecord, ServiceError> {
        let record = refund::refund(&self.ctx, request).await;
        self.ctx.feed.poke();
        record
    }

    /// Ends every call task (at shutdown): open sessions are cancelled.
    pub fn end_all(&self, reason: &str) {
        let calls: Vec<CallId> = self.calls().keys().cloned().collect();
        for call in calls {
            self.call_ended(&call, reason);
        }
    }

    /// Waits (up to `limit`) until every call task has finished its work.
    pub async fn wait_idle(&self, limit: Duration) {
        let waited = tokio::time::timeout(limit, async {
            while self.active_calls() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        if waited.await.is_err() {
            warn!(
                calls = self.active_calls(),
                "calls still ending when the service stopped waiting"
            );
        }
    }
}
