//! The double-entry journal. Pure: an event in, a balanced entry out.
//!
//! The clearing-account convention (research/payments.md §5): a captured card payment debits
//! Card clearing (an asset: money the acquirer owes us) and credits Accounts receivable (the
//! customer's debt is paid); a refund does the reverse. The clearing account then nets to the
//! settlement batch's payout, which is the reconciliation check. Every entry is balanced by
//! construction ([`JournalEntry`] has no unbalanced constructor) and the store refuses an
//! unbalanced one again.

use ivrpay_store::{LedgerLine, NewLedgerLine};
use serde_json::Value;

use crate::csv::{major, record};

/// The accounts the ledger sink posts to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    /// Debited by payments.
    pub clearing: String,
    /// Credited by payments.
    pub receivable: String,
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            clearing: "1200 Card clearing".to_owned(),
            receivable: "1100 Accounts receivable".to_owned(),
        }
    }
}

/// A balanced entry: one debit and one credit of the same amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The debit line.
    pub debit: (String, i64),
    /// The credit line.
    pub credit: (String, i64),
    /// ISO 4217.
    pub currency: String,
    /// The payment concerned.
    pub payment_id: Option<String>,
}

impl JournalEntry {
    fn pair(debit: &str, credit: &str, amount: i64, currency: &str, payment: Option<&str>) -> Self {
        Self {
            debit: (debit.to_owned(), amount),
            credit: (credit.to_owned(), amount),
            currency: currency.to_owned(),
            payment_id: payment.map(str::to_owned),
        }
    }

    /// The lines as the store takes them.
    #[must_use]
    pub fn lines(&self) -> Vec<NewLedgerLine> {
        vec![
            NewLedgerLine {
                account: self.debit.0.clone(),
                debit_minor: self.debit.1,
                credit_minor: 0,
            },
            NewLedgerLine {
                account: self.credit.0.clone(),
                debit_minor: 0,
                credit_minor: self.credit.1,
            },
        ]
    }
}

/// The entry an event calls for: `payment.succeeded` and `refund.succeeded` post, every
/// other event (and one without a positive amount) posts nothing.
#[must_use]
pub fn journal_for(event_type: &str, payload: &Value, accounts: &Accounts) -> Option<JournalEntry> {
    let amount = payload.get("amount_minor").and_then(Value::as_i64).filter(|a| *a > 0)?;
    let currency = payload.get("currency").and_then(Value::as_str)?;
    match event_type {
        "payment.succeeded" => {
            let payment = payload.get("id").and_then(Value::as_str);
            Some(JournalEntry::pair(
                &accounts.clearing,
                &accounts.receivable,
                amount,
                currency,
                payment,
            ))
        }
        "refund.succeeded" => {
            let payment = payload.get("payment_id").and_then(Value::as_str);
            Some(JournalEntry::pair(
                &accounts.receivable,
                &accounts.clearing,
                amount,
                currency,
                payment,
            ))
        }
        _ => None,
    }
}

/// Per account and currency: (debits, credits).
#[must_use]
pub fn balances(lines: &[LedgerLine]) -> std::collections::BTreeMap<(String, String), (i64, i64)> {
    let mut out = std::collections::BTreeMap::new();
    for l in lines {
        let e: &mut (i64, i64) = out.entry((l.account.clone(), l.currency.clone())).or_default();
        e.0 = e.0.saturating_add(l.debit_minor);
        e.1 = e.1.saturating_add(l.credit_minor);
    }
    out
}

/// The journal as CSV: one row per line, amounts in major units.
#[must_use]
pub fn to_csv(lines: &[LedgerLine]) -> String {
    let mut out = String::new();
    record(
        &mut out,
        &[
            "entry_id",
            "line",
            "posted_at",
            "account",
            "debit",
            "credit",
            "currency",
            "payment_id",
            "event_id",
        ],
    );
    for l in lines {
        let exponent = ivrpay_card::Currency::from_code(&l.currency).map_or(2, |c| c.exponent());
        let posted = ivrpay_store::Timestamp::from_unix_ms(l.posted_at_ms).to_string();
        record(
            &mut out,
            &[
                l.id.as_str(),
                &l.line.to_string(),
                &posted,
                &l.account,
                &major(l.debit_minor, exponent),
                &major(l.credit_minor, exponent),
                &l.currency,
                l.payment_id.as_deref().unwrap_or(""),
                l.event_id.as_deref().unwrap_or(""),
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn sums(e: &JournalEntry) -> (i64, i64) {
        let lines = e.lines();
        (lines.iter().map(|l| l.debit_minor).sum(), lines.iter().map(|l| l.credit_minor).sum())
    }

    #[test]
    fn payment_debits_clearing_refund_reverses() {
        let a = Accounts::default();
        let pay = journal_for(
            "payment.succeeded",
            &json!({"id": "pay_1", "amount_minor": 1250, "currency": "USD"}),
            &a,
        )
        .expect("entry");
        assert_eq!(pay.debit, (a.clearing.clone(), 1250));
        assert_eq!(pay.credit, (a.receivable.clone(), 1250));
        let refund = journal_for(
            "refund.succeeded",
            &json!({"payment_id": "pay_1", "amount_minor": 250, "currency": "USD"}),
            &a,
        )
        .expect("entry");
        assert_eq!(
            (refund.debit.0.as_str(), refund.credit.0.as_str()),
            (a.receivable.as_str(), a.clearing.as_str())
        );
        assert_eq!(refund.payment_id.as_deref(), Some("pay_1"));
        assert!(
            journal_for("payment.declined", &json!({"amount_minor": 1, "currency": "USD"}), &a)
                .is_none()
        );
        assert!(
            journal_for("payment.succeeded", &json!({"amount_minor": 0, "currency": "USD"}), &a)
                .is_none()
        );
    }

    proptest! {
        /// Any sequence of payments and refunds gives balanced entries, and the journal as a
        /// whole balances: debits equal credits, and clearing nets to payments - refunds.
        #[test]
        fn every_entry_and_the_journal_balance(ops in proptest::collection::vec((any::<bool>(), 0_i64..10_000_000), 0..60)) {
            let a = Accounts::default();
            let (mut debits, mut credits, mut clearing, mut expected) = (0_i64, 0_i64, 0_i64, 0_i64);
            for (is_refund, amount) in ops {
                let kind = if is_refund { "refund.succeeded" } else { "payment.succeeded" };
                let payload = json!({"id": "x", "payment_id": "x", "amount_minor": amount, "currency": "EUR"});
                let Some(entry) = journal_for(kind, &payload, &a) else {
                    prop_assert_eq!(amount, 0);
                    continue;
                };
                let (d, c) = sums(&entry);
                prop_assert_eq!(d, c);
                debits += d;
                credits += c;
                for l in entry.lines() {
                    if l.account == a.clearing { clearing += l.debit_minor - l.credit_minor; }
                }
                expected += if is_refund { -amount } else { amount };
            }
            prop_assert_eq!(debits, credits);
            prop_assert_eq!(clearing, expected);
        }
    }
}
