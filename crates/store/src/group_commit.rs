//! Group commit for SQLite: many transactions, one `fsync`.
//!
//! SQLite admits one writer at a time, and with `synchronous=FULL` each commit waits for the
//! disk (a few milliseconds here): one transaction per commit caps a node at a few hundred
//! writes per second however many calls wait. So every write transaction runs on one writer
//! connection, inside an *outer* transaction, as a savepoint:
//!
//! ```text
//! begin:   lock the writer ─ [RELEASE tx |  BEGIN IMMEDIATE] ─ SAVEPOINT tx
//! commit:  join the open batch ─ unlock ─ wait until the batch is durable
//! batch:   the last writer in the queue (or a waiter that waited too long) runs
//!          [RELEASE tx ─] COMMIT and tells every member of the batch how it went
//! drop:    the savepoint is rolled back by the next writer to take the lock
//! ```
//!
//! A committed savepoint is released by whoever takes the writer next, in the same query
//! string as its own first statement (`RELEASE tx; SAVEPOINT tx`, or `RELEASE tx; COMMIT`):
//! every statement is a hop to the connection's thread, and the hops, not the statements,
//! are most of what a short transaction costs.
//!
//! A caller's `commit` returns only once its batch is on disk, so what it acknowledges
//! survives a crash exactly as with one commit per transaction; the batch shares the fsync.
//! If the batch's COMMIT fails, every member gets the error (and each member's changes are
//! gone together, so none of them sees another's unsaved write succeed).
//!
//! Readers use the other pooled connections and never see a batch before its COMMIT.
//!
//! Writers queue in two lines ([`Urgency`]): the writes of a payment a customer is waiting
//! for (the attempt, the result, the live feed's events) go ahead of the bookkeeping (calls,
//! sessions opening, deliveries), with at most one normal transaction ahead of them. The
//! bookkeeping cannot starve: the writer's own queue is first come, first served, so the one
//! normal transaction in it waits only for the urgent ones that were there before it.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::error::StoreError;

/// A batch commits by itself once it has this many members, however busy the queue.
const MAX_BATCH: usize = 128;
/// A member whose batch is not committed after this long commits it itself (the writers
/// that would have were dropped, or the queue never emptied).
const PATIENCE: Duration = Duration::from_millis(4);

/// Which queue a transaction waits in for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// Bookkeeping nobody waits on at once (calls, sessions opening, deliveries).
    Normal,
    /// A write a customer on the line waits for (the payment's attempt, its result, the
    /// events before the charge): it waits behind at most one normal transaction.
    Urgent,
}

/// The writer connection and its batches.
#[derive(Debug)]
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
    /// Normal transactions queue here first, one at a time into the writer's queue, so an
    /// urgent one (which skips this) has at most one normal transaction ahead of it.
    normal_queue: Mutex<()>,
    /// Writers waiting for the lock or holding it.
    queued: AtomicUsize,
    /// The last batch that finished (committed or failed); batches finish in order.
    finished: watch::Sender<u64>,
    /// Why batches failed, until their members have read it.
    failures: StdMutex<BTreeMap<u64, String>>,
}

#[derive(Debug)]
struct State {
    conn: SqliteConnection,
    /// The open batch's number, if a batch (outer transaction) is open.
    open: Option<u64>,
    /// The number the next batch gets.
    next: u64,
    /// Transactions released into the open batch.
    members: usize,
    /// A transaction was dropped without committing: its savepoint is still there.
    abandoned: bool,
    /// A transaction committed into the batch and its savepoint is not released yet.
    unreleased: bool,
}

/// What a writer does after settling the last transaction's savepoint.
#[derive(Clone, Copy)]
enum Then {
    /// Opens its own savepoint in the open batch.
    Savepoint,
    /// Opens a batch, then its savepoint.
    BeginAndSavepoint,
    /// Commits the batch.
    Commit,
}

/// Every string [`State::settle_then`] can give, by what comes after the settling.
macro_rules! settled {
    ($then:literal) => {
        [concat!("ROLLBACK TO tx; RELEASE tx; ", $then), concat!("RELEASE tx; ", $then), $then]
    };
}

impl State {
    /// One query string that settles the last transaction's savepoint (kept: released into
    /// the batch; dropped without commit: rolled back; none left: nothing) and then does
    /// `then`. The strings are fixed, so sqlx prepares each once and keeps it.
    fn settle_then(&self, then: Then) -> &'static str {
        let settle = if self.abandoned {
            0
        } else if self.unreleased {
            1
        } else {
            2
        };
        let strings = match then {
            Then::Savepoint => settled!("SAVEPOINT tx"),
            Then::BeginAndSavepoint => settled!("BEGIN IMMEDIATE; SAVEPOINT tx"),
            Then::Commit => settled!("COMMIT"),
        };
        strings[settle]
    }
}

impl Writer {
    pub(crate) fn new(conn: SqliteConnection) -> Writer {
        let state =
            State { conn, open: None, next: 1, members: 0, abandoned: false, unreleased: false };
        Writer {
            state: Arc::new(Mutex::new(state)),
            normal_queue: Mutex::new(()),
            queued: AtomicUsize::new(0),
            finished: watch::Sender::new(0),
            failures: StdMutex::default(),
        }
    }

    /// Starts a transaction (a savepoint in the open batch).
    pub(crate) async fn begin(self: &Arc<Self>, urgency: Urgency) -> Result<SqliteTx, StoreError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let in_line = match urgency {
            Urgency::Normal => Some(self.normal_queue.lock().await),
            Urgency::Urgent => None,
        };
        let mut guard = Arc::clone(&self.state).lock_owned().await;
        drop(in_line);
        let started = self.start(&mut guard).await;
        match started {
            Ok(()) => Ok(SqliteTx { guard: Some(guard), writer: Arc::clone(self) }),
            Err(e) => {
                drop(guard);
                self.queued.fetch_sub(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Settles the last transaction's savepoint and opens this one's, in one hop. If that
    /// fails, the open batch fails with it (its savepoints may be half undone).
    async fn start(&self, state: &mut State) -> Result<(), StoreError> {
        let then = if state.open.is_some() { Then::Savepoint } else { Then::BeginAndSavepoint };
        if let Err(e) = sqlx::query(state.settle_then(then)).execute(&mut state.conn).await {
            self.fail(state, &format!("the batch was lost: {e}")).await;
            return Err(e.into());
        }
        if state.open.is_none() {
            state.open = Some(state.next);
            state.next += 1;
        }
        state.unreleased = false;
        state.abandoned = true;
        Ok(())
    }

    /// Commits the open batch (settling the last savepoint first, in the same hop) and tells
    /// its members.
    async fn finish(&self, state: &mut State) {
        let Some(batch) = state.open else { return };
        match sqlx::query(state.settle_then(Then::Commit)).execute(&mut state.conn).await {
            Ok(_) => {
                state.open = None;
                state.members = 0;
                state.abandoned = false;
                state.unreleased = false;
                self.finished.send_replace(batch);
            }
            Err(e) => self.fail(state, &e.to_string()).await,
        }
    }

    /// Rolls the open batch back and tells its members why.
    async fn fail(&self, state: &mut State, why: &str) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut state.conn).await;
        state.abandoned = false;
        state.unreleased = false;
        if let Some(batch) = state.open.take() {
            state.members = 0;
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            // Members read their batch's failure right after it: old ones can go.
            failures.retain(|&b, _| b + 1024 > batch);
            failures.insert(batch, why.to_owned());
            drop(failures);
            self.finished.send_replace(batch);
        }
    }

    /// Waits until `batch` is finished, committing it if nobody else does; its outcome.
    async fn durable(&self, batch: u64) -> Result<(), StoreError> {
        let mut finished = self.finished.subscribe();
        loop {
            let done = matches!(
                tokio::time::timeout(PATIENCE, finished.wait_for(|&f| f >= batch)).await,
                Ok(Ok(_))
            );
            if done {
                break;
            }
            self.queued.fetch_add(1, Ordering::SeqCst);
            let mut state = self.state.lock().await;
            if state.open == Some(batch) {
                self.finish(&mut state).await;
            }
            drop(state);
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
        let failure = self.failures.lock().unwrap_or_else(|e| e.into_inner()).get(&batch).cloned();
        match failure {
            None => Ok(()),
            Some(why) => Err(StoreError::Database(sqlx::Error::Protocol(format!(
                "the group commit failed: {why}"
            )))),
        }
    }

    /// Rolls back an abandoned savepoint and closes the open batch: committed if it has
    /// members, rolled back if it has none.
    async fn settle(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().await;
        if state.members > 0 {
            self.finish(&mut state).await;
        } else if let Some(batch) = state.open.take() {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut state.conn).await;
            state.abandoned = false;
            self.finished.send_replace(batch);
        }
        drop(state);
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }

    /// Commits what is open and checkpoints the write-ahead log into the database file (at
    /// shutdown, once the readers are closed). SQLite checkpoints by itself only when the
    /// last connection closes, and this one lives as long as the store: without it the
    /// file alone would lack every write since the last automatic checkpoint. A failed
    /// checkpoint loses nothing (the log stays beside the file and SQLite replays it on the
    /// next open), so its error is not worth failing a shutdown for.
    pub(crate) async fn close(&self) {
        let mut state = self.state.lock().await;
        self.finish(&mut state).await;
        let _ = sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut state.conn).await;
    }
}

/// A write transaction on SQLite: a savepoint in the writer's open batch. Derefs to the
/// writer connection. Dropping it without [`SqliteTx::commit`] rolls it back.
#[derive(Debug)]
pub(crate) struct SqliteTx {
    guard: Option<OwnedMutexGuard<State>>,
    writer: Arc<Writer>,
}

impl SqliteTx {
    /// Releases the savepoint into the batch and returns once the batch is on disk.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut state) = self.guard.take() else { return Ok(()) };
        let writer = Arc::clone(&self.writer);
        // The next holder of the writer releases the savepoint.
        state.abandoned = false;
        state.unreleased = true;
        state.members += 1;
        let Some(batch) = state.open else {
            // Unreachable in practice: a savepoint lives in an open batch.
            drop(state);
            writer.queued.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        };
        // The last writer in the queue commits for everyone before it.
        if writer.queued.load(Ordering::SeqCst) == 1 || state.members >= MAX_BATCH {
            writer.finish(&mut state).await;
        }
        drop(state);
        writer.queued.fetch_sub(1, Ordering::SeqCst);
        writer.durable(batch).await
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(state) = self.guard.take() {
            // `abandoned` stays set: the next holder of the lock rolls the savepoint back.
            drop(state);
            let last = self.writer.queued.fetch_sub(1, Ordering::SeqCst) == 1;
            // Nobody is coming: settle now, or the open batch would keep the file's write
            // lock from other connections (and other processes) until the next write.
            if let (true, Ok(runtime)) = (last, tokio::runtime::Handle::try_current()) {
                let writer = Arc::clone(&self.writer);
                runtime.spawn(async move { writer.settle().await });
            }
        }
    }
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        // The guard is only taken by `commit` and `drop`, which consume the transaction.
        match &self.guard {
            Some(state) => &state.conn,
            None => unreachable_connection(),
        }
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.guard {
            Some(state) => &mut state.conn,
            None => unreachable_connection(),
        }
    }
}

#[allow(clippy::panic, reason = "invariant: a live transaction holds the writer")]
fn unreachable_connection() -> ! {
    panic!("a store transaction was used after commit")
}

#[cfg(test)]
mod tests {
    //! The group commit against a real SQLite file, read back through a second connection
    //! (what another process, or the store's readers, would see).
    use std::sync::Arc;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, SqliteConnection};

    use super::{Ordering, Urgency, Writer};

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
            self.insert_as(Urgency::Normal, values, commit).await
        }

        async fn insert_as(
            &self,
            urgency: Urgency,
            values: &[Option<i64>],
            commit: bool,
        ) -> Result<(), crate::StoreError> {
            let mut tx = self.writer.begin(urgency).await?;
            for v in values {
                sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(v).execute(&mut *tx).await?;
            }
            if commit {
                tx.commit().await?;
            }
            Ok(())
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
        until_queued(&f, 2).await;
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

    /// Waits until `n` writers are queued for (or hold) the writer.
    async fn until_queued(f: &Fixture, n: usize) {
        for _ in 0..1000 {
            if f.writer.queued.load(Ordering::SeqCst) == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!(
            "{n} writers never queued (the writer has {})",
            f.writer.queued.load(Ordering::SeqCst)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_urgent_write_waits_behind_at_most_one_normal_one() {
        let f = Arc::new(fixture().await);
        let mut holder = f.writer.begin(Urgency::Normal).await.expect("holder");
        sqlx::query("INSERT INTO t (v) VALUES (0)").execute(&mut *holder).await.expect("insert");
        let spawn = |urgency, v| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.insert_as(urgency, &[Some(v)], true).await })
        };
        let mut writers = Vec::new();
        for (n, v) in [1, 2, 3].into_iter().enumerate() {
            writers.push(spawn(Urgency::Normal, v));
            until_queued(&f, n + 2).await;
        }
        writers.push(spawn(Urgency::Urgent, 9));
        until_queued(&f, 5).await;
        holder.commit().await.expect("holder commits");
        for w in writers {
            w.await.expect("writer task").expect("commit");
        }
        let mut reader: SqliteConnection = f.options.connect().await.expect("reader");
        let order: Vec<i64> = sqlx::query_scalar("SELECT v FROM t ORDER BY rowid")
            .fetch_all(&mut reader)
            .await
            .expect("read");
        assert_eq!(order, [0, 1, 9, 2, 3], "the urgent write overtook all but the first normal");
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
        let batches = *f.writer.finished.borrow();
        assert!(batches < 64, "64 writers took {batches} commits: nothing was shared");
    }
}
