//! A payment attempt that owns the card until the gateway answers, then wipes it.
//!
//! PCI DSS 3.3.1.2: the security code must not outlive authorisation. The attempt is a
//! consuming state machine:
//!
//! ```text
//! PaymentAttempt ──submit──▶ Answered(answer)          card dropped (wiped)
//!                       ├──▶ Rejected(error)           card dropped (wiped); not retryable
//!                       └──▶ Unanswered{attempt,error} card kept for a retry with the same key
//! ```

use std::time::Duration;

use ivrpay_card::{CardData, IdempotencyKey, Money, TokenType};

use crate::error::GatewayError;
use crate::gateway::{ChargeRequest, Gateway, TokenizeRequest};
use crate::outcome::{ChargeOutcome, Charged, Decline, TokenizeOutcome, Tokenized};

/// What the attempt asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Authorize and capture this amount.
    Charge(Money),
    /// Tokenize only.
    Tokenize(TokenType),
}

/// One payment attempt: an idempotency key, what to do, and the card.
#[derive(Debug)]
#[must_use = "an attempt holds card data until it is submitted or dropped"]
pub struct PaymentAttempt {
    key: IdempotencyKey,
    intent: Intent,
    card: CardData,
    description: String,
    customer_reference: Option<String>,
    tries: u32,
}

/// The gateway's answer. The card has been wiped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Charged.
    Charged(Charged),
    /// Tokenized.
    Tokenized(Tokenized),
    /// Declined: tell the agent.
    Declined(Decline),
}

/// What came of [`PaymentAttempt::submit`].
#[derive(Debug)]
pub enum Submission {
    /// The gateway answered; the card is wiped.
    Answered(Answer),
    /// No answer (a retryable error): the attempt, card included, comes back for a retry
    /// with the same idempotency key.
    Unanswered {
        /// The attempt, to submit again.
        attempt: PaymentAttempt,
        /// Why there was no answer.
        error: GatewayError,
    },
    /// A failure that retrying will not fix; the card is wiped. Alert: it is a bug or a
    /// configuration problem.
    Rejected(GatewayError),
}

/// How [`PaymentAttempt::submit_with_retries`] retries.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Deadline of each try; a try that takes longer counts as [`GatewayError::Timeout`].
    pub try_timeout: Duration,
    /// Pauses between tries; the number of tries is one more than its length.
    pub backoff: Vec<Duration>,
}

impl Default for RetryPolicy {
    /// 10 s per try, then 0.5 s, 2 s and 5 s between tries (four tries, about 48 s at
    /// worst: the caller is on the line).
    fn default() -> Self {
        RetryPolicy {
            try_timeout: Duration::from_secs(10),
            backoff: vec![
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(5),
            ],
        }
    }
}

impl PaymentAttempt {
    /// An attempt to charge `amount` to `card`.
    pub fn charge(
        key: IdempotencyKey,
        amount: Money,
        card: CardData,
        description: impl Into<String>,
        customer_reference: Option<String>,
    ) -> PaymentAttempt {
        PaymentAttempt {
            key,
            intent: Intent::Charge(amount),
            card,
            description: description.into(),
            customer_reference,
            tries: 0,
        }
    }

    /// An attempt to tokenize `card`.
    pub fn tokenize(
        key: IdempotencyKey,
        token_type: TokenType,
        card: CardData,
        customer_reference: Option<String>,
    ) -> PaymentAttempt {
        PaymentAttempt {
            key,
            intent: Intent::Tokenize(token_type),
            card,
            description: String::new(),
            customer_reference,
            tries: 0,
        }
    }

    /// The card, e.g. for the vault before the gateway call.
    pub fn card(&self) -> &CardData {
        &self.card
    }

    /// The idempotency key every try uses.
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// What the attempt asks for.
    pub fn intent(&self) -> Intent {
        self.intent
    }

    /// How many times it was submitted.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// Sends the attempt once.
    pub async fn submit(self, gateway: &dyn Gateway) -> Submission {
        self.submit_within(gateway, None).await
    }

    /// Sends the attempt, retrying retryable errors with the same key per `policy`. Returns
    /// the last `Unanswered` when every try failed that way; the caller decides whether to
    /// keep the card for later or drop it.
    pub async fn submit_with_retries(
        self,
        gateway: &dyn Gateway,
        policy: &RetryPolicy,
    ) -> Submission {
        let mut attempt = self;
        let mut pauses = policy.backoff.iter();
        loop {
            match attempt.submit_within(gateway, Some(policy.try_timeout)).await {
                Submission::Unanswered { attempt: again, error } => match pauses.next() {
                    Some(&pause) => {
                        tokio::time::sleep(pause).await;
                        attempt = again;
                    }
                    None => return Submission::Unanswered { attempt: again, error },
                },
                done => return done,
            }
        }
    }

    async fn submit_within(
        mut self,
        gateway: &dyn Gateway,
        deadline: Option<Duration>,
    ) -> Submission {
        self.tries += 1;
        let result = match self.intent {
            Intent::Charge(amount) => {
                let request = ChargeRequest {
                    idempotency_key: &self.key,
                    amount,
                    card: &self.card,
                    description: &self.description,
                    customer_reference: self.customer_reference.as_deref(),
                };
                within(deadline, gateway.charge(&request)).await.map(|o| match o {
                    ChargeOutcome::Succeeded(c) => Answer::Charged(c),
                    ChargeOutcome::Declined(d) => Answer::Declined(d),
                })
            }
            Intent::Tokenize(token_type) => {
                let request = TokenizeRequest {
                    idempotency_key: &self.key,
                    card: &self.card,
                    token_type,
                    customer_reference: self.customer_reference.as_deref(),
                };
                within(deadline, gateway.tokenize(&request)).await.map(|o| match o {
                    TokenizeOutcome::Succeeded(t) => Answer::Tokenized(t),
                    TokenizeOutcome::Declined(d) => Answer::Declined(d),
                })
            }
        };
        match result {
            Ok(answer) => {
                // The gateway answered: the card (and its security code) goes now.
                drop(self);
                Submission::Answered(answer)
            }
            Err(error) if error.is_retryable() => Submission::Unanswered { attempt: self, error },
            Err(error) => {
                drop(self);
                Submission::Rejected(error)
            }
        }
    }
}

async fn within<T>(
    deadline: Option<Duration>,
    call: crate::gateway::GatewayFuture<'_, T>,
) -> Result<T, GatewayError> {
    match deadline {
        Some(d) => tokio::time::timeout(d, call).await.unwrap_or(Err(GatewayError::Timeout)),
        None => call.await,
    }
}
