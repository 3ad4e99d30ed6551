//! The outbox dispatcher: the one driver of the sync.
//!
//! # Run loop
//!
//! ```text
//!  claim loop ── claim up to (free slots) due deliveries ──▶ one task per delivery
//!      ▲                                                        │ sink.deliver(now)
//!      │ slot freed when answered                               ▼
//!  recorder ◀──────────── finished attempts (channel) ──── outcome → next state
//!      └─ record_attempts(batch): one transaction per batch
//! ```
//!
//! - `concurrency` slots bound the requests in flight; a slot is free as soon as its answer is
//!   in, while recording happens in batches behind (the row stays leased until recorded,
//!   so no one claims it meanwhile): deliveries are not held up by commit latency.
//! - The claim loop claims as many rows as there are free slots, so claims, deliveries and
//!   recording overlap; when nothing is due it sleeps `poll_interval` (or until woken).
//! - A failed attempt is rescheduled on the [`RetrySchedule`] with jitter, or dead-lettered
//!   when the schedule is spent or the sink says retrying cannot help; the
//!   `alert_after`-th consecutive failure raises `delivery.failing` (except for deliveries
//!   of alerts themselves, which would loop).
//! - Stopping stops claiming, lets the deliveries in flight finish and records them. A
//!   process killed instead leaves leased rows that are sent again when the lease runs out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ivrpay_store::{ClaimedDelivery, DeliveryResult, EventType, FinishedAttempt, Store};
use rand::RngExt as _;
use serde_json::json;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::sinks::{AttemptOutcome, SinkSet};
use crate::{Clock, RetrySchedule, SyncMetrics};

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Deliveries in flight at most.
    pub concurrency: usize,
    /// Rows claimed per round trip at most.
    pub batch: u32,
    /// How long a claim holds a row; longer than any attempt takes.
    pub lease: Duration,
    /// The wait when nothing is due.
    pub poll_interval: Duration,
    /// Delays after failures.
    pub schedule: RetrySchedule,
    /// Consecutive failures that raise `delivery.failing` (0: never).
    pub alert_after: u32,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            batch: 256,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            schedule: RetrySchedule::standard(),
            alert_after: 4,
        }
    }
}

/// The dispatcher, before it runs.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    sinks: Arc<SinkSet>,
    config: DispatcherConfig,
    clock: Arc<dyn Clock>,
    metrics: Arc<SyncMetrics>,
}

/// A running dispatcher. Stop it with [`DispatcherHandle::stop`]; dropping it leaves it
/// running until the runtime ends.
#[derive(Debug)]
#[must_use = "a dispatcher runs until stopped"]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Claims again now (after a retry or a replay) instead of at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops claiming, waits for the deliveries in flight (at most `grace`) and their
    /// records.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            abort.abort();
        }
    }
}

struct Finished {
    attempt: FinishedAttempt,
}

impl Dispatcher {
    /// A dispatcher over `store`, delivering to `sinks`.
    pub fn new(
        store: Store,
        sinks: Arc<SinkSet>,
        config: DispatcherConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<SyncMetrics>,
    ) -> Self {
        Self { store, sinks, config, clock, metrics }
    }

    /// Starts it on the current runtime.
    pub fn spawn(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(self.run(stopped, Arc::clone(&wake)));
        DispatcherHandle { stop, wake, task }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>, wake: Arc<Notify>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.config.concurrency.max(1)));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finished>();
        let freed = Arc::new(Notify::new());
        let recorder = tokio::spawn(Arc::clone(&this).record(done_rx));
        let mut deliveries = tokio::task::JoinSet::new();
        loop {
            if *stopped.borrow() {
                break;
            }
            // Wait for at least one free slot, then take every free one.
            let first = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = stopped.changed() => break,
            };
            // With deliveries in flight, wait until a quarter of the slots are free (or a
            // poll interval passes): one claim of many rows costs about what one of a
            // single row does.
            let threshold = (this.config.concurrency / 4).max(1);
            let deadline = tokio::time::Instant::now() + this.config.poll_interval;
            while slots.available_permits() + 1 < threshold
                && slots.available_permits() + 1 < this.config.concurrency
            {
                tokio::select! {
                    () = freed.notified() => {}
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = stopped.changed() => break,
                }
            }
            let mut permits = vec![first];
            let want = usize::try_from(this.config.batch).unwrap_or(usize::MAX);
            while permits.len() < want {
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let limit = u32::try_from(permits.len()).unwrap_or(this.config.batch);
            let now = this.clock.now();
            let claimed = match this.store.claim_deliveries(now, this.config.lease, limit).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    warn!("sync: claiming deliveries failed: {e}");
                    Vec::new()
                }
            };
            let full = claimed.len() == permits.len();
            for (delivery, slot) in claimed.into_iter().zip(permits.drain(..)) {
                let this = Arc::clone(&this);
                let done = done_tx.clone();
                SyncMetrics::add(&this.metrics.in_flight, 1);
                let freed = Arc::clone(&freed);
                deliveries.spawn(async move {
                    let attempt = this.attempt(delivery).await;
                    // The slot bounds requests in flight, not commits: it is free as soon
                    // as the answer is in. The row stays leased until it is recorded, so
                    // nobody claims it meanwhile.
                    drop(slot);
                    freed.notify_one();
                    let _ = done.send(Finished { attempt });
                });
            }
            drop(permits);
            while deliveries.try_join_next().is_some() {}
            if !full {
                tokio::select! {
                    () = tokio::time::sleep(this.config.poll_interval) => {}
                    () = wake.notified() => {}
                    _ = stopped.changed() => {}
                }
            }
        }
        while deliveries.join_next().await.is_some() {}
        drop(done_tx);
        let _ = recorder.await;
    }

    /// One attempt: deliver, then decide the next state.
    async fn attempt(&self, d: ClaimedDelivery) -> FinishedAttempt {
        let started = self.clock.now();
        let outcome = match self.sinks.get(&d.sink_id, started).await {
            Ok(Some(sink)) => sink.deliver(&d, started).await,
            Ok(None) => AttemptOutcome::permanent("sink deleted"),
            Err(problem) => AttemptOutcome::failed(format!("sink unavailable: {problem}")),
        };
        let ended = self.clock.now();
        SyncMetrics::add(&self.metrics.attempts, 1);
        let failures = u32::try_from(d.attempts).unwrap_or(u32::MAX);
        let (result, alert) = if outcome.ok {
            (DeliveryResult::Delivered { status: outcome.status }, None)
        } else {
            let error = outcome.error.clone().unwrap_or_else(|| "failed".to_owned());
            let delay = if outcome.permanent {
                None
            } else {
                self.config.schedule.delay_after(failures, rand::rng().random::<f64>())
            };
            let result = match delay {
                Some(delay) => DeliveryResult::Retry {
                    next_attempt_at: ended.saturating_add(delay),
                    error: error.clone(),
                    status: outcome.status,
                },
                None => DeliveryResult::Dead { error: error.clone(), status: outcome.status },
            };
            let alert = (self.config.alert_after > 0
                && failures == self.config.alert_after
                && d.event_type != EventType::DeliveryFailing)
                .then(|| {
                    json!({
                        "delivery_id": d.id,
                        "sink_id": d.sink_id,
                        "event_id": d.event_id,
                        "event_type": d.event_type.as_str(),
                        "attempts": d.attempts,
                        "last_error": error,
                        "last_status": outcome.status,
                        "dead": matches!(result, DeliveryResult::Dead { .. }),
                    })
                });
            (result, alert)
        };
        debug!(delivery = %d.id, attempt = d.attempts, ok = outcome.ok, "sync: attempt");
        FinishedAttempt {
            delivery_id: d.id,
            tenant_id: d.tenant_id,
            attempt: d.attempts,
            result,
            response_body: outcome.body,
            started_at: started,
            ended_at: ended,
            alert,
        }
    }

    /// Records finished attempts in batches, one transaction each.
    async fn record(self: Arc<Self>, mut done: mpsc::UnboundedReceiver<Finished>) {
        const MAX_BATCH: usize = 512;
        let mut batch: Vec<Finished> = Vec::with_capacity(MAX_BATCH);
        while done.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let attempts: Vec<FinishedAttempt> = batch.iter().map(|f| f.attempt.clone()).collect();
            let mut tries = 0;
            let applied = loop {
                match self.store.record_attempts(&attempts).await {
                    Ok(applied) => break Some(applied),
                    Err(e) if tries < 5 => {
                        tries += 1;
                        warn!(
                            "sync: recording {} attempts failed (try {tries}): {e}",
                            attempts.len()
                        );
                        tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                    }
                    Err(e) => {
                        // The leases run out and the deliveries are attempted again.
                        warn!("sync: giving up recording {} attempts: {e}", attempts.len());
                        break None;
                    }
                }
            };
            let m = &self.metrics;
            if let Some(applied) = applied {
                for (a, current) in attempts.iter().zip(applied) {
                    if !current {
                        SyncMetrics::add(&m.late, 1);
                        continue;
                    }
                    match a.result {
                        DeliveryResult::Delivered { .. } => SyncMetrics::add(&m.delivered, 1),
                        DeliveryResult::Dead { .. } => {
                            SyncMetrics::add(&m.failed_attempts, 1);
                            SyncMetrics::add(&m.dead_lettered, 1);
                        }
                        _ => SyncMetrics::add(&m.failed_attempts, 1),
                    }
                    if a.alert.is_some() {
                        SyncMetrics::add(&m.alerts, 1);
                        warn!(delivery = %a.delivery_id, "sync: delivery failing");
                    }
                }
            }
            m.in_flight.fetch_sub(u64::try_from(batch.len()).unwrap_or(0), Ordering::Relaxed);
            batch.clear();
        }
    }
}
