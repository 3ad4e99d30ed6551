//! A Stripe-compatible HTTP connector: PaymentMethods and PaymentIntents (create and
//! confirm in one call), form-encoded, with `Idempotency-Key` and the MOTO flag.
//!
//! ## Requests
//!
//! - charge: `POST /v1/payment_methods` (key `<key>:pm`), then `POST /v1/payment_intents`
//!   with `confirm=true` and `payment_method_options[card][moto]=true` (key `<key>`);
//! - tokenize: `one-time` → `POST /v1/tokens`; `payment-method` → `POST
//!   /v1/payment_methods`; `reusable` → a customer, a payment method, and `attach` (the
//!   $0 verification that declines bad cards);
//! - refund: `POST /v1/refunds` with `payment_intent` and, for a partial refund, `amount`.
//!
//! The description and customer reference travel as `metadata` (localstripe, the
//! contract-test peer, refuses a PaymentIntent `description`).
//!
//! ## Errors
//!
//! The error `type` (and the status) decides (research/payments.md §3): `card_error` or
//! HTTP 402 is a decline to tell the agent, except `processing_error`, which is retried;
//! `api_error`, 5xx, 429 and transport failures are retried with the same key;
//! `idempotency_error` / 409, `invalid_request_error` and 401 are bugs to alert on. Only
//! error codes are read from a response, never its free-text `message`.
//!
//! Stripe caches the first answer under a key, errors included (except validation errors
//! and conflicts): a retried `processing_error` replays the same error, so the flow opens
//! a new attempt (new key) for it.

use std::time::Duration;

use ivrpay_card::{CardData, Money, Secret, TokenType};
use serde::Deserialize;

use crate::error::{GatewayError, sanitize_code};
use crate::gateway::{ChargeRequest, Gateway, GatewayFuture, RefundRequest, TokenizeRequest};
use crate::http::{Form, client, status_error, transport_error};
use crate::outcome::{
    ChargeOutcome, Charged, Decline, DeclineCode, Refunded, TokenizeOutcome, Tokenized,
};

/// How to reach a Stripe-compatible API.
#[derive(Debug)]
pub struct StripeConfig {
    /// The API root, e.g. `https://api.stripe.com` or `http://127.0.0.1:8420`.
    pub base_url: String,
    /// The secret key (`sk_test_…`).
    pub secret_key: Secret<String>,
    /// Deadline of each HTTP request.
    pub timeout: Duration,
}

/// The Stripe-compatible connector.
#[derive(Debug)]
pub struct Stripe {
    http: reqwest::Client,
    base_url: String,
    authorization: Secret<String>,
}

/// The parts of a Stripe object or error body this connector reads.
#[derive(Deserialize, Default)]
struct Body {
    id: Option<String>,
    status: Option<String>,
    amount: Option<u64>,
    currency: Option<String>,
    customer: Option<String>,
    last_payment_error: Option<ErrorBody>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
}

/// A response: status, Stripe's replay header, the parsed body.
struct Reply {
    status: u16,
    replayed: bool,
    body: Body,
}

/// A successful object, or a decline.
enum Step {
    Ok(Box<Reply>),
    Declined(Decline),
}

impl Stripe {
    /// A connector for `config`.
    pub fn new(config: StripeConfig) -> Result<Stripe, GatewayError> {
        let authorization = Secret::new(format!("Bearer {}", config.secret_key.expose()));
        Ok(Stripe {
            http: client(config.timeout)?,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            authorization,
        })
    }

    async fn post(&self, path: &str, key: &str, form: Form) -> Result<Reply, GatewayError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("Authorization", self.authorization.expose().as_str())
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.into_body())
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let bytes = response.bytes().await.map_err(|e| transport_error(&e))?;
        let body = serde_json::from_slice::<Body>(&bytes).unwrap_or_default();
        Ok(Reply { status, replayed, body })
    }

    /// Posts and sorts the answer into success, decline, or error.
    async fn step(&self, path: &str, key: &str, form: Form) -> Result<Step, GatewayError> {
        let reply = self.post(path, key, form).await?;
        if (200..300).contains(&reply.status) {
            return Ok(Step::Ok(Box::new(reply)));
        }
        let error = reply.body.error.unwrap_or_default();
        classify(reply.status, &error).map(Step::Declined)
    }

    async fn payment_method(&self, key: &str, card: &CardData) -> Result<Step, GatewayError> {
        let mut form = Form::new();
        form.field("type", "card");
        card_fields(
            &mut form,
            card,
            "card[number]",
            "card[exp_month]",
            "card[exp_year]",
            "card[cvc]",
        );
        if let Some(postal) = &card.postal_code {
            form.field("billing_details[address][postal_code]", postal.expose());
        }
        self.step("/v1/payment_methods", key, form).await
    }

    async fn charge_inner(&self, r: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError> {
        let key = r.idempotency_key;
        let pm_key = key.derive("pm").map_err(|_| GatewayError::Protocol("idempotency key"))?;
        let pm = match self.payment_method(pm_key.as_str(), r.card).await? {
            Step::Ok(reply) => id_of(reply)?,
            Step::Declined(d) => return Ok(ChargeOutcome::Declined(d)),
        };
        let mut form = Form::new();
        let amount = r.amount.minor().to_string();
        let currency = r.amount.currency().code().to_ascii_lowercase();
        form.field("amount", &amount)
            .field("currency", &currency)
            .field("payment_method", &pm)
            .field("confirm", "true")
            .field("payment_method_options[card][moto]", "true");
        metadata(&mut form, r.description, r.customer_reference);
        let reply = match self.step("/v1/payment_intents", key.as_str(), form).await? {
            Step::Ok(reply) => reply,
            Step::Declined(d) => return Ok(ChargeOutcome::Declined(d)),
        };
        intent_outcome(reply, r.amount)
    }

    async fn tokenize_inner(
        &self,
        r: &TokenizeRequest<'_>,
    ) -> Result<TokenizeOutcome, GatewayError> {
        let derive = |s: &str| {
            r.idempotency_key.derive(s).map_err(|_| GatewayError::Protocol("idempotency key"))
        };
        let declined = |d| Ok(TokenizeOutcome::Declined(d));
        match r.token_type {
            TokenType::OneTime => {
                let mut form = Form::new();
                card_fields(
                    &mut form,
                    r.card,
                    "card[number]",
                    "card[exp_month]",
                    "card[exp_year]",
                    "card[cvc]",
                );
                if let Some(postal) = &r.card.postal_code {
                    form.field("card[address_zip]", postal.expose());
                }
                match self.step("/v1/tokens", r.idempotency_key.as_str(), form).await? {
                    Step::Ok(reply) => token(reply, None),
                    Step::Declined(d) => declined(d),
                }
            }
            TokenType::Reusable => {
                let mut form = Form::new();
                if let Some(reference) = r.customer_reference {
                    form.field("metadata[customer_reference]", reference);
                }
                let customer =
                    match self.step("/v1/customers", derive("cus")?.as_str(), form).await? {
                        Step::Ok(reply) => id_of(reply)?,
                        Step::Declined(d) => return declined(d),
                    };
                let pm = match self.payment_method(derive("pm")?.as_str(), r.card).await? {
                    Step::Ok(reply) => id_of(reply)?,
                    Step::Declined(d) => return declined(d),
                };
                let mut form = Form::new();
                form.field("customer", &customer);
                let path = format!("/v1/payment_methods/{pm}/attach");
                match self.step(&path, r.idempotency_key.as_str(), form).await? {
                    Step::Ok(reply) => token(reply, Some(customer)),
                    Step::Declined(d) => declined(d),
                }
            }
            _ => match self.payment_method(r.idempotency_key.as_str(), r.card).await? {
                Step::Ok(reply) => token(reply, None),
                Step::Declined(d) => declined(d),
            },
        }
    }

    async fn refund_inner(&self, r: &RefundRequest<'_>) -> Result<Refunded, GatewayError> {
        let mut form = Form::new();
        if r.charge_id.starts_with("ch_") {
            form.field("charge", r.charge_id);
        } else {
            form.field("payment_intent", r.charge_id);
        }
        let amount = r.amount.map(|m| m.minor().to_string());
        if let Some(a) = &amount {
            form.field("amount", a);
        }
        let reply = self.post("/v1/refunds", r.idempotency_key.as_str(), form).await?;
        if !(200..300).contains(&reply.status) {
            let error = reply.body.error.unwrap_or_default();
            let code = error.code.as_deref().unwrap_or("");
            return Err(match (reply.status, code) {
                (404, _) | (_, "resource_missing") => GatewayError::UnknownCharge,
                (_, "charge_already_refunded" | "amount_too_large") => {
                    GatewayError::RefundExceedsCharge
                }
                _ => match classify(reply.status, &error) {
                    Ok(_) => GatewayError::InvalidRequest { code: sanitize_code(code) },
                    Err(e) => e,
                },
            });
        }
        let replayed = reply.replayed;
        let body = reply.body;
        let minor = body.amount.ok_or(GatewayError::Protocol("refund without amount"))?;
        let refund_id = body.id.ok_or(GatewayError::Protocol("refund without id"))?;
        let currency = body
            .currency
            .as_deref()
            .and_then(|c| ivrpay_card::Currency::from_code(c).ok())
            .or(r.amount.map(|m| m.currency()))
            .ok_or(GatewayError::Protocol("refund without currency"))?;
        Ok(Refunded { refund_id, amount: Money::from_minor(minor, currency), replayed })
    }
}

/// Adds the card fields under Stripe's names. The security code only when captured.
fn card_fields(form: &mut Form, card: &CardData, number: &str, month: &str, year: &str, cvc: &str) {
    // Two-digit month, four-digit year: small strings on the stack, not card data.
    let m = format!("{:02}", card.expiry.month());
    let y = card.expiry.year().to_string();
    form.field(number, card.pan.expose()).field(month, &m).field(year, &y);
    if let Some(c) = &card.cvv {
        form.field(cvc, c.expose());
    }
}

fn metadata(form: &mut Form, description: &str, customer_reference: Option<&str>) {
    if !description.is_empty() {
        form.field("metadata[description]", description);
    }
    if let Some(reference) = customer_reference {
        form.field("metadata[customer_reference]", reference);
    }
}

fn id_of(reply: Box<Reply>) -> Result<String, GatewayError> {
    reply.body.id.ok_or(GatewayError::Protocol("object without id"))
}

fn token(reply: Box<Reply>, customer: Option<String>) -> Result<TokenizeOutcome, GatewayError> {
    let replayed = reply.replayed;
    let customer = customer.or(reply.body.customer.clone());
    let token = id_of(reply)?;
    Ok(TokenizeOutcome::Succeeded(Tokenized { token, customer, replayed }))
}

/// A confirmed PaymentIntent's status as an outcome.
fn intent_outcome(reply: Box<Reply>, amount: Money) -> Result<ChargeOutcome, GatewayError> {
    let replayed = reply.replayed;
    let body = reply.body;
    match body.status.as_deref() {
        Some("succeeded") => Ok(ChargeOutcome::Succeeded(Charged {
            charge_id: body.id.ok_or(GatewayError::Protocol("payment intent without id"))?,
            amount,
            replayed,
        })),
        Some("requires_action") => Ok(ChargeOutcome::Declined(Decline {
            code: DeclineCode::AuthenticationRequired,
            gateway_code: Some("authentication_required".into()),
        })),
        Some("requires_payment_method") => {
            let e = body.last_payment_error.unwrap_or_default();
            let code = e.decline_code.or(e.code).unwrap_or_else(|| "card_declined".into());
            Ok(ChargeOutcome::Declined(Decline::from_gateway_code(&code)))
        }
        Some("processing") => Err(GatewayError::Protocol("payment intent still processing")),
        _ => Err(GatewayError::Protocol("unexpected payment intent status")),
    }
}

/// Stripe's error rule: a decline, or an error (retryable or not).
fn classify(status: u16, error: &ErrorBody) -> Result<Decline, GatewayError> {
    let kind = error.kind.as_deref().unwrap_or("");
    let code = error.decline_code.as_deref().or(error.code.as_deref());
    if status == 402 || kind == "card_error" {
        return match code {
            Some("processing_error") => Err(GatewayError::Processing),
            Some(c) => Ok(Decline::from_gateway_code(c)),
            None => Ok(Decline::from_gateway_code("card_declined")),
        };
    }
    Err(match kind {
        "idempotency_error" => GatewayError::IdempotencyConflict,
        "api_error" => GatewayError::Server { status },
        _ => match status {
            400 | 404 => GatewayError::InvalidRequest { code: code.and_then(sanitize_code) },
            s => status_error(s),
        },
    })
}

impl Gateway for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charge<'a>(&'a self, request: &'a ChargeRequest<'a>) -> GatewayFuture<'a, ChargeOutcome> {
        Box::pin(self.charge_inner(request))
    }

    fn tokenize<'a>(
        &'a self,
        request: &'a TokenizeRequest<'a>,
    ) -> GatewayFuture<'a, TokenizeOutcome> {
        Box::pin(self.tokenize_inner(request))
    }

    fn refund<'a>(&'a self, request: &'a RefundRequest<'a>) -> GatewayFuture<'a, Refunded> {
        Box::pin(self.refund_inner(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: &str, code: Option<&str>, decline: Option<&str>) -> ErrorBody {
        ErrorBody {
            kind: Some(kind.into()),
            code: code.map(Into::into),
            decline_code: decline.map(Into::into),
        }
    }

    #[test]
    fn error_type_decides_retry_or_tell_the_agent() {
        let d =
            classify(402, &err("card_error", Some("card_declined"), Some("insufficient_funds")));
        assert_eq!(d.map(|d| d.code), Ok(DeclineCode::InsufficientFunds));
        let d = classify(402, &err("card_error", Some("processing_error"), None));
        assert_eq!(d, Err(GatewayError::Processing));
        // localstripe sends declines as 402 `invalid_request_error` with `card_declined`.
        let d = classify(402, &err("invalid_request_error", Some("card_declined"), None));
        assert_eq!(d.map(|d| d.code), Ok(DeclineCode::Generic));
        for (status, kind, retry) in [
            (500, "api_error", true),
            (503, "", true),
            (429, "", true),
            (409, "idempotency_error", false),
            (400, "idempotency_error", false),
            (400, "invalid_request_error", false),
            (401, "invalid_request_error", false),
        ] {
            let e = classify(status, &err(kind, None, None)).expect_err("an error");
            assert_eq!(e.is_retryable(), retry, "{status} {kind}: {e:?}");
        }
        assert_eq!(
            classify(400, &err("invalid_request_error", Some("parameter_unknown"), None)),
            Err(GatewayError::InvalidRequest { code: Some("parameter_unknown".into()) })
        );
    }
}
