//! The generic-pay connector: Twilio's Generic Pay Connector protocol
//! (research/payments.md §1.1), so any gateway (or a Twilio `<Pay>` bridge such as
//! Hyperswitch's) that speaks it can take our payments.
//!
//! One endpoint, JSON `POST`s:
//!
//! ```json
//! {"method": "charge", "transaction_id": "<idempotency key>", "cardnumber": "…",
//!  "cvv": "…", "expiry_month": "12", "expiry_year": "30", "postal_code": "…",
//!  "amount": "19.99", "currency_code": "usd", "description": "…", "parameters": {…}}
//! ```
//!
//! answered `{"charge_id": "…", "error_code": null, "error_message": null}`; a decline is
//! HTTP 200 with `charge_id` null and `error_code` set. `method: "tokenize"` answers
//! `token_id`. `transaction_id` is stable across retries (Twilio's words): it is the
//! idempotency key, also sent as the `Idempotency-Key` header.
//!
//! Refunds are our extension of the protocol, in the same shape: `{"method": "refund",
//! "transaction_id", "charge_id", "amount"?, "currency_code"?}` answered `{"refund_id",
//! "amount", "currency_code", "error_code", "error_message"}`; an absent `amount` refunds
//! what is left.
//!
//! The protocol has no MOTO flag: its endpoint is a telephone-order endpoint by definition
//! (Hyperswitch serves it as `/telephone_order/…`), so what is sent here is MOTO.
//!
//! Retry rule: 5xx, 408, 429 and transport failures are retried with the same
//! `transaction_id`; `error_code: "processing_error"` too; other error codes are
//! declines; 409 is an idempotency conflict; other 4xx are invalid requests. The
//! `error_message` is never read (free text from the wire).

use std::collections::BTreeMap;
use std::time::Duration;

use ivrpay_card::{Currency, Money, Secret};
use serde::{Deserialize, Serialize};

use crate::error::{GatewayError, sanitize_code};
use crate::gateway::{ChargeRequest, Gateway, GatewayFuture, RefundRequest, TokenizeRequest};
use crate::http::{BODY_CAPACITY, client, status_error, transport_error, wiped_body};
use crate::outcome::{ChargeOutcome, Charged, Decline, Refunded, TokenizeOutcome, Tokenized};

/// How to reach a generic-pay endpoint.
#[derive(Debug)]
pub struct GenericPayConfig {
    /// The endpoint URL.
    pub url: String,
    /// HTTP basic credentials (Twilio's connector uses them), if any.
    pub basic_auth: Option<(String, Secret<String>)>,
    /// Sent as `parameters` with every request (Twilio's `<Parameter>` nouns).
    pub parameters: BTreeMap<String, String>,
    /// Deadline of each HTTP request.
    pub timeout: Duration,
}

/// The generic-pay connector.
#[derive(Debug)]
pub struct GenericPay {
    http: reqwest::Client,
    config: GenericPayConfig,
}

/// A request, as the protocol names its fields. Borrowed, serialized straight into a
/// pre-sized buffer that is wiped once sent.
#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    transaction_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cardnumber: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cvv: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry_month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry_year: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge_id: Option<&'a str>,
    parameters: &'a BTreeMap<String, String>,
}

/// A response. Unknown fields are ignored; `error_message` is not read.
#[derive(Deserialize, Default)]
struct Response {
    charge_id: Option<String>,
    token_id: Option<String>,
    refund_id: Option<String>,
    amount: Option<String>,
    currency_code: Option<String>,
    error_code: Option<String>,
}

impl<'a> Request<'a> {
    fn new(method: &'a str, key: &'a str, parameters: &'a BTreeMap<String, String>) -> Self {
        Request {
            method,
            transaction_id: key,
            cardnumber: None,
            cvv: None,
            expiry_month: None,
            expiry_year: None,
            postal_code: None,
            amount: None,
            currency_code: None,
            description: None,
            token_type: None,
            charge_id: None,
            parameters,
        }
    }

    fn card(mut self, card: &'a ivrpay_card::CardData) -> Self {
        self.cardnumber = Some(card.pan.expose());
        self.cvv = card.cvv.as_ref().map(|c| c.expose());
        self.expiry_month = Some(format!("{:02}", card.expiry.month()));
        self.expiry_year = Some(format!("{:02}", card.expiry.year() % 100));
        self.postal_code = card.postal_code.as_ref().map(|p| p.expose());
        self
    }

    fn money(mut self, amount: Money) -> Self {
        self.amount = Some(amount.to_major_string());
        self.currency_code = Some(amount.currency().code().to_ascii_lowercase());
        self
    }
}

impl GenericPay {
    /// A connector for `config`.
    pub fn new(config: GenericPayConfig) -> Result<GenericPay, GatewayError> {
        Ok(GenericPay { http: client(config.timeout)?, config })
    }

    async fn post(&self, request: &Request<'_>) -> Result<Response, GatewayError> {
        let mut buf = Vec::with_capacity(BODY_CAPACITY);
        serde_json::to_writer(&mut buf, request)
            .map_err(|_| GatewayError::Protocol("cannot encode the request"))?;
        let mut http = self
            .http
            .post(&self.config.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", request.transaction_id)
            .body(wiped_body(buf));
        if let Some((user, password)) = &self.config.basic_auth {
            http = http.basic_auth(user, Some(password.expose()));
        }
        let response = http.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status_error(status));
        }
        let bytes = response.bytes().await.map_err(|e| transport_error(&e))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| GatewayError::Protocol("response is not the protocol's JSON"))
    }
}

/// A declined (or failed) answer: HTTP 200 with `error_code`.
fn decline(code: &str) -> Result<Decline, GatewayError> {
    match code {
        "processing_error" => Err(GatewayError::Processing),
        "idempotency_error" => Err(GatewayError::IdempotencyConflict),
        c => Ok(Decline::from_gateway_code(c)),
    }
}

impl Gateway for GenericPay {
    fn name(&self) -> &'static str {
        "generic-pay"
    }

    fn charge<'a>(&'a self, r: &'a ChargeRequest<'a>) -> GatewayFuture<'a, ChargeOutcome> {
        Box::pin(async move {
            let mut request =
                Request::new("charge", r.idempotency_key.as_str(), &self.config.parameters)
                    .card(r.card)
                    .money(r.amount);
            request.description = Some(r.description);
            let response = self.post(&request).await?;
            drop(request);
            match (response.charge_id, response.error_code) {
                (_, Some(code)) => decline(&code).map(ChargeOutcome::Declined),
                (Some(id), None) => Ok(ChargeOutcome::Succeeded(Charged {
                    charge_id: id,
                    amount: r.amount,
                    replayed: false,
                })),
                (None, None) => Err(GatewayError::Protocol("neither charge_id nor error_code")),
            }
        })
    }

    fn tokenize<'a>(&'a self, r: &'a TokenizeRequest<'a>) -> GatewayFuture<'a, TokenizeOutcome> {
        Box::pin(async move {
            let mut request =
                Request::new("tokenize", r.idempotency_key.as_str(), &self.config.parameters)
                    .card(r.card);
            request.token_type = Some(r.token_type.name());
            let response = self.post(&request).await?;
            drop(request);
            match (response.token_id, response.error_code) {
                (_, Some(code)) => decline(&code).map(TokenizeOutcome::Declined),
                (Some(token), None) => Ok(TokenizeOutcome::Succeeded(Tokenized {
                    token,
                    customer: None,
                    replayed: false,
                })),
                (None, None) => Err(GatewayError::Protocol("neither token_id nor error_code")),
            }
        })
    }

    fn refund<'a>(&'a self, r: &'a RefundRequest<'a>) -> GatewayFuture<'a, Refunded> {
        Box::pin(async move {
            let mut request =
                Request::new("refund", r.idempotency_key.as_str(), &self.config.parameters);
            request.charge_id = Some(r.charge_id);
            if let Some(amount) = r.amount {
                request = request.money(amount);
            }
            let response = self.post(&request).await?;
            if let Some(code) = response.error_code {
                return Err(match code.as_str() {
                    "unknown_charge" | "resource_missing" => GatewayError::UnknownCharge,
                    "refund_exceeds_charge" | "charge_already_refunded" | "amount_too_large" => {
                        GatewayError::RefundExceedsCharge
                    }
                    "processing_error" => GatewayError::Processing,
                    "idempotency_error" => GatewayError::IdempotencyConflict,
                    c => GatewayError::InvalidRequest { code: sanitize_code(c) },
                });
            }
            let refund_id = response
                .refund_id
                .ok_or(GatewayError::Protocol("neither refund_id nor error_code"))?;
            // The answer states the amount refunded in major units, in the charge's
            // currency: the answer's `currency_code`, else the request's.
            let currency = response
                .currency_code
                .as_deref()
                .and_then(|c| Currency::from_code(c).ok())
                .or(r.amount.map(|m| m.currency()))
                .ok_or(GatewayError::Protocol("refund without currency"))?;
            let amount = match (r.amount, response.amount) {
                (_, Some(text)) => Money::parse_major(&text, currency)
                    .map_err(|_| GatewayError::Protocol("refund amount is not a decimal"))?,
                (Some(m), None) => m,
                (None, None) => return Err(GatewayError::Protocol("full refund without amount")),
            };
            Ok(Refunded { refund_id, amount, replayed: false })
        })
    }
}
