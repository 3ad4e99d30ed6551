//! Test support shared by ivrpay's test suites (never a dependency of shipped code).
//!
//! - [`oracle`]: the independent DTMF decoders that leak tests ask whether any digit can be
//!   recovered from audio: spandsp's `dtmf_rx` and multimon-ng.
//! - [`Rng`]: a small seeded generator, so every test signal and fault pattern is
//!   reproducible.
//! - [`alloc::Counting`]: a global allocator that counts each thread's allocations, for tests
//!   that the hot paths do not allocate.
//! - [`on_both!`]: a store suite's case run on SQLite and on PostgreSQL.

pub mod alloc;
pub mod oracle;
mod rng;

pub use rng::Rng;

/// Expands each named `async fn case(db: &TestDatabase)` into a module with a `sqlite` and a
/// `postgres` test, each on a fresh database that is removed afterwards. The PostgreSQL half
/// fails, saying so, when `DATABASE_URL` is unset.
///
/// The calling crate needs `ivrpay-store` (with its `testing` feature) and tokio (`macros`,
/// `rt-multi-thread`): the expansion names both, and this crate depends on neither.
#[macro_export]
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = ivrpay_store::testing::TestDatabase::sqlite().await.expect("SQLite fixture");
                super::$case(&db).await;
                db.cleanup().await.expect("cleanup");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = match ivrpay_store::testing::TestDatabase::postgres().await {
                    Ok(db) => db,
                    Err(e) => panic!("PostgreSQL fixture: {e}"),
                };
                super::$case(&db).await;
                db.cleanup().await.expect("cleanup");
            }
        }
    )*};
}
