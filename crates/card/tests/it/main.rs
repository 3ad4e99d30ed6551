//! ivrpay-card integration tests: one test binary (STYLE.md rule 15).
//!
//! - `brand`: the IIN table against research/payments.md §6, progressive detection;
//! - `constructors`: every constructor's errors;
//! - `redaction`: no secret-bearing type prints its digits (STYLE.md rule 6).

mod brand;
mod constructors;
mod redaction;
