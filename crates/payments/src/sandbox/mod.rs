//! The embedded sandbox gateway: Stripe's test mode in process.
//!
//! - Stripe's public test cards give Stripe's outcomes ([`cards`]): `4242424242424242`
//!   succeeds, `4000000000000002` is declined, `…9995` insufficient funds, `…0069` expired,
//!   `…0127` incorrect CVC, `…0119` a retryable processing error, and so on; other numbers
//!   are refused as live cards in test mode.
//! - Idempotency as Stripe does it: the answer (success or decline) of the first request
//!   with a key is saved and replayed for the same key and request, without a second
//!   charge; the same key with a different request is a conflict. Errors raised before
//!   execution (invalid request, injected 5xx) are not saved, so a retry executes.
//! - Counters for tests: charges executed per key, in total, executions per key.
//! - Faults on demand ([`Fault`]): 5xx, time-outs before or after the charge, hangs.
//! - Optional journal ([`Sandbox::open`]): the memory survives a killed process.

mod cards;
mod journal;
mod state;

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use ivrpay_card::{Currency, Money};

use crate::error::GatewayError;
use crate::gateway::{ChargeRequest, Gateway, GatewayFuture, RefundRequest, TokenizeRequest};
use crate::outcome::{ChargeOutcome, Charged, Refunded, TokenizeOutcome, Tokenized};
use journal::{Journal, Line};
use state::{Fingerprint, Lookup, Record, Saved, State};

/// A fault the sandbox injects into the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer HTTP 503 without executing (a retry with the same key executes).
    ServerError,
    /// Time out without executing.
    TimeoutBeforeProcessing,
    /// Execute (and save) the request, then time out: the charge exists, the caller does
    /// not know. A retry with the same key replays it.
    TimeoutAfterProcessing,
    /// Execute and save, then never answer: the caller's own deadline must fire.
    HangAfterProcessing,
}

/// The embedded sandbox gateway. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Sandbox {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    faults: VecDeque<Fault>,
    journal: Option<Journal>,
}

impl Sandbox {
    /// A sandbox that remembers in memory only.
    pub fn new() -> Sandbox {
        Sandbox::default()
    }

    /// A sandbox whose memory is the journal file at `path` (created if missing): every
    /// executed request is appended and synced before its answer is returned.
    pub fn open(path: &Path) -> io::Result<Sandbox> {
        let (journal, lines) = Journal::open(path)?;
        let mut state = State::default();
        for line in lines {
            state.restore(&line.key, line.record);
        }
        Ok(Sandbox {
            inner: Mutex::new(Inner { state, faults: VecDeque::new(), journal: Some(journal) }),
        })
    }

    /// Queues `fault` for the next call (faults apply in order, one per call).
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Successful charges executed under `key`: 1 after a charge however often it was
    /// retried, more would be a double charge.
    pub fn charges_for(&self, key: &ivrpay_card::IdempotencyKey) -> u32 {
        self.lock().state.charges_for(key.as_str())
    }

    /// Successful charges executed in total.
    pub fn charge_count(&self) -> u32 {
        self.lock().state.charge_count()
    }

    /// Requests executed (not replayed) under `key`.
    pub fn executions_for(&self, key: &ivrpay_card::IdempotencyKey) -> u32 {
        self.lock().state.executions_for(key.as_str())
    }

    /// Minor units refunded so far from a charge, if the charge exists.
    pub fn refunded(&self, charge_id: &str) -> Option<u64> {
        self.lock().state.refunded(charge_id)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every update is a
        // single insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The common path: fault, idempotency lookup, execution, save (and journal), fault.
    async fn call(
        &self,
        key: &str,
        fingerprint: Fingerprint,
        execute: impl FnOnce(&mut State) -> Result<Saved, GatewayError>,
    ) -> Result<(Saved, bool), GatewayError> {
        let (result, after) = {
            let mut inner = self.lock();
            let fault = inner.faults.pop_front();
            match fault {
                Some(Fault::ServerError) => return Err(GatewayError::Server { status: 503 }),
                Some(Fault::TimeoutBeforeProcessing) => return Err(GatewayError::Timeout),
                _ => {}
            }
            let result = match inner.state.lookup(key, &fingerprint)? {
                Lookup::Replay(saved) => Ok((saved, true)),
                Lookup::Execute => match execute(&mut inner.state) {
                    Ok(saved) => {
                        let record = Record { fingerprint, saved: saved.clone() };
                        if let Some(j) = inner.journal.as_mut() {
                            let line = Line { key: key.to_string(), record: record.clone() };
                            // Not saved on disk means not executed, as far as anyone
                            // will ever know: answer like a 5xx.
                            j.append(&line).map_err(|_| GatewayError::Server { status: 500 })?;
                        }
                        inner.state.save(key, record);
                        Ok((saved, false))
                    }
                    Err(e) => Err(e),
                },
            };
            (result, fault)
        };
        match after {
            Some(Fault::TimeoutAfterProcessing) => Err(GatewayError::Timeout),
            Some(Fault::HangAfterProcessing) => std::future::pending().await,
            _ => result,
        }
    }
}

fn money(amount: u64, currency: &str) -> Result<Money, GatewayError> {
    Currency::from_code(currency)
        .map(|c| Money::from_minor(amount, c))
        .map_err(|_| GatewayError::Protocol("unknown currency in a saved record"))
}

impl Gateway for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn charge<'a>(&'a self, request: &'a ChargeRequest<'a>) -> GatewayFuture<'a, ChargeOutcome> {
        Box::pin(async move {
            let key = request.idempotency_key.as_str();
            let fp = Fingerprint::charge(request.amount, request.card);
            let (saved, replayed) =
                self.call(key, fp, |s| s.charge(key, request.amount, request.card)).await?;
            match saved {
                Saved::Charged { id, amount, currency } => Ok(ChargeOutcome::Succeeded(Charged {
                    charge_id: id,
                    amount: money(amount, &currency)?,
                    replayed,
                })),
                Saved::Declined(d) => Ok(ChargeOutcome::Declined(d)),
                _ => Err(GatewayError::IdempotencyConflict),
            }
        })
    }

    fn tokenize<'a>(
        &'a self,
        request: &'a TokenizeRequest<'a>,
    ) -> GatewayFuture<'a, TokenizeOutcome> {
        Box::pin(async move {
            let key = request.idempotency_key.as_str();
            let fp = Fingerprint::tokenize(request.token_type, request.card);
            let (saved, replayed) =
                self.call(key, fp, |s| s.tokenize(key, request.token_type, request.card)).await?;
            match saved {
                Saved::Tokenized { token, customer } => {
                    Ok(TokenizeOutcome::Succeeded(Tokenized { token, customer, replayed }))
                }
                Saved::Declined(d) => Ok(TokenizeOutcome::Declined(d)),
                _ => Err(GatewayError::IdempotencyConflict),
            }
        })
    }

    fn refund<'a>(&'a self, request: &'a RefundRequest<'a>) -> GatewayFuture<'a, Refunded> {
        Box::pin(async move {
            let key = request.idempotency_key.as_str();
            let fp = Fingerprint::refund(request.charge_id, request.amount);
            let (saved, replayed) =
                self.call(key, fp, |s| s.refund(key, request.charge_id, request.amount)).await?;
            match saved {
                Saved::Refunded { id, amount, currency, .. } => {
                    Ok(Refunded { refund_id: id, amount: money(amount, &currency)?, replayed })
                }
                _ => Err(GatewayError::IdempotencyConflict),
            }
        })
    }
}
