//! RFC 3261 §17 transactions, with the RFC 6026 `Accepted` state, as one sans-IO table.
//!
//! Messages and time go in; bytes to send, transaction events and the next timer come out.
//! Nothing here reads a clock or touches a socket, so the whole layer runs under a simulated
//! clock in tests, and a driver runs it for real.
//!
//! The table also carries the UAS's part of the three-way handshake: a 2xx to an INVITE is
//! retransmitted until its ACK arrives (RFC 3261 §13.3.1.4), which RFC 6026 places next to
//! the transaction anyway.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ezk_sip_types::Method;

use crate::message::{Essentials, Request, Response};
use crate::transport::{Peer, Transmit};

/// RFC 3261 timer values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    fn sixty_four_t1(&self) -> Duration {
        self.t1 * 64
    }
}

/// A server transaction (a request we received and answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

/// A client transaction (a request we sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

/// What the transaction layer tells its user.
#[derive(Debug)]
pub enum TxEvent {
    /// A new request (not a retransmission, not an ACK).
    Request {
        id: ServerTxId,
        request: Request,
        essentials: Essentials,
        from: Peer,
        local: SocketAddr,
    },
    /// An ACK for a 2xx we sent (it has its own branch and no transaction) — or a stray ACK.
    /// The user calls [`Transactions::acknowledge`] for one that is its peer's.
    Ack { request: Request, essentials: Essentials, from: Peer },
    /// A response to one of our requests. 2xx retransmissions to an INVITE come again, so
    /// that the ACK can be resent.
    Response { id: ClientTxId, response: Response, essentials: Essentials },
    /// No final response in time (Timer B or F), or the transport failed.
    Timeout { id: ClientTxId },
    /// A client transaction that had its final response ended: the id is no longer valid.
    ClientDone { id: ClientTxId },
    /// Our final response to an INVITE was never acknowledged (Timer H, or 2xx given up).
    Unacknowledged { id: ServerTxId, success: bool },
    /// The request was answered or abandoned: the id is no longer valid.
    ServerDone { id: ServerTxId },
}

/// Why a transaction operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// No such transaction (it ended).
    Unknown,
    /// A final response was already sent.
    AlreadyFinal,
}

impl std::fmt::Display for TxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxError::Unknown => f.write_str("no such transaction"),
            TxError::AlreadyFinal => f.write_str("transaction already has a final response"),
        }
    }
}

impl std::error::Error for TxError {}

/// Server transactions are found by branch, sent-by and method (ACK finds its INVITE).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    sent_by: ezk_sip_types::host::HostPort,
    method: Method,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    /// Received; provisional responses may have been sent.
    Proceeding,
    /// INVITE answered 2xx: retransmitting it until the ACK (RFC 6026 Accepted).
    Accepted { acked: bool },
    /// Final non-2xx sent: retransmitting it (INVITE) or absorbing retransmissions.
    Completed,
    /// INVITE: the ACK for our error arrived; absorbing ACK retransmissions.
    Confirmed,
}

struct ServerTx {
    key: ServerKey,
    is_invite: bool,
    state: ServerState,
    peer: Peer,
    local: SocketAddr,
    /// The last response sent, for retransmission.
    last: Option<Bytes>,
    retransmit_interval: Duration,
    /// (Call-ID, CSeq) for matching the ACK of a 2xx.
    dialog_key: Option<(String, u32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    /// Sent, nothing heard.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// INVITE got a 2xx: its retransmissions still come to the user (RFC 6026 Accepted).
    Accepted,
    /// A final response arrived; absorbing its retransmissions.
    Completed,
}

struct ClientTx {
    branch: String,
    is_invite: bool,
    state: ClientState,
    peer: Peer,
    local: SocketAddr,
    request: Bytes,
    /// For an INVITE, the ACK we send for a non-2xx final (same branch).
    ack: Option<Bytes>,
    retransmit_interval: Duration,
    /// An INVITE the user CANCELled: it times out even after a provisional.
    cancelled: bool,
}

/// What a timer entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    ServerRetransmit(ServerTxId),
    ServerEnd(ServerTxId),
    ClientRetransmit(ClientTxId),
    ClientTimeout(ClientTxId),
    ClientEnd(ClientTxId),
}

/// The transaction table.
pub struct Transactions {
    timers: Timers,
    next_id: u64,
    servers: HashMap<ServerTxId, ServerTx>,
    server_index: HashMap<ServerKey, ServerTxId>,
    /// Accepted INVITE server transactions by (Call-ID, CSeq), for the 2xx ACK.
    accepted_index: HashMap<(String, u32), ServerTxId>,
    clients: HashMap<ClientTxId, ClientTx>,
    /// Client transactions by (branch, is INVITE).
    client_index: HashMap<(String, bool), ClientTxId>,
    /// Deadlines; stale entries (for ended transactions or superseded timers) are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, TimerKind)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("servers", &self.servers.len())
            .field("clients", &self.clients.len())
            .finish()
    }
}

fn encode_request(request: &Request) -> Bytes {
    let mut out = BytesMut::with_capacity(1024);
    request.encode(&mut out);
    out.freeze()
}

fn encode_response(response: &Response) -> Bytes {
    let mut out = BytesMut::with_capacity(1024);
    response.encode(&mut out);
    out.freeze()
}

impl Transactions {
    pub fn new(timers: Timers) -> Transactions {
        Transactions {
            timers,
            next_id: 1,
            servers: HashMap::new(),
            server_index: HashMap::new(),
            accepted_index: HashMap::new(),
            clients: HashMap::new(),
            client_index: HashMap::new(),
            deadlines: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Open transactions (server, client).
    pub fn len(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`Transactions::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, at: Instant, kind: TimerKind) {
        self.deadlines.push(Reverse((at, kind)));
    }

    fn send(&mut self, local: SocketAddr, to: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit { local, to, bytes });
    }

    // ---- incoming ----

    /// A request arrived.
    pub fn handle_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: Peer,
        request: Request,
        essentials: Essentials,
    ) {
        let is_ack = request.method == Method::ACK;
        let key = ServerKey {
            branch: essentials.branch().to_owned(),
            sent_by: essentials.via.sent_by.clone(),
            method: if is_ack { Method::INVITE } else { request.method.clone() },
        };
        if let Some(&id) = self.server_index.get(&key) {
            self.server_retransmission(now, id, is_ack);
            return;
        }
        if is_ack {
            // The ACK of a 2xx carries a new branch and belongs to the dialog: the user checks
            // that it is the peer's, then calls `acknowledge`.
            self.events.push_back(TxEvent::Ack { request, essentials, from });
            return;
        }
        let id = ServerTxId(self.id());
        let is_invite = request.method == Method::INVITE;
        let tx = ServerTx {
            key: key.clone(),
            is_invite,
            state: ServerState::Proceeding,
            peer: from,
            local,
            last: None,
            retransmit_interval: self.timers.t1,
            dialog_key: is_invite.then(|| (essentials.call_id.to_string(), essentials.cseq.cseq)),
        };
        self.servers.insert(id, tx);
        self.server_index.insert(key, id);
        if !is_invite {
            // The user answers a non-INVITE at once; should it not, the transaction still
            // ends (an INVITE may ring for as long as the caller waits).
            self.schedule(now + self.timers.sixty_four_t1(), TimerKind::ServerEnd(id));
        }
        self.events.push_back(TxEvent::Request { id, request, essentials, from, local });
    }

    fn server_retransmission(&mut self, now: Instant, id: ServerTxId, is_ack: bool) {
        let timers = self.timers;
        let Some(tx) = self.servers.get_mut(&id) else { return };
        match (tx.state, is_ack) {
            (ServerState::Completed, true) if tx.is_invite => {
                // The ACK for our error response: stop retransmitting, absorb the rest.
                tx.state = ServerState::Confirmed;
                let linger =
                    if tx.peer.transport.is_reliable() { Duration::ZERO } else { timers.t4 };
                self.schedule(now + linger, TimerKind::ServerEnd(id));
            }
            (ServerState::Proceeding | ServerState::Completed, false) => {
                // A retransmitted request: repeat our last response (RFC 3261 §17.2.1, §17.2.2).
                if let Some(last) = tx.last.clone() {
                    let (local, peer) = (tx.local, tx.peer);
                    self.send(local, peer, last);
                }
            }
            _ => {}
        }
    }

    /// A response arrived.
    pub fn handle_response(&mut self, now: Instant, response: Response, essentials: Essentials) {
        let is_invite = essentials.cseq.method == Method::INVITE;
        let Some(&id) = self.client_index.get(&(essentials.branch().to_owned(), is_invite)) else {
            return; // stray response: RFC 3261 §18.1.2 says discard
        };
        let timers = self.timers;
        let Some(tx) = self.clients.get_mut(&id) else { return };
        let code = response.status();
        let reliable = tx.peer.transport.is_reliable();
        match (tx.state, code) {
            (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                tx.state = ClientState::Proceeding;
                if !tx.is_invite {
                    // Keep retransmitting a non-INVITE, at T2 (RFC 3261 §17.1.2.2).
                    tx.retransmit_interval = timers.t2;
                }
                self.events.push_back(TxEvent::Response { id, response, essentials });
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) if tx.is_invite => {
                tx.state = ClientState::Accepted;
                self.schedule(now + timers.sixty_four_t1(), TimerKind::ClientEnd(id));
                self.events.push_back(TxEvent::Response { id, response, essentials });
            }
            (ClientState::Accepted, 200..=299) => {
                // A 2xx retransmission (or another fork's 2xx): the user re-ACKs.
                self.events.push_back(TxEvent::Response { id, response, essentials });
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=699) => {
                tx.state = ClientState::Completed;
                if tx.is_invite {
                    let ack = build_ack_for_error(&tx.request, &response);
                    tx.ack = Some(ack.clone());
                    let (local, peer) = (tx.local, tx.peer);
                    self.send(local, peer, ack);
                    let linger = if reliable { Duration::ZERO } else { Duration::from_secs(32) };
                    self.schedule(now + linger, TimerKind::ClientEnd(id));
                } else {
                    let linger = if reliable { Duration::ZERO } else { timers.t4 };
                    self.schedule(now + linger, TimerKind::ClientEnd(id));
                }
                self.events.push_back(TxEvent::Response { id, response, essentials });
            }
            (ClientState::Completed, 300..=699) if tx.is_invite => {
                // Our ACK was lost: send it again.
                if let Some(ack) = tx.ack.clone() {
                    let (local, peer) = (tx.local, tx.peer);
                    self.send(local, peer, ack);
                }
            }
            _ => {} // retransmissions after the final response
        }
    }

    // ---- outgoing ----

    /// Sends a response in a server transaction. 100-199 keep it open; a final response
    /// completes it (a 2xx to an INVITE is retransmitted until the ACK).
    pub fn respond(
        &mut self,
        now: Instant,
        id: ServerTxId,
        response: &Response,
    ) -> Result<(), TxError> {
        let timers = self.timers;
        let tx = self.servers.get_mut(&id).ok_or(TxError::Unknown)?;
        if tx.state != ServerState::Proceeding {
            return Err(TxError::AlreadyFinal);
        }
        let bytes = encode_response(response);
        let code = response.status();
        let reliable = tx.peer.transport.is_reliable();
        tx.last = Some(bytes.clone());
        let (local, peer) = (tx.local, tx.peer);
        if code >= 200 {
            if tx.is_invite && code < 300 {
                tx.state = ServerState::Accepted { acked: false };
                if let Some(key) = tx.dialog_key.clone() {
                    self.accepted_index.insert(key, id);
                }
                if !reliable {
                    self.schedule(now + timers.t1, TimerKind::ServerRetransmit(id));
                }
                self.schedule(now + timers.sixty_four_t1(), TimerKind::ServerEnd(id));
            } else if tx.is_invite {
                tx.state = ServerState::Completed;
                if !reliable {
                    self.schedule(now + timers.t1, TimerKind::ServerRetransmit(id));
                }
                self.schedule(now + timers.sixty_four_t1(), TimerKind::ServerEnd(id));
            } else {
                tx.state = ServerState::Completed;
                let linger = if reliable { Duration::ZERO } else { timers.sixty_four_t1() };
                self.schedule(now + linger, TimerKind::ServerEnd(id));
            }
        }
        self.send(local, peer, bytes);
        Ok(())
    }

    /// Sends a request in a new client transaction. The request's top Via must carry a
    /// fresh `z9hG4bK` branch. ACK for a 2xx goes through [`Transactions::send_stateless`].
    pub fn send_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        to: Peer,
        request: &Request,
        essentials: &Essentials,
    ) -> ClientTxId {
        let id = ClientTxId(self.id());
        let is_invite = request.method == Method::INVITE;
        let bytes = encode_request(request);
        let branch = essentials.branch().to_owned();
        let tx = ClientTx {
            branch: branch.clone(),
            is_invite,
            state: ClientState::Calling,
            peer: to,
            local,
            request: bytes.clone(),
            ack: None,
            retransmit_interval: self.timers.t1,
            cancelled: false,
        };
        if !to.transport.is_reliable() {
            self.schedule(now + self.timers.t1, TimerKind::ClientRetransmit(id));
        }
        self.schedule(now + self.timers.sixty_four_t1(), TimerKind::ClientTimeout(id));
        self.clients.insert(id, tx);
        self.client_index.insert((branch, is_invite), id);
        self.send(local, to, bytes);
        id
    }

    /// Sends a message outside any transaction (ACK for a 2xx, or a response to a request
    /// whose transaction is gone).
    pub fn send_stateless(&mut self, local: SocketAddr, to: Peer, bytes: Bytes) {
        self.send(local, to, bytes);
    }

    /// The peer of a client transaction (the failover logic asks where a request went).
    pub fn client_peer(&self, id: ClientTxId) -> Option<Peer> {
        self.clients.get(&id).map(|tx| tx.peer)
    }

    /// Reports that the transport could not reach the peer of a client transaction (TCP
    /// connect refused): it times out now.
    pub fn transport_failed(&mut self, id: ClientTxId) {
        if self.remove_client(id) {
            self.events.push_back(TxEvent::Timeout { id });
        }
    }

    // ---- time ----

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, kind))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            self.fire(now, kind);
        }
    }

    fn fire(&mut self, now: Instant, kind: TimerKind) {
        let timers = self.timers;
        match kind {
            TimerKind::ServerRetransmit(id) => {
                let Some(tx) = self.servers.get_mut(&id) else { return };
                let retransmitting = matches!(
                    tx.state,
                    ServerState::Completed | ServerState::Accepted { acked: false }
                );
                if !retransmitting {
                    return;
                }
                if let Some(last) = tx.last.clone() {
                    tx.retransmit_interval = (tx.retransmit_interval * 2).min(timers.t2);
                    let (local, peer, next) = (tx.local, tx.peer, tx.retransmit_interval);
                    self.send(local, peer, last);
                    self.schedule(now + next, TimerKind::ServerRetransmit(id));
                }
            }
            TimerKind::ServerEnd(id) => {
                let Some(tx) = self.servers.get(&id) else { return };
                match tx.state {
                    ServerState::Completed if tx.is_invite => {
                        self.events.push_back(TxEvent::Unacknowledged { id, success: false });
                    }
                    ServerState::Accepted { acked: false } => {
                        self.events.push_back(TxEvent::Unacknowledged { id, success: true });
                    }
                    _ => {}
                }
                self.remove_server(id);
            }
            TimerKind::ClientRetransmit(id) => {
                let Some(tx) = self.clients.get_mut(&id) else { return };
                let retransmitting = match tx.state {
                    ClientState::Calling => true,
                    ClientState::Proceeding => !tx.is_invite,
                    _ => false,
                };
                if !retransmitting {
                    return;
                }
                tx.retransmit_interval = if tx.is_invite {
                    tx.retransmit_interval * 2
                } else {
                    (tx.retransmit_interval * 2).min(timers.t2)
                };
                let (local, peer, bytes, next) =
                    (tx.local, tx.peer, tx.request.clone(), tx.retransmit_interval);
                self.send(local, peer, bytes);
                self.schedule(now + next, TimerKind::ClientRetransmit(id));
            }
            TimerKind::ClientTimeout(id) => {
                let Some(tx) = self.clients.get(&id) else { return };
                if matches!(tx.state, ClientState::Calling | ClientState::Proceeding) {
                    // Timer B or F; an INVITE that got a provisional waits for the user to
                    // CANCEL instead (RFC 3261 leaves that to the TU), and after a CANCEL
                    // for 64*T1 more (§9.1).
                    if tx.is_invite && tx.state == ClientState::Proceeding && !tx.cancelled {
                        return;
                    }
                    self.remove_client(id);
                    self.events.push_back(TxEvent::Timeout { id });
                }
            }
            TimerKind::ClientEnd(id) => {
                if self.remove_client(id) {
                    self.events.push_back(TxEvent::ClientDone { id });
                }
            }
        }
    }

    fn remove_server(&mut self, id: ServerTxId) {
        if let Some(tx) = self.servers.remove(&id) {
            self.server_index.remove(&tx.key);
            if let Some(key) = tx.dialog_key {
                if self.accepted_index.get(&key) == Some(&id) {
                    self.accepted_index.remove(&key);
                }
            }
            self.events.push_back(TxEvent::ServerDone { id });
        }
    }

    fn remove_client(&mut self, id: ClientTxId) -> bool {
        match self.clients.remove(&id) {
            Some(tx) => {
                self.client_index.remove(&(tx.branch, tx.is_invite));
                true
            }
            None => false,
        }
    }

    /// The user took an ACK for a 2xx (its Call-ID and CSeq) as its peer's: the 2xx stops
    /// being retransmitted. False if that 2xx was acknowledged already (a retransmitted ACK).
    pub fn acknowledge(&mut self, call_id: &str, cseq: u32) -> bool {
        let Some(&id) = self.accepted_index.get(&(call_id.to_owned(), cseq)) else { return true };
        match self.servers.get_mut(&id) {
            Some(tx) if tx.state == (ServerState::Accepted { acked: false }) => {
                tx.state = ServerState::Accepted { acked: true };
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The user sent a CANCEL for this INVITE: without a final response within 64*T1 it
    /// times out (RFC 3261 §9.1), provisional or not.
    pub fn cancelled(&mut self, now: Instant, id: ClientTxId) {
        let Some(tx) = self.clients.get_mut(&id) else { return };
        tx.cancelled = true;
        let at = now + self.timers.sixty_four_t1();
        self.schedule(at, TimerKind::ClientTimeout(id));
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's Request-URI,
/// top Via, From, Call-ID, Route and CSeq number, the response's To.
fn build_ack_for_error(invite: &Bytes, response: &Response) -> Bytes {
    let Ok(crate::message::Message::Request(invite)) = crate::message::parse(invite.clone()) else {
        return Bytes::new();
    };
    let mut headers = ezk_sip_types::Headers::new();
    if let Some(via) = invite.headers.get_raw(&ezk_sip_types::Name::VIA).next() {
        headers.insert(ezk_sip_types::Name::VIA, via.clone());
    }
    for name in
        [ezk_sip_types::Name::FROM, ezk_sip_types::Name::CALL_ID, ezk_sip_types::Name::ROUTE]
    {
        for value in invite.headers.get_raw(&name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    for value in response.headers.get_raw(&ezk_sip_types::Name::TO) {
        headers.insert(ezk_sip_types::Name::TO, value.clone());
    }
    let cseq = invite.essentials().map(|e| e.cseq.cseq).unwrap_or(1);
    headers.insert(ezk_sip_types::Name::CSEQ, format!("{cseq} ACK"));
    headers.insert(ezk_sip_types::Name::MAX_FORWARDS, "70");
    let ack = Request { method: Method::ACK, uri: invite.uri, headers, body: Bytes::new() };
    encode_request(&ack)
}
