//! Building requests and responses.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_types::header::typed::ContentType;
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Headers, Method, Name, StatusCode};

use crate::message::{Essentials, Request, Response, with_tag};
use crate::transport::{Peer, Transport};

/// Methods ivrpay handles; anything else known gets 405 with this list.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// The header that tells the contact centre which ivrpay call this is.
pub(crate) const CALL_ID_HEADER: &str = "X-Ivrpay-Call-Id";

/// What the router tells the IVR about the payment of a self-service call.
pub(crate) const AMOUNT_HEADER: &str = "X-Ivrpay-Amount";
pub(crate) const CURRENCY_HEADER: &str = "X-Ivrpay-Currency";
pub(crate) const CUSTOMER_HEADER: &str = "X-Ivrpay-Customer";

/// A response to `request`: its Vias, From, Call-ID and CSeq, its To with our tag.
pub(crate) fn response(request: &Headers, code: u16, to_tag: Option<&str>) -> Response {
    let mut headers = Headers::with_capacity(8);
    for name in [Name::VIA, Name::FROM] {
        for value in request.get_raw(&name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some(to) = request.get_raw(&Name::TO).next() {
        let to = match (to_tag, crate::message::tag_param(to)) {
            (Some(tag), None) => BytesStr::from(with_tag(to.as_str(), tag)),
            _ => to.clone(),
        };
        headers.insert(Name::TO, to);
    }
    for name in [Name::CALL_ID, Name::CSEQ] {
        for value in request.get_raw(&name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    Response::new(StatusCode::from(code), headers)
}

/// Our Via for a request sent from `local` over `transport`.
pub(crate) fn via(local: SocketAddr, transport: Transport, branch: &str) -> String {
    format!("SIP/2.0/{} {};branch={branch};rport", transport.via_name(), local)
}

/// Our Contact on a leg.
pub(crate) fn contact(local: SocketAddr, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:ivrpay@{local}>"),
        Transport::Tcp(_) => format!("<sip:ivrpay@{local};transport=tcp>"),
    }
}

/// Sets the body, with Content-Type.
pub(crate) fn set_body(headers: &mut Headers, content_type: &str, body: Bytes) -> Bytes {
    headers.remove(&Name::CONTENT_TYPE);
    if !body.is_empty() {
        headers.insert_named(&ContentType(BytesStr::from(content_type.to_owned())));
    }
    body
}

/// The parts of a new request; [`RequestParts::build`] adds the Via and returns the request
/// with its decoded essentials.
pub(crate) struct RequestParts<'a> {
    pub(crate) method: Method,
    pub(crate) uri: SipUri,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) call_id: &'a str,
    pub(crate) cseq: u32,
    pub(crate) max_forwards: u32,
    pub(crate) contact: Option<String>,
    pub(crate) routes: &'a [BytesStr],
    pub(crate) extra: Headers,
    pub(crate) body: Option<(&'a str, Bytes)>,
}

impl RequestParts<'_> {
    pub(crate) fn build(
        self,
        local: SocketAddr,
        transport: Transport,
        branch: &str,
    ) -> Option<(Request, Essentials)> {
        let mut headers = Headers::with_capacity(12);
        headers.insert(Name::VIA, via(local, transport, branch));
        headers.insert(Name::MAX_FORWARDS, self.max_forwards.to_string());
        for route in self.routes {
            headers.insert(Name::ROUTE, route.clone());
        }
        headers.insert(Name::FROM, self.from);
        headers.insert(Name::TO, self.to);
        headers.insert(Name::CALL_ID, self.call_id.to_owned());
        headers.insert(Name::CSEQ, format!("{} {}", self.cseq, self.method));
        if let Some(contact) = self.contact {
            headers.insert(Name::CONTACT, contact);
        }
        let mut extra = self.extra;
        extra.drain_into(&mut headers);
        let body = match self.body {
            Some((content_type, body)) => set_body(&mut headers, content_type, body),
            None => Bytes::new(),
        };
        let request = Request { method: self.method, uri: self.uri, headers, body };
        let essentials = request.essentials().ok()?;
        Some((request, essentials))
    }
}

/// Where a SIP URI points: its host must be an IP address (ivrpay does no DNS), port 5060
/// by default, `transport=tcp` for TCP.
pub(crate) fn peer_of(uri: &SipUri) -> Option<Peer> {
    let ip: IpAddr = uri.host_port.ip()?;
    let port = uri.host_port.port.unwrap_or(5060);
    let tcp =
        uri.uri_params.get_val("transport").is_some_and(|t| t.as_str().eq_ignore_ascii_case("tcp"));
    let transport = if tcp { Transport::Tcp(None) } else { Transport::Udp };
    Some(Peer { transport, addr: SocketAddr::new(ip, port) })
}

/// The URI inside a Contact or Route value (`<sip:...>;params` or a bare `sip:...`).
pub(crate) fn uri_in(value: &str) -> Option<SipUri> {
    let inner = match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value).trim(),
    };
    inner.trim().parse::<SipUri>().ok()
}
