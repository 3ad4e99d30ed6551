//! The B2BUA core: calls from the customer side (leg A) relayed to the contact centre
//! (leg B), with the media anchored on ivrpay's relay. Sans-IO: datagrams and time in,
//! datagrams, call events and the next deadline out.
//!
//! Anyone who can reach the SIP port is a stranger until proven otherwise:
//!
//! - a request inside a call acts on it only if its Call-ID and both tags name the leg's
//!   dialog and it comes from that leg's peer (`dialog_match.rs`); Call-IDs, tags and branches
//!   are unpredictable ([`IdSeed`]);
//! - a body from the customer passes an allow-list: key presses consumed, SDP rewritten
//!   wherever it sits, the rest refused (`bodies.rs`); the agent only ever gets ivrpay's SDP.

mod bodies;
mod build;
mod call;
mod dialog_match;
mod ids;
mod ivr;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_types::{Headers, Method, Name};
use ivrpay_dtmf::Digit;

use self::bodies::{Body, BodyError};
use self::build::{ALLOW, CALL_ID_HEADER, RequestParts};
use self::call::{Call, Dialog, HeldAck, Phase, StrayLeg};
pub use self::ids::IdSeed;
use self::ids::Ids;
pub use self::ivr::IvrParams;
use crate::media::{CallId, Leg, MediaControl, MediaSettings};
use crate::message::{self, Essentials, Message, ParseError, Request, Response};
use crate::profile::{Mode, Profile};
use crate::sdp::{self, LocalSdp};
use crate::transaction::{ClientTxId, ServerTxId, Timers, Transactions, TxEvent};
use crate::transport::{Peer, Transmit, Transport};

/// Core settings.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub profiles: Vec<Profile>,
    pub timers: Timers,
    /// Seeds tags, branches and call ids: from the OS in a service, fixed in tests.
    pub seed: IdSeed,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    CustomerHangup,
    AgentHangup,
    /// The customer cancelled before the answer.
    Cancelled,
    /// The contact centre refused the call with this status.
    Rejected(u16),
    /// No target answered in time.
    NoAnswer,
    /// ivrpay ended it (shutdown, unacknowledged answer, failure).
    Terminated,
    /// The application hung up ([`Core::hangup`]): an IVR call that has finished.
    Finished,
}

/// What happens to calls, for the rest of ivrpay (capture, feed, webhooks).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CallEvent {
    Started {
        call: CallId,
        /// The customer leg's SIP Call-ID.
        sip_call_id: String,
        profile: String,
        /// The caller's and the called URI (personal data: not for logs).
        caller: String,
        called: String,
        /// The agent, when the router named one on the INVITE.
        agent: Option<String>,
        /// Set when an IVR profile took the call: ivrpay answers it itself (no agent leg),
        /// with what the router's `X-Ivrpay-*` headers said about the payment.
        ivr: Option<IvrParams>,
    },
    Answered {
        call: CallId,
        agent: Option<String>,
    },
    Ended {
        call: CallId,
        reason: EndReason,
    },
    /// A key press sent in a SIP body: an INFO, or any message from the customer whose body
    /// (or a part of it) is a DTMF type. Consumed: never forwarded.
    Digit {
        call: CallId,
        digit: Digit,
    },
}

/// A request relayed from one leg to the other.
#[derive(Debug)]
struct Relayed {
    headers: Headers,
    /// A re-INVITE without an offer: the 2xx will offer, the originator's ACK answer.
    offerless_invite: bool,
}

/// What a client transaction is for.
#[derive(Clone, Copy, Debug)]
enum ClientRole {
    /// The INVITE to the current target.
    Invite,
    /// The relay of `server`, which arrived on the other leg.
    Relayed { server: ServerTxId, from: Leg },
    /// An agent INVITE let go of: see [`StrayLeg`].
    Stray,
    /// A request of our own whose answer does not matter (BYE, CANCEL).
    Fire,
}

/// Timers a call can be waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum CallTimer {
    Failover,
    Ring,
}

/// The B2BUA.
pub struct Core<M: MediaControl> {
    profiles: Vec<Arc<Profile>>,
    tx: Transactions,
    media: M,
    rng: Ids,
    calls: HashMap<u64, Call>,
    by_customer: HashMap<BytesStr, u64>,
    by_agent: HashMap<BytesStr, u64>,
    by_id: HashMap<CallId, u64>,
    /// The call each open server transaction belongs to.
    server_owner: HashMap<ServerTxId, u64>,
    client_owner: HashMap<ClientTxId, (u64, ClientRole)>,
    strays: HashMap<ClientTxId, StrayLeg>,
    deadlines: BinaryHeap<Reverse<(Instant, u64, CallTimer)>>,
    /// Requests relayed to the other leg, by their server transaction: what is needed to
    /// answer them when the other leg does.
    relayed: HashMap<ServerTxId, Relayed>,
    calls_per_profile: Vec<usize>,
    next_key: u64,
    events: VecDeque<CallEvent>,
    shutting_down: bool,
    /// Messages that could not be parsed or lacked essential headers.
    pub malformed: u64,
}

impl<M: MediaControl> std::fmt::Debug for Core<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("calls", &self.calls.len()).field("tx", &self.tx).finish()
    }
}

impl<M: MediaControl> Core<M> {
    pub fn new(config: CoreConfig, media: M) -> Core<M> {
        Core {
            calls_per_profile: vec![0; config.profiles.len()],
            profiles: config.profiles.into_iter().map(Arc::new).collect(),
            tx: Transactions::new(config.timers),
            media,
            rng: Ids::new(&config.seed),
            calls: HashMap::new(),
            by_customer: HashMap::new(),
            by_agent: HashMap::new(),
            by_id: HashMap::new(),
            server_owner: HashMap::new(),
            client_owner: HashMap::new(),
            strays: HashMap::new(),
            deadlines: BinaryHeap::new(),
            relayed: HashMap::new(),
            next_key: 0,
            events: VecDeque::new(),
            shutting_down: false,
            malformed: 0,
        }
    }

    pub fn profiles(&self) -> &[Arc<Profile>] {
        &self.profiles
    }

    pub fn media(&mut self) -> &mut M {
        &mut self.media
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Open transactions (server, client): zero once everything has settled.
    pub fn open_transactions(&self) -> (usize, usize) {
        self.tx.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.deadlines.peek().map(|Reverse((at, _, _))| *at);
        match (calls, self.tx.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stop taking calls (503); calls in progress go on.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
    }

    /// End every call now (BYE or CANCEL both legs): the end of a graceful shutdown.
    pub fn end_all(&mut self, now: Instant) {
        let keys: Vec<u64> = self.calls.keys().copied().collect();
        for key in keys {
            self.terminate(now, key, EndReason::Terminated);
        }
    }

    // ---- input ----

    /// A datagram (or a framed TCP message) arrived on `local` from `from`.
    pub fn handle_datagram(&mut self, now: Instant, local: SocketAddr, from: Peer, bytes: Bytes) {
        match message::parse(bytes.clone()) {
            Ok(Message::Request(request)) => match request.essentials() {
                Ok(essentials) if essentials.cseq.method == request.method => {
                    self.tx.handle_request(now, local, from, request, essentials);
                }
                _ => self.reject_malformed(local, from, &request.headers, 400),
            },
            Ok(Message::Response(response)) => match response.essentials() {
                Ok(essentials) => self.tx.handle_response(now, response, essentials),
                Err(_) => self.malformed += 1,
            },
            Err(ParseError::BadRequestUri { headers }) => {
                self.reject_malformed(local, from, &headers, 416)
            }
            // A request with an unreadable header line or a body cut short: 400 if what is
            // readable says where to send it.
            Err(ParseError::BadHeaderLine | ParseError::ShortBody { .. }) => {
                match message::salvage_request(&bytes) {
                    Some(headers) => self.reject_malformed(local, from, &headers, 400),
                    None => self.malformed += 1,
                }
            }
            Err(_) => self.malformed += 1,
        }
        self.drain(now);
    }

    /// A TCP connection to `to` could not be made: its requests fail now.
    pub fn transport_failed(&mut self, now: Instant, to: Peer) {
        let failed: Vec<ClientTxId> = self
            .client_owner
            .keys()
            .copied()
            .filter(|id| self.tx.client_peer(*id).is_some_and(|p| p.addr == to.addr))
            .collect();
        for id in failed {
            self.tx.transport_failed(id);
        }
        self.drain(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        while let Some(Reverse((at, key, timer))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            self.call_timer(now, key, timer, at);
        }
        self.drain(now);
    }

    /// A request that cannot be handled: answered statelessly if it can be, else counted.
    fn reject_malformed(&mut self, local: SocketAddr, from: Peer, headers: &Headers, code: u16) {
        self.malformed += 1;
        let routable = headers.contains(&Name::VIA)
            && headers.contains(&Name::CALL_ID)
            && headers.contains(&Name::CSEQ)
            && headers.contains(&Name::FROM)
            && headers.contains(&Name::TO);
        if routable {
            let mut bytes = bytes::BytesMut::new();
            build::response(headers, code, None).encode(&mut bytes);
            self.tx.send_stateless(local, from, bytes.freeze());
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.tx.poll_event() {
            match event {
                TxEvent::Request { id, request, essentials, from, local } => {
                    self.on_request(now, id, request, essentials, from, local);
                }
                TxEvent::Ack { request, essentials, from } => {
                    self.on_ack(now, request, essentials, from)
                }
                TxEvent::Response { id, response, essentials } => {
                    self.on_response(now, id, response, essentials)
                }
                TxEvent::Timeout { id } => self.on_client_timeout(now, id),
                TxEvent::ClientDone { id } => {
                    self.client_owner.remove(&id);
                    self.strays.remove(&id);
                }
                TxEvent::Unacknowledged { id, success } => {
                    if let Some(key) = self.server_owner.get(&id).copied() {
                        if success {
                            // Our 2xx was never ACKed: the customer is gone (RFC 3261 §13.3.1.4).
                            self.terminate(now, key, EndReason::Terminated);
                        }
                    }
                }
                TxEvent::ServerDone { id } => {
                    self.server_owner.remove(&id);
                }
            }
        }
    }

    // ---- helpers ----

    fn respond(&mut self, now: Instant, id: ServerTxId, response: &Response) {
        // An error here means the transaction already ended: nothing to answer any more.
        let _ = self.tx.respond(now, id, response);
    }

    fn respond_code(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Headers,
        code: u16,
        tag: Option<&str>,
    ) {
        let response = build::response(request, code, tag);
        self.respond(now, id, &response);
    }

    fn schedule(&mut self, key: u64, at: Instant, timer: CallTimer) {
        self.deadlines.push(Reverse((at, key, timer)));
    }

    fn pick_profile(
        &self,
        local: SocketAddr,
        transport: Transport,
        user: Option<&str>,
    ) -> Option<usize> {
        let listens = |p: &Profile| {
            p.listen.iter().any(|l| l.addr == local && l.tcp == transport.is_reliable())
        };
        let specific = self
            .profiles
            .iter()
            .position(|p| listens(p) && p.match_user.is_some() && p.match_user.as_deref() == user);
        specific.or_else(|| self.profiles.iter().position(|p| listens(p) && p.match_user.is_none()))
    }

    // ---- requests ----

    fn on_request(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        essentials: Essentials,
        from: Peer,
        local: SocketAddr,
    ) {
        let method = request.method.clone();
        if essentials.max_forwards == Some(0) && method != Method::ACK && method != Method::CANCEL {
            self.respond_code(now, id, &request.headers, 483, None);
            return;
        }
        if method == Method::OPTIONS {
            let mut response = build::response(&request.headers, 200, Some("ivrpay"));
            response.headers.insert(Name::ALLOW, ALLOW);
            response.headers.insert(Name::ACCEPT, bodies::ACCEPT);
            self.respond(now, id, &response);
            return;
        }
        if method == Method::INVITE && essentials.to_tag.is_none() {
            if self.call_by_call_id(&essentials.call_id).is_some() {
                // Same Call-ID, new branch, no To tag: a loop or a duplicate (RFC 3261 §8.2.2.2).
                self.respond_code(now, id, &request.headers, 482, None);
            } else {
                self.on_invite(now, id, request, essentials, from, local);
            }
            return;
        }
        if method == Method::CANCEL {
            self.on_cancel(now, id, &request, &essentials, &from);
            return;
        }
        let Some((key, leg)) = self.find_dialog(&essentials, &from) else {
            let code = if !is_known(&method) {
                501
            } else if [Method::BYE, Method::INFO, Method::UPDATE, Method::INVITE, Method::PRACK]
                .contains(&method)
            {
                481 // in-dialog methods for a dialog we do not know
            } else {
                405
            };
            let mut response = build::response(&request.headers, code, None);
            if code == 405 {
                response.headers.insert(Name::ALLOW, ALLOW);
            }
            self.respond(now, id, &response);
            return;
        };
        if method == Method::BYE {
            self.on_bye(now, id, key, leg, &request);
        } else if method == Method::INVITE || method == Method::UPDATE || method == Method::INFO {
            self.on_mid_dialog(now, id, key, leg, request);
        } else if is_known(&method) {
            let mut response = build::response(&request.headers, 405, None);
            response.headers.insert(Name::ALLOW, ALLOW);
            self.respond(now, id, &response);
        } else {
            self.respond_code(now, id, &request.headers, 501, None);
        }
    }

    fn on_invite(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: Request,
        essentials: Essentials,
        from: Peer,
        local: SocketAddr,
    ) {
        let headers = &request.headers;
        let user = match &request.uri.user_part {
            ezk_sip_types::uri::SipUriUserPart::User(user) => Some(user.as_str()),
            ezk_sip_types::uri::SipUriUserPart::UserPw(user) => Some(user.user.as_str()),
            ezk_sip_types::uri::SipUriUserPart::Empty => None,
        };
        let Some(profile_index) = self.pick_profile(local, from.transport, user) else {
            self.respond_code(now, id, headers, 404, None);
            return;
        };
        let profile = Arc::clone(&self.profiles[profile_index]);
        let reject = if !profile.accepts_source(from.addr.ip()) {
            Some(403)
        } else if essentials.from_tag.is_none() {
            Some(400) // the dialog could not be told from another (RFC 3261 §8.1.1.3)
        } else if self.shutting_down || self.calls_per_profile[profile_index] >= profile.max_calls {
            Some(503)
        } else if headers
            .get_raw(&Name::unknown(BytesStr::from_static(CALL_ID_HEADER)))
            .next()
            .is_some()
        {
            Some(482) // it has been through an ivrpay already
        } else if headers.get_raw(&Name::REQUIRE).next().is_some() {
            Some(420) // no extension is supported (100rel, timer, ...)
        } else {
            None
        };
        if let Some(code) = reject {
            let mut response = build::response(headers, code, None);
            match code {
                400 => response.reason = Some(BytesStr::from_static("Missing From tag")),
                503 => response.headers.insert(Name::RETRY_AFTER, "5"),
                420 => {
                    for value in headers.get_raw(&Name::REQUIRE) {
                        response.headers.insert(Name::UNSUPPORTED, value.clone());
                    }
                }
                _ => {}
            }
            self.respond(now, id, &response);
            return;
        }
        // The body must pass the customer leg's allow-list; the offer, if any, must be SDP we
        // can relay.
        let body = match bodies::read(Leg::Customer, headers, &request.body) {
            Ok(body) => body,
            Err(error) => {
                self.refuse_body(now, id, headers, error, None);
                return;
            }
        };
        let offer = match body.sdp {
            None => None,
            Some(offer) => match sdp::parse(&offer).and_then(|s| sdp::stream_info(&s)) {
                Ok(info) if info.codecs.iter().any(|(_, c)| profile.codecs.codecs.contains(c)) => {
                    Some((offer, info))
                }
                Ok(_) | Err(_) => {
                    let mut response = build::response(headers, 488, None);
                    response.headers.insert(Name::WARNING, "399 ivrpay \"SDP not acceptable\"");
                    self.respond(now, id, &response);
                    return;
                }
            },
        };
        let call = self.rng.call_id();
        let settings = MediaSettings {
            address: profile.media_address.unwrap_or(local.ip()),
            mask_mode: profile.mask_mode,
            lookahead_ms: profile.lookahead_ms,
            latching: profile.latching,
            latch_from: profile.latch_from,
            customer_only: matches!(profile.mode, Mode::Ivr),
        };
        let media = match self.media.open(&call, &settings) {
            Ok(media) => media,
            Err(_) => {
                let mut response = build::response(headers, 503, None);
                response.headers.insert(Name::RETRY_AFTER, "5");
                self.respond(now, id, &response);
                return;
            }
        };
        // From here on the call exists.
        self.respond_code(now, id, headers, 100, None);
        let customer_tag = self.rng.tag();
        let contact =
            headers.get_raw(&Name::CONTACT).next().and_then(|c| build::uri_in(c.as_str()));
        let session_id = self.rng.next() >> 1;
        let customer = Dialog {
            call_id: essentials.call_id.clone(),
            local_tag: customer_tag,
            remote_tag: essentials.from_tag.clone(),
            early_tags: Vec::new(),
            local_uri: strip_tag(essentials.to.as_str()),
            remote_uri: strip_tag(essentials.from.as_str()),
            local_cseq: 0,
            remote_target: contact,
            route_set: headers.get_raw(&Name::RECORD_ROUTE).cloned().collect(),
            peer: from,
            origin: from.addr.ip(),
            local,
            sdp: LocalSdp::new(media.customer, session_id),
        };
        let agent_name = profile
            .agent_header
            .as_ref()
            .and_then(|h| headers.get_raw(&Name::unknown(BytesStr::from(h.clone()))).next())
            .map(|v| v.to_string());
        if let Some((_, info)) = &offer {
            self.media.update(&call, Leg::Customer, info, Some(from.addr.ip()));
        }
        let key = self.next_key;
        self.next_key += 1;
        let ivr = matches!(profile.mode, Mode::Ivr).then(|| IvrParams::from_headers(headers));
        self.events.push_back(CallEvent::Started {
            call: call.clone(),
            sip_call_id: essentials.call_id.to_string(),
            profile: profile.name.clone(),
            caller: uri_only(essentials.from.as_str()),
            called: uri_only(essentials.to.as_str()),
            agent: agent_name.clone(),
            ivr: ivr.clone(),
        });
        self.push_digits(&call, &body.digits);
        let ring_until = now + profile.ring_timeout;
        self.calls_per_profile[profile_index] += 1;
        self.by_customer.insert(essentials.call_id.clone(), key);
        self.by_id.insert(call.clone(), key);
        self.server_owner.insert(id, key);
        self.calls.insert(
            key,
            Call {
                id: call,
                profile: profile_index,
                phase: Phase::Routing { attempt: 0 },
                customer,
                agent: None,
                invite: Some(id),
                invite_branch: essentials.branch().to_owned(),
                invite_headers: request.headers,
                offer: offer.map(|(body, _)| body),
                agent_invite: None,
                agent_invite_branch: String::new(),
                agent_invite_via: String::new(),
                provisional: false,
                responded: false,
                held_ack: None,
                media,
                agent_name,
                failover_at: None,
                ring_until: Some(ring_until),
                awaiting_answer: false,
            },
        );
        if ivr.is_some() {
            self.answer_locally(now, key);
            return;
        }
        self.schedule(key, ring_until, CallTimer::Ring);
        self.start_attempt(now, key, 0);
    }

    /// Sends the INVITE to target `attempt` (or gives up when there are no more).
    fn start_attempt(&mut self, now: Instant, key: u64, mut attempt: usize) {
        let Some(call) = self.calls.get(&key) else { return };
        let profile = &self.profiles[call.profile];
        let Mode::Relay { targets } = &profile.mode else { return };
        // The first target that is a SIP URI on an IP address.
        let target = loop {
            let Some(text) = targets.get(attempt) else { break None };
            match text
                .parse::<ezk_sip_types::uri::SipUri>()
                .ok()
                .and_then(|uri| build::peer_of(&uri).map(|p| (uri, p)))
            {
                Some(found) => break Some(found),
                None => attempt += 1,
            }
        };
        let Some((uri, peer)) = target else {
            let code = if call.responded { 503 } else { 408 };
            self.fail_invite(
                now,
                key,
                code,
                if code == 408 { EndReason::NoAnswer } else { EndReason::Rejected(code) },
            );
            return;
        };
        let local = call.customer.local;
        // Leg B comes from the same listen address (and its transport, by target).
        let agent_port = call.media.agent.unwrap_or(call.media.customer);
        let session_id = self.rng.next() >> 1;
        let mut agent_sdp = LocalSdp::new(agent_port, session_id);
        let body = match &call.offer {
            Some(offer) => match sdp::parse(offer)
                .and_then(|s| sdp::rewrite(&s, &mut agent_sdp, &profile.codecs))
            {
                Ok(body) => Some(("application/sdp", body)),
                Err(_) => {
                    self.fail_invite(now, key, 488, EndReason::Rejected(488));
                    return;
                }
            },
            None => None,
        };
        let call_id = self.rng.sip_call_id();
        let local_tag = self.rng.tag();
        let branch = self.rng.branch();
        let max_forwards = call
            .invite_headers
            .get_named::<ezk_sip_types::header::typed::MaxForwards>()
            .map(|m| u32::from(m.0).saturating_sub(1))
            .unwrap_or(70);
        let mut extra = Headers::with_capacity(4);
        for (name, value) in call.invite_headers.iter() {
            if profile.passes_header(name.as_print_str()) {
                extra.insert(name.clone(), value.clone());
            }
        }
        extra.insert(Name::unknown(BytesStr::from_static(CALL_ID_HEADER)), call.id.0.clone());
        let from_uri = call.customer.remote_uri.clone();
        let to_uri = call.customer.local_uri.clone();
        let parts = RequestParts {
            method: Method::INVITE,
            uri: uri.clone(),
            from: message::with_tag(&from_uri, &local_tag),
            to: to_uri.clone(),
            call_id: &call_id,
            cseq: 1,
            max_forwards,
            contact: Some(build::contact(local, peer.transport)),
            routes: &[],
            extra,
            body,
        };
        let Some((request, essentials)) = parts.build(local, peer.transport, &branch) else {
            return;
        };
        let via = build::via(local, peer.transport, &branch);
        // Silence moves on to the next target; the last one gets the whole transaction
        // (Timer B, then 408), as a slow contact centre is still the only one left.
        let last = attempt + 1 >= targets.len();
        let failover_at = (!last).then(|| now + profile.failover_timeout);
        let agent = Dialog {
            call_id: BytesStr::from(call_id.clone()),
            local_tag,
            remote_tag: None,
            early_tags: Vec::new(),
            local_uri: from_uri,
            remote_uri: to_uri,
            local_cseq: 1,
            remote_target: Some(uri),
            route_set: Vec::new(),
            peer,
            origin: peer.addr.ip(),
            local,
            sdp: agent_sdp,
        };
        let id = self.tx.send_request(now, local, peer, &request, &essentials);
        if let Some(call) = self.calls.get_mut(&key) {
            if let Some(old) = call.agent.take() {
                self.by_agent.remove(&old.call_id);
            }
            self.by_agent.insert(agent.call_id.clone(), key);
            call.agent = Some(agent);
            call.phase = Phase::Routing { attempt };
            call.agent_invite = Some(id);
            call.agent_invite_branch = branch;
            call.agent_invite_via = via;
            call.provisional = false;
            call.responded = false;
            call.failover_at = failover_at;
        }
        self.client_owner.insert(id, (key, ClientRole::Invite));
        if let Some(at) = failover_at {
            self.schedule(key, at, CallTimer::Failover);
        }
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Request,
        essentials: &Essentials,
        from: &Peer,
    ) {
        let Some((key, call)) = self
            .find_cancelled(essentials, from)
            .and_then(|key| Some((key, self.calls.get(&key)?)))
        else {
            self.respond_code(now, id, &request.headers, 481, None);
            return;
        };
        let tag = call.customer.local_tag.clone();
        self.server_owner.insert(id, key);
        self.respond_code(now, id, &request.headers, 200, Some(&tag));
        self.fail_invite(now, key, 487, EndReason::Cancelled);
    }

    /// Answers the customer's INVITE with an error, cancels the agent leg, ends the call.
    fn fail_invite(&mut self, now: Instant, key: u64, code: u16, reason: EndReason) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        if let Some(invite) = call.invite.take() {
            let response =
                build::response(&call.invite_headers, code, Some(&call.customer.local_tag));
            self.respond(now, invite, &response);
        }
        self.release_agent_invite(now, key);
        self.end_call(key, reason);
    }

    /// Lets go of the agent INVITE of the current attempt (a [`StrayLeg`]): CANCELled now
    /// if a provisional allows it, else when one comes.
    fn release_agent_invite(&mut self, now: Instant, key: u64) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(invite) = call.agent_invite.take() else { return };
        let Some(dialog) = call.agent.clone() else { return };
        let provisional = call.provisional;
        let via = call.agent_invite_via.clone();
        let stray = StrayLeg { call: key, dialog, via, cancelled: false, hung_up: false };
        self.strays.insert(invite, stray);
        self.client_owner.insert(invite, (key, ClientRole::Stray));
        if provisional {
            self.cancel_stray(now, invite);
        }
    }

    fn cancel_stray(&mut self, now: Instant, invite: ClientTxId) {
        let Some(stray) = self.strays.get_mut(&invite) else { return };
        if stray.cancelled {
            return;
        }
        stray.cancelled = true;
        let Some((cancel, essentials)) = stray.dialog.cancel(&stray.via) else { return };
        let (local, peer, key) = (stray.dialog.local, stray.dialog.peer, stray.call);
        let id = self.tx.send_request(now, local, peer, &cancel, &essentials);
        self.client_owner.insert(id, (key, ClientRole::Fire));
        self.tx.cancelled(now, invite);
    }

    /// A response to a stray INVITE: a provisional lets the CANCEL go; a 2xx (and each of
    /// its retransmissions) is ACKed, and hung up once.
    fn on_stray_response(
        &mut self,
        now: Instant,
        invite: ClientTxId,
        response: &Response,
        essentials: &Essentials,
    ) {
        match response.status() {
            100..=199 => self.cancel_stray(now, invite),
            200..=299 => {
                let branch = self.rng.branch();
                let Some(stray) = self.strays.get_mut(&invite) else { return };
                if !stray.hung_up {
                    stray.dialog.confirm(response, essentials.to_tag.clone());
                }
                let (local, peer) = (stray.dialog.local, stray.dialog.peer);
                if let Some(ack) = stray.dialog.ack(essentials.cseq.cseq, None, &branch) {
                    self.tx.send_stateless(local, peer, encode(&ack));
                }
                if stray.hung_up {
                    return;
                }
                stray.hung_up = true;
                let branch = self.rng.branch();
                let Some((bye, bye_essentials)) = stray.dialog.request(Method::BYE, None, &branch)
                else {
                    return;
                };
                let key = stray.call;
                let id = self.tx.send_request(now, local, peer, &bye, &bye_essentials);
                self.client_owner.insert(id, (key, ClientRole::Fire));
            }
            _ => {
                self.strays.remove(&invite);
                self.client_owner.remove(&invite);
            }
        }
    }

    fn on_bye(&mut self, now: Instant, id: ServerTxId, key: u64, leg: Leg, request: &Request) {
        let Some(call) = self.calls.get(&key) else { return };
        let tag = call.dialog(leg).map(|d| d.local_tag.clone());
        let phase = call.phase;
        self.server_owner.insert(id, key);
        self.respond_code(now, id, &request.headers, 200, tag.as_deref());
        if phase != Phase::Answered {
            // A BYE in an early dialog. The customer may send one (RFC 3261 §15): its INVITE
            // gets 487 (§15.1.2) and the agent leg is cancelled. The agent should not, but
            // if it does the call cannot go on without it.
            match leg {
                Leg::Customer => self.fail_invite(now, key, 487, EndReason::Cancelled),
                Leg::Agent => self.fail_invite(now, key, 480, EndReason::AgentHangup),
            }
            return;
        }
        self.send_in_dialog(now, key, leg.other(), Method::BYE, None, ClientRole::Fire);
        let reason =
            if leg == Leg::Customer { EndReason::CustomerHangup } else { EndReason::AgentHangup };
        self.end_call(key, reason);
    }

    /// A re-INVITE, UPDATE or INFO. Its body is read by the leg's allow-list (refused, or
    /// its key presses consumed); an INFO that carried keys is answered here, anything else
    /// answered by ivrpay (an IVR call) or relayed to the other leg.
    fn on_mid_dialog(
        &mut self,
        now: Instant,
        id: ServerTxId,
        key: u64,
        leg: Leg,
        request: Request,
    ) {
        let Some(call) = self.calls.get(&key) else { return };
        let tag = call.dialog(leg).map(|d| d.local_tag.clone());
        let call_id = call.id.clone();
        let read = bodies::read(leg, &request.headers, &request.body).and_then(|body| {
            // An INFO makes no offer: SDP is not on its list.
            if request.method == Method::INFO && body.sdp.is_some() {
                Err(BodyError::Unsupported)
            } else {
                Ok(body)
            }
        });
        let body = match read {
            Ok(body) => body,
            Err(error) => {
                self.refuse_body(now, id, &request.headers, error, tag.as_deref());
                return;
            }
        };
        self.push_digits(&call_id, &body.digits);
        if request.method == Method::INFO && !body.digits.is_empty() {
            self.server_owner.insert(id, key);
            self.respond_code(now, id, &request.headers, 200, tag.as_deref());
        } else if self.is_ivr(key) {
            self.answer_in_dialog(now, id, key, request, body);
        } else {
            self.relay_in_dialog(now, id, key, leg, request, body);
        }
    }

    /// Relays a re-INVITE, UPDATE or INFO from `leg` to the other leg, with `body` (read by
    /// the leg's allow-list): its SDP rewritten, or the agent's other body as it came.
    fn relay_in_dialog(
        &mut self,
        now: Instant,
        id: ServerTxId,
        key: u64,
        leg: Leg,
        request: Request,
        body: Body,
    ) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let tag = call.dialog(leg).map(|d| d.local_tag.clone());
        if call.phase != Phase::Answered {
            let code = if call.phase == Phase::Ended { 481 } else { 491 };
            self.respond_code(now, id, &request.headers, code, tag.as_deref());
            return;
        }
        let policy = self.profiles[call.profile].codecs.clone();
        let call_id = call.id.clone();
        let sip_peer = call.sip_peer(leg);
        let body = if let Some(offer) = body.sdp {
            // An offer: the originator's stream changes now; the other leg sees our side.
            let rewritten = sdp::parse(&offer).and_then(|s| {
                let info = sdp::stream_info(&s)?;
                let other = call.dialog_mut(leg.other()).ok_or(sdp::SdpError::NoAudio)?;
                Ok((sdp::rewrite(&s, &mut other.sdp, &policy)?, info))
            });
            let Ok((rewritten, info)) = rewritten else {
                self.respond_code(now, id, &request.headers, 488, tag.as_deref());
                return;
            };
            self.media.update(&call_id, leg, &info, sip_peer);
            Some(("application/sdp".to_owned(), rewritten))
        } else {
            body.other
        };
        let offerless_invite = request.method == Method::INVITE && body.is_none();
        if request.method == Method::INVITE {
            // The other leg may take a while to answer: stop the originator retransmitting.
            self.respond_code(now, id, &request.headers, 100, None);
        }
        let role = ClientRole::Relayed { server: id, from: leg };
        match self.send_in_dialog(now, key, leg.other(), request.method.clone(), body, role) {
            Some(_) => {
                self.server_owner.insert(id, key);
                self.relayed.insert(id, Relayed { headers: request.headers, offerless_invite });
            }
            None => self.respond_code(now, id, &request.headers, 500, tag.as_deref()),
        }
    }

    /// Sends a new request in the dialog of `leg`.
    fn send_in_dialog(
        &mut self,
        now: Instant,
        key: u64,
        leg: Leg,
        method: Method,
        body: Option<(String, Bytes)>,
        role: ClientRole,
    ) -> Option<ClientTxId> {
        let branch = self.rng.branch();
        let call = self.calls.get_mut(&key)?;
        let dialog = call.dialog_mut(leg)?;
        let (local, peer) = (dialog.local, dialog.peer);
        let (request, essentials) = dialog.request(
            method,
            body.as_ref().map(|(ct, b)| (ct.as_str(), b.clone())),
            &branch,
        )?;
        let id = self.tx.send_request(now, local, peer, &request, &essentials);
        self.client_owner.insert(id, (key, role));
        Some(id)
    }

    /// An ACK arrived (for a 2xx we sent). One that names no dialog of ours whole, or
    /// comes from elsewhere than the leg's peer, is dropped without marking the 2xx
    /// acknowledged: the peer's own ACK still counts.
    fn on_ack(&mut self, now: Instant, request: Request, essentials: Essentials, from: Peer) {
        let Some((key, leg)) = self.find_dialog(&essentials, &from) else { return };
        if !self.tx.acknowledge(&essentials.call_id, essentials.cseq.cseq) {
            return; // a retransmission of the ACK
        }
        let answer = self.sdp_in_answer(key, leg, &request.headers, &request.body);
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.awaiting_answer {
            self.ivr_ack(key, answer);
            return;
        }
        let Some(held) = call.held_ack.clone() else { return };
        if held.leg == leg {
            return;
        }
        call.held_ack = None;
        // Delayed offer: the customer's (or agent's) ACK carries the answer; pass it on.
        let policy = self.profiles[call.profile].codecs.clone();
        let call_id = call.id.clone();
        let mut body = None;
        if let Some(answer) = answer {
            if let Ok((parsed, info)) =
                sdp::parse(&answer).and_then(|s| sdp::stream_info(&s).map(|i| (s, i)))
            {
                if let Some(other) = call.dialog_mut(held.leg) {
                    body = sdp::rewrite(&parsed, &mut other.sdp, &policy).ok();
                }
                self.media.update(&call_id, leg, &info, call.sip_peer(leg));
            }
        }
        self.send_ack(now, key, held.leg, held.cseq, body);
    }

    /// ACKs a 2xx on `leg` (a new transaction-less request, RFC 3261 §13.2.2.4).
    fn send_ack(&mut self, _now: Instant, key: u64, leg: Leg, cseq: u32, body: Option<Bytes>) {
        let branch = self.rng.branch();
        let Some(dialog) = self.calls.get(&key).and_then(|c| c.dialog(leg)) else { return };
        let Some(ack) = dialog.ack(cseq, body, &branch) else { return };
        self.tx.send_stateless(dialog.local, dialog.peer, encode(&ack));
    }

    // ---- responses ----

    fn on_response(
        &mut self,
        now: Instant,
        id: ClientTxId,
        response: Response,
        essentials: Essentials,
    ) {
        let Some(&(key, role)) = self.client_owner.get(&id) else { return };
        if response.status() >= 200 && essentials.cseq.method != Method::INVITE {
            self.client_owner.remove(&id);
        }
        match role {
            ClientRole::Invite => self.on_invite_response(now, id, key, response, essentials),
            ClientRole::Relayed { server, from } => {
                self.on_relayed_response(now, key, server, from, response, essentials)
            }
            ClientRole::Stray => self.on_stray_response(now, id, &response, &essentials),
            ClientRole::Fire => {}
        }
    }

    fn on_invite_response(
        &mut self,
        now: Instant,
        id: ClientTxId,
        key: u64,
        response: Response,
        essentials: Essentials,
    ) {
        let code = response.status();
        let Some(call) = self.calls.get_mut(&key) else { return };
        if call.agent_invite != Some(id) {
            return; // an old attempt
        }
        call.responded = true;
        call.failover_at = None;
        if code < 200 {
            // Any provisional, 100 Trying included, allows a CANCEL (RFC 3261 §9.1).
            call.provisional = true;
            if let (Some(agent), Some(tag)) = (call.agent.as_mut(), &essentials.to_tag) {
                agent.note_early_tag(tag);
            }
            if code > 100 {
                self.relay_to_customer(now, key, &response, &essentials, false);
            }
            return;
        }
        call.agent_invite = None;
        if code >= 300 {
            self.client_owner.remove(&id);
            let profile = &self.profiles[call.profile];
            // A server error or timeout tries the next target; a 6xx is the callee's final
            // word for every target (RFC 3261 §16.7), a 4xx is about this request.
            let failover = (500..600).contains(&code) || code == 408;
            let Phase::Routing { attempt } = call.phase else { return };
            let more =
                matches!(&profile.mode, Mode::Relay { targets } if attempt + 1 < targets.len());
            if failover && more {
                self.start_attempt(now, key, attempt + 1);
            } else {
                self.relay_final_error(now, key, &response);
            }
            return;
        }
        // 2xx: the agent answered.
        if let Some(agent) = call.agent.as_mut() {
            agent.confirm(&response, essentials.to_tag.clone());
        }
        if let Some(name) = &self.profiles[call.profile].agent_header {
            if let Some(value) =
                response.headers.get_raw(&Name::unknown(BytesStr::from(name.clone()))).next()
            {
                call.agent_name = Some(value.to_string());
            }
        }
        let delayed_offer = call.offer.is_none();
        self.relay_to_customer(now, key, &response, &essentials, true);
        let Some(call) = self.calls.get_mut(&key) else { return };
        call.phase = Phase::Answered;
        call.ring_until = None;
        let agent = call.agent_name.clone();
        let call_id = call.id.clone();
        if delayed_offer {
            call.held_ack = Some(HeldAck { leg: Leg::Agent, cseq: 1 });
        } else {
            self.send_ack(now, key, Leg::Agent, 1, None);
        }
        self.events.push_back(CallEvent::Answered { call: call_id, agent });
    }

    /// Relays a provisional or 2xx from the agent leg to the customer's INVITE.
    fn relay_to_customer(
        &mut self,
        now: Instant,
        key: u64,
        response: &Response,
        _essentials: &Essentials,
        is_final: bool,
    ) {
        let answer = self.sdp_in_answer(key, Leg::Agent, &response.headers, &response.body);
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(invite) = call.invite else { return };
        let profile = &self.profiles[call.profile];
        let mut out = build::response(
            &call.invite_headers,
            response.status(),
            Some(&call.customer.local_tag),
        );
        out.reason = response.reason.clone();
        out.headers.insert(
            Name::CONTACT,
            build::contact(call.customer.local, call.customer.peer.transport),
        );
        for (name, value) in response.headers.iter() {
            if profile.passes_header(name.as_print_str()) {
                out.headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(answer) = answer {
            if let Ok((parsed, info)) =
                sdp::parse(&answer).and_then(|s| sdp::stream_info(&s).map(|i| (s, i)))
            {
                if let Ok(body) = sdp::rewrite(&parsed, &mut call.customer.sdp, &profile.codecs) {
                    out.body = build::set_body(&mut out.headers, "application/sdp", body);
                }
                self.media.update(&call.id, Leg::Agent, &info, call.sip_peer(Leg::Agent));
            }
        }
        if is_final {
            call.invite = None;
        }
        self.respond(now, invite, &out);
    }

    fn relay_final_error(&mut self, now: Instant, key: u64, response: &Response) {
        let code = response.status();
        let Some(call) = self.calls.get_mut(&key) else { return };
        if let Some(invite) = call.invite.take() {
            let mut out =
                build::response(&call.invite_headers, code, Some(&call.customer.local_tag));
            out.reason = response.reason.clone();
            for name in [Name::RETRY_AFTER, Name::WARNING] {
                for value in response.headers.get_raw(&name) {
                    out.headers.insert(name.clone(), value.clone());
                }
            }
            self.respond(now, invite, &out);
        }
        self.end_call(key, EndReason::Rejected(code));
    }

    fn on_relayed_response(
        &mut self,
        now: Instant,
        key: u64,
        server: ServerTxId,
        from: Leg,
        response: Response,
        essentials: Essentials,
    ) {
        let code = response.status();
        if code == 100 {
            return;
        }
        let answer = self.sdp_in_answer(key, from.other(), &response.headers, &response.body);
        let Some(call) = self.calls.get_mut(&key) else { return };
        let policy = self.profiles[call.profile].codecs.clone();
        let call_id = call.id.clone();
        // SDP in the answer: the other leg's stream changes; the originator sees our side.
        let mut body = None;
        if let Some(answer) = answer {
            if let Ok((parsed, info)) =
                sdp::parse(&answer).and_then(|s| sdp::stream_info(&s).map(|i| (s, i)))
            {
                if let Some(origin) = call.dialog_mut(from) {
                    body = sdp::rewrite(&parsed, &mut origin.sdp, &policy).ok();
                }
                self.media.update(&call_id, from.other(), &info, call.sip_peer(from.other()));
            }
        }
        let Some(call) = self.calls.get_mut(&key) else { return };
        if essentials.cseq.method == Method::INVITE && (200..300).contains(&code) {
            // The other leg accepted our re-INVITE: ACK it now, or once the originator's ACK
            // brings the answer to an offer made in this 2xx.
            let offerless = self.relayed.get(&server).is_some_and(|r| r.offerless_invite);
            if offerless {
                call.held_ack = Some(HeldAck { leg: from.other(), cseq: essentials.cseq.cseq });
            } else {
                self.send_ack(now, key, from.other(), essentials.cseq.cseq, None);
            }
        }
        let tag = self
            .calls
            .get(&key)
            .and_then(|c| c.dialog(from))
            .map(|d| d.local_tag.clone())
            .unwrap_or_default();
        self.respond_relayed(now, server, code, response.reason.clone(), body, &tag);
    }

    /// Answers a relayed request with the code (and SDP) the other leg gave.
    fn respond_relayed(
        &mut self,
        now: Instant,
        server: ServerTxId,
        code: u16,
        reason: Option<BytesStr>,
        body: Option<Bytes>,
        tag: &str,
    ) {
        let Some(headers) = self.relayed.get(&server).map(|r| r.headers.clone()) else { return };
        let mut out = build::response(&headers, code, Some(tag));
        out.reason = reason;
        if let Some(body) = body {
            out.body = build::set_body(&mut out.headers, "application/sdp", body);
        }
        if code >= 200 {
            self.relayed.remove(&server);
        }
        self.respond(now, server, &out);
    }

    fn on_client_timeout(&mut self, now: Instant, id: ClientTxId) {
        self.strays.remove(&id);
        let Some((key, role)) = self.client_owner.remove(&id) else { return };
        match role {
            ClientRole::Invite => {
                let Some(call) = self.calls.get(&key) else { return };
                if call.agent_invite != Some(id) {
                    return;
                }
                if let Phase::Routing { attempt } = call.phase {
                    self.start_attempt(now, key, attempt + 1);
                }
            }
            ClientRole::Relayed { server, from } => {
                let tag = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.dialog(from))
                    .map(|d| d.local_tag.clone())
                    .unwrap_or_default();
                self.respond_relayed(now, server, 408, None, None, &tag);
            }
            ClientRole::Stray | ClientRole::Fire => {}
        }
    }

    fn call_timer(&mut self, now: Instant, key: u64, timer: CallTimer, at: Instant) {
        let Some(call) = self.calls.get(&key) else { return };
        match timer {
            CallTimer::Failover if call.failover_at == Some(at) && !call.responded => {
                // Nothing at all from this target: try the next one. The silent one keeps
                // its INVITE transaction, so an answer it sends late is hung up.
                if let Phase::Routing { attempt } = call.phase {
                    self.release_agent_invite(now, key);
                    self.start_attempt(now, key, attempt + 1);
                }
            }
            CallTimer::Ring if call.ring_until == Some(at) && call.phase != Phase::Answered => {
                self.fail_invite(now, key, 408, EndReason::NoAnswer);
            }
            _ => {}
        }
    }

    /// Ends a call from ivrpay's side: BYE both legs if answered, else CANCEL/error.
    fn terminate(&mut self, now: Instant, key: u64, reason: EndReason) {
        let Some(call) = self.calls.get(&key) else { return };
        if call.phase == Phase::Answered {
            self.send_in_dialog(now, key, Leg::Customer, Method::BYE, None, ClientRole::Fire);
            self.send_in_dialog(now, key, Leg::Agent, Method::BYE, None, ClientRole::Fire);
            self.end_call(key, reason);
        } else {
            self.fail_invite(now, key, 503, reason);
        }
    }

    /// Forgets the call: media closed, indexes cleared, the event out. Transactions still
    /// open finish on their own.
    fn end_call(&mut self, key: u64, reason: EndReason) {
        let Some(mut call) = self.calls.remove(&key) else { return };
        call.phase = Phase::Ended;
        self.media.close(&call.id);
        self.by_customer.remove(&call.customer.call_id);
        if let Some(agent) = &call.agent {
            self.by_agent.remove(&agent.call_id);
        }
        self.by_id.remove(&call.id);
        self.calls_per_profile[call.profile] =
            self.calls_per_profile[call.profile].saturating_sub(1);
        self.events.push_back(CallEvent::Ended { call: call.id, reason });
    }
}

fn is_known(method: &Method) -> bool {
    [
        Method::INVITE,
        Method::ACK,
        Method::CANCEL,
        Method::BYE,
        Method::REGISTER,
        Method::MESSAGE,
        Method::UPDATE,
        Method::PRACK,
        Method::OPTIONS,
        Method::SUBSCRIBE,
        Method::NOTIFY,
        Method::PUBLISH,
        Method::INFO,
        Method::REFER,
    ]
    .contains(method)
}

/// A From/To value without its tag.
fn strip_tag(value: &str) -> String {
    let with = message::with_tag(value, "x");
    with.strip_suffix(";tag=x").unwrap_or(&with).to_owned()
}

/// The URI of a From/To value (the caller's or called number), without display name or
/// parameters.
fn uri_only(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => value[open + 1..close].to_owned(),
        _ => value.split(';').next().unwrap_or(value).trim().to_owned(),
    }
}

fn encode(request: &Request) -> Bytes {
    let mut bytes = bytes::BytesMut::with_capacity(512);
    request.encode(&mut bytes);
    bytes.freeze()
}
