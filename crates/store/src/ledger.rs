//! The double-entry journal written by the ledger sink.
//!
//! An entry is a set of lines whose debits equal their credits; the store refuses any other,
//! so an unbalanced entry can never be committed whatever the caller computed. Entries are
//! keyed by the event they record (`UNIQUE (event_id, line)`): the sink is delivered at
//! least once, the journal holds each event's entry exactly once.

use crate::Store;
use crate::backend::{Urgency, on_pool, on_tx};
use crate::error::StoreError;
use crate::id::{EventId, LedgerEntryId, PaymentId, TenantId};
use crate::time::Timestamp;

/// One line of an entry to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLedgerLine {
    /// Account name, e.g. `1200 Card clearing`.
    pub account: String,
    /// Debit in minor units (0 when this is a credit line).
    pub debit_minor: i64,
    /// Credit in minor units (0 when this is a debit line).
    pub credit_minor: i64,
}

/// A journal entry to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLedgerEntry {
    /// Owner.
    pub tenant_id: TenantId,
    /// The event it records (the dedup key).
    pub event_id: EventId,
    /// The payment concerned.
    pub payment_id: Option<PaymentId>,
    /// ISO 4217 code of every line.
    pub currency: String,
    /// Accounting time (the event's).
    pub posted_at: Timestamp,
    /// Two or more lines; debits must equal credits.
    pub lines: Vec<NewLedgerLine>,
}

/// A stored journal line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct LedgerLine {
    /// The entry.
    #[sqlx(try_from = "String")]
    pub id: LedgerEntryId,
    /// Line number within the entry, from 1.
    pub line: i64,
    /// The event recorded.
    pub event_id: Option<String>,
    /// The payment concerned.
    pub payment_id: Option<String>,
    /// Account.
    pub account: String,
    /// Debit, minor units.
    pub debit_minor: i64,
    /// Credit, minor units.
    pub credit_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// Accounting time.
    pub posted_at_ms: i64,
}

fn balanced(lines: &[NewLedgerLine]) -> bool {
    let mut debit: i128 = 0;
    let mut credit: i128 = 0;
    for l in lines {
        if l.debit_minor < 0 || l.credit_minor < 0 {
            return false;
        }
        debit += i128::from(l.debit_minor);
        credit += i128::from(l.credit_minor);
    }
    lines.len() >= 2 && debit == credit
}

impl Store {
    /// Posts an entry unless one was posted for the same event; returns whether this call
    /// posted it.
    ///
    /// # Errors
    /// [`StoreError::InvalidState`] for an unbalanced entry (or one with a negative amount
    /// or fewer than two lines); [`StoreError::Database`] on failure.
    pub async fn post_ledger_entry(&self, entry: &NewLedgerEntry) -> Result<bool, StoreError> {
        if !balanced(&entry.lines) {
            return Err(StoreError::InvalidState { operation: "post an unbalanced journal entry" });
        }
        let entry = entry.clone();
        let id = LedgerEntryId::generate(entry.posted_at);
        self.write(Urgency::Normal, move |tx| {
            Box::pin(async move {
                for (n, l) in (1_i64..).zip(&entry.lines) {
                    let inserted = on_tx!(tx, c => sqlx::query(
                        "INSERT INTO ledger_entries (id, line, tenant_id, event_id, payment_id, account,
                             debit_minor, credit_minor, currency, posted_at_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                         ON CONFLICT (event_id, line) DO NOTHING",
                    )
                    .bind(id.as_str())
                    .bind(n)
                    .bind(entry.tenant_id.as_str())
                    .bind(entry.event_id.as_str())
                    .bind(entry.payment_id.as_ref().map(PaymentId::as_str))
                    .bind(&l.account)
                    .bind(l.debit_minor)
                    .bind(l.credit_minor)
                    .bind(&entry.currency)
                    .bind(entry.posted_at.unix_ms())
                    .execute(&mut **c)
                    .await?
                    .rows_affected());
                    if inserted == 0 {
                        // Posted before (a redelivery): the first posting stands, whole. Only
                        // the first line can find it (a posting commits whole, and one
                        // posted at the same time waits on this one's first line), so
                        // nothing of this one was written.
                        return Ok(false);
                    }
                }
                Ok(true)
            })
        })
        .await
    }

    /// A tenant's journal lines posted in `[from, to)`, in posting order.
    ///
    /// # Errors
    /// [`StoreError::Database`] on failure.
    pub async fn ledger_lines(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<LedgerLine>, StoreError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT id, line, event_id, payment_id, account, debit_minor, credit_minor, currency,
                    posted_at_ms
             FROM ledger_entries WHERE tenant_id = $1 AND posted_at_ms >= $2 AND posted_at_ms < $3
             ORDER BY posted_at_ms, id, line",
        )
        .bind(tenant.as_str())
        .bind(from.unix_ms())
        .bind(to.unix_ms())
        .fetch_all(p)
        .await?))
    }
}
