//! The state of one call: its two dialogs and where the call stands.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_types::uri::SipUri;

use ezk_sip_types::{Headers, Method, Name};

use super::build::{self, RequestParts};
use crate::media::{CallId, Leg, MediaPorts};
use crate::message::{Essentials, Request, Response};
use crate::sdp::LocalSdp;
use crate::transaction::{ClientTxId, ServerTxId};
use crate::transport::Peer;

/// Where a call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// INVITE sent to target `attempt`; no final response yet.
    Routing { attempt: usize },
    /// 2xx relayed to the customer.
    Answered,
    /// Over (BYE, CANCEL, error); waiting for the last transactions.
    Ended,
}

/// One side's dialog as ivrpay holds it.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    pub(crate) call_id: BytesStr,
    /// Our tag.
    pub(crate) local_tag: String,
    /// The peer's tag, once known: the customer's From tag; the agent's To tag from its 2xx.
    pub(crate) remote_tag: Option<BytesStr>,
    /// The agent's To tags from provisional responses before its 2xx: the early dialogs
    /// (forking can make several), at most [`MAX_EARLY_DIALOGS`].
    pub(crate) early_tags: Vec<BytesStr>,
    /// Our From/To value on this leg, without tag.
    pub(crate) local_uri: String,
    /// The peer's From/To value on this leg, without tag.
    pub(crate) remote_uri: String,
    /// CSeq of the last request we sent on this leg.
    pub(crate) local_cseq: u32,
    /// The peer's Contact (Request-URI of our in-dialog requests).
    pub(crate) remote_target: Option<SipUri>,
    /// Route headers for our in-dialog requests.
    pub(crate) route_set: Vec<BytesStr>,
    /// Where requests on this leg go.
    pub(crate) peer: Peer,
    /// The address the leg was set up with: where the customer's INVITE came from, where
    /// the agent's INVITE went. With `peer`, the leg's own peer for in-dialog requests.
    pub(crate) origin: IpAddr,
    /// The listen address this leg uses.
    pub(crate) local: SocketAddr,
    /// Our SDP origin and port on this leg.
    pub(crate) sdp: LocalSdp,
}

/// Early dialogs remembered per agent INVITE: one per forked branch that rang; more are
/// not tracked (their requests get 481 until a 2xx confirms one).
pub(crate) const MAX_EARLY_DIALOGS: usize = 4;

impl Dialog {
    /// Whether a request from the peer names this dialog: the peer's tag in From, ours in
    /// To (RFC 3261 §12.2.2). Before the agent's 2xx, any of its early dialogs' tags.
    pub(crate) fn is_named_by(
        &self,
        from_tag: Option<&BytesStr>,
        to_tag: Option<&BytesStr>,
    ) -> bool {
        let ours = to_tag.is_some_and(|tag| tag.as_str() == self.local_tag);
        let theirs = match (&self.remote_tag, from_tag) {
            (Some(known), Some(tag)) => known == tag,
            (None, Some(tag)) => self.early_tags.contains(tag),
            (_, None) => false,
        };
        ours && theirs
    }

    /// Whether `ip` is this leg's own peer (any port).
    pub(crate) fn is_peer(&self, ip: IpAddr) -> bool {
        ip == self.origin || ip == self.peer.addr.ip()
    }

    /// A provisional response's To tag: an early dialog with the agent.
    pub(crate) fn note_early_tag(&mut self, tag: &BytesStr) {
        if self.remote_tag.is_none()
            && !self.early_tags.contains(tag)
            && self.early_tags.len() < MAX_EARLY_DIALOGS
        {
            self.early_tags.push(tag.clone());
        }
    }

    pub(crate) fn local_with_tag(&self) -> String {
        crate::message::with_tag(&self.local_uri, &self.local_tag)
    }

    pub(crate) fn remote_with_tag(&self) -> String {
        match &self.remote_tag {
            Some(tag) => crate::message::with_tag(&self.remote_uri, tag),
            None => self.remote_uri.clone(),
        }
    }

    /// A new request in this dialog (its CSeq counted), with a Via of `branch`.
    pub(crate) fn request(
        &mut self,
        method: Method,
        body: Option<(&str, Bytes)>,
        branch: &str,
    ) -> Option<(Request, Essentials)> {
        let uri = self.remote_target.clone()?;
        self.local_cseq += 1;
        RequestParts {
            method,
            uri,
            from: self.local_with_tag(),
            to: self.remote_with_tag(),
            call_id: self.call_id.as_str(),
            cseq: self.local_cseq,
            max_forwards: 70,
            contact: Some(build::contact(self.local, self.peer.transport)),
            routes: &self.route_set,
            extra: Headers::new(),
            body,
        }
        .build(self.local, self.peer.transport, branch)
    }

    /// The ACK for a 2xx to our INVITE `cseq` (RFC 3261 §13.2.2.4: a request of its own,
    /// outside any transaction).
    pub(crate) fn ack(&self, cseq: u32, body: Option<Bytes>, branch: &str) -> Option<Request> {
        RequestParts {
            method: Method::ACK,
            uri: self.remote_target.clone()?,
            from: self.local_with_tag(),
            to: self.remote_with_tag(),
            call_id: self.call_id.as_str(),
            cseq,
            max_forwards: 70,
            contact: None,
            routes: &self.route_set,
            extra: Headers::new(),
            body: body.map(|b| ("application/sdp", b)),
        }
        .build(self.local, self.peer.transport, branch)
        .map(|(request, _)| request)
    }

    /// The CANCEL of our initial INVITE, sent with `via` (RFC 3261 §9.1: the INVITE's Via,
    /// From, To, Call-ID and CSeq number).
    pub(crate) fn cancel(&self, via: &str) -> Option<(Request, Essentials)> {
        let mut headers = Headers::with_capacity(8);
        headers.insert(Name::VIA, via.to_owned());
        headers.insert(Name::MAX_FORWARDS, "70");
        headers.insert(Name::FROM, self.local_with_tag());
        headers.insert(Name::TO, self.remote_uri.clone());
        headers.insert(Name::CALL_ID, self.call_id.clone());
        headers.insert(Name::CSEQ, "1 CANCEL");
        let uri = self.remote_target.clone()?;
        let cancel = Request { method: Method::CANCEL, uri, headers, body: Bytes::new() };
        let essentials = cancel.essentials().ok()?;
        Some((cancel, essentials))
    }

    /// What a 2xx to our INVITE says of the dialog: the peer's tag, its Contact (the target
    /// of our requests, and where they go) and the route set.
    pub(crate) fn confirm(&mut self, response: &Response, to_tag: Option<BytesStr>) {
        self.remote_tag = to_tag;
        self.early_tags.clear();
        if let Some(target) =
            response.headers.get_raw(&Name::CONTACT).next().and_then(|c| build::uri_in(c.as_str()))
        {
            if let Some(peer) = build::peer_of(&target) {
                self.peer = Peer { transport: peer.transport, ..self.peer };
                self.peer.addr = peer.addr;
            }
            self.remote_target = Some(target);
        }
        self.route_set = response.headers.get_raw(&Name::RECORD_ROUTE).rev().cloned().collect();
    }
}

/// An agent INVITE that ivrpay let go of (the call ended, or failover moved on) while it
/// may still be answered. It is CANCELled as soon as a provisional allows (RFC 3261 §9.1),
/// and a 2xx that wins the race is ACKed and hung up, so no agent is left on a call that
/// nobody is on.
#[derive(Debug)]
pub(crate) struct StrayLeg {
    pub(crate) call: u64,
    pub(crate) dialog: Dialog,
    /// The INVITE's Via (the CANCEL's).
    pub(crate) via: String,
    pub(crate) cancelled: bool,
    pub(crate) hung_up: bool,
}

/// What a pending ACK waits for: the leg whose 2xx we hold unacknowledged until the other
/// side's ACK brings the SDP answer (delayed offer).
#[derive(Clone, Debug)]
pub(crate) struct HeldAck {
    /// The leg to send the ACK on.
    pub(crate) leg: Leg,
    /// CSeq of the INVITE being acknowledged on that leg.
    pub(crate) cseq: u32,
}

/// A call.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) id: CallId,
    pub(crate) profile: usize,
    pub(crate) phase: Phase,
    pub(crate) customer: Dialog,
    /// The agent leg of the current attempt (none for IVR calls).
    pub(crate) agent: Option<Dialog>,
    /// The customer's INVITE, until it has a final response.
    pub(crate) invite: Option<ServerTxId>,
    /// Its top Via branch (its CANCEL carries the same).
    pub(crate) invite_branch: String,
    /// Its headers (to answer it and to copy headers to the agent leg).
    pub(crate) invite_headers: ezk_sip_types::Headers,
    /// The customer's SDP offer (none: delayed offer).
    pub(crate) offer: Option<Bytes>,
    /// Our INVITE on the agent leg, until final; and its branch and CSeq (for CANCEL).
    pub(crate) agent_invite: Option<ClientTxId>,
    pub(crate) agent_invite_branch: String,
    pub(crate) agent_invite_via: String,
    /// A provisional response arrived on the current attempt (CANCEL is allowed).
    pub(crate) provisional: bool,
    /// Any response arrived on the current attempt (the target is alive).
    pub(crate) responded: bool,
    pub(crate) held_ack: Option<HeldAck>,
    pub(crate) media: MediaPorts,
    pub(crate) agent_name: Option<String>,
    /// Deadlines: no response at all from the current target; no answer at all.
    pub(crate) failover_at: Option<Instant>,
    pub(crate) ring_until: Option<Instant>,
    /// An IVR call whose 2xx carried our offer: the customer's ACK brings the answer.
    pub(crate) awaiting_answer: bool,
}

impl Call {
    pub(crate) fn dialog(&self, leg: Leg) -> Option<&Dialog> {
        match leg {
            Leg::Customer => Some(&self.customer),
            Leg::Agent => self.agent.as_ref(),
        }
    }

    /// The IP address a leg's signalling goes to (the relay may accept that leg's media from
    /// it: `[media] latch_from = "sip-peer"`).
    pub(crate) fn sip_peer(&self, leg: Leg) -> Option<IpAddr> {
        self.dialog(leg).map(|d| d.peer.addr.ip())
    }

    pub(crate) fn dialog_mut(&mut self, leg: Leg) -> Option<&mut Dialog> {
        match leg {
            Leg::Customer => Some(&mut self.customer),
            Leg::Agent => self.agent.as_mut(),
        }
    }
}
