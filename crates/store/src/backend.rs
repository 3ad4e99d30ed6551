//! Opening a store on one of the two backends, and the glue that lets every operation be
//! written once for both.
//!
//! The backend is an enum of two sqlx pools, not a trait object and not sqlx's `Any` driver:
//! each operation is a plain async method whose body is expanded once per backend by the
//! [`on_pool!`] / [`on_tx!`] macros, so both expansions are compiled and type-checked against
//! the native driver. The SQL text is shared where the dialects agree (which is nearly
//! everywhere: `$1` placeholders, `RETURNING`, `ON CONFLICT`, partial indexes all work on
//! both) and split where they do not (row locks: `FOR UPDATE SKIP LOCKED` on PostgreSQL,
//! `BEGIN IMMEDIATE` on SQLite, where writers are serialised anyway). Native drivers keep
//! native types (`jsonb`, `bytea`) and native options (WAL, busy timeout) that `Any` hides.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::error::StoreError;
use crate::group_commit::{SqliteTx, Urgency, Writer};
use crate::writer_thread::WriterThread;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Pooled SQLite connections for reads (the writes have their own, see [`Writer`]).
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
    /// SQLite's one writer connection, with group commit (see [`crate::group_commit`]).
    writer: Option<Arc<Writer>>,
    /// The thread SQLite's writes run on (see [`crate::writer_thread`]).
    writer_thread: Option<Arc<WriterThread>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
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

/// An open write transaction on either backend. Dropping it without commit rolls back.
///
/// On SQLite it is a savepoint on the store's one writer connection, committed in a group
/// (see [`crate::group_commit`]): SQLite admits one writer at a time, and queueing writers
/// here (fairly, without polling) is far cheaper than letting them collide on the file lock,
/// where SQLite's busy handler makes the losers sleep for milliseconds.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
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
            $crate::backend::Backend::Sqlite($p) => $body,
            $crate::backend::Backend::Postgres($p) => $body,
        }
    };
}

/// Runs a single-statement write `$body` (`$p` bound to the executor, as in [`on_pool!`]).
/// On PostgreSQL it commits by itself on a pooled connection (a transaction would cost two
/// more round trips for nothing); on SQLite it is a transaction on the writer connection,
/// committed with its group (see [`Tx`]).
macro_rules! write_one {
    ($store:expr, $p:ident => $body:expr) => {{
        match &$store.backend {
            $crate::backend::Backend::Sqlite(_) => {
                let mut tx = $store.begin_sqlite().await?;
                let result = {
                    let $p = &mut *tx;
                    $body
                };
                tx.commit().await?;
                result
            }
            $crate::backend::Backend::Postgres($p) => $body,
        }
    }};
}

pub(crate) use {on_pool, on_tx, write_one};

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
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
        match config {
            StoreConfig::Sqlite { path, durability } => Self::open_sqlite(path, *durability).await,
            StoreConfig::Postgres { url, schema, max_connections } => {
                Self::open_postgres(url, schema.as_deref(), *max_connections).await
            }
        }
    }

    async fn open_sqlite(path: &Path, durability: SqliteDurability) -> Result<Self, StoreError> {
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
        // opened later from inside a write would start its thread on the writer's core (see
        // writer_thread.rs).
        let mut readers = Vec::new();
        for _ in 0..SQLITE_READERS {
            readers.push(pool.acquire().await?);
        }
        drop(readers);
        let (thread, conn) = WriterThread::start(options).await?;
        Ok(Self {
            backend: Backend::Sqlite(pool),
            writer: Some(Arc::new(Writer::new(conn))),
            writer_thread: Some(Arc::new(thread)),
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
        Ok(Self { backend: Backend::Postgres(pool), writer: None, writer_thread: None })
    }

    /// The engine behind this store.
    #[must_use]
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Starts a write transaction. On SQLite its batch holds the write lock from the start
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading read locks.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        self.begin_as(Urgency::Normal).await
    }

    /// As [`Store::begin`], for a write a customer on the line is waiting for: on SQLite it
    /// goes ahead of the bookkeeping in the writer's queue (see [`Urgency`]).
    pub(crate) async fn begin_urgent(&self) -> Result<Tx, StoreError> {
        self.begin_as(Urgency::Urgent).await
    }

    async fn begin_as(&self, urgency: Urgency) -> Result<Tx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(_) => Tx::Sqlite(self.sqlite_writer()?.begin(urgency).await?),
            Backend::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Runs a write operation: on SQLite, on the writer thread (see [`crate::writer_thread`]);
    /// on PostgreSQL, here (its connections are sockets any thread drives as well).
    ///
    /// Every public write `x` is written as a thin `x` that copies its arguments and hands
    /// `x_in_writer`, the operation itself, to this.
    pub(crate) async fn on_writer<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Store) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        match &self.writer_thread {
            Some(thread) => thread.run(op(self.clone())).await,
            None => op(self.clone()).await,
        }
    }

    /// A write transaction on the SQLite writer.
    pub(crate) async fn begin_sqlite(&self) -> Result<SqliteTx, StoreError> {
        self.sqlite_writer()?.begin(Urgency::Normal).await
    }

    fn sqlite_writer(&self) -> Result<&Arc<Writer>, StoreError> {
        self.writer.as_ref().ok_or(StoreError::Config("a SQLite transaction on a PostgreSQL store"))
    }

    /// Closes every pooled connection (and, on SQLite, checkpoints the WAL).
    pub async fn close(&self) {
        // Readers first: a reader's snapshot would hold the writer's checkpoint back.
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_schema_name;

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
