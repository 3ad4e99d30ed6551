//! The thread every SQLite write runs on.
//!
//! sqlx runs each SQLite connection on a thread of its own: every statement is a message to
//! that thread and an answer back. Measured on a 2-vCPU VM, that round trip costs about 3.5 µs
//! when the two threads share a core and 40–50 µs when they do not (the idle vCPU must be
//! woken, both ways). A write transaction holds the one writer connection across all its
//! statements, so the round trips of one transaction are time no other write can use: with
//! the writes driven from the application's runtime (whose threads move between cores), the
//! writer sat idle more than half the time while payments queued for it.
//!
//! So the writes run here: one thread with a single-threaded runtime, which opens the writer
//! connection itself. [`crate::Store::write`] hands each write's whole body to this thread
//! and awaits the answer: two crossings per operation instead of two per statement. The
//! transactions still meet in the group commit ([`super::group_commit`]), which batches
//! their commits and orders their line.
//!
//! Where the thread runs is the caller's choice ([`crate::Store::open_with_writer_setup`]):
//! its setup runs first on the thread, before the connection's own thread is started from
//! it, and a new thread inherits its creator's core and scheduling policy. The binary pins
//! both to one core on Linux ([`crate::pinning`]); elsewhere, or without it, the writes are
//! as correct, only slower.
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
    /// Starts the thread, runs `setup` on it and opens the writer connection from it.
    pub(super) async fn start(
        options: SqliteConnectOptions,
        setup: Option<fn()>,
    ) -> Result<(WriterThread, SqliteConnection), StoreError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        thread::Builder::new().name("ivrpay-sqlite-writer".to_owned()).spawn(move || {
            if let Some(setup) = setup {
                setup();
            }
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
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
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
