//! The thread every SQLite write runs on, and the core it shares with the writer connection.
//!
//! sqlx runs each SQLite connection on a thread of its own: every statement is a message to
//! that thread and an answer back. Measured on a 2-vCPU VM, that round trip costs about 3.5 µs
//! when the two threads share a core and 40–50 µs when they do not (the idle vCPU must be
//! woken, both ways). A write transaction holds the one writer connection across all its
//! statements, so the round trips of one transaction are time no other write can use: with
//! the writes driven from the application's runtime (whose threads move between cores), the
//! writer sat idle more than half the time while payments queued for it.
//!
//! So the writes run here: one thread with a single-threaded runtime, pinned to one core,
//! which opens the writer connection itself (a new thread inherits its creator's core, so
//! sqlx's connection thread lands on the same one). [`crate::Store`]'s write operations hand
//! their work to this thread and await the answer: two crossings per operation instead of
//! two per statement. The transactions still meet in the group commit
//! ([`crate::group_commit`]), which batches their commits and orders their queue.
//!
//! A write handed over runs to its end even when its caller stops waiting: it is either
//! committed or rolled back whole, never cut off between two statements.

use std::future::Future;
use std::thread;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::runtime::{self, Handle};
use tokio::sync::oneshot;

use crate::error::StoreError;

/// The writer thread's runtime; dropping the last handle stops the thread.
#[derive(Debug)]
pub(crate) struct WriterThread {
    runtime: Handle,
    /// Dropped with this handle: the thread's runtime returns and ends the thread.
    _stop: oneshot::Sender<()>,
}

impl WriterThread {
    /// Starts the thread, pins it to a core and opens the writer connection on it.
    pub(crate) async fn start(
        options: SqliteConnectOptions,
    ) -> Result<(WriterThread, SqliteConnection), StoreError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        thread::Builder::new().name("ivrpay-sqlite-writer".to_owned()).spawn(move || {
            pin_to_one_core();
            no_wake_up_preemption();
            let runtime = match runtime::Builder::new_current_thread().enable_time().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(StoreError::Io(e)));
                    return;
                }
            };
            match runtime.block_on(options.connect()) {
                Ok(conn) => {
                    if ready_tx.send(Ok((runtime.handle().clone(), conn))).is_ok() {
                        // Runs the writes until the store is dropped.
                        let _ = runtime.block_on(stopped);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                }
            }
        })?;
        let (runtime, conn) = ready_rx.await.map_err(|_| stopped_error())??;
        Ok((WriterThread { runtime, _stop: stop }, conn))
    }

    /// Runs `work` on the writer thread and returns its result. A panic in `work` is raised
    /// again here.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.runtime.spawn(work).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(stopped_error()),
        }
    }
}

fn stopped_error() -> StoreError {
    StoreError::Config("the SQLite writer thread has stopped")
}

/// Puts the calling thread (and the threads it starts) in `SCHED_BATCH`, where a thread
/// that wakes does not preempt the one running. The writer thread and the connection's
/// thread share a core and wake each other once per statement; preempting at the wake-up
/// switched to a thread that at once found the channel's lock still held by the one it
/// preempted, spun on it and slept again (measured: `SCHED_BATCH` took a payment's writes
/// from 1.5 to 1.2 ms of that core). Best effort, as for the core.
fn no_wake_up_preemption() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        // Nice 0: the batch policy alone, the same share of the core as before.
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
}

/// Pins the calling thread to the last core it may run on (the first is where the kernel
/// tends to put everything else). Best effort: without the call (or on a system that
/// refuses it) the writes are as correct, only slower.
fn pin_to_one_core() {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let me = Pid::from_raw(0);
    let Ok(allowed) = sched_getaffinity(me) else { return };
    let Some(last) = (0..CpuSet::count()).rev().find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
    else {
        return;
    };
    let mut one = CpuSet::new();
    if one.set(last).is_ok() {
        let _ = sched_setaffinity(me, &one);
    }
}

#[cfg(test)]
mod tests {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;

    fn allowed_cpus() -> usize {
        let set = sched_getaffinity(Pid::from_raw(0)).expect("affinity");
        (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).count()
    }

    #[test]
    fn the_writer_thread_and_the_threads_it_starts_keep_to_one_core() {
        let (mine, child) = std::thread::spawn(|| {
            super::pin_to_one_core();
            // What sqlx's connection thread gets: it is started from the pinned thread.
            (allowed_cpus(), std::thread::spawn(allowed_cpus).join().expect("child"))
        })
        .join()
        .expect("pinned thread");
        assert_eq!((mine, child), (1, 1));
    }
}
