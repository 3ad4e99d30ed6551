//! Test fixtures: a store on a temporary SQLite file or on a fresh PostgreSQL schema.
//!
//! PostgreSQL comes from `DATABASE_URL` (CI and `scripts/test.sh` set
//! `postgres://postgres@127.0.0.1:5432/test`). Each fixture creates its own schema, named
//! `ivrpay_test_<unix seconds>_<random>`, so suites running in parallel never see each
//! other's rows; [`TestDatabase::cleanup`] drops it, and schemas left behind by a crashed run
//! are dropped by the next run once they are an hour old.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Store, StoreConfig};

pub mod scan;

/// Why a fixture could not be made (tests `expect` these; the message says what to fix).
#[derive(Debug)]
pub struct FixtureError(pub String);

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FixtureError {}

/// A store on a throwaway database.
#[derive(Debug)]
pub struct TestDatabase {
    store: Store,
    dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

/// The PostgreSQL URL from `DATABASE_URL`, or an error that says how to set it.
///
/// # Errors
/// [`FixtureError`] when `DATABASE_URL` is unset.
pub fn database_url() -> Result<String, FixtureError> {
    std::env::var("DATABASE_URL").map_err(|_| {
        FixtureError(
            "DATABASE_URL is not set: the PostgreSQL tests need a server, e.g. \
             DATABASE_URL=postgres://postgres@127.0.0.1:5432/test (scripts/test.sh and .ci/run set it)"
                .to_owned(),
        )
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "fixture names and stale-schema cleanup use the wall clock"
)]
fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TestDatabase {
    /// A store on a new SQLite file in a temporary directory.
    ///
    /// # Errors
    /// [`FixtureError`] when the file cannot be created or migrated.
    pub async fn sqlite() -> Result<Self, FixtureError> {
        Self::sqlite_with(crate::SqliteDurability::Full).await
    }

    /// A store on a new SQLite file with the given sync policy.
    ///
    /// # Errors
    /// [`FixtureError`] when the file cannot be created or migrated.
    pub async fn sqlite_with(durability: crate::SqliteDurability) -> Result<Self, FixtureError> {
        Self::sqlite_opened(durability, None).await
    }

    /// A store on a new SQLite file opened as `ivrpay serve` opens it: on Linux, its
    /// writer's two threads share one core ([`crate::pinning`]). For the benches, which
    /// measure what the binary runs.
    ///
    /// # Errors
    /// [`FixtureError`] when the file cannot be created or migrated.
    pub async fn sqlite_as_served(
        durability: crate::SqliteDurability,
    ) -> Result<Self, FixtureError> {
        #[cfg(target_os = "linux")]
        let setup: Option<fn()> = Some(crate::pinning::share_one_core);
        #[cfg(not(target_os = "linux"))]
        let setup = None;
        Self::sqlite_opened(durability, setup).await
    }

    async fn sqlite_opened(
        durability: crate::SqliteDurability,
        setup: Option<fn()>,
    ) -> Result<Self, FixtureError> {
        let dir =
            tempfile::tempdir().map_err(|e| FixtureError(format!("temporary directory: {e}")))?;
        let config =
            StoreConfig::Sqlite { path: dir.path().join(crate::SQLITE_FILE_NAME), durability };
        let opened = match setup {
            Some(setup) => Store::open_with_writer_setup(&config, setup).await,
            None => Store::open(&config).await,
        };
        let store = opened.map_err(|e| FixtureError(format!("SQLite store: {e}")))?;
        Ok(Self { store, dir: Some(dir), postgres: None })
    }

    /// A store on a new schema of the `DATABASE_URL` server.
    ///
    /// # Errors
    /// [`FixtureError`] when `DATABASE_URL` is unset or the server refuses.
    pub async fn postgres() -> Result<Self, FixtureError> {
        let url = database_url()?;
        drop_stale_schemas(&url).await?;
        let schema = format!("ivrpay_test_{}_{}", unix_seconds(), crate::id::random_body());
        let config = StoreConfig::Postgres {
            url: url.clone(),
            schema: Some(schema.clone()),
            max_connections: 8,
        };
        let store = Store::open(&config).await.map_err(|e| {
            FixtureError(format!("PostgreSQL store at {url} (schema {schema}): {e}"))
        })?;
        Ok(Self { store, dir: None, postgres: Some((url, schema)) })
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The SQLite file, for a SQLite fixture.
    #[must_use]
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join(crate::SQLITE_FILE_NAME))
    }

    /// The data directory holding the SQLite file, for a SQLite fixture.
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// `(url, schema)` for a PostgreSQL fixture.
    #[must_use]
    pub fn postgres_schema(&self) -> Option<(&str, &str)> {
        self.postgres.as_ref().map(|(u, s)| (u.as_str(), s.as_str()))
    }

    /// Runs one statement of raw SQL on the fixture's database (for tests that install a
    /// failing trigger or try to tamper with a table). Returns the rows affected.
    ///
    /// # Errors
    /// [`FixtureError`] with the database's message.
    pub async fn exec(&self, sql: &str) -> Result<u64, FixtureError> {
        let sql = AssertSqlSafe(sql.to_owned());
        let done = crate::backend::on_pool!(self.store, p => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()));
        done.map_err(|e| FixtureError(e.to_string()))
    }

    /// Runs a query returning one text value.
    ///
    /// # Errors
    /// [`FixtureError`] with the database's message.
    pub async fn scalar_text(&self, sql: &str) -> Result<String, FixtureError> {
        let sql = AssertSqlSafe(sql.to_owned());
        let value: Result<String, sqlx::Error> =
            crate::backend::on_pool!(self.store, p => sqlx::query_scalar(sql).fetch_one(p).await);
        value.map_err(|e| FixtureError(e.to_string()))
    }

    /// Which backend.
    #[must_use]
    pub fn kind(&self) -> crate::BackendKind {
        self.store.kind()
    }

    /// Closes the store and removes the database (the schema, or the temporary directory).
    ///
    /// # Errors
    /// [`FixtureError`] when the schema cannot be dropped.
    pub async fn cleanup(self) -> Result<(), FixtureError> {
        self.store.close().await;
        if let Some((url, schema)) = &self.postgres {
            drop_schema(url, schema).await?;
        }
        Ok(())
    }
}

async fn admin_pool(url: &str) -> Result<sqlx::PgPool, FixtureError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| FixtureError(format!("DATABASE_URL {url}: {e}")))?;
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| FixtureError(format!("cannot connect to PostgreSQL at {url}: {e}")))
}

async fn drop_schema(url: &str, schema: &str) -> Result<(), FixtureError> {
    if !schema.starts_with("ivrpay_test_")
        || !schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(FixtureError(format!("refusing to drop schema {schema}")));
    }
    let pool = admin_pool(url).await?;
    // Checked above: only a test schema name of [a-z0-9_] reaches the SQL text.
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(&pool)
        .await
        .map_err(|e| FixtureError(format!("drop schema {schema}: {e}")))?;
    pool.close().await;
    Ok(())
}

async fn drop_stale_schemas(url: &str) -> Result<(), FixtureError> {
    let pool = admin_pool(url).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ivrpay\\_test\\_%'",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| FixtureError(format!("list schemas: {e}")))?;
    pool.close().await;
    let cutoff = unix_seconds().saturating_sub(3600);
    for name in names {
        let created = name.split('_').nth(2).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            // Another run may drop it at the same moment; that is fine.
            let _ = drop_schema(url, &name).await;
        }
    }
    Ok(())
}
