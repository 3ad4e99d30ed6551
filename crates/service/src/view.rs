//! What the agent and the API see of a payment session: status, fields as masks, the
//! result. Never a card digit beyond the last four.

use ivrpay_capture::{CaptureError, Field, Progress};
use ivrpay_payments::DeclineCode;
use ivrpay_store::{CallId, PaymentRecord, PaymentStatus, SessionId, SessionRecord, SessionStatus};
use serde::Serialize;

/// Where a payment stands, as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Capturing.
    Open,
    /// With the gateway (or its answer is not known yet).
    Processing,
    Succeeded,
    Declined,
    Failed,
    Cancelled,
}

/// One field as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldView {
    pub field: &'static str,
    /// Bullets, brand grouping and last four, the expiry in clear.
    pub masked: String,
    /// Captured and valid.
    pub complete: bool,
    /// The last validation error (`invalid-card-number`, …).
    pub error: Option<&'static str>,
    /// Which attempt at the field, from 1.
    pub attempt: u8,
}

/// A payment session.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PaymentView {
    pub id: SessionId,
    pub call_id: Option<CallId>,
    pub status: Status,
    /// Decimal amount in major units (`"12.50"`).
    pub amount: String,
    pub currency: String,
    pub description: Option<String>,
    pub customer_ref: Option<String>,
    pub token_type: String,
    /// Fields still to capture.
    pub required: Vec<&'static str>,
    /// The field being captured now.
    pub capturing: Option<&'static str>,
    pub fields: Vec<FieldView>,
    pub brand: Option<String>,
    pub last4: Option<String>,
    /// The payment's id (`pay_…`) once the card went to the gateway.
    pub payment_id: Option<String>,
    pub gateway_ref: Option<String>,
    pub decline_code: Option<String>,
    /// The vault token, for a tokenize-only session.
    pub token: Option<String>,
    /// Why the session cannot go on (a field failed too often, the gateway is unreachable).
    pub error: Option<String>,
}

/// The last progress of each field, kept to build views.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields(Vec<FieldView>);

impl Fields {
    pub(crate) fn update(&mut self, progress: &Progress) {
        let view = FieldView {
            field: progress.field.name(),
            masked: progress.masked.clone(),
            complete: !progress.partial && progress.error.is_none() && !progress.masked.is_empty(),
            error: progress.error.map(CaptureError::name),
            attempt: progress.attempt,
        };
        match self.0.iter_mut().find(|f| f.field == view.field) {
            Some(slot) => *slot = view,
            None => self.0.push(view),
        }
    }

    /// A field is asked for (again). The error of the attempt before stays on show until the
    /// caller keys the next digit: the agent sees why the field is asked again.
    pub(crate) fn started(&mut self, field: Field, attempt: u8) {
        let previous = self.0.iter().find(|f| f.field == field.name()).and_then(|f| f.error);
        let view = FieldView {
            field: field.name(),
            masked: String::new(),
            complete: false,
            error: if attempt > 1 { previous } else { None },
            attempt,
        };
        match self.0.iter_mut().find(|f| f.field == view.field) {
            Some(slot) => *slot = view,
            None => self.0.push(view),
        }
    }

    pub(crate) fn list(&self) -> Vec<FieldView> {
        self.0.clone()
    }
}

/// A view of a session read back from the store (after its call ended, or after a restart):
/// no per-field progress any more, the result from the payment row.
pub(crate) fn stored_view(session: &SessionRecord, payment: Option<&PaymentRecord>) -> PaymentView {
    let status = match (session.status, payment.map(|p| p.status)) {
        (_, Some(PaymentStatus::Succeeded)) => Status::Succeeded,
        (_, Some(PaymentStatus::Declined)) => Status::Declined,
        (_, Some(PaymentStatus::Failed)) => Status::Failed,
        (_, Some(PaymentStatus::Pending)) => Status::Processing,
        (SessionStatus::Completed, None) => Status::Succeeded,
        (SessionStatus::Cancelled, None) => Status::Cancelled,
        (_, Some(_)) => Status::Processing,
        (_, None) => Status::Open,
    };
    let amount = session.amount();
    PaymentView {
        id: session.id.clone(),
        call_id: session.call_id.as_ref().cloned(),
        status,
        amount: amount.to_major_string(),
        currency: amount.currency().code().to_owned(),
        description: session.description.clone(),
        customer_ref: session.customer_ref.clone(),
        token_type: session.token_type.clone(),
        required: Vec::new(),
        capturing: None,
        fields: Vec::new(),
        brand: payment.and_then(|p| p.brand.clone()),
        last4: payment.and_then(|p| p.last4.clone()),
        payment_id: payment.map(|p| p.id.as_str().to_owned()),
        gateway_ref: payment.and_then(|p| p.gateway_ref.clone()),
        decline_code: payment.and_then(|p| p.error_code.as_deref()).map(agent_safe_code),
        token: session.token_id.as_ref().map(|t| t.as_str().to_owned()),
        error: None,
    }
}

/// The decline code an agent may see: lost, stolen and fraud suspicions read as a plain
/// decline (Stripe: never reveal those to the caller); codes we do not classify as they are.
pub(crate) fn agent_safe_code(code: &str) -> String {
    match DeclineCode::from_code(code) {
        DeclineCode::Generic | DeclineCode::LostCard | DeclineCode::StolenCard => {
            DeclineCode::Generic.name().to_owned()
        }
        DeclineCode::Other => code.to_owned(),
        known => known.name().to_owned(),
    }
}
