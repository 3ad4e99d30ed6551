//! The live feed: a WebSocket at `/v1/feed?agent=ID` (or `call=ID`, `since=N`) and
//! server-sent events at `/v1/calls/{call_id}/events` (`Last-Event-ID: N`).
//!
//! Every message is one outbox event `{"id", "type", "timestamp", "data"}`; `id` is the
//! tenant's `seq`, increasing without gaps in commit order (the store takes it in the
//! event's transaction). A connection is served by a follower task:
//!
//! 1. it subscribes to the service's broadcast first, so nothing committed from then on
//!    can pass unseen;
//! 2. it reads from the store what came after the client's `since` (or starts at the
//!    current end without one);
//! 3. it takes live events whose `seq` is the next one; an event further ahead (the
//!    broadcast dropped some for a slow client) sends it back to the store for the gap.
//!
//! So a client that reconnects with the last id it saw gets every later event once, in
//! order, whether they were committed while it was away or while it was reconnecting.
//! Filters (an agent's calls, one call) are applied after the sequence is checked: the
//! client's `since` stays meaningful with every filter. Heartbeats keep idle connections
//! open through proxies: `{"type": "heartbeat", "timestamp"}` messages on the WebSocket, a
//! `: heartbeat` comment on SSE.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use ivrpay_store::{
    CallId, EventRecord, EventType, PaymentId, SessionId, Store, StoreError, TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tracing::warn;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::calls::visible_call;
use crate::error::{ApiError, Problem};
use crate::input::ApiQuery;
use crate::{ApiMetrics, ApiState};

/// The WebSocket subprotocol the server speaks (offer it with `bearer.<key>`).
pub const PROTOCOL: &str = "ivrpay.feed.v1";

/// Events read from the store per query.
const PAGE: u32 = 500;
/// Events buffered between a follower and its connection.
const BUFFER: usize = 256;

/// One feed event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedMessage {
    /// The tenant's sequence number: increasing, without gaps in the unfiltered feed. Resume
    /// with `since=` / `Last-Event-ID` set to the last one seen.
    pub id: i64,
    /// `call.started`, `call.answered`, `call.ended`, `payment.created`, `capture.started`,
    /// `capture.progress`, `capture.field_completed`, `capture.field_invalid`,
    /// `payment.processing`, `payment.succeeded`, `payment.declined`, `payment.failed`,
    /// `payment.cancelled`, `payment.tokenized`, `refund.succeeded`, `refund.failed`,
    /// `delivery.failing`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it was committed, RFC 3339.
    pub timestamp: String,
    /// The event's data (masked: brand and last four at most).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl FeedMessage {
    fn of(event: &EventRecord) -> FeedMessage {
        FeedMessage {
            id: event.seq,
            event_type: event.event_type.as_str().to_owned(),
            timestamp: event.created_at.to_string(),
            data: event.payload.clone(),
        }
    }
}

/// Which events a connection gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// Every event of the tenant (admin keys).
    All,
    /// The events of the calls an agent handles.
    Agent(String),
    /// The events of one call.
    Call(CallId),
}

/// Counts a live connection while it lasts.
struct Connection {
    metrics: ApiState,
}

impl Connection {
    fn new(state: &ApiState) -> Connection {
        state.metrics().feed_connections.fetch_add(1, Ordering::Relaxed);
        Connection { metrics: state.clone() }
    }

    fn counters(&self) -> &ApiMetrics {
        self.metrics.metrics()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.counters().feed_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection's events in order (see the module docs).
struct Follower {
    store: Store,
    tenant: TenantId,
    filter: Filter,
    live: broadcast::Receiver<Arc<EventRecord>>,
    /// The last `seq` handled (sent or filtered out).
    last: i64,
    /// Call id → its agent, as far as known.
    agents: HashMap<String, Option<String>>,
    /// Charge (`pay_…`) or session id → its call.
    calls: HashMap<String, Option<String>>,
    connection: Connection,
}

impl Follower {
    async fn run(mut self, out: mpsc::Sender<FeedMessage>) {
        if let Err(e) = self.catch_up(&out).await {
            warn!(error = %e, "feed: reading past events failed; closing the connection");
            return;
        }
        loop {
            let received = tokio::select! {
                () = out.closed() => return,
                received = self.live.recv() => received,
            };
            let result = match received {
                Ok(event) if event.seq <= self.last => Ok(true),
                Ok(event) if event.seq == self.last + 1 => self.offer(&event, &out).await,
                // A gap: the broadcast dropped events for this slow connection.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(&out).await,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            match result {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    warn!(error = %e, "feed: reading events failed; closing the connection");
                    return;
                }
            }
        }
    }

    /// Everything after `last` from the store. `Ok(false)` when the client went away.
    async fn catch_up(&mut self, out: &mpsc::Sender<FeedMessage>) -> Result<bool, StoreError> {
        loop {
            let batch = self.store.events_since(&self.tenant, self.last, PAGE).await?;
            let full = batch.len() == PAGE as usize;
            for event in &batch {
                if !self.offer(event, out).await? {
                    return Ok(false);
                }
            }
            if !full {
                return Ok(true);
            }
        }
    }

    async fn offer(
        &mut self,
        event: &EventRecord,
        out: &mpsc::Sender<FeedMessage>,
    ) -> Result<bool, StoreError> {
        if self.matches(event).await? {
            if out.send(FeedMessage::of(event)).await.is_err() {
                return Ok(false);
            }
            self.connection.counters().feed_events_sent.fetch_add(1, Ordering::Relaxed);
        }
        self.last = event.seq;
        Ok(true)
    }

    async fn matches(&mut self, event: &EventRecord) -> Result<bool, StoreError> {
        if let (EventType::CallAnswered, Some(agent)) =
            (event.event_type, event.payload.get("agent").and_then(Value::as_str))
        {
            self.agents.insert(event.subject_id.clone(), Some(agent.to_owned()));
        }
        match self.filter.clone() {
            Filter::All => Ok(true),
            Filter::Call(id) => Ok(self.call_of(event).await?.as_deref() == Some(id.as_str())),
            Filter::Agent(agent) => {
                let Some(call) = self.call_of(event).await? else { return Ok(false) };
                Ok(self.agent_of(&call).await?.as_deref() == Some(agent.as_str()))
            }
        }
    }

    /// The call an event is about, if any.
    async fn call_of(&mut self, event: &EventRecord) -> Result<Option<String>, StoreError> {
        if let Some(call) = event.payload.get("call_id").and_then(Value::as_str) {
            return Ok(Some(call.to_owned()));
        }
        if matches!(
            event.event_type,
            EventType::CallStarted | EventType::CallAnswered | EventType::CallEnded
        ) {
            return Ok(Some(event.subject_id.clone()));
        }
        // Refunds name their charge; a payment without a call names none.
        let Some(owner) = event.payload.get("payment_id").and_then(Value::as_str) else {
            return Ok(None);
        };
        if let Some(call) = self.calls.get(owner) {
            return Ok(call.clone());
        }
        let call = if let Ok(id) = PaymentId::parse(owner) {
            match self.store.payment(&self.tenant, &id).await {
                Ok(p) => p.call_id.as_ref().map(|c| c.as_str().to_owned()),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        } else if let Ok(id) = SessionId::parse(owner) {
            match self.store.session(&self.tenant, &id).await {
                Ok(s) => s.call_id.as_ref().map(|c| c.as_str().to_owned()),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        self.calls.insert(owner.to_owned(), call.clone());
        Ok(call)
    }

    /// The agent of a call, as far as known now.
    async fn agent_of(&mut self, call: &str) -> Result<Option<String>, StoreError> {
        if let Some(Some(agent)) = self.agents.get(call) {
            return Ok(Some(agent.clone()));
        }
        let Ok(id) = CallId::parse(call) else { return Ok(None) };
        let agent = match self.store.call(&self.tenant, &id).await {
            Ok(record) => record.agent,
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        self.agents.insert(call.to_owned(), agent.clone());
        Ok(agent)
    }
}

/// Starts a follower for `filter` from `since` (the current end without it).
async fn follow(
    state: &ApiState,
    filter: Filter,
    since: Option<i64>,
) -> Result<mpsc::Receiver<FeedMessage>, ApiError> {
    let live = state.service().feed().subscribe();
    let last = match since {
        Some(n) => n.max(0),
        None => state.store().latest_seq(state.tenant()).await?,
    };
    let follower = Follower {
        store: state.store().clone(),
        tenant: state.tenant().clone(),
        filter,
        live,
        last,
        agents: HashMap::new(),
        calls: HashMap::new(),
        connection: Connection::new(state),
    };
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(follower.run(tx));
    Ok(rx)
}

async fn filter_for(
    state: &ApiState,
    who: &Principal,
    agent: Option<String>,
    call: Option<String>,
) -> Result<Filter, ApiError> {
    match (agent, call) {
        (Some(_), Some(_)) => Err(ApiError::invalid("call", "give agent or call, not both")),
        (None, Some(call)) => Ok(Filter::Call(visible_call(state, who, &call).await?.id)),
        (Some(agent), None) => match who.agent() {
            Some(own) if own != agent => {
                Err(ApiError::forbidden("an agent key follows only its own agent's calls"))
            }
            _ => Ok(Filter::Agent(agent)),
        },
        (None, None) => Ok(match who.agent() {
            Some(own) => Filter::Agent(own.to_owned()),
            None => Filter::All,
        }),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    /// Only this agent's calls (an agent key: its own, the default).
    agent: Option<String>,
    /// Only this call.
    call: Option<String>,
    /// Resume after this event id; without it the feed starts with the next event.
    since: Option<i64>,
}

/// The live feed over a WebSocket.
///
/// Authenticate with `Authorization: Bearer <key>` or, from a browser, by offering the
/// subprotocols `ivrpay.feed.v1` and `bearer.<key>` (the server answers `ivrpay.feed.v1`).
/// Text messages are `FeedMessage`s, plus `{"type": "heartbeat", "timestamp"}` when idle.
#[utoipa::path(
    get, path = "/v1/feed", tag = "feed",
    params(FeedQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; then FeedMessage texts", body = FeedMessage),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent key asking for another agent", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (or another agent's)", body = Problem, content_type = "application/problem+json"),
        (status = 426, description = "Not a WebSocket handshake", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn websocket(
    State(state): State<ApiState>,
    who: Principal,
    ApiQuery(query): ApiQuery<FeedQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let filter = filter_for(&state, &who, query.agent, query.call).await?;
    let upgrade = upgrade.map_err(|_| upgrade_required())?;
    let events = follow(&state, filter, query.since).await?;
    Ok(upgrade.protocols([PROTOCOL]).on_upgrade(move |socket| serve_socket(socket, events, state)))
}

fn upgrade_required() -> ApiError {
    let mut e =
        ApiError::bad_request("this endpoint is a WebSocket: connect with a WebSocket client");
    e = e.with_code("upgrade-required");
    e.into_status(StatusCode::UPGRADE_REQUIRED)
}

async fn serve_socket(
    mut socket: WebSocket,
    mut events: mpsc::Receiver<FeedMessage>,
    state: ApiState,
) {
    let mut heartbeat = tokio::time::interval(state.config().heartbeat);
    heartbeat.reset();
    loop {
        let message = tokio::select! {
            event = events.recv() => match event {
                Some(event) => serde_json::to_string(&event).ok(),
                None => break,
            },
            _ = heartbeat.tick() => Some(
                serde_json::json!({ "type": "heartbeat", "timestamp": state.clock().now().to_string() })
                    .to_string(),
            ),
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => None,
            },
        };
        if let Some(text) = message {
            if socket.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// Resume after this event id (the `Last-Event-ID` header does the same and wins).
    since: Option<i64>,
}

/// One call's events as server-sent events.
///
/// Each event has `id:` (the event id), `event:` (its type) and `data:` (the
/// `FeedMessage`). Reconnect with `Last-Event-ID` to resume; idle connections get a
/// `: heartbeat` comment.
#[utoipa::path(
    get, path = "/v1/calls/{call_id}/events", tag = "feed",
    params(
        ("call_id" = String, Path, description = "`call_…`"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "An endless text/event-stream of FeedMessages", body = FeedMessage, content_type = "text/event-stream"),
        (status = 400, description = "A Last-Event-ID that is not an event id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (or another agent's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn call_events(
    State(state): State<ApiState>,
    who: Principal,
    Path(call_id): Path<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let call = visible_call(&state, &who, &call_id).await?;
    let since = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be an event id"))?,
        ),
        None => query.since,
    };
    let events = follow(&state, Filter::Call(call.id), since).await?;
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        let data = serde_json::to_string(&event).unwrap_or_default();
        let sse = Event::default().id(event.id.to_string()).event(&event.event_type).data(data);
        Some((Ok(sse), events))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.config().heartbeat).text("heartbeat")))
}
