//! Test support shared by ivrpay's test suites (never a dependency of shipped code).
//!
//! - [`oracle`]: the independent DTMF decoders that leak tests ask whether any digit can be
//!   recovered from audio: spandsp's `dtmf_rx` and multimon-ng.
//! - [`Rng`]: a small seeded generator, so every test signal and fault pattern is
//!   reproducible.
//! - [`alloc::Counting`]: a global allocator that counts each thread's allocations, for tests
//!   that the hot paths do not allocate.

pub mod alloc;
pub mod oracle;
mod rng;

pub use rng::Rng;
