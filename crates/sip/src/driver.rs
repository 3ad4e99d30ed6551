//! The tokio driver: sockets, timers and the task that owns the [`Core`].
//!
//! One task owns the core (so the core needs no locks); small tasks read the UDP sockets and
//! TCP connections and hand it what arrives over a channel; what the core sends goes out from
//! its task. Outbound TCP connections are opened on demand.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::b2bua::{CallEvent, Core, CoreConfig};
use crate::media::{CallId, MediaControl};
use crate::message::{MAX_MESSAGE, frame_length};
use crate::profile::Listen;
use crate::transport::{ConnectionId, Peer, Transmit, Transport};

/// How long a graceful shutdown lets calls finish before ending them.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Something for the core task.
enum Inbound {
    Message {
        local: SocketAddr,
        from: Peer,
        bytes: Bytes,
    },
    Connected {
        id: ConnectionId,
        peer: SocketAddr,
        writer: OwnedWriteHalf,
    },
    ConnectFailed {
        peer: SocketAddr,
    },
    Closed {
        id: ConnectionId,
    },
    /// The application ends a call ([`SipControl::hangup`]).
    Hangup(CallId),
}

/// A running SIP service.
#[derive(Debug)]
pub struct SipHandle {
    /// Where it listens (ports resolved, for `:0` listen addresses).
    pub listening: Vec<Listen>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    inbound: mpsc::Sender<Inbound>,
}

/// Steers calls from the application (an IVR that has finished hangs up). Cheap to clone.
#[derive(Clone)]
pub struct SipControl {
    inbound: mpsc::Sender<Inbound>,
}

impl std::fmt::Debug for SipControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipControl").finish_non_exhaustive()
    }
}

impl SipControl {
    /// Ends the call with a BYE to each answered leg ([`Core::hangup`]); its `Ended` event
    /// follows. Nothing happens if the call has ended already.
    pub async fn hangup(&self, call: CallId) {
        let _ = self.inbound.send(Inbound::Hangup(call)).await;
    }
}

impl SipHandle {
    /// A handle to steer calls while the service runs.
    pub fn control(&self) -> SipControl {
        SipControl { inbound: self.inbound.clone() }
    }

    /// Stops taking calls (new INVITEs get 503) from the next message the core handles on:
    /// a caller that logs "shutting down" after this never sees a new call accepted.
    pub fn stop_taking_calls(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops taking calls, lets calls in progress finish for up to `grace`, ends the rest,
    /// and returns when done.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace + Duration::from_secs(5), self.task).await;
        let _ = grace;
    }
}

/// The profile listen addresses, deduplicated.
fn listen_set(config: &CoreConfig) -> Vec<Listen> {
    let mut all: Vec<Listen> =
        config.profiles.iter().flat_map(|p| p.listen.iter().copied()).collect();
    all.sort_by_key(|l| (l.tcp, l.addr));
    all.dedup();
    all
}

/// Binds every listen address of every profile and starts the core task. Call events go to
/// `events`.
pub async fn start<M>(
    mut config: CoreConfig,
    media: M,
    events: mpsc::UnboundedSender<CallEvent>,
    grace: Duration,
) -> io::Result<SipHandle>
where
    M: MediaControl + Send + 'static,
{
    let (inbound_tx, inbound_rx) = mpsc::channel::<Inbound>(8192);
    let mut udp: HashMap<SocketAddr, std::sync::Arc<UdpSocket>> = HashMap::new();
    let mut listening = Vec::new();
    let mut resolved: HashMap<Listen, Listen> = HashMap::new();
    let next_connection = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    for listen in listen_set(&config) {
        if listen.tcp {
            let listener = TcpListener::bind(listen.addr).await?;
            let local = listener.local_addr()?;
            let actual = Listen { tcp: true, addr: local };
            resolved.insert(listen, actual);
            listening.push(actual);
            tokio::spawn(accept_loop(listener, inbound_tx.clone(), next_connection.clone()));
        } else {
            let socket = std::sync::Arc::new(UdpSocket::bind(listen.addr).await?);
            let local = socket.local_addr()?;
            let actual = Listen { tcp: false, addr: local };
            resolved.insert(listen, actual);
            listening.push(actual);
            udp.insert(local, socket.clone());
            tokio::spawn(udp_loop(socket, local, inbound_tx.clone()));
        }
    }
    // Profiles learn their real addresses (a `:0` port becomes the bound one).
    for profile in &mut config.profiles {
        for listen in &mut profile.listen {
            if let Some(actual) = resolved.get(listen) {
                *listen = *actual;
            }
        }
    }
    let (stop, stop_rx) = watch::channel(false);
    let core = Core::new(config, media);
    let task = tokio::spawn(
        CoreTask {
            core,
            udp,
            tcp: HashMap::new(),
            tcp_by_peer: HashMap::new(),
            pending_connect: HashMap::new(),
            pending_writes: Vec::new(),
            inbound: inbound_rx,
            inbound_tx: inbound_tx.clone(),
            next_connection,
            events,
        }
        .run(stop_rx, grace),
    );
    Ok(SipHandle { listening, stop, task, inbound: inbound_tx })
}

async fn udp_loop(
    socket: std::sync::Arc<UdpSocket>,
    local: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        // Keep-alives (CRLF) carry nothing.
        if n <= 4 && buf[..n].iter().all(|b| *b == b'\r' || *b == b'\n') {
            continue;
        }
        let message = Inbound::Message {
            local,
            from: Peer::udp(from),
            bytes: Bytes::copy_from_slice(&buf[..n]),
        };
        if inbound.send(message).await.is_err() {
            return;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    inbound: mpsc::Sender<Inbound>,
    ids: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let id = ConnectionId(ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        if start_connection(stream, id, peer, inbound.clone()).await.is_err() {
            return;
        }
    }
}

/// Splits a connection: the reader frames messages for the core, the writer goes to the core.
async fn start_connection(
    stream: TcpStream,
    id: ConnectionId,
    peer: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
) -> Result<(), ()> {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().map_err(|_| ())?;
    let (mut reader, writer) = stream.into_split();
    inbound.send(Inbound::Connected { id, peer, writer }).await.map_err(|_| ())?;
    tokio::spawn(async move {
        let mut buffer = BytesMut::with_capacity(8192);
        loop {
            match reader.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                // Keep-alive CRLFs between messages (RFC 5626 §3.5.1).
                while buffer.first().is_some_and(|b| *b == b'\r' || *b == b'\n') {
                    let _ = buffer.split_to(1);
                }
                match frame_length(&buffer) {
                    Ok(Some(len)) => {
                        let bytes = buffer.split_to(len).freeze();
                        let from = Peer { transport: Transport::Tcp(Some(id)), addr: peer };
                        if inbound.send(Inbound::Message { local, from, bytes }).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    // A broken stream cannot be resynchronised: close it.
                    Err(_) => {
                        let _ = inbound.send(Inbound::Closed { id }).await;
                        return;
                    }
                }
            }
        }
        let _ = inbound.send(Inbound::Closed { id }).await;
    });
    Ok(())
}

struct CoreTask<M: MediaControl> {
    core: Core<M>,
    udp: HashMap<SocketAddr, std::sync::Arc<UdpSocket>>,
    tcp: HashMap<ConnectionId, OwnedWriteHalf>,
    tcp_by_peer: HashMap<SocketAddr, ConnectionId>,
    /// Messages waiting for an outbound connection.
    pending_connect: HashMap<SocketAddr, Vec<Bytes>>,
    /// Messages for a connection that has just come up.
    pending_writes: Vec<(ConnectionId, Bytes)>,
    inbound: mpsc::Receiver<Inbound>,
    inbound_tx: mpsc::Sender<Inbound>,
    next_connection: std::sync::Arc<std::sync::atomic::AtomicU64>,
    events: mpsc::UnboundedSender<CallEvent>,
}

#[allow(clippy::disallowed_methods, reason = "the driver owns the clock and passes it to the core")]
fn now() -> Instant {
    Instant::now()
}

impl<M: MediaControl> CoreTask<M> {
    async fn run(mut self, mut stop: watch::Receiver<bool>, grace: Duration) {
        let mut stopping_until: Option<Instant> = None;
        loop {
            let deadline = match (self.core.poll_timeout(), stopping_until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // The stop first: no message that arrives after it may start a call.
                biased;
                changed = stop.changed(), if stopping_until.is_none() => {
                    if changed.is_err() || *stop.borrow() {
                        self.core.shutdown();
                        stopping_until = Some(now() + grace);
                    }
                }
                message = self.inbound.recv() => match message {
                    Some(message) => self.handle(message),
                    None => return,
                },
                () = sleep => self.core.handle_timeout(now()),
            }
            self.flush().await;
            if let Some(until) = stopping_until {
                if self.core.active_calls() == 0 {
                    // Let the last BYEs and responses go, then stop.
                    let linger = now() + Duration::from_millis(200);
                    while now() < linger {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(50), self.inbound.recv())
                                .await;
                        self.core.handle_timeout(now());
                        self.flush().await;
                    }
                    return;
                }
                if now() >= until {
                    self.core.end_all(now());
                    self.flush().await;
                    stopping_until = Some(now() + Duration::from_secs(2));
                }
            }
        }
    }

    fn handle(&mut self, message: Inbound) {
        match message {
            Inbound::Message { local, from, bytes } => {
                self.core.handle_datagram(now(), local, from, bytes)
            }
            Inbound::Connected { id, peer, writer, .. } => {
                self.tcp.insert(id, writer);
                self.tcp_by_peer.insert(peer, id);
                if let Some(queued) = self.pending_connect.remove(&peer) {
                    self.pending_writes.extend(queued.into_iter().map(|bytes| (id, bytes)));
                }
            }
            Inbound::ConnectFailed { peer } => {
                self.pending_connect.remove(&peer);
                self.core
                    .transport_failed(now(), Peer { transport: Transport::Tcp(None), addr: peer });
            }
            Inbound::Closed { id } => {
                self.tcp.remove(&id);
                self.tcp_by_peer.retain(|_, c| *c != id);
            }
            Inbound::Hangup(call) => {
                self.core.hangup(now(), &call);
            }
        }
    }

    async fn flush(&mut self) {
        for (id, bytes) in std::mem::take(&mut self.pending_writes) {
            if let Some(writer) = self.tcp.get_mut(&id) {
                let _ = writer.write_all(&bytes).await;
            }
        }
        while let Some(Transmit { local, to, bytes }) = self.core.poll_transmit() {
            match to.transport {
                Transport::Udp => {
                    if let Some(socket) = self.udp.get(&local) {
                        if socket.try_send_to(&bytes, to.addr).is_err() {
                            let _ = socket.send_to(&bytes, to.addr).await;
                        }
                    }
                }
                Transport::Tcp(connection) => {
                    let id = connection
                        .filter(|id| self.tcp.contains_key(id))
                        .or_else(|| self.tcp_by_peer.get(&to.addr).copied());
                    match id.and_then(|id| self.tcp.get_mut(&id)) {
                        Some(writer) => {
                            if writer.write_all(&bytes).await.is_err() {
                                self.core.transport_failed(now(), to);
                            }
                        }
                        None => self.connect(to.addr, bytes),
                    }
                }
            }
        }
        while let Some(event) = self.core.poll_event() {
            let _ = self.events.send(event);
        }
    }

    fn connect(&mut self, peer: SocketAddr, bytes: Bytes) {
        let queue = self.pending_connect.entry(peer).or_default();
        queue.push(bytes);
        if queue.len() > 1 {
            return; // already connecting
        }
        let inbound = self.inbound_tx.clone();
        let id =
            ConnectionId(self.next_connection.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(peer)).await {
                Ok(Ok(stream)) => {
                    let _ = start_connection(stream, id, peer, inbound).await;
                }
                _ => {
                    let _ = inbound.send(Inbound::ConnectFailed { peer }).await;
                }
            }
        });
    }
}
