//! Test support shared by ivrpay's test suites (never a dependency of shipped code).
//!
//! - [`oracle`]: the independent DTMF decoders that leak tests ask whether any digit can be
//!   recovered from audio: spandsp's `dtmf_rx` and multimon-ng.

pub mod oracle;
