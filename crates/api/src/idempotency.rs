//! `Idempotency-Key` on every POST, after the IETF httpapi draft
//! ("The Idempotency-Key HTTP Header Field"), as Stripe and svix do it:
//!
//! - a POST without the header is a 400; a key is 1 to 255 visible ASCII characters;
//! - the first request with a key runs; its answer (unless 401, 403 or 5xx) is kept for 24
//!   hours and replayed for a retry with the same key and the same request (method, path,
//!   query and body), with `Idempotent-Replayed: true`;
//! - the same key with a different request is a 422; a retry while the first is still
//!   running is a 409;
//! - keys are per API key: two callers cannot see each other's answers.
//!
//! Server errors are not kept on purpose: a payment whose gateway did not answer stays
//! pending, and the retry with the same key is what resolves it. The kept answers live in
//! this process; the operations that move money are idempotent in the store too (a session's
//! key opens the same session, a refund's key refunds once), so a replay after a restart or
//! on another node still charges and refunds nothing twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ivrpay_card::IdempotencyKey;
use sha2::{Digest, Sha256};

use crate::ApiState;
use crate::auth::Principal;
use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// How long an answer is kept.
const KEEP: Duration = Duration::from_secs(24 * 3600);
/// At most this many answers are kept; the oldest go first.
const CAPACITY: usize = 20_000;
/// The largest request body the layer reads (bodies here are small JSON documents).
const MAX_BODY: usize = 1 << 20;

/// The key of a request, checked.
pub(crate) fn key_of(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let value = headers.get(HEADER).ok_or_else(|| {
        ApiError::bad_request("every POST needs an Idempotency-Key header (a new random value per operation, the same on its retries)")
            .with_code("idempotency-key-missing")
    })?;
    let text = value.to_str().map_err(|_| invalid_key())?;
    IdempotencyKey::new(text).map_err(|_| invalid_key())
}

fn invalid_key() -> ApiError {
    ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        .with_code("idempotency-key-invalid")
}

/// A kept answer.
#[derive(Clone, Debug)]
struct Answer {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    location: Option<HeaderValue>,
    body: Bytes,
}

#[derive(Debug)]
enum Slot {
    Running,
    Done(Answer),
}

#[derive(Debug)]
struct Entry {
    fingerprint: [u8; 32],
    slot: Slot,
    at: Instant,
}

/// (hash of the API key, idempotency key)
type CacheKey = ([u8; 32], String);

/// The kept answers.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<CacheKey, Entry>,
    order: VecDeque<(CacheKey, Instant)>,
}

enum Begin {
    Run,
    Replay(Answer),
    Mismatch,
    Running,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A poisoned lock means a panic while holding it; the map is still whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self, key: &CacheKey, fingerprint: [u8; 32], now: Instant) -> Begin {
        let mut inner = self.lock();
        inner.expire(now);
        if let Some(entry) = inner.entries.get(key) {
            if entry.fingerprint != fingerprint {
                return Begin::Mismatch;
            }
            return match &entry.slot {
                Slot::Running => Begin::Running,
                Slot::Done(answer) => Begin::Replay(answer.clone()),
            };
        }
        inner.entries.insert(key.clone(), Entry { fingerprint, slot: Slot::Running, at: now });
        inner.order.push_back((key.clone(), now));
        Begin::Run
    }

    fn finish(&self, key: &CacheKey, answer: Option<Answer>) {
        let mut inner = self.lock();
        match answer {
            Some(answer) => {
                if let Some(entry) = inner.entries.get_mut(key) {
                    entry.slot = Slot::Done(answer);
                }
            }
            None => {
                inner.entries.remove(key);
            }
        }
    }
}

impl CacheInner {
    fn expire(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front() {
            let old = now.saturating_duration_since(*at) > KEEP;
            if !old && self.entries.len() < CAPACITY {
                break;
            }
            // The queue may hold keys removed or re-inserted since: drop only the entry
            // this queue slot stands for.
            if self.entries.get(key).is_some_and(|e| e.at == *at) {
                self.entries.remove(key);
            }
            self.order.pop_front();
        }
    }
}

/// Forgets a running entry unless the request finished (also when the handler panics or the
/// client goes away mid-request).
struct Running<'a> {
    cache: &'a Cache,
    key: Option<CacheKey>,
}

impl Running<'_> {
    fn finish(mut self, answer: Option<Answer>) {
        if let Some(key) = self.key.take() {
            self.cache.finish(&key, answer);
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cache.finish(&key, None);
        }
    }
}

fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update([0]);
    hash.update(uri.path().as_bytes());
    hash.update([0]);
    hash.update(uri.query().unwrap_or("").as_bytes());
    hash.update([0]);
    hash.update(body);
    hash.finalize().into()
}

fn answer_response(answer: Answer, replayed: bool) -> Response {
    let mut response = (answer.status, answer.body).into_response();
    let headers = response.headers_mut();
    if let Some(ct) = answer.content_type {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(location) = answer.location {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Whether an answer is kept for replays.
fn keep(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS)
}

/// The middleware (on every `/v1` route; it acts on POSTs only).
pub(crate) async fn layer(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    // Without a credential the handler answers 401; nothing to keep.
    let Some(credential) = crate::auth::credential(request.headers()) else {
        return next.run(request).await;
    };
    let key = match key_of(request.headers()) {
        Ok(key) => key,
        Err(e) => {
            // A bad API key is the first thing to tell.
            let (mut parts, _) = request.into_parts();
            if let Err(auth) = Principal::from_request_parts(&mut parts, &state).await {
                return auth.into_response();
            }
            return e.into_response();
        }
    };
    let owner: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::bad_request("the body is larger than 1 MiB").into_response();
    };
    let cache_key = (owner, key.as_str().to_owned());
    let print = fingerprint(&parts.method, &parts.uri, &bytes);
    let cache = state.idempotency();
    match cache.begin(&cache_key, print, state.clock().instant()) {
        Begin::Replay(answer) => {
            state.metrics().idempotent_replays.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return answer_response(answer, true);
        }
        Begin::Mismatch => {
            return ApiError::unprocessable(
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request; use a new key for a new operation",
            )
            .into_response();
        }
        Begin::Running => {
            return ApiError::conflict(
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .with_code("idempotency-key-in-use")
            .into_response();
        }
        Begin::Run => {}
    }
    let running = Running { cache, key: Some(cache_key) };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = response.status();
    if !keep(status) {
        running.finish(None);
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        running.finish(None);
        return ApiError::internal("reading an answer", &"body error").into_response();
    };
    let answer = Answer {
        status,
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
        location: parts.headers.get(header::LOCATION).cloned(),
        body,
    };
    running.finish(Some(answer.clone()));
    let mut response = Response::from_parts(parts, Body::from(answer.body));
    response.headers_mut().remove(REPLAYED);
    response
}
