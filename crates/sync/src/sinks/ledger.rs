//! The ledger sink: one journal entry per payment and refund, in the store.

use ivrpay_store::{ClaimedDelivery, NewLedgerEntry, PaymentId, Store, Timestamp};
use serde_json::Value;

use super::{AttemptOutcome, BoxFuture, Sink};
use crate::ledger::{Accounts, journal_for};

/// Posts to the store's journal.
#[derive(Debug)]
pub struct LedgerSink {
    accounts: Accounts,
    store: Store,
}

impl LedgerSink {
    pub(crate) fn new(config: &Value, store: Store) -> Result<Self, String> {
        let accounts = if config.as_object().is_some_and(|m| !m.is_empty()) {
            serde_json::from_value(config.clone()).map_err(|e| format!("ledger accounts: {e}"))?
        } else {
            Accounts::default()
        };
        Ok(Self { accounts, store })
    }
}

impl Sink for LedgerSink {
    fn deliver<'a>(
        &'a self,
        d: &'a ClaimedDelivery,
        _now: Timestamp,
    ) -> BoxFuture<'a, AttemptOutcome> {
        Box::pin(async move {
            let Some(entry) = journal_for(d.event_type.as_str(), &d.payload, &self.accounts) else {
                return AttemptOutcome::delivered(None, Some("nothing to post".to_owned()));
            };
            let new = NewLedgerEntry {
                tenant_id: d.tenant_id.clone(),
                event_id: d.event_id.clone(),
                payment_id: entry.payment_id.as_deref().and_then(|p| PaymentId::parse(p).ok()),
                currency: entry.currency.clone(),
                posted_at: Timestamp::from_unix_ms(d.event_created_at_ms),
                lines: entry.lines(),
            };
            match self.store.post_ledger_entry(&new).await {
                Ok(true) => AttemptOutcome::delivered(None, Some("posted".to_owned())),
                Ok(false) => AttemptOutcome::delivered(None, Some("posted before".to_owned())),
                Err(ivrpay_store::StoreError::InvalidState { operation }) => {
                    AttemptOutcome::permanent(format!("cannot {operation}"))
                }
                Err(e) => AttemptOutcome::failed(e.to_string()),
            }
        })
    }
}
