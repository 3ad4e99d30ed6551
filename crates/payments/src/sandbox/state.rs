//! The sandbox's memory: idempotency records, charges and their refunds, counters.

use std::collections::HashMap;

use ivrpay_card::{CardData, Currency, Money, TokenType};
use serde::{Deserialize, Serialize};

use super::cards::{self, Behaviour};
use crate::error::GatewayError;
use crate::outcome::Decline;

/// Stripe's largest amount (eight digits of minor units).
const MAX_AMOUNT_MINOR: u64 = 99_999_999;

/// What identifies a request, to tell a replay from a conflicting reuse of its key. Holds
/// the last four digits, never the card number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Fingerprint {
    Charge { amount: u64, currency: String, last4: String, expiry: (u8, u16) },
    Tokenize { token_type: String, last4: String, expiry: (u8, u16) },
    Refund { charge_id: String, amount: Option<(u64, String)> },
}

impl Fingerprint {
    pub(crate) fn charge(amount: Money, card: &CardData) -> Fingerprint {
        Fingerprint::Charge {
            amount: amount.minor(),
            currency: amount.currency().code().to_string(),
            last4: card.pan.last4().to_string(),
            expiry: (card.expiry.month(), card.expiry.year()),
        }
    }

    pub(crate) fn tokenize(token_type: TokenType, card: &CardData) -> Fingerprint {
        Fingerprint::Tokenize {
            token_type: token_type.name().to_string(),
            last4: card.pan.last4().to_string(),
            expiry: (card.expiry.month(), card.expiry.year()),
        }
    }

    pub(crate) fn refund(charge_id: &str, amount: Option<Money>) -> Fingerprint {
        Fingerprint::Refund {
            charge_id: charge_id.to_string(),
            amount: amount.map(|m| (m.minor(), m.currency().code().to_string())),
        }
    }
}

/// The saved answer of an executed request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Saved {
    Charged { id: String, amount: u64, currency: String },
    Tokenized { token: String, customer: Option<String> },
    Refunded { id: String, charge_id: String, amount: u64, currency: String },
    Declined(Decline),
}

/// An idempotency record: the request's fingerprint and its saved answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) saved: Saved,
}

#[derive(Debug)]
struct ChargeState {
    amount: Money,
    refunded: u64,
}

/// Everything the sandbox remembers.
#[derive(Debug, Default)]
pub(crate) struct State {
    records: HashMap<String, Record>,
    charges: HashMap<String, ChargeState>,
    /// Successful charges executed per key (more than one would be a double charge).
    charges_per_key: HashMap<String, u32>,
    /// Requests executed (not replayed) per key.
    executions: HashMap<String, u32>,
    next_id: u64,
}

/// What to do with a request before executing it.
pub(crate) enum Lookup {
    /// Same key, same request: answer this again.
    Replay(Saved),
    /// New key: execute.
    Execute,
}

impl State {
    /// Checks `key` against the records.
    pub(crate) fn lookup(&self, key: &str, fp: &Fingerprint) -> Result<Lookup, GatewayError> {
        match self.records.get(key) {
            Some(r) if &r.fingerprint == fp => Ok(Lookup::Replay(r.saved.clone())),
            Some(_) => Err(GatewayError::IdempotencyConflict),
            None => Ok(Lookup::Execute),
        }
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_sandbox_{:08}", self.next_id)
    }

    fn executed(&mut self, key: &str) {
        *self.executions.entry(key.to_string()).or_default() += 1;
    }

    /// Executes a charge. A processing error is not saved: a retry executes again.
    pub(crate) fn charge(
        &mut self,
        key: &str,
        amount: Money,
        card: &CardData,
    ) -> Result<Saved, GatewayError> {
        if amount.is_zero() {
            return Err(GatewayError::InvalidRequest { code: Some("amount_too_small".into()) });
        }
        if amount.minor() > MAX_AMOUNT_MINOR {
            return Err(GatewayError::InvalidRequest { code: Some("amount_too_large".into()) });
        }
        self.executed(key);
        match cards::charge(card) {
            Behaviour::Succeed => Ok(Saved::Charged {
                id: self.new_id("pi"),
                amount: amount.minor(),
                currency: amount.currency().code().to_string(),
            }),
            Behaviour::Decline(code) => Ok(Saved::Declined(Decline::from_gateway_code(code))),
            Behaviour::ProcessingError => Err(GatewayError::Processing),
        }
    }

    /// Executes a tokenization.
    pub(crate) fn tokenize(
        &mut self,
        key: &str,
        token_type: TokenType,
        card: &CardData,
    ) -> Result<Saved, GatewayError> {
        self.executed(key);
        match cards::tokenize(card) {
            Behaviour::Succeed => {
                let (token, customer) = match token_type {
                    TokenType::OneTime => (self.new_id("tok"), None),
                    TokenType::Reusable => (self.new_id("pm"), Some(self.new_id("cus"))),
                    _ => (self.new_id("pm"), None),
                };
                Ok(Saved::Tokenized { token, customer })
            }
            Behaviour::Decline(code) => Ok(Saved::Declined(Decline::from_gateway_code(code))),
            Behaviour::ProcessingError => Err(GatewayError::Processing),
        }
    }

    /// Executes a refund.
    pub(crate) fn refund(
        &mut self,
        key: &str,
        charge_id: &str,
        amount: Option<Money>,
    ) -> Result<Saved, GatewayError> {
        let charge = self.charges.get(charge_id).ok_or(GatewayError::UnknownCharge)?;
        let left = charge.amount.minor() - charge.refunded;
        let currency = charge.amount.currency();
        let wanted = match amount {
            Some(m) if m.currency() != currency => {
                return Err(GatewayError::InvalidRequest {
                    code: Some("currency_mismatch".into()),
                });
            }
            Some(m) if m.is_zero() => {
                return Err(GatewayError::InvalidRequest { code: Some("amount_too_small".into()) });
            }
            Some(m) => m.minor(),
            None => left,
        };
        if wanted == 0 || wanted > left {
            return Err(GatewayError::RefundExceedsCharge);
        }
        self.executed(key);
        Ok(Saved::Refunded {
            id: self.new_id("re"),
            charge_id: charge_id.to_string(),
            amount: wanted,
            currency: currency.code().to_string(),
        })
    }

    /// Saves an executed request's answer and applies its effects.
    pub(crate) fn save(&mut self, key: &str, record: Record) {
        match &record.saved {
            Saved::Charged { id, amount, currency } => {
                if let Ok(c) = Currency::from_code(currency) {
                    let amount = Money::from_minor(*amount, c);
                    self.charges.insert(id.clone(), ChargeState { amount, refunded: 0 });
                }
                *self.charges_per_key.entry(key.to_string()).or_default() += 1;
            }
            Saved::Refunded { charge_id, amount, .. } => {
                if let Some(c) = self.charges.get_mut(charge_id) {
                    c.refunded += amount;
                }
            }
            Saved::Tokenized { .. } | Saved::Declined(_) => {}
        }
        self.records.insert(key.to_string(), record);
    }

    /// Replays a journal line: the record, and the id counter past its ids.
    pub(crate) fn restore(&mut self, key: &str, record: Record) {
        let ids: Vec<&str> = match &record.saved {
            Saved::Charged { id, .. } | Saved::Refunded { id, .. } => vec![id],
            Saved::Tokenized { token, customer } => {
                std::iter::once(token.as_str()).chain(customer.as_deref()).collect()
            }
            Saved::Declined(_) => vec![],
        };
        for id in ids {
            if let Some(n) = id.rsplit('_').next().and_then(|n| n.parse::<u64>().ok()) {
                self.next_id = self.next_id.max(n);
            }
        }
        *self.executions.entry(key.to_string()).or_default() += 1;
        self.save(key, record);
    }

    pub(crate) fn charges_for(&self, key: &str) -> u32 {
        self.charges_per_key.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn executions_for(&self, key: &str) -> u32 {
        self.executions.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn charge_count(&self) -> u32 {
        self.charges_per_key.values().sum()
    }

    pub(crate) fn refunded(&self, charge_id: &str) -> Option<u64> {
        self.charges.get(charge_id).map(|c| c.refunded)
    }
}
