//! The tokio side: a [`MediaEngine`] hands out calls, each a [`CallDriver`] task that owns
//! the call's four sockets and its [`Session`], a [`CallHandle`] to steer it and a channel
//! of [`MediaEvent`]s.
//!
//! Per datagram the driver reads the clock once, hands the bytes to the session and sends
//! what comes back; buffers are the driver's own, so nothing allocates, locks or logs on
//! that path. Counters go to the engine's [`RelayMetrics`] about once a second.

mod runtime;
mod socket;

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

pub use runtime::{MediaRuntime, RunningCall, RuntimeConfig};
pub use socket::{DatagramSocket, SocketBinder, TokioBinder, TokioUdp};

use crate::config::{Leg, MediaProfile, RemoteMedia, SocketKind};
use crate::error::MediaError;
use crate::metrics::{RelayMetrics, RelaySnapshot, SessionMetrics};
use crate::ports::{PortAllocator, PortPair};
use crate::prompt::{HoldAudio, PlayOptions, Prompt, PromptId};
use crate::session::{MediaEvent, Session};

/// Attempts to find a pair whose ports can be bound before giving up on a call.
const BIND_ATTEMPTS: usize = 8;
/// Datagrams handled in one poll before the task yields to others.
const POLL_BUDGET: usize = 64;
const RECV_BUF: usize = 2048;

/// Engine-wide settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Local RTP/RTCP ports: even/odd pairs inside `port_min..=port_max`.
    pub port_min: u16,
    pub port_max: u16,
    /// How long a released port pair rests before another call gets it.
    pub quarantine: Duration,
    /// Events buffered per call for a slow consumer; beyond that they are counted and dropped.
    pub event_capacity: usize,
    /// How often each call adds its counters to the engine's totals.
    pub metrics_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            port_min: 20000,
            port_max: 29999,
            quarantine: Duration::from_secs(10),
            event_capacity: 256,
            metrics_interval: Duration::from_secs(1),
        }
    }
}

/// What calls give back when they end: ports and counters.
#[derive(Debug)]
struct Pool {
    ports: Mutex<PortAllocator>,
    metrics: RelayMetrics,
}

impl Pool {
    fn ports(&self) -> std::sync::MutexGuard<'_, PortAllocator> {
        // A poisoned lock means a panic mid-allocation; the allocator is still consistent.
        self.ports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
struct Shared<B> {
    config: EngineConfig,
    binder: B,
    pool: Arc<Pool>,
    ssrc_seed: RandomState,
    calls: AtomicU64,
}

/// Creates calls' media. Cheap to clone; all clones share ports and metrics.
#[derive(Debug)]
pub struct MediaEngine<B: SocketBinder = TokioBinder> {
    shared: Arc<Shared<B>>,
}

impl<B: SocketBinder> Clone for MediaEngine<B> {
    fn clone(&self) -> Self {
        MediaEngine { shared: Arc::clone(&self.shared) }
    }
}

impl MediaEngine<TokioBinder> {
    pub fn new(config: EngineConfig) -> Result<MediaEngine, MediaError> {
        MediaEngine::with_binder(config, TokioBinder)
    }
}

/// A call's local addresses on one leg, for the SDP the B2BUA sends that leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalPorts {
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
}

/// A new call's media: spawn `driver.run()`, steer with `handle`, read `events`.
#[derive(Debug)]
pub struct Call<S: DatagramSocket = TokioUdp> {
    pub handle: CallHandle,
    pub events: mpsc::Receiver<MediaEvent>,
    pub driver: CallDriver<S>,
}

impl<B: SocketBinder> MediaEngine<B> {
    pub fn with_binder(config: EngineConfig, binder: B) -> Result<MediaEngine<B>, MediaError> {
        // Fresh randomness for every engine: which pair a call gets must not be guessable.
        let seed = rand::random();
        let ports = PortAllocator::new(config.port_min, config.port_max, config.quarantine, seed)?;
        Ok(MediaEngine {
            shared: Arc::new(Shared {
                config,
                binder,
                pool: Arc::new(Pool { ports: Mutex::new(ports), metrics: RelayMetrics::default() }),
                ssrc_seed: RandomState::new(),
                calls: AtomicU64::new(0),
            }),
        })
    }

    /// Allocates and binds both legs' RTP/RTCP ports on `local_ip` and sets up the call's
    /// session. Fails with [`MediaError::PortsExhausted`] when the range has no free pair.
    pub fn create_call(
        &self,
        local_ip: IpAddr,
        profile: MediaProfile,
    ) -> Result<Call<B::Socket>, MediaError> {
        let result = self.try_create_call(local_ip, profile);
        if result.is_err() {
            self.shared.pool.metrics.setup_failed();
        }
        result
    }

    fn try_create_call(
        &self,
        local_ip: IpAddr,
        profile: MediaProfile,
    ) -> Result<Call<B::Socket>, MediaError> {
        let n = self.shared.calls.fetch_add(1, Ordering::Relaxed);
        let mut hasher = self.shared.ssrc_seed.build_hasher();
        hasher.write_u64(n);
        let session = Session::new(profile, hasher.finish() as u32)?;
        let mut guard = PortGuard {
            pool: Arc::clone(&self.shared.pool),
            pairs: Vec::with_capacity(2),
            counted: false,
        };
        let customer = self.bind_pair(local_ip, &mut guard)?;
        let agent = self.bind_pair(local_ip, &mut guard)?;
        let local = [customer.1, agent.1];
        let [c_rtp, c_rtcp] = customer.0;
        let [a_rtp, a_rtcp] = agent.0;
        let (command_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(self.shared.config.event_capacity.max(1));
        self.shared.pool.metrics.call_created();
        guard.counted = true;
        let driver = CallDriver {
            session,
            sockets: [c_rtp, c_rtcp, a_rtp, a_rtcp],
            commands,
            events_tx,
            metrics_interval: self.shared.config.metrics_interval,
            guard,
        };
        Ok(Call { handle: CallHandle { commands: command_tx, local }, events, driver })
    }

    fn bind_pair(
        &self,
        ip: IpAddr,
        guard: &mut PortGuard,
    ) -> Result<([B::Socket; 2], LocalPorts), MediaError> {
        let mut last = None;
        for _ in 0..BIND_ATTEMPTS {
            #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
            let pair = self.shared.pool.ports().allocate(Instant::now())?;
            let bound = self.shared.binder.bind(SocketAddr::new(ip, pair.rtp)).and_then(|rtp| {
                let rtcp = self.shared.binder.bind(SocketAddr::new(ip, pair.rtcp()))?;
                let local = LocalPorts { rtp: rtp.local_addr()?, rtcp: rtcp.local_addr()? };
                Ok(([rtp, rtcp], local))
            });
            match bound {
                Ok(sockets) => {
                    guard.pairs.push(pair);
                    return Ok(sockets);
                }
                Err(e) => {
                    // Someone else holds one of the ports: rest the pair and try another.
                    #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
                    self.shared.pool.ports().release(pair, Instant::now());
                    last = Some(MediaError::Bind { port: pair.rtp, kind: e.kind() });
                }
            }
        }
        Err(last.unwrap_or(MediaError::Closed))
    }

    /// Totals over all calls.
    pub fn metrics(&self) -> RelaySnapshot {
        self.shared.pool.metrics.snapshot()
    }

    /// Port pairs held by calls.
    pub fn ports_in_use(&self) -> usize {
        self.shared.pool.ports().in_use()
    }

    /// Port pairs released and resting in quarantine.
    pub fn ports_quarantined(&self) -> usize {
        self.shared.pool.ports().quarantined()
    }
}

/// Gives the call's port pairs back (into quarantine) and counts the call closed, however
/// the call ends: closed, handle dropped, or driver never run. Declared after the sockets
/// in [`CallDriver`], so the sockets are closed first.
#[derive(Debug)]
struct PortGuard {
    pool: Arc<Pool>,
    pairs: Vec<PortPair>,
    counted: bool,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
        let now = Instant::now();
        let mut ports = self.pool.ports();
        for pair in self.pairs.drain(..) {
            ports.release(pair, now);
        }
        drop(ports);
        if self.counted {
            self.pool.metrics.call_closed();
        }
    }
}

#[derive(Debug)]
enum Command {
    SetRemote(Leg, RemoteMedia),
    Play(Prompt, PlayOptions, oneshot::Sender<PromptId>),
    StopPrompt,
    Hold(HoldAudio),
    Reconnect,
    Metrics(oneshot::Sender<SessionMetrics>),
    Close(oneshot::Sender<SessionMetrics>),
}

/// Steers a call's media from the signalling side. Cheap to clone. When every handle is
/// dropped the call closes.
#[derive(Clone, Debug)]
pub struct CallHandle {
    commands: mpsc::UnboundedSender<Command>,
    local: [LocalPorts; 2],
}

impl CallHandle {
    /// The local RTP/RTCP addresses of a leg (what the SDP towards that leg announces).
    pub fn local(&self, leg: Leg) -> LocalPorts {
        self.local[leg.index()]
    }

    fn send(&self, command: Command) -> Result<(), MediaError> {
        self.commands.send(command).map_err(|_| MediaError::Closed)
    }

    /// A leg's far end from its SDP (offer, 183 early media, 200 answer, re-INVITE).
    pub fn set_remote(&self, leg: Leg, remote: RemoteMedia) -> Result<(), MediaError> {
        remote.validate()?;
        self.send(Command::SetRemote(leg, remote))
    }

    /// Plays a prompt to the customer (see [`Session::play_prompt`]).
    pub async fn play_prompt(
        &self,
        prompt: Prompt,
        options: PlayOptions,
    ) -> Result<PromptId, MediaError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Play(prompt, options, tx))?;
        rx.await.map_err(|_| MediaError::Closed)
    }

    pub fn stop_prompt(&self) -> Result<(), MediaError> {
        self.send(Command::StopPrompt)
    }

    /// Puts the agent on hold (see [`Session::hold`]).
    pub fn hold(&self, audio: HoldAudio) -> Result<(), MediaError> {
        self.send(Command::Hold(audio))
    }

    pub fn reconnect(&self) -> Result<(), MediaError> {
        self.send(Command::Reconnect)
    }

    /// The call's counters so far.
    pub async fn metrics(&self) -> Result<SessionMetrics, MediaError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Metrics(tx))?;
        rx.await.map_err(|_| MediaError::Closed)
    }

    /// Ends the call's media: pending digits are reported, the sockets closed and the ports
    /// put in quarantine. Returns the final counters.
    pub async fn close(&self) -> Result<SessionMetrics, MediaError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Close(tx))?;
        rx.await.map_err(|_| MediaError::Closed)
    }
}

/// Runs one call's media: owns its sockets and session. Spawn [`CallDriver::run`].
#[must_use = "a call's media flows only while its driver runs: spawn `driver.run()`"]
#[derive(Debug)]
pub struct CallDriver<S: DatagramSocket = TokioUdp> {
    session: Session,
    /// Customer RTP, customer RTCP, agent RTP, agent RTCP. Before `guard`: closed first.
    sockets: [S; 4],
    commands: mpsc::UnboundedReceiver<Command>,
    events_tx: mpsc::Sender<MediaEvent>,
    metrics_interval: Duration,
    guard: PortGuard,
}

impl<S: DatagramSocket> CallDriver<S> {
    /// Runs the call until it is closed or every [`CallHandle`] is dropped.
    pub async fn run(self) {
        #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
        let now = Instant::now();
        let flushed = *self.session.metrics();
        Running {
            driver: self,
            buf: Box::new([0; RECV_BUF]),
            sleep: Box::pin(tokio::time::sleep_until(now.into())),
            armed: None,
            next_flush: now,
            flushed,
            close: None,
        }
        .await;
    }
}

/// The driver's future: polls commands, the four sockets and one timer.
struct Running<S: DatagramSocket> {
    driver: CallDriver<S>,
    buf: Box<[u8; RECV_BUF]>,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    next_flush: Instant,
    /// The counters as last added to the engine's totals.
    flushed: SessionMetrics,
    /// Set by a close command: reply with the final counters.
    close: Option<oneshot::Sender<SessionMetrics>>,
}

const LEGS: [(Leg, SocketKind); 4] = [
    (Leg::Customer, SocketKind::Rtp),
    (Leg::Customer, SocketKind::Rtcp),
    (Leg::Agent, SocketKind::Rtp),
    (Leg::Agent, SocketKind::Rtcp),
];

fn socket_index(leg: Leg, kind: SocketKind) -> usize {
    leg.index() * 2 + kind.index()
}

impl<S: DatagramSocket> Running<S> {
    /// Handles a command; false when the call must end.
    fn command(&mut self, command: Command, now: Instant) -> bool {
        let session = &mut self.driver.session;
        match command {
            // Validated by the handle already; a failure here cannot happen.
            Command::SetRemote(leg, remote) => _ = session.set_remote(leg, remote),
            Command::Play(prompt, options, reply) => {
                let _ = reply.send(session.play_prompt(now, prompt, options));
            }
            Command::StopPrompt => session.stop_prompt(),
            Command::Hold(audio) => session.hold(audio),
            Command::Reconnect => session.reconnect(),
            Command::Metrics(reply) => _ = reply.send(*session.metrics()),
            Command::Close(reply) => {
                self.close = Some(reply);
                return false;
            }
        }
        true
    }

    /// Sends everything the session queued; `arrived` is when the input came in.
    fn send_all(&mut self, arrived: Option<Instant>) {
        let session = &mut self.driver.session;
        let mut sent = false;
        let mut failed = [0u64; 2];
        while let Some(t) = session.poll_transmit() {
            let socket = &self.driver.sockets[socket_index(t.leg, t.socket)];
            match socket.try_send_to(t.payload, t.destination) {
                Ok(_) => sent = true,
                Err(_) => failed[t.leg.index()] += 1,
            }
        }
        for (leg, n) in [(Leg::Customer, failed[0]), (Leg::Agent, failed[1])] {
            if n > 0 {
                session.record_send_errors(leg, n);
            }
        }
        if let (true, Some(arrived)) = (sent, arrived) {
            #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
            let latency = Instant::now().saturating_duration_since(arrived);
            session.record_latency(latency);
        }
    }

    fn forward_events(&mut self) {
        while let Some(event) = self.driver.session.poll_event() {
            if self.driver.events_tx.try_send(event).is_err() {
                self.driver.session.record_dropped_event();
            }
        }
    }

    fn flush_metrics(&mut self) {
        let now = *self.driver.session.metrics();
        self.driver.guard.pool.metrics.add(&now.since(&self.flushed));
        self.flushed = now;
    }

    /// Reads every socket until it has nothing more; false if the budget ran out.
    fn receive(&mut self, cx: &mut Context<'_>) -> bool {
        let mut budget = POLL_BUDGET;
        for (i, &(leg, kind)) in LEGS.iter().enumerate() {
            loop {
                let polled = self.driver.sockets[i].poll_recv_from(cx, &mut self.buf[..]);
                match polled {
                    Poll::Ready(Ok((len, from))) => {
                        #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
                        let now = Instant::now();
                        let data = &self.buf[..len];
                        self.driver.session.handle_datagram(now, leg, kind, from, data);
                        self.send_all(Some(now));
                        budget -= 1;
                        if budget == 0 {
                            return false;
                        }
                    }
                    // ICMP errors and the like concern one datagram, not the socket.
                    Poll::Ready(Err(_)) => {
                        budget -= 1;
                        if budget == 0 {
                            return false;
                        }
                    }
                    Poll::Pending => break,
                }
            }
        }
        true
    }

    fn finish(&mut self, now: Instant) {
        self.driver.session.finish(now);
        self.send_all(None);
        self.forward_events();
        self.flush_metrics();
        if let Some(reply) = self.close.take() {
            let _ = reply.send(*self.driver.session.metrics());
        }
    }
}

impl<S: DatagramSocket> Future for Running<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
        let mut now = Instant::now();
        loop {
            match this.driver.commands.poll_recv(cx) {
                Poll::Ready(Some(command)) => {
                    if !this.command(command, now) {
                        this.finish(now);
                        return Poll::Ready(());
                    }
                    this.send_all(None);
                }
                // Every handle is gone: nobody can steer or close the call any more.
                Poll::Ready(None) => {
                    this.finish(now);
                    return Poll::Ready(());
                }
                Poll::Pending => break,
            }
        }
        let drained = this.receive(cx);
        loop {
            #[allow(clippy::disallowed_methods, reason = "the driver owns the clock")]
            {
                now = Instant::now();
            }
            if let Some(due) = this.driver.session.poll_timeout().filter(|&t| t <= now) {
                let _ = due;
                this.driver.session.handle_timeout(now);
                this.send_all(None);
                continue;
            }
            if this.next_flush <= now {
                this.flush_metrics();
                this.next_flush = now + this.driver.metrics_interval;
            }
            let deadline = match this.driver.session.poll_timeout() {
                Some(t) => t.min(this.next_flush),
                None => this.next_flush,
            };
            // Re-arm only for an earlier deadline: a later one is picked up when the armed
            // one fires, which keeps timer-wheel updates off the per-packet path.
            if this.armed.is_none_or(|armed| deadline < armed || armed <= now) {
                this.sleep.as_mut().reset(deadline.into());
                this.armed = Some(deadline);
            }
            match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.armed = None;
                    continue;
                }
                Poll::Pending => break,
            }
        }
        this.forward_events();
        if !drained {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
