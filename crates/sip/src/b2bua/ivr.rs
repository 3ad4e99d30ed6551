//! Calls ivrpay answers itself: an IVR profile's calls have a customer leg only. The INVITE
//! is answered at once with the relay's port (the prompts need media from the first
//! moment), in-dialog offers are answered here instead of being relayed, and the call ends
//! with a BYE from either side: the customer's, or ivrpay's when the application calls
//! [`Core::hangup`] after the result.

use std::time::Instant;

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_types::{Headers, Method, Name};

use super::bodies::Body;
use super::build::{self, AMOUNT_HEADER, CURRENCY_HEADER, CUSTOMER_HEADER};
use super::{CallEvent, Core, EndReason};
use crate::media::{CallId, Leg, MediaControl};
use crate::message::Request;
use crate::profile::Mode;
use crate::sdp;
use crate::transaction::ServerTxId;

/// The longest header value passed on (an amount, a currency code, a customer reference).
const MAX_VALUE: usize = 128;

/// What the contact centre's router put on an IVR call's INVITE, as sent (the IVR parses
/// and validates it): `X-Ivrpay-Amount`, `X-Ivrpay-Currency`, `X-Ivrpay-Customer`. A value
/// longer than 128 bytes is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IvrParams {
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub customer: Option<String>,
}

impl IvrParams {
    pub(crate) fn from_headers(headers: &Headers) -> IvrParams {
        let value = |name: &'static str| {
            headers
                .get_raw(&Name::unknown(BytesStr::from_static(name)))
                .next()
                .map(|v| v.as_str().trim().to_owned())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE)
        };
        IvrParams {
            amount: value(AMOUNT_HEADER),
            currency: value(CURRENCY_HEADER),
            customer: value(CUSTOMER_HEADER),
        }
    }
}

impl<M: MediaControl> Core<M> {
    /// Ends a call from the application's side, e.g. an IVR call once the caller has heard
    /// the result: BYE to each answered leg (before the answer: an error to the customer
    /// and CANCEL to the agent). The call ends with [`EndReason::Finished`]. False when the
    /// call is not (or no longer) in progress.
    pub fn hangup(&mut self, now: Instant, call: &CallId) -> bool {
        let Some(&key) = self.by_id.get(call) else { return false };
        self.terminate(now, key, EndReason::Finished);
        true
    }

    pub(super) fn is_ivr(&self, key: u64) -> bool {
        self.calls.get(&key).is_some_and(|call| {
            call.agent.is_none() && matches!(self.profiles[call.profile].mode, Mode::Ivr)
        })
    }

    /// Answers an IVR call's INVITE: 200 with the relay's customer port, answering the
    /// customer's offer (or offering, for an INVITE without one: the ACK answers).
    pub(super) fn answer_locally(&mut self, now: Instant, key: u64) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(invite) = call.invite else { return };
        let policy = self.profiles[call.profile].codecs.clone();
        let body = match &call.offer {
            Some(offer) => {
                match sdp::parse(offer)
                    .and_then(|s| sdp::answer(&s, &mut call.customer.sdp, &policy))
                {
                    Ok((body, info)) => {
                        let id = call.id.clone();
                        let sip_peer = call.sip_peer(Leg::Customer);
                        self.media.update(&id, Leg::Customer, &info, sip_peer);
                        body
                    }
                    Err(_) => {
                        self.fail_invite(now, key, 488, EndReason::Rejected(488));
                        return;
                    }
                }
            }
            None => {
                call.awaiting_answer = true;
                sdp::offer(&mut call.customer.sdp, &policy)
            }
        };
        let Some(call) = self.calls.get_mut(&key) else { return };
        let mut out = build::response(&call.invite_headers, 200, Some(&call.customer.local_tag));
        out.headers.insert(
            Name::CONTACT,
            build::contact(call.customer.local, call.customer.peer.transport),
        );
        out.headers.insert(Name::ALLOW, build::ALLOW);
        out.body = build::set_body(&mut out.headers, "application/sdp", body);
        call.invite = None;
        call.phase = super::Phase::Answered;
        call.ring_until = None;
        let id = call.id.clone();
        self.respond(now, invite, &out);
        self.events.push_back(CallEvent::Answered { call: id, agent: None });
    }

    /// The customer's ACK to a 2xx that offered: its SDP is the answer.
    pub(super) fn ivr_ack(&mut self, key: u64, answer: Option<Bytes>) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        call.awaiting_answer = false;
        let Some(answer) = answer else { return };
        let policy = self.profiles[call.profile].codecs.clone();
        if let Ok(info) = sdp::parse(&answer).and_then(|s| sdp::stream_info(&s)) {
            let mut info = info;
            info.codecs.retain(|(_, c)| policy.codecs.contains(c));
            if !info.codecs.is_empty() {
                let id = call.id.clone();
                let sip_peer = call.sip_peer(Leg::Customer);
                self.media.update(&id, Leg::Customer, &info, sip_peer);
            }
        }
    }

    /// A re-INVITE, UPDATE or INFO on an IVR call: there is no other leg to relay it to, so
    /// ivrpay answers. An offer (`body`'s SDP) gets our answer (the relay follows the new
    /// stream), a re-INVITE without one gets our offer, anything else a plain 200.
    pub(super) fn answer_in_dialog(
        &mut self,
        now: Instant,
        id: ServerTxId,
        key: u64,
        request: Request,
        body: Body,
    ) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let tag = call.customer.local_tag.clone();
        let policy = self.profiles[call.profile].codecs.clone();
        let body = if request.method == Method::INFO {
            None
        } else if let Some(offer) = body.sdp {
            match sdp::parse(&offer).and_then(|s| sdp::answer(&s, &mut call.customer.sdp, &policy))
            {
                Ok((body, info)) => {
                    let call_id = call.id.clone();
                    let sip_peer = call.sip_peer(Leg::Customer);
                    self.media.update(&call_id, Leg::Customer, &info, sip_peer);
                    Some(body)
                }
                Err(_) => {
                    self.respond_code(now, id, &request.headers, 488, Some(&tag));
                    return;
                }
            }
        } else if request.method == Method::INVITE {
            call.awaiting_answer = true;
            Some(sdp::offer(&mut call.customer.sdp, &policy))
        } else {
            None
        };
        let Some(call) = self.calls.get(&key) else { return };
        let mut out = build::response(&request.headers, 200, Some(&tag));
        if request.method == Method::INVITE {
            out.headers.insert(
                Name::CONTACT,
                build::contact(call.customer.local, call.customer.peer.transport),
            );
            // An unacknowledged 2xx to a re-INVITE ends the call, as for the first INVITE.
            self.server_owner.insert(id, key);
        }
        if let Some(body) = body {
            out.body = build::set_body(&mut out.headers, "application/sdp", body);
        }
        self.respond(now, id, &out);
    }
}
