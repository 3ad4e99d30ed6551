//! Opening a store on one of the two backends, the one way to write ([`Store::write`]), and
//! the glue that lets every operation be written once for both.
//!
//! The backend is an enum of the two engines, not a trait object and not sqlx's `Any` driver:
//! each operation is a plain async method whose body is expanded once per backend by the
//! [`on_pool!`] / [`on_tx!`] macros, so both expansions are compiled and type-checked against
//! the native driver. The SQL text is shared where the dialects agree (which is nearly
//! everywhere: `$1` placeholders, `RETURNING`, `ON CONFLICT`, partial indexes all work on
//! both) and split where they do not (row locks: `FOR UPDATE SKIP LOCKED` on PostgreSQL,
//! `BEGIN IMMEDIATE` on SQLite, where writers are serialised anyway). Native drivers keep
//! native types (`jsonb`, `bytea`) and native options (WAL, busy timeout) that `Any` hides.
//!
//! Every write goes through [`Store::write`] (or [`Store::write_statement`]), with its whole
//! body as one closure over owned data: on SQLite the body runs on the writer thread
//! ([`writer_thread`]) as a savepoint of a group commit ([`group_commit`]); on PostgreSQL it
//! runs where it is called. A [`Tx`] exists only inside such a body: nothing else can begin
//! one, so no write can run off the writer thread.

mod group_commit;
mod writer_thread;

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::error::StoreError;
use group_commit::{SqliteTx, Writer};
use writer_thread::WriterThread;

pub(crate) use group_commit::Urgency;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Pooled SQLite connections for reads (the writes have their own, see [`group_commit`]).
const SQLITE_READERS: u32 = 4;

/// File name of the embedded database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "ivrpay.db";

/// How hard SQLite works to keep a commit across a power cut.
///
/// Both are safe against a process crash (a `SIGKILL` loses nothing that was committed); they
/// differ only when the machine itself loses power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SqliteDurability {
    /// `synchronous=FULL`: the WAL is synced at every commit. Survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: synced at checkpoints only; a power cut may lose the last
    /// commits (never corrupt the file). Several times faster on slow disks.
    Normal,
}

/// Where the data lives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreConfig {
    /// An SQLite file in WAL mode.
    Sqlite {
        /// The database file; its directory is created when missing.
        path: PathBuf,
        /// Sync policy.
        durability: SqliteDurability,
    },
    /// A PostgreSQL server.
    Postgres {
        /// `postgres://user@host:port/database`.
        url: String,
        /// A schema to hold the tables (created when missing); `None` uses the server's
        /// default search path. Tests use a fresh schema per run.
        schema: Option<String>,
        /// Pool size.
        max_connections: u32,
    },
}

impl StoreConfig {
    /// The embedded default: `DIR/ivrpay.db`.
    #[must_use]
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self::Sqlite { path: data_dir.join(SQLITE_FILE_NAME), durability: SqliteDurability::Full }
    }

    /// PostgreSQL at `url`, default schema, 8 connections.
    #[must_use]
    pub fn postgres(url: &str) -> Self {
        Self::Postgres { url: url.to_owned(), schema: None, max_connections: 8 }
    }
}

/// A handle on the database: cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
}

/// Each engine with what it needs.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite {
        /// Connections for reads.
        readers: SqlitePool,
        /// The one writer connection, with group commit.
        writer: Arc<Writer>,
        /// The thread the writes run on.
        thread: Arc<WriterThread>,
    },
    Postgres(PgPool),
}

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// SQLite (embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// An open write transaction on either backend, lent to a write's body by [`Store::write`]
/// (which commits it when the body succeeds, and rolls it back when it fails). Neither
/// variant can be made anywhere else.
///
/// On SQLite it is a savepoint on the store's one writer connection, committed in a group
/// (see [`group_commit`]): SQLite admits one writer at a time, and queueing writers here
/// (fairly, without polling) is far cheaper than letting them collide on the file lock,
/// where SQLite's busy handler makes the losers sleep for milliseconds.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(PgTx),
}

/// A write on PostgreSQL: a transaction, or for a single statement a pooled connection of
/// its own (the statement commits by itself; a transaction would cost two more round trips
/// for nothing). Derefs to the connection.
pub(crate) struct PgTx(PgWrite);

enum PgWrite {
    Transaction(Transaction<'static, Postgres>),
    Statement(PoolConnection<Postgres>),
}

impl Deref for PgTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match &self.0 {
            PgWrite::Transaction(tx) => tx,
            PgWrite::Statement(conn) => conn,
        }
    }
}

impl DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match &mut self.0 {
            PgWrite::Transaction(tx) => tx,
            PgWrite::Statement(conn) => conn,
        }
    }
}

/// A write's body: its statements on the transaction it is lent, as one future (boxed: what
/// a write costs is its round trips, not an allocation).
pub(crate) type WriteBody<'t, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 't>>;

/// What a write is, as far as its engine cares.
#[derive(Clone, Copy)]
enum Scope {
    /// Any number of statements, atomically; the urgency orders SQLite's line.
    Transaction(Urgency),
    /// One statement (atomic by itself).
    Statement,
}

/// Runs `$body` with `$c` bound to the transaction of whichever backend `$tx` holds
/// (`&mut **$c` is the executor). The body is compiled once per backend.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::backend::Tx::Sqlite($c) => $body,
            $crate::backend::Tx::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$p` bound to the pool of whichever backend `$store` uses.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.backend {
            $crate::backend::Backend::Sqlite { readers: $p, .. } => $body,
            $crate::backend::Backend::Postgres($p) => $body,
        }
    };
}

/// One statement as a write ([`Store::write_statement`]), answering how many rows it changed
/// (a future of `Result<u64, StoreError>`). `$query` is the statement with its binds, made
/// of owned values that it moves to wherever the write runs; like [`on_tx!`]'s body, it is
/// compiled once per backend.
macro_rules! write_one {
    ($store:expr, $query:expr) => {
        $store.write_statement(move |tx| {
            Box::pin(async move {
                Ok($crate::backend::on_tx!(tx, c => $query.execute(&mut **c).await?.rows_affected()))
            })
        })
    };
}

pub(crate) use {on_pool, on_tx, write_one};

impl Tx {
    async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(PgTx(PgWrite::Transaction(tx))) => tx.commit().await?,
            Self::Postgres(PgTx(PgWrite::Statement(_))) => {}
        }
        Ok(())
    }
}

/// A PostgreSQL identifier we are willing to splice into SQL: lowercase ASCII letters, digits
/// and `_`, starting with a letter or `_`, at most 63 bytes.
fn valid_schema_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

impl Store {
    /// Opens (creating when missing) the database and applies the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError`] when the file or server cannot be reached or a migration fails.
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        Self::open_with(config, None).await
    }

    /// As [`Store::open`], with `setup` run first on SQLite's writer thread, before it opens
    /// the writer connection (whose own thread, started from it, inherits what `setup` did to
    /// the thread): [`crate::pinning::share_one_core`] on Linux. PostgreSQL has no such
    /// thread and ignores it.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_with_writer_setup(
        config: &StoreConfig,
        setup: fn(),
    ) -> Result<Self, StoreError> {
        Self::open_with(config, Some(setup)).await
    }

    async fn open_with(config: &StoreConfig, setup: Option<fn()>) -> Result<Self, StoreError> {
        match config {
            StoreConfig::Sqlite { path, durability } => {
                Self::open_sqlite(path, *durability, setup).await
            }
            StoreConfig::Postgres { url, schema, max_connections } => {
                Self::open_postgres(url, schema.as_deref(), *max_connections).await
            }
        }
    }

    async fn open_sqlite(
        path: &Path,
        durability: SqliteDurability,
        setup: Option<fn()>,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                SqliteDurability::Full => SqliteSynchronous::Full,
                SqliteDurability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            // Writers queue on the file lock; BEGIN IMMEDIATE makes them wait here rather
            // than fail half-way through a transaction.
            .busy_timeout(Duration::from_secs(10))
            // Deleted vault rows are overwritten, not left readable in free pages.
            .pragma("secure_delete", "ON")
            // Each transaction is a savepoint of a group commit (see group_commit.rs): keep
            // the savepoints' sub-journals in memory, not in temporary files.
            .pragma("temp_store", "MEMORY");
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        // Every reader is opened here, after the migrations, and kept: one that the pool
        // opened later from inside a write would start its thread on the writer's core, when
        // the writer thread is pinned to one (see writer_thread.rs).
        let mut readers = Vec::new();
        for _ in 0..SQLITE_READERS {
            readers.push(pool.acquire().await?);
        }
        drop(readers);
        let (thread, conn) = WriterThread::start(options, setup).await?;
        Ok(Self {
            backend: Backend::Sqlite {
                readers: pool,
                writer: Arc::new(Writer::new(conn)),
                thread: Arc::new(thread),
            },
        })
    }

    async fn open_postgres(
        url: &str,
        schema: Option<&str>,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::Config(
                    "schema name must be lowercase letters, digits and _ (at most 63)",
                ));
            }
            let bootstrap =
                PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
            // The name was checked above: only [a-z0-9_] reaches the SQL text.
            sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}")))
                .execute(&bootstrap)
                .await?;
            bootstrap.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool =
            PgPoolOptions::new().max_connections(max_connections).connect_with(options).await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Self { backend: Backend::Postgres(pool) })
    }

    /// The engine behind this store.
    #[must_use]
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite { .. } => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Runs a write: `body`'s statements on a transaction, committed when it returns `Ok`
    /// (its answer returns once the commit is durable) and rolled back when it fails. On
    /// SQLite the whole body runs on the writer thread, queued in `urgency`'s line; on
    /// PostgreSQL, here (its connections are sockets any thread drives as well).
    ///
    /// The body owns what it needs (it may run on another thread while this waits):
    ///
    /// ```text
    /// let (tenant, id) = (tenant.clone(), id.clone());
    /// self.write(Urgency::Normal, move |tx| Box::pin(async move {
    ///     on_tx!(tx, c => sqlx::query("…").bind(tenant.as_str()).execute(&mut **c).await?);
    ///     Ok(…)
    /// }))
    /// .await
    /// ```
    pub(crate) async fn write<T, F>(&self, urgency: Urgency, body: F) -> Result<T, StoreError>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> WriteBody<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_write(Scope::Transaction(urgency), body).await
    }

    /// As [`Store::write`], for a body of exactly one statement: on PostgreSQL it commits by
    /// itself on a pooled connection, without `BEGIN` and `COMMIT` (two round trips); on
    /// SQLite it is a transaction in the normal line like any other.
    pub(crate) async fn write_statement<T, F>(&self, body: F) -> Result<T, StoreError>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> WriteBody<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_write(Scope::Statement, body).await
    }

    async fn run_write<T, F>(&self, scope: Scope, body: F) -> Result<T, StoreError>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> WriteBody<'t, T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite { writer, thread, .. } => {
                let urgency = match scope {
                    Scope::Transaction(urgency) => urgency,
                    Scope::Statement => Urgency::Normal,
                };
                let writer = Arc::clone(writer);
                thread
                    .run(async move {
                        let tx = Tx::Sqlite(writer.begin(urgency).await?);
                        run_body(tx, body).await
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let write = match scope {
                    Scope::Transaction(_) => PgWrite::Transaction(pool.begin().await?),
                    Scope::Statement => PgWrite::Statement(pool.acquire().await?),
                };
                run_body(Tx::Postgres(PgTx(write)), body).await
            }
        }
    }

    /// Closes every pooled connection (and, on SQLite, checkpoints the WAL).
    pub async fn close(&self) {
        // Readers first: a reader's snapshot would hold the writer's checkpoint back.
        match &self.backend {
            Backend::Sqlite { readers, writer, .. } => {
                readers.close().await;
                writer.shut_down().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// Runs a write's body on `tx` and commits it, or drops it (rolling back) when it fails.
async fn run_body<T, F>(mut tx: Tx, body: F) -> Result<T, StoreError>
where
    F: for<'t> FnOnce(&'t mut Tx) -> WriteBody<'t, T>,
{
    let answer = body(&mut tx).await?;
    tx.commit().await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::{Urgency, valid_schema_name};
    use crate::testing::TestDatabase;
    use crate::{StoreError, TenantId};

    /// The thread a write's body ran on, by each entry point.
    async fn body_threads(db: &TestDatabase) -> Vec<Option<String>> {
        let here = || Ok(std::thread::current().name().map(str::to_owned));
        let store = db.store();
        vec![
            store
                .write(Urgency::Normal, move |_| Box::pin(async move { here() }))
                .await
                .expect("normal"),
            store
                .write(Urgency::Urgent, move |_| Box::pin(async move { here() }))
                .await
                .expect("urgent"),
            store
                .write_statement(move |_| Box::pin(async move { here() }))
                .await
                .expect("statement"),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite_every_write_body_runs_on_the_writer_thread() {
        let db = TestDatabase::sqlite().await.expect("SQLite fixture");
        let writer = Some("ivrpay-sqlite-writer".to_owned());
        assert_eq!(body_threads(&db).await, [writer.clone(), writer.clone(), writer]);
        db.cleanup().await.expect("cleanup");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres_a_write_body_runs_where_it_is_called() {
        let db = TestDatabase::postgres().await.expect("PostgreSQL fixture (DATABASE_URL)");
        let here = std::thread::current().name().map(str::to_owned);
        assert_eq!(body_threads(&db).await, [here.clone(), here.clone(), here]);
        db.cleanup().await.expect("cleanup");
    }

    /// A body that writes a tenant, then fails (or not): the write is kept only if it did not.
    async fn tenant_kept_when(db: &TestDatabase, fail: bool) -> bool {
        let id = TenantId::parse(if fail { "ten_failed" } else { "ten_kept" }).expect("id");
        let tenant = id.clone();
        let wrote = db
            .store()
            .write(Urgency::Normal, move |tx| {
                Box::pin(async move {
                    on_tx!(tx, c => sqlx::query(
                        "INSERT INTO tenants (id, name, event_seq, created_at_ms) VALUES ($1, 'x', 0, 0)",
                    )
                    .bind(tenant.as_str())
                    .execute(&mut **c)
                    .await?
                    .rows_affected());
                    if fail { Err(StoreError::InvalidState { operation: "test" }) } else { Ok(()) }
                })
            })
            .await;
        assert_eq!(wrote.is_err(), fail);
        db.store().latest_seq(&id).await.is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_is_committed_when_its_body_succeeds_and_rolled_back_when_it_fails() {
        for db in [
            TestDatabase::sqlite().await.expect("SQLite fixture"),
            TestDatabase::postgres().await.expect("PostgreSQL fixture (DATABASE_URL)"),
        ] {
            assert!(tenant_kept_when(&db, false).await, "{:?}: committed", db.kind());
            assert!(!tenant_kept_when(&db, true).await, "{:?}: rolled back", db.kind());
            db.cleanup().await.expect("cleanup");
        }
    }

    #[test]
    fn schema_names_that_could_inject_are_refused() {
        assert!(valid_schema_name("ivrpay_test_01"));
        assert!(!valid_schema_name("x; DROP TABLE payments"));
        assert!(!valid_schema_name("Public"));
        assert!(!valid_schema_name("1abc"));
        assert!(!valid_schema_name(""));
        assert!(!valid_schema_name(&"a".repeat(64)));
    }
}
