//! The group commit's decisions, without I/O (STYLE.md rule 1): who gets the writer
//! connection next, which SQL the writer that gets it runs first, when a batch commits, how
//! long a member waits for its batch before closing it itself, and what each member is told.
//!
//! The driver (the parent module) owns the connection and the clock: it reports what happens
//! (a writer arrives, is handed the connection, commits, goes away, a batch's COMMIT
//! succeeds or fails) and does what it is told. Time is an argument, so the tests run every
//! schedule on simulated time, without a database and without sleeping.
//!
//! ```text
//! arrive(waiter, turn) ─▶ line ─ grant() ─▶ holder ─ begin() ─ statements ─ commit(now)
//!                                                                   │
//!          CommitNow: the holder runs the COMMIT, closed(result) ◀──┤
//!          Wait { until }: hand on; at `until` arrive(Close(batch)) ◀┘
//! ```
//!
//! Writers queue in two lines ([`Urgency`]): the writes of a payment a customer is waiting
//! for go ahead of the bookkeeping, with at most one normal transaction ahead of them. The
//! bookkeeping cannot starve: the line itself is first come, first served, and a normal
//! transaction joins it as soon as the one before it is handed the connection, so it waits
//! only for the urgent ones that were in the line before it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A batch commits by itself once it has this many members, however busy the queue.
pub(crate) const MAX_BATCH: usize = 128;
/// A member whose batch is not committed this long after its own commit closes the batch
/// itself (the writers that would have went away, or the line never emptied).
pub(crate) const PATIENCE: Duration = Duration::from_millis(4);
/// How many batches back a failure is remembered: members read their batch's outcome as
/// soon as it closes.
const FAILURES_KEPT: u64 = 1024;

/// A batch's number; batches are numbered from 1 and close in order.
pub(crate) type BatchId = u64;

/// Which line a transaction waits in for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// Bookkeeping nobody waits on at once (calls, sessions opening, deliveries).
    Normal,
    /// A write a customer on the line waits for (the payment's attempt, its result, the
    /// events before the charge): it waits behind at most one normal transaction.
    Urgent,
}

/// What a writer waits for the connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A transaction: a savepoint in the open batch.
    Transaction(Urgency),
    /// Closing a batch: `Some` a member's whose patience ran out, `None` whichever is open
    /// (nobody is left to commit it, or the store closes).
    Close(Option<BatchId>),
}

/// What a committed transaction's writer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// Commit the batch now with `sql` (nobody else is in line, or the batch is full),
    /// report it with [`Batcher::closed`], then hand the connection on.
    CommitNow { batch: BatchId, sql: &'static str },
    /// Hand the connection on and wait for `batch` to close; at `until`, arrive with
    /// [`Turn::Close`] to close it.
    Wait { batch: BatchId, until: Instant },
}

/// The state of the last transaction's savepoint, settled by the next writer in the same
/// query string as its own first statement: each statement is a hop to the connection's
/// thread, and the hops are most of what a short transaction costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoint {
    /// None left to settle.
    Settled,
    /// Committed into the batch: to be released.
    Kept,
    /// Begun and not committed (dropped, or still running): to be rolled back.
    Abandoned,
}

/// What a writer runs after settling the last savepoint.
#[derive(Clone, Copy)]
enum Then {
    /// Opens its own savepoint in the open batch.
    Savepoint,
    /// Opens a batch, then its savepoint. `IMMEDIATE` takes the write lock at once, so two
    /// writers never deadlock upgrading read locks.
    BeginAndSavepoint,
    /// Commits the batch.
    Commit,
}

/// Every query string [`Batcher::settle_then`] can give, by what comes after the settling.
/// The strings are fixed, so sqlx prepares each once and keeps it.
macro_rules! settled {
    ($then:literal) => {
        [$then, concat!("RELEASE tx; ", $then), concat!("ROLLBACK TO tx; RELEASE tx; ", $then)]
    };
}

/// The group commit's state. `W` is what the driver wakes a waiting writer with.
#[derive(Debug)]
pub(crate) struct Batcher<W> {
    /// Writers waiting for the connection, first come first served.
    line: VecDeque<(W, Turn)>,
    /// Normal transactions waiting to join the line: one at a time joins it.
    normals: VecDeque<W>,
    /// A normal transaction is in the line and not handed the connection yet.
    normal_in_line: bool,
    /// A writer holds the connection.
    held: bool,
    /// The open batch's number, or the next batch's when none is open.
    current: BatchId,
    /// Whether batch `current` is open (its outer transaction begun).
    open: bool,
    /// Transactions committed into the open batch.
    members: usize,
    savepoint: Savepoint,
    /// Why batches failed, until their members have read it.
    failures: BTreeMap<BatchId, String>,
}

impl<W> Batcher<W> {
    pub(crate) fn new() -> Self {
        Batcher {
            line: VecDeque::new(),
            normals: VecDeque::new(),
            normal_in_line: false,
            held: false,
            current: 1,
            open: false,
            members: 0,
            savepoint: Savepoint::Settled,
            failures: BTreeMap::new(),
        }
    }

    /// A writer queues for the connection; [`Batcher::grant`] says when it is its turn.
    pub(crate) fn arrive(&mut self, waiter: W, turn: Turn) {
        if turn == Turn::Transaction(Urgency::Normal) {
            if self.normal_in_line {
                self.normals.push_back(waiter);
                return;
            }
            self.normal_in_line = true;
        }
        self.line.push_back((waiter, turn));
    }

    /// The next writer to hand the connection to, if it is free and someone waits. The
    /// writer then calls [`Batcher::begin`] or [`Batcher::close`] for its turn, and
    /// [`Batcher::release`] when it hands the connection back.
    pub(crate) fn grant(&mut self) -> Option<(W, Turn)> {
        if self.held {
            return None;
        }
        let (waiter, turn) = self.line.pop_front()?;
        self.held = true;
        if turn == Turn::Transaction(Urgency::Normal) {
            self.normal_in_line = false;
            if let Some(next) = self.normals.pop_front() {
                self.arrive(next, turn);
            }
        }
        Some((waiter, turn))
    }

    /// The holder begins its transaction: the SQL that settles the last savepoint, opens a
    /// batch if none is open, and opens this transaction's savepoint. If it fails, report
    /// it with [`Batcher::closed`] (the open batch's savepoints may be half undone).
    pub(crate) fn begin(&mut self) -> &'static str {
        let then = if self.open { Then::Savepoint } else { Then::BeginAndSavepoint };
        let sql = self.settle_then(then);
        self.open = true;
        // Until its commit: a writer that goes away leaves it to be rolled back.
        self.savepoint = Savepoint::Abandoned;
        sql
    }

    /// The holder's transaction is committed into the open batch: it commits the batch now
    /// if nobody is in line behind it (or the batch is full), or leaves it to the last one.
    pub(crate) fn commit(&mut self, now: Instant) -> Committed {
        self.savepoint = Savepoint::Kept;
        self.members += 1;
        let batch = self.current;
        if self.nobody_waiting() || self.members >= MAX_BATCH {
            Committed::CommitNow { batch, sql: self.settle_then(Then::Commit) }
        } else {
            Committed::Wait { batch, until: now + PATIENCE }
        }
    }

    /// The holder of a [`Turn::Close`] closes `target`: the batch and the SQL to commit it,
    /// or `None` when that batch is closed already (or none is open).
    pub(crate) fn close(&mut self, target: Option<BatchId>) -> Option<(BatchId, &'static str)> {
        let wanted = target.is_none_or(|batch| batch == self.current);
        (self.open && wanted).then(|| (self.current, self.settle_then(Then::Commit)))
    }

    /// The open batch was committed (`Ok`) or rolled back (`Err` with why: every member
    /// gets it). Returns its number, for the driver to announce.
    pub(crate) fn closed(&mut self, result: Result<(), String>) -> BatchId {
        let batch = self.current;
        if let Err(why) = result {
            // Members read their batch's failure right after it closes: old ones can go.
            self.failures.retain(|&b, _| b + FAILURES_KEPT > batch);
            self.failures.insert(batch, why);
        }
        self.current += 1;
        self.open = false;
        self.members = 0;
        self.savepoint = Savepoint::Settled;
        batch
    }

    /// The holder hands the connection back (after its commit, or going away without one).
    /// True when a batch is left open with nobody in line to close it: the driver must
    /// arrive with `Close(None)`, or the open batch would keep the file's write lock from
    /// other connections (and processes) until the next write.
    #[must_use]
    pub(crate) fn release(&mut self) -> bool {
        self.held = false;
        self.open && self.nobody_waiting()
    }

    /// How `batch` ended: `None` while it is open or to come.
    pub(crate) fn outcome(&self, batch: BatchId) -> Option<Result<(), &str>> {
        (batch < self.current).then(|| match self.failures.get(&batch) {
            Some(why) => Err(why.as_str()),
            None => Ok(()),
        })
    }

    fn nobody_waiting(&self) -> bool {
        self.waiting() == 0
    }

    /// How many writers wait for the connection.
    pub(crate) fn waiting(&self) -> usize {
        self.line.len() + self.normals.len()
    }

    /// One query string that settles the last transaction's savepoint and then does `then`.
    fn settle_then(&self, then: Then) -> &'static str {
        let strings = match then {
            Then::Savepoint => settled!("SAVEPOINT tx"),
            Then::BeginAndSavepoint => settled!("BEGIN IMMEDIATE; SAVEPOINT tx"),
            Then::Commit => settled!("COMMIT"),
        };
        match self.savepoint {
            Savepoint::Settled => strings[0],
            Savepoint::Kept => strings[1],
            Savepoint::Abandoned => strings[2],
        }
    }
}

#[cfg(test)]
mod tests {
    //! Schedules of writers on simulated time: what each is told, in which order, and
    //! which SQL reaches the connection.
    use std::time::{Duration, Instant};

    use super::{BatchId, Batcher, Committed, MAX_BATCH, PATIENCE, Turn, Urgency};

    const NORMAL: Turn = Turn::Transaction(Urgency::Normal);
    const URGENT: Turn = Turn::Transaction(Urgency::Urgent);

    /// A batcher whose waiters are names, with the SQL the connection would have run.
    struct Sim {
        b: Batcher<&'static str>,
        sql: Vec<&'static str>,
        start: Instant,
    }

    impl Sim {
        #[allow(
            clippy::disallowed_methods,
            reason = "the simulated clock's origin: only offsets from it are used"
        )]
        fn new() -> Sim {
            Sim { b: Batcher::new(), sql: Vec::new(), start: Instant::now() }
        }

        fn at(&self, ms: u64) -> Instant {
            self.start + Duration::from_millis(ms)
        }

        /// The next writer handed the connection.
        fn grant(&mut self) -> Option<&'static str> {
            self.b.grant().map(|(name, _)| name)
        }

        /// `name` arrives with a transaction and, if the connection is free, begins it.
        fn arrive_and_begin(&mut self, name: &'static str, turn: Turn) -> bool {
            self.b.arrive(name, turn);
            match self.b.grant() {
                Some((granted, _)) => {
                    assert_eq!(granted, name, "the connection was free");
                    self.sql.push(self.b.begin());
                    true
                }
                None => false,
            }
        }

        /// `a` committed into batch 1 and waits for it; `b`, behind it, holds the connection
        /// with its transaction begun.
        fn a_committed_and_b_begun() -> Sim {
            let mut s = Sim::new();
            assert!(s.arrive_and_begin("a", URGENT));
            s.b.arrive("b", URGENT);
            let Committed::Wait { batch: 1, .. } = s.commit(0) else { panic!("b is in line") };
            let _ = s.b.release();
            assert_eq!(s.grant(), Some("b"));
            s.sql.push(s.b.begin());
            s
        }

        /// The holder commits at `ms`; a `CommitNow` is run and succeeds.
        fn commit(&mut self, ms: u64) -> Committed {
            let committed = self.b.commit(self.at(ms));
            if let Committed::CommitNow { sql, .. } = committed {
                self.sql.push(sql);
                self.b.closed(Ok(()));
            }
            committed
        }
    }

    #[test]
    fn the_first_writer_opens_a_batch_and_the_next_ones_settle_the_last_savepoint_in_their_own_first_hop()
     {
        let mut s = Sim::new();
        assert!(s.arrive_and_begin("a", NORMAL));
        s.b.arrive("c", URGENT);
        s.b.arrive("b", NORMAL);
        let Committed::Wait { batch: 1, .. } = s.commit(0) else { panic!("b and c wait") };
        assert!(!s.b.release());
        assert_eq!(s.grant(), Some("c"));
        s.sql.push(s.b.begin());
        // c goes away without committing: its savepoint is rolled back by the next writer.
        assert!(!s.b.release(), "b is still in line to close the batch");
        assert_eq!(s.grant(), Some("b"));
        s.sql.push(s.b.begin());
        let Committed::CommitNow { batch: 1, .. } = s.commit(1) else { panic!("b is the last") };
        assert!(!s.b.release(), "the batch is closed");
        assert_eq!(
            s.sql,
            [
                "BEGIN IMMEDIATE; SAVEPOINT tx",
                "RELEASE tx; SAVEPOINT tx",
                "ROLLBACK TO tx; RELEASE tx; SAVEPOINT tx",
                "RELEASE tx; COMMIT",
            ]
        );
        assert_eq!(s.b.outcome(1), Some(Ok(())));
        assert!(s.arrive_and_begin("d", URGENT));
        assert_eq!(s.sql.last(), Some(&"BEGIN IMMEDIATE; SAVEPOINT tx"), "a new batch");
    }

    #[test]
    fn an_urgent_transaction_waits_behind_at_most_one_normal_one_and_normals_keep_their_order() {
        let mut s = Sim::new();
        assert!(s.arrive_and_begin("holder", NORMAL));
        for name in ["n1", "n2", "n3"] {
            s.b.arrive(name, NORMAL);
        }
        s.b.arrive("u1", URGENT);
        let _ = s.b.release();
        let mut order = Vec::new();
        while let Some(name) = s.grant() {
            order.push(name);
            // A normal arriving while the others are served joins behind them.
            if name == "n1" {
                s.b.arrive("u2", URGENT);
                s.b.arrive("n4", NORMAL);
            }
            let _ = s.b.release();
        }
        assert_eq!(order, ["n1", "u1", "n2", "u2", "n3", "n4"]);
    }

    #[test]
    fn the_last_writer_in_line_commits_for_everyone_before_it() {
        let mut s = Sim::new();
        let names = ["w0", "w1", "w2", "w3", "w4"];
        assert!(s.arrive_and_begin(names[0], URGENT));
        for name in &names[1..] {
            s.b.arrive(name, URGENT);
        }
        let mut decisions = Vec::new();
        for ms in 0..5 {
            if ms > 0 {
                assert_eq!(s.grant(), Some(names[ms as usize]));
                s.sql.push(s.b.begin());
            }
            decisions.push(s.commit(ms));
            let _ = s.b.release();
        }
        let until = |ms| s.at(ms) + PATIENCE;
        assert_eq!(
            decisions,
            [
                Committed::Wait { batch: 1, until: until(0) },
                Committed::Wait { batch: 1, until: until(1) },
                Committed::Wait { batch: 1, until: until(2) },
                Committed::Wait { batch: 1, until: until(3) },
                Committed::CommitNow { batch: 1, sql: "RELEASE tx; COMMIT" },
            ]
        );
        assert_eq!(s.sql.iter().filter(|q| q.contains("COMMIT")).count(), 1, "one fsync");
        assert_eq!(s.b.outcome(1), Some(Ok(())));
    }

    #[test]
    fn a_full_batch_commits_however_long_the_line() {
        let mut s = Sim::new();
        assert!(s.arrive_and_begin("first", URGENT));
        s.b.arrive("rest", URGENT);
        let mut commits_at = Vec::new();
        for n in 1..=MAX_BATCH + 1 {
            if let Committed::CommitNow { batch, .. } = s.commit(0) {
                commits_at.push((batch, n));
            }
            let _ = s.b.release();
            // The line never empties: someone is always behind the holder.
            s.b.arrive("rest", URGENT);
            assert_eq!(s.grant(), Some("rest"));
            s.sql.push(s.b.begin());
        }
        assert_eq!(commits_at, [(1, MAX_BATCH)]);
    }

    #[test]
    fn a_member_whose_patience_runs_out_closes_its_batch_unless_it_closed_meanwhile() {
        let mut s = Sim::new();
        assert!(s.arrive_and_begin("a", URGENT));
        s.b.arrive("b", URGENT);
        let Committed::Wait { batch, until } = s.commit(10) else { panic!("b is in line") };
        assert_eq!(until, s.at(10) + PATIENCE);
        let _ = s.b.release();
        // b holds the connection past a's patience: a queues to close its batch behind it.
        assert_eq!(s.grant(), Some("b"));
        s.sql.push(s.b.begin());
        s.b.arrive("a", Turn::Close(Some(batch)));
        // b's commit sees a in line, so it leaves the closing to a.
        let Committed::Wait { .. } = s.commit(15) else { panic!("a is in line") };
        let _ = s.b.release();
        assert_eq!(s.grant(), Some("a"));
        assert_eq!(s.b.close(Some(batch)), Some((1, "RELEASE tx; COMMIT")));
        assert_eq!(s.b.closed(Ok(())), 1);
        assert!(!s.b.release());
        assert_eq!(s.b.outcome(1), Some(Ok(())));
        // b's patience runs out too, but the batch is closed: nothing to do.
        s.b.arrive("b", Turn::Close(Some(batch)));
        assert_eq!(s.grant(), Some("b"));
        assert_eq!(s.b.close(Some(batch)), None);
        assert!(!s.b.release());
    }

    #[test]
    fn a_writer_that_goes_away_last_asks_for_the_open_batch_to_be_closed() {
        let mut s = Sim::a_committed_and_b_begun();
        assert!(s.b.release(), "b dropped its transaction and nobody is left to commit a's");
        s.b.arrive("closer", Turn::Close(None));
        assert_eq!(s.grant(), Some("closer"));
        assert_eq!(s.b.close(None), Some((1, "ROLLBACK TO tx; RELEASE tx; COMMIT")));
        s.b.closed(Ok(()));
        assert!(!s.b.release());
        // With nothing open there is nothing to close.
        s.b.arrive("closer", Turn::Close(None));
        assert_eq!(s.grant(), Some("closer"));
        assert_eq!(s.b.close(None), None);
    }

    #[test]
    fn a_failed_batch_fails_every_member_and_the_next_writer_begins_a_new_one() {
        let mut s = Sim::a_committed_and_b_begun();
        let Committed::CommitNow { batch: 1, .. } = s.b.commit(s.at(1)) else { panic!("last") };
        // The COMMIT fails (the disk is full): both members are told.
        assert_eq!(s.b.closed(Err("disk full".to_owned())), 1);
        assert_eq!(s.b.outcome(1), Some(Err("disk full")));
        assert_eq!(s.b.outcome(2), None, "batch 2 is to come");
        assert!(!s.b.release());
        assert!(s.arrive_and_begin("c", URGENT));
        assert_eq!(s.sql.last(), Some(&"BEGIN IMMEDIATE; SAVEPOINT tx"));
        let Committed::CommitNow { batch: 2, .. } = s.commit(2) else { panic!("alone") };
        assert_eq!(s.b.outcome(2), Some(Ok(())));
    }

    #[test]
    fn failures_are_kept_for_the_members_of_recent_batches_only() {
        let mut b: Batcher<()> = Batcher::new();
        let mut last: BatchId = 0;
        for _ in 0..super::FAILURES_KEPT + 10 {
            last = b.closed(Err("lost".to_owned()));
        }
        assert_eq!(b.outcome(last), Some(Err("lost")));
        assert_eq!(b.failures.len() as u64, super::FAILURES_KEPT);
    }

    #[test]
    fn nobody_is_handed_the_connection_while_it_is_held() {
        let mut s = Sim::new();
        assert!(s.arrive_and_begin("a", URGENT));
        s.b.arrive("b", URGENT);
        assert_eq!(s.grant(), None);
        let _ = s.b.release();
        assert_eq!(s.grant(), Some("b"));
        assert_eq!(s.grant(), None);
    }

    /// SQLite's transaction state, checked statement by statement: what the settle strings
    /// must keep right in every schedule.
    #[derive(Default)]
    struct Connection {
        in_batch: bool,
        savepoint: bool,
    }

    impl Connection {
        fn run(&mut self, sql: &str) {
            for statement in sql.split("; ") {
                match statement {
                    "BEGIN IMMEDIATE" => {
                        assert!(!self.in_batch, "BEGIN inside a batch: {sql}");
                        self.in_batch = true;
                    }
                    "SAVEPOINT tx" => {
                        assert!(self.in_batch && !self.savepoint, "SAVEPOINT: {sql}");
                        self.savepoint = true;
                    }
                    "ROLLBACK TO tx" => assert!(self.savepoint, "ROLLBACK TO: {sql}"),
                    "RELEASE tx" => {
                        assert!(self.savepoint, "RELEASE: {sql}");
                        self.savepoint = false;
                    }
                    "COMMIT" => {
                        assert!(self.in_batch && !self.savepoint, "COMMIT: {sql}");
                        self.in_batch = false;
                    }
                    other => panic!("unexpected statement {other}"),
                }
            }
        }

        /// The driver's `ROLLBACK` of a failed batch.
        fn roll_back(&mut self) {
            *self = Connection::default();
        }
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Writer {
        Idle,
        InLine(Turn, u64),
        Holding(Turn),
        Member(BatchId, Instant),
    }

    /// Random schedules of 24 writers on simulated time: arrivals, commits, writers that go
    /// away, failed COMMITs, patience running out. Every statement sequence is valid SQLite,
    /// every member learns its batch's one outcome, an urgent transaction waits behind at
    /// most one normal one, and normal ones are served in order.
    #[test]
    fn random_schedules_keep_every_promise() {
        for seed in 1..=200 {
            let mut rng = ivrpay_testkit::Rng::new(seed);
            let mut b: Batcher<usize> = Batcher::new();
            let mut conn = Connection::default();
            let start = Sim::new().start;
            let mut now = start;
            let mut writers = [Writer::Idle; 24];
            // A logical clock of arrivals and grants.
            let mut arrivals = 0_u64;
            let mut outcomes: std::collections::BTreeMap<BatchId, bool> = Default::default();
            let mut committed = 0;
            let mut served_normals = Vec::new();
            let mut closer_pending = false;
            // The closer the driver spawns is writer 0's job here, to keep the count fixed.
            for step in 0..4000 {
                now += Duration::from_micros(rng.below(800) as u64);
                let draining = step >= 3000;
                let w = rng.below(writers.len());
                match writers[w] {
                    Writer::Idle if !draining && w != 0 => {
                        let turn = if rng.below(3) == 0 { NORMAL } else { URGENT };
                        arrivals += 1;
                        writers[w] = Writer::InLine(turn, arrivals);
                        b.arrive(w, turn);
                    }
                    Writer::Idle if w == 0 && closer_pending => {
                        closer_pending = false;
                        arrivals += 1;
                        writers[0] = Writer::InLine(Turn::Close(None), arrivals);
                        b.arrive(0, Turn::Close(None));
                    }
                    Writer::Holding(Turn::Transaction(_)) => {
                        let close_now = if rng.below(5) == 0 {
                            // Goes away without committing.
                            writers[w] = Writer::Idle;
                            b.release()
                        } else {
                            match b.commit(now) {
                                Committed::CommitNow { batch, sql } => {
                                    close(&mut b, &mut conn, &mut outcomes, &mut rng, batch, sql);
                                    writers[w] = Writer::Member(batch, now);
                                }
                                Committed::Wait { batch, until } => {
                                    assert_eq!(until, now + PATIENCE);
                                    writers[w] = Writer::Member(batch, until);
                                }
                            }
                            committed += 1;
                            b.release()
                        };
                        closer_pending |= close_now;
                    }
                    Writer::Member(batch, until) => match b.outcome(batch) {
                        Some(result) => {
                            assert_eq!(result.is_ok(), outcomes[&batch], "one outcome per batch");
                            writers[w] = Writer::Idle;
                        }
                        None if now >= until => {
                            arrivals += 1;
                            writers[w] = Writer::InLine(Turn::Close(Some(batch)), arrivals);
                            b.arrive(w, Turn::Close(Some(batch)));
                        }
                        None => {}
                    },
                    _ => {}
                }
                // The connection goes to the next in line as soon as it is free.
                if let Some((g, turn)) = b.grant() {
                    let Writer::InLine(waited, arrived) = writers[g] else {
                        panic!("{g} was granted without waiting")
                    };
                    assert_eq!(waited, turn);
                    arrivals += 1;
                    if turn == NORMAL {
                        served_normals.push((arrived, arrivals));
                    }
                    if turn == URGENT {
                        let served_since = served_normals.iter().filter(|n| n.1 > arrived);
                        assert!(served_since.count() <= 1, "an urgent waited behind two normals");
                    }
                    match turn {
                        Turn::Transaction(_) => {
                            let sql = b.begin();
                            if rng.below(50) == 0 {
                                // The hop fails: the driver rolls the batch back.
                                conn.roll_back();
                                let batch = b.closed(Err("lost".to_owned()));
                                outcomes.insert(batch, false);
                                writers[g] = Writer::Idle;
                                closer_pending |= b.release();
                            } else {
                                conn.run(sql);
                                writers[g] = Writer::Holding(turn);
                            }
                        }
                        Turn::Close(target) => {
                            if let Some((batch, sql)) = b.close(target) {
                                close(&mut b, &mut conn, &mut outcomes, &mut rng, batch, sql);
                            }
                            writers[g] = match target {
                                Some(batch) => Writer::Member(batch, now),
                                None => Writer::Idle,
                            };
                            closer_pending |= b.release();
                        }
                    }
                }
            }
            let stuck: Vec<_> = writers.iter().filter(|w| !matches!(w, Writer::Idle)).collect();
            assert!(stuck.is_empty(), "seed {seed}: writers left waiting: {stuck:?}");
            assert!(committed > 50, "seed {seed}: the schedule did little ({committed})");
            assert!(served_normals.windows(2).all(|w| w[0].0 < w[1].0), "normals in order");
        }
    }

    /// Runs a batch's COMMIT, failing one in twenty as a full disk would.
    fn close(
        b: &mut Batcher<usize>,
        conn: &mut Connection,
        outcomes: &mut std::collections::BTreeMap<BatchId, bool>,
        rng: &mut ivrpay_testkit::Rng,
        batch: BatchId,
        sql: &str,
    ) {
        let ok = rng.below(20) != 0;
        if ok {
            conn.run(sql);
        } else {
            conn.roll_back();
        }
        assert_eq!(b.closed(if ok { Ok(()) } else { Err("disk full".to_owned()) }), batch);
        assert!(outcomes.insert(batch, ok).is_none(), "batch {batch} closed twice");
    }
}
