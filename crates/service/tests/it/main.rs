#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::print_stdout, reason = "the suites print the figures for the closing note")]

//! The application core end to end: calls and their digits in, payments through the vault,
//! the sandbox gateway and a real store (SQLite and PostgreSQL) out, with the feed.

// `crate::on_both!`: a case on SQLite and on PostgreSQL.
use ivrpay_testkit::on_both;

mod crash;
mod faults;
mod feed;
mod flows;
mod leak;
mod refunds;
mod support;
