//! Threads of their own for the call drivers, with coalesced wake-ups under load.
//!
//! Each of `threads` threads runs a single-threaded tokio runtime and a share of the calls
//! (a new call goes to the thread with the fewest). Nothing is stolen between threads, so a
//! datagram never wakes a second thread to run its call.
//!
//! A thread with few calls wakes for every datagram, as any tokio task would. Once it has
//! [`RuntimeConfig::coalesce_from`] calls it changes rhythm: it sleeps one
//! [`RuntimeConfig::tick`], then lets the runtime collect every socket that became readable
//! meanwhile and run those calls, then sleeps again. On the relay's own measurements
//! (`benches/media-load.sh`) most of a busy relay's CPU outside the kernel's UDP path goes to
//! waking up (`epoll_wait`, futexes, the scheduler), once per datagram; at 300 calls a 500 µs
//! tick handles about 15 datagrams per wake-up instead of one. The price is latency: a
//! datagram waits at most one tick (a quarter of one on average at 500 µs) before it is
//! relayed. Below the threshold a tick would wake the thread more often than the datagrams
//! do, so it is not used there.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::{CallHandle, MediaEngine, SocketBinder};
use crate::config::MediaProfile;
use crate::error::MediaError;
use crate::session::MediaEvent;

/// How the relay's threads run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Threads, each with its own share of the calls.
    pub threads: usize,
    /// A busy thread's sleep between two rounds of datagrams; zero wakes for every datagram
    /// however busy the thread is.
    pub tick: Duration,
    /// Calls on one thread from which it coalesces its wake-ups.
    pub coalesce_from: usize,
}

impl Default for RuntimeConfig {
    /// One thread per core; a 500 µs tick from 16 calls a thread (16 calls send about 1,600
    /// datagrams a second, roughly the 2,000 ticks a second they would replace).
    fn default() -> Self {
        RuntimeConfig {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            tick: Duration::from_micros(500),
            coalesce_from: 16,
        }
    }
}

/// A call started on a [`MediaRuntime`]: its driver runs there.
#[derive(Debug)]
pub struct RunningCall {
    pub handle: CallHandle,
    pub events: mpsc::Receiver<MediaEvent>,
}

/// The relay's threads. Dropping it stops them, and every call still on them ends.
#[derive(Debug)]
pub struct MediaRuntime {
    shards: Vec<Shard>,
    config: RuntimeConfig,
}

#[derive(Debug)]
struct Shard {
    handle: tokio::runtime::Handle,
    state: Arc<ShardState>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct ShardState {
    calls: AtomicUsize,
    /// Wakes a thread that waits per datagram: it has enough calls to coalesce, or it stops.
    changed: Notify,
    stop: AtomicBool,
}

impl MediaRuntime {
    /// Starts the threads.
    pub fn start(config: RuntimeConfig) -> io::Result<MediaRuntime> {
        let mut shards = Vec::with_capacity(config.threads.max(1));
        for i in 0..config.threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let state = Arc::new(ShardState::default());
            let thread = std::thread::Builder::new().name(format!("ivrpay-media-{i}")).spawn({
                let state = Arc::clone(&state);
                move || run_shard(&runtime, &state, config)
            })?;
            shards.push(Shard { handle, state, thread: Some(thread) });
        }
        Ok(MediaRuntime { shards, config })
    }

    /// Creates a call on `engine` (see [`MediaEngine::create_call`]) and runs its driver on
    /// the thread with the fewest calls.
    pub fn create_call<B: SocketBinder>(
        &self,
        engine: &MediaEngine<B>,
        local_ip: IpAddr,
        profile: MediaProfile,
    ) -> Result<RunningCall, MediaError> {
        let shard = self
            .shards
            .iter()
            .min_by_key(|s| s.state.calls.load(Ordering::Relaxed))
            .unwrap_or_else(|| unreachable_no_shard());
        // The sockets register with the reactor of the runtime that is entered when they
        // are made, so they are made on the shard's.
        let call = {
            let _entered = shard.handle.enter();
            engine.create_call(local_ip, profile)?
        };
        let counted = CountedCall::new(Arc::clone(&shard.state));
        if counted.calls == self.config.coalesce_from {
            shard.state.changed.notify_one();
        }
        let driver = call.driver;
        shard.handle.spawn(async move {
            driver.run().await;
            drop(counted);
        });
        Ok(RunningCall { handle: call.handle, events: call.events })
    }
}

/// One call in its thread's count, for as long as its driver lives (a driver that panics
/// leaves the count too).
struct CountedCall {
    state: Arc<ShardState>,
    /// The thread's calls with this one.
    calls: usize,
}

impl CountedCall {
    fn new(state: Arc<ShardState>) -> CountedCall {
        let calls = state.calls.fetch_add(1, Ordering::Relaxed) + 1;
        CountedCall { state, calls }
    }
}

impl Drop for CountedCall {
    fn drop(&mut self) {
        self.state.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for MediaRuntime {
    fn drop(&mut self) {
        for shard in &self.shards {
            shard.state.stop.store(true, Ordering::SeqCst);
            shard.state.changed.notify_one();
        }
        for shard in &mut self.shards {
            if let Some(thread) = shard.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// One thread's loop: per datagram while it has few calls, in ticks once it has many.
fn run_shard(runtime: &tokio::runtime::Runtime, state: &ShardState, config: RuntimeConfig) {
    while !state.stop.load(Ordering::SeqCst) {
        let calls = state.calls.load(Ordering::Relaxed);
        if config.tick.is_zero() || calls < config.coalesce_from {
            // Drivers run as ordinary tasks, woken by their sockets, until this thread has
            // enough calls to coalesce (rechecked now and then: calls also end).
            runtime.block_on(async {
                let _ = tokio::time::timeout(RECHECK, state.changed.notified()).await;
            });
        } else {
            std::thread::sleep(config.tick);
            // Two yields: the first lets the runtime poll its sockets without blocking and
            // queue every call that has datagrams; the second lets those calls run.
            runtime.block_on(async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            });
        }
    }
}

/// How often a thread waiting per datagram checks whether it should coalesce.
const RECHECK: Duration = Duration::from_millis(100);

#[allow(clippy::panic, reason = "invariant: start makes at least one shard")]
fn unreachable_no_shard() -> ! {
    panic!("a media runtime without threads")
}
