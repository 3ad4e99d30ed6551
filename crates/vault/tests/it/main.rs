#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::print_stdout, reason = "the suites print the figures for the closing note")]

//! The vault's integration suite: one test binary (STYLE.md rule 15). Cases that touch the
//! database run on SQLite (temporary directory) and PostgreSQL (a fresh schema of the
//! `DATABASE_URL` server).
//!
//! - `tokens`: round trips, random tokens, fingerprints, tenants, expiry;
//! - `tamper`: wrong keys, tampered or moved ciphertext and wrapped keys;
//! - `keys`: the master key file (creation, 0600, refusal of loose permissions), the
//!   environment source;
//! - `rotation`: rotation under concurrent tokenize/detokenize, other processes, retirement;
//! - `scan`: no PAN digits in clear in the SQLite file or a `pg_dump` of the schema.

// `crate::on_both!`: a case on SQLite and on PostgreSQL.
use ivrpay_testkit::on_both;

mod keys;
mod rotation;
mod scan;
mod support;
mod tamper;
mod tokens;
