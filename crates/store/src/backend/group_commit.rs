//! Group commit for SQLite: many transactions, one `fsync`.
//!
//! SQLite admits one writer at a time, and with `synchronous=FULL` each commit waits for the
//! disk (a few milliseconds here): one transaction per commit caps a node at a few hundred
//! writes per second however many calls wait. So every write transaction runs on one writer
//! connection, inside an *outer* transaction, as a savepoint:
//!
//! ```text
//! begin:   wait for the connection ─ [RELEASE tx |  BEGIN IMMEDIATE] ─ SAVEPOINT tx
//! commit:  join the open batch ─ hand the connection on ─ wait until the batch is durable
//! batch:   the last writer in line (or a member that waited too long) runs
//!          [RELEASE tx ─] COMMIT and tells every member of the batch how it went
//! drop:    the savepoint is rolled back by the next writer to get the connection
//! ```
//!
//! The decisions (the order of the line, the SQL each writer runs first, when a batch
//! commits, how long a member waits) are the sans-IO [`batcher`]; this module is its driver:
//! it holds the connection, runs the SQL, reads the clock and wakes the writers.
//!
//! A caller's commit returns only once its batch is on disk, so what it acknowledges
//! survives a crash exactly as with one commit per transaction; the batch shares the fsync.
//! If the batch's COMMIT fails, every member gets the error (and each member's changes are
//! gone together, so none of them sees another's unsaved write succeed).
//!
//! Readers use the store's other connections and never see a batch before its COMMIT.

mod batcher;

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use sqlx::SqliteConnection;
use tokio::sync::{oneshot, watch};

use crate::error::StoreError;
use batcher::{BatchId, Batcher, Committed, Turn};

pub(crate) use batcher::Urgency;

/// The writer connection, handed from writer to writer.
#[derive(Debug)]
pub(crate) struct Writer {
    core: Mutex<Core>,
    /// The last batch that closed (committed or failed); batches close in order.
    closed: watch::Sender<BatchId>,
}

#[derive(Debug)]
struct Core {
    batcher: Batcher<oneshot::Sender<SqliteConnection>>,
    /// The connection, while no writer holds it.
    idle: Option<SqliteConnection>,
}

#[allow(clippy::disallowed_methods, reason = "the group commit's driver owns its clock")]
fn now() -> Instant {
    Instant::now()
}

fn stopped_error() -> StoreError {
    StoreError::Config("the SQLite writer has stopped")
}

impl Writer {
    pub(super) fn new(conn: SqliteConnection) -> Writer {
        let core = Core { batcher: Batcher::new(), idle: Some(conn) };
        Writer { core: Mutex::new(core), closed: watch::Sender::new(0) }
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // Nothing panics while holding the lock; a poisoned lock's state is still whole.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a transaction (a savepoint in the open batch). Only the store's write path
    /// calls this, on the writer thread (see `Store::write`).
    pub(super) async fn begin(self: &Arc<Self>, urgency: Urgency) -> Result<SqliteTx, StoreError> {
        let mut held = self.wait_for_turn(Turn::Transaction(urgency)).await?;
        let sql = self.core().batcher.begin();
        if let Err(e) = sqlx::query(sql).execute(&mut *held).await {
            // The open batch's savepoints may be half undone: it fails as a whole.
            self.roll_back(&mut held, format!("the batch was lost: {e}")).await;
            return Err(e.into());
        }
        Ok(SqliteTx { held })
    }

    /// Queues for the connection and waits until it is this writer's.
    async fn wait_for_turn(self: &Arc<Self>, turn: Turn) -> Result<Held, StoreError> {
        let (wake, woken) = oneshot::channel();
        {
            let mut core = self.core();
            core.batcher.arrive(wake, turn);
            core.hand_on();
        }
        let conn = woken.await.map_err(|_| stopped_error())?;
        Ok(Held { conn: Some(conn), writer: Arc::clone(self) })
    }

    /// Commits the open batch (settling the last savepoint in the same hop) with `sql`, and
    /// tells its members.
    async fn commit_batch(&self, held: &mut Held, sql: &'static str) {
        match sqlx::query(sql).execute(&mut **held).await {
            Ok(_) => {
                let batch = self.core().batcher.closed(Ok(()));
                self.closed.send_replace(batch);
            }
            Err(e) => self.roll_back(held, e.to_string()).await,
        }
    }

    /// Rolls the open batch back and tells its members why.
    async fn roll_back(&self, held: &mut Held, why: String) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut **held).await;
        let batch = self.core().batcher.closed(Err(why));
        self.closed.send_replace(batch);
    }

    /// Closes `target` (or whichever batch is open, for `None`) if it is still open.
    async fn close(self: &Arc<Self>, target: Option<BatchId>) -> Result<Held, StoreError> {
        let mut held = self.wait_for_turn(Turn::Close(target)).await?;
        let commit = self.core().batcher.close(target);
        if let Some((_, sql)) = commit {
            self.commit_batch(&mut held, sql).await;
        }
        Ok(held)
    }

    /// Waits until `batch` is closed, closing it at `until` if nobody has; its outcome.
    async fn durable(self: &Arc<Self>, batch: BatchId, until: Instant) -> Result<(), StoreError> {
        let mut closed = self.closed.subscribe();
        let deadline = tokio::time::Instant::from_std(until);
        let waiting = tokio::time::timeout_at(deadline, closed.wait_for(|&c| c >= batch));
        // One statement: the value's guard (it locks the channel) is not kept past it.
        let closed_in_time = matches!(waiting.await, Ok(Ok(_)));
        if !closed_in_time {
            // Closed by us or before us: either way its outcome is known after this.
            drop(self.close(Some(batch)).await?);
        }
        self.outcome(batch)
    }

    /// How the closed `batch` ended, as its members' answer.
    fn outcome(&self, batch: BatchId) -> Result<(), StoreError> {
        match self.core().batcher.outcome(batch) {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(StoreError::Database(sqlx::Error::Protocol(format!(
                "the group commit failed: {why}"
            )))),
            // Unreachable: members ask once their batch is closed, and closed ones have an
            // outcome.
            None => Err(stopped_error()),
        }
    }

    /// Commits what is open and checkpoints the write-ahead log into the database file (at
    /// shutdown, once the readers are closed). SQLite checkpoints by itself only when the
    /// last connection closes, and this one lives as long as the store: without it the
    /// file alone would lack every write since the last automatic checkpoint. A failed
    /// checkpoint loses nothing (the log stays beside the file and SQLite replays it on the
    /// next open), so its error is not worth failing a shutdown for.
    pub(super) async fn shut_down(self: &Arc<Self>) {
        if let Ok(mut held) = self.close(None).await {
            let _ = sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *held).await;
        }
    }
}

impl Core {
    /// Hands the idle connection to the next writer in line, if any. A writer that stopped
    /// waiting (its task was dropped) is passed over.
    fn hand_on(&mut self) {
        while let Some(conn) = self.idle.take() {
            let Some((wake, _)) = self.batcher.grant() else {
                self.idle = Some(conn);
                return;
            };
            match wake.send(conn) {
                Ok(()) => return,
                Err(conn) => {
                    self.idle = Some(conn);
                    // It never began: nothing of its own to settle.
                    let _ = self.batcher.release();
                }
            }
        }
    }
}

/// The writer connection while one writer holds it; handed on when dropped.
#[derive(Debug)]
struct Held {
    /// Taken only by `drop`.
    conn: Option<SqliteConnection>,
    writer: Arc<Writer>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let close_now = {
            let mut core = self.writer.core();
            core.idle = Some(conn);
            let close_now = core.batcher.release();
            core.hand_on();
            close_now
        };
        // Nobody is coming: close the batch now, or it would keep the file's write lock from
        // other connections (and other processes) until the next write.
        if let (true, Ok(runtime)) = (close_now, tokio::runtime::Handle::try_current()) {
            let writer = Arc::clone(&self.writer);
            runtime.spawn(async move { drop(writer.close(None).await) });
        }
    }
}

impl Deref for Held {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable_connection(),
        }
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable_connection(),
        }
    }
}

#[allow(clippy::panic, reason = "invariant: only drop takes the connection out")]
fn unreachable_connection() -> ! {
    panic!("the writer connection was used after it was handed on")
}

/// A write transaction on SQLite: a savepoint in the writer's open batch. Derefs to the
/// writer connection. Dropping it without [`SqliteTx::commit`] rolls it back.
#[derive(Debug)]
pub(crate) struct SqliteTx {
    held: Held,
}

impl SqliteTx {
    /// Releases the savepoint into the batch and returns once the batch is on disk.
    pub(super) async fn commit(self) -> Result<(), StoreError> {
        let SqliteTx { mut held } = self;
        let writer = Arc::clone(&held.writer);
        let committed = writer.core().batcher.commit(now());
        match committed {
            Committed::CommitNow { batch, sql } => {
                writer.commit_batch(&mut held, sql).await;
                drop(held);
                writer.outcome(batch)
            }
            Committed::Wait { batch, until } => {
                drop(held);
                writer.durable(batch, until).await
            }
        }
    }
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.held
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.held
    }
}

#[cfg(test)]
mod tests {
    //! The driver against a real SQLite file, read back through a second connection (what
    //! another process, or the store's readers, would see). The schedules themselves are
    //! the batcher's tests.
    use std::sync::Arc;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, SqliteConnection};

    use super::{Urgency, Writer};

    struct Fixture {
        writer: Arc<Writer>,
        options: SqliteConnectOptions,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("writer.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("temp_store", "MEMORY");
        let mut conn = options.connect().await.expect("connect");
        sqlx::raw_sql("CREATE TABLE t (v INTEGER NOT NULL)")
            .execute(&mut conn)
            .await
            .expect("table");
        Fixture { writer: Arc::new(Writer::new(conn)), options, _dir: dir }
    }

    impl Fixture {
        /// What a separate connection reads: only committed batches.
        async fn committed(&self) -> Vec<i64> {
            let mut reader: SqliteConnection = self.options.connect().await.expect("reader");
            sqlx::query_scalar("SELECT v FROM t ORDER BY v")
                .fetch_all(&mut reader)
                .await
                .expect("read")
        }

        /// One transaction that inserts `values` in turn: committed, or dropped without
        /// committing (also when a statement fails).
        async fn insert(
            &self,
            values: &[Option<i64>],
            commit: bool,
        ) -> Result<(), crate::StoreError> {
            let mut tx = self.writer.begin(Urgency::Normal).await?;
            for v in values {
                sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(v).execute(&mut *tx).await?;
            }
            if commit {
                tx.commit().await?;
            }
            Ok(())
        }

        /// The number of batches closed so far.
        fn batches(&self) -> u64 {
            *self.writer.closed.borrow()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_is_on_disk_when_it_returns_and_a_dropped_transaction_leaves_nothing() {
        let f = fixture().await;
        f.insert(&[Some(1)], true).await.expect("first");
        assert_eq!(f.committed().await, [1], "visible to another connection once commit returns");
        f.insert(&[Some(2)], false).await.expect("dropped");
        f.insert(&[Some(3)], true).await.expect("after the dropped one");
        assert_eq!(f.committed().await, [1, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_transaction_leaves_nothing_in_a_batch_that_commits() {
        let f = Arc::new(fixture().await);
        let mut a = f.writer.begin(Urgency::Normal).await.expect("a");
        sqlx::query("INSERT INTO t (v) VALUES (1)").execute(&mut *a).await.expect("insert");
        // B queues for the writer behind A, so A's commit joins a batch that B writes into
        // and then drops.
        let b = {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.insert(&[Some(2)], false).await })
        };
        until_in_line(&f).await;
        a.commit().await.expect("a's batch commits");
        b.await.expect("b task").expect("b ran");
        assert_eq!(f.committed().await, [1], "B's row went with its savepoint");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_statement_leaves_nothing_and_the_next_writer_commits() {
        let f = fixture().await;
        f.insert(&[Some(5)], true).await.expect("before");
        // The first row goes in; the second breaks the NOT NULL constraint.
        let failed = f.insert(&[Some(6), None], true).await;
        assert!(failed.is_err());
        f.insert(&[Some(7)], true).await.expect("the next writer");
        assert_eq!(f.committed().await, [5, 7]);
    }

    /// Waits until a writer is in line (it is a spawned task: a worker must pick it up).
    async fn until_in_line(f: &Fixture) {
        let queued = async {
            while f.writer.core().batcher.waiting() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), queued)
            .await
            .expect("no writer queued within 10 s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_waiting_at_once_share_commits_and_all_land() {
        let f = Arc::new(fixture().await);
        let writers: Vec<_> = (0..64)
            .map(|v| {
                let f = Arc::clone(&f);
                tokio::spawn(async move { f.insert(&[Some(v)], true).await })
            })
            .collect();
        for w in writers {
            w.await.expect("writer task").expect("commit");
        }
        assert_eq!(f.committed().await, (0..64).collect::<Vec<i64>>());
        let batches = f.batches();
        assert!(batches < 64, "64 writers took {batches} commits: nothing was shared");
    }
}
