#![allow(unreachable_pub, reason = "test modules share helpers within one binary")]
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "the suites print their figures")]

//! The API's integration suite (one test binary): the real router on a real socket, real
//! HTTP and WebSocket clients, the real service with the sandbox gateway, on SQLite and on
//! PostgreSQL (`DATABASE_URL`). Calls come in through the service as the B2BUA announces
//! them, keys as the media path reports them; the suites of `crates/ivrpay` run the same
//! through SIP and RTP, and the desktop in a real browser.
//!
//! - `auth`: 401 and 403, agent keys confined to their agent's calls, the bootstrap key;
//! - `calls`: listing with filters and cursors, one call, 404 and 422;
//! - `payments`: a payment from open to succeeded, declines, cancels, every 404/409/422,
//!   idempotent replays and key reuse; refunds;
//! - `sync`: the downstream sync's endpoints (webhook endpoints, deliveries, the report);
//! - `feed`: the WebSocket and SSE feeds, filters, heartbeats, and resume: a client that
//!   disconnects mid-payment and reconnects with its last id gets every event once;
//! - `openapi`: the document validates (Python's `openapi-spec-validator`) and lists
//!   exactly the routes that answer.

// `crate::on_both!`: a case on SQLite and on PostgreSQL.
use ivrpay_testkit::on_both;

mod auth;
mod calls;
mod feed;
mod openapi;
mod payments;
mod support;
mod sync;
