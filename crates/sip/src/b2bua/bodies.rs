//! What a message body may carry across ivrpay. The agent must never see a key press or the
//! customer's own media address, so a body from the customer leg passes an allow-list:
//!
//! - `application/sdp`: rewritten to ivrpay's relay before it goes on (the media anchor);
//! - the DTMF types (`application/dtmf-relay`, `application/dtmf`, `application/x-dtmf-relay`,
//!   `application/x-dtmf`, `application/vnd.nortelnetworks.digits`): each read for its key,
//!   which joins the call's digit stream; never passed on;
//! - `multipart/mixed` and `multipart/alternative` (carriers send SDP with ISUP): each part
//!   judged as above; a part of another type is dropped if it may be ignored
//!   (`handling=optional`), else refused as a top-level body would be;
//! - anything else: 415 with an `Accept` of this list.
//!
//! What goes on is only ever the rewritten SDP, as a single-part body. The agent leg's SDP is
//! rewritten the same way, multipart or not (the customer must not see the agent's media
//! address either); its other bodies pass to the customer as they came.

use std::time::Instant;

use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_types::header::typed::ContentType;
use ezk_sip_types::{Headers, Name};
use ivrpay_dtmf::Digit;

use super::{CallEvent, Core, build};
use crate::media::{CallId, Leg, MediaControl};
use crate::multipart::{self, MultipartError, Part};
use crate::transaction::ServerTxId;

/// The body types taken from the customer leg: the `Accept` of a 415.
pub(crate) const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf, \
     application/x-dtmf-relay, application/x-dtmf, application/vnd.nortelnetworks.digits, \
     multipart/mixed, multipart/alternative";

/// How a DTMF body type writes its key: on a `key=` line, or as the whole body.
struct DtmfType {
    name: &'static str,
    key: Option<&'static str>,
    bare: bool,
}

const DTMF_TYPES: &[DtmfType] = &[
    // `Signal=5` and `Duration=160` lines (Cisco's INFO relay).
    DtmfType { name: "application/dtmf-relay", key: Some("signal"), bare: false },
    DtmfType { name: "application/x-dtmf-relay", key: Some("signal"), bare: false },
    // The key alone: `5`.
    DtmfType { name: "application/dtmf", key: None, bare: true },
    // Written either way by the devices that send it.
    DtmfType { name: "application/x-dtmf", key: Some("signal"), bare: true },
    // Nortel's `d=5`.
    DtmfType { name: "application/vnd.nortelnetworks.digits", key: Some("d"), bare: false },
];

/// A body, read by the rules of the leg it came from.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// The session description, to be rewritten before it goes anywhere.
    pub(crate) sdp: Option<Bytes>,
    /// Key presses (customer leg): consumed, never passed on. One per DTMF body or part.
    pub(crate) digits: Vec<Digit>,
    /// A body of another type from the agent leg, passed on as it came: (Content-Type, bytes).
    pub(crate) other: Option<(String, Bytes)>,
}

/// Why a body is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// A type outside the allow-list (or no Content-Type): 415 with [`ACCEPT`].
    Unsupported,
    /// A multipart body that cannot be read: 400.
    Malformed(MultipartError),
    /// More than one session description: 400.
    SeveralSdp,
    /// A DTMF body whose key cannot be read: 400. Still card data: never passed on.
    UnreadableKey,
}

impl BodyError {
    pub(crate) fn status(self) -> u16 {
        match self {
            BodyError::Unsupported => 415,
            BodyError::Malformed(_) | BodyError::SeveralSdp | BodyError::UnreadableKey => 400,
        }
    }

    /// The reason phrase of the refusal.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            BodyError::Unsupported => "Unsupported Media Type",
            BodyError::Malformed(error) => error.reason(),
            BodyError::SeveralSdp => "More than one session description",
            BodyError::UnreadableKey => "Unreadable key press",
        }
    }
}

/// Reads the body of a message from `leg` (`headers` give its Content-Type).
pub(crate) fn read(leg: Leg, headers: &Headers, body: &Bytes) -> Result<Body, BodyError> {
    let mut out = Body::default();
    if body.is_empty() {
        return Ok(out);
    }
    let content_type = headers.get_named::<ContentType>().map_err(|_| BodyError::Unsupported)?;
    let content_type = content_type.0.as_str();
    let media_type = media_type(content_type);
    if media_type.eq_ignore_ascii_case("multipart/mixed")
        || media_type.eq_ignore_ascii_case("multipart/alternative")
    {
        let boundary = multipart::boundary(content_type).map_err(BodyError::Malformed)?;
        for part in multipart::parse(body, boundary).map_err(BodyError::Malformed)? {
            read_part(leg, part, &mut out)?;
        }
        return Ok(out);
    }
    match (classify(media_type), leg) {
        (Kind::Sdp, _) => out.sdp = Some(body.clone()),
        (Kind::Dtmf(dtmf), Leg::Customer) => out.digits.push(key(dtmf, body)?),
        (Kind::Dtmf(_) | Kind::Other, Leg::Agent) => {
            out.other = Some((content_type.to_owned(), body.clone()));
        }
        (Kind::Other, Leg::Customer) => return Err(BodyError::Unsupported),
    }
    Ok(out)
}

/// One part of a multipart body. Only SDP goes on from a part, from either leg.
fn read_part(leg: Leg, part: Part, out: &mut Body) -> Result<(), BodyError> {
    let media_type = part.content_type.as_deref().map_or("text/plain", media_type);
    match (classify(media_type), leg) {
        (Kind::Sdp, _) if out.sdp.is_some() => return Err(BodyError::SeveralSdp),
        (Kind::Sdp, _) => out.sdp = Some(part.body),
        (Kind::Dtmf(dtmf), Leg::Customer) => out.digits.push(key(dtmf, &part.body)?),
        (Kind::Other, Leg::Customer) if !part.optional => return Err(BodyError::Unsupported),
        // ISUP and the like that may be ignored; the agent's key presses are not card data.
        (Kind::Other | Kind::Dtmf(_), _) => {}
    }
    Ok(())
}

enum Kind {
    Sdp,
    Dtmf(&'static DtmfType),
    Other,
}

fn classify(media_type: &str) -> Kind {
    if media_type.eq_ignore_ascii_case("application/sdp") {
        return Kind::Sdp;
    }
    match DTMF_TYPES.iter().find(|t| media_type.eq_ignore_ascii_case(t.name)) {
        Some(dtmf) => Kind::Dtmf(dtmf),
        None => Kind::Other,
    }
}

/// `type/subtype` of a Content-Type value, without parameters.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The key in a DTMF body: a single character (`0`-`9`, `*`, `#`, `A`-`D`), or the RFC 4733
/// event code some devices send instead (10 for `*`, 11 for `#`).
fn key(dtmf: &DtmfType, body: &[u8]) -> Result<Digit, BodyError> {
    let body = std::str::from_utf8(body).map_err(|_| BodyError::UnreadableKey)?;
    let keyed = dtmf.key.and_then(|key| {
        body.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim().eq_ignore_ascii_case(key).then(|| value.trim())
        })
    });
    let written = keyed.or_else(|| dtmf.bare.then(|| body.trim())).unwrap_or("");
    let mut chars = written.chars();
    let digit = match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => written.parse::<u8>().ok().and_then(Digit::from_event_code),
    };
    digit.ok_or(BodyError::UnreadableKey)
}

impl<M: MediaControl> Core<M> {
    /// Refuses a request for its body: 415 with the allow-list in `Accept`, or 400; the
    /// reason phrase says what is wrong.
    pub(super) fn refuse_body(
        &mut self,
        now: Instant,
        id: ServerTxId,
        request: &Headers,
        error: BodyError,
        tag: Option<&str>,
    ) {
        let mut response = build::response(request, error.status(), tag);
        response.reason = Some(BytesStr::from_static(error.reason()));
        if error == BodyError::Unsupported {
            response.headers.insert(Name::ACCEPT, ACCEPT);
        }
        self.respond(now, id, &response);
    }

    /// Key presses from a body, into the call's digit stream.
    pub(super) fn push_digits(&mut self, call: &CallId, digits: &[Digit]) {
        for &digit in digits {
            self.events.push_back(CallEvent::Digit { call: call.clone(), digit });
        }
    }

    /// The SDP in an ACK or a response from `leg` of call `key`, which cannot be refused: its
    /// key presses are consumed, other types dropped, and a body that cannot be read counts
    /// as no body.
    pub(super) fn sdp_in_answer(
        &mut self,
        key: u64,
        leg: Leg,
        headers: &Headers,
        body: &Bytes,
    ) -> Option<Bytes> {
        let body = read(leg, headers, body).ok()?;
        if let Some(call) = self.calls.get(&key).map(|c| c.id.clone()) {
            self.push_digits(&call, &body.digits);
        }
        body.sdp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(content_type: &str) -> Headers {
        let mut headers = Headers::new();
        headers.insert(Name::CONTENT_TYPE, BytesStr::from(content_type.to_owned()));
        headers
    }

    fn customer(content_type: &str, body: &str) -> Result<Body, BodyError> {
        read(Leg::Customer, &typed(content_type), &Bytes::from(body.replace('\n', "\r\n")))
    }

    fn keys(body: &Body) -> String {
        body.digits.iter().map(|d| d.as_char()).collect()
    }

    #[test]
    fn every_dtmf_type_gives_its_key() {
        for (content_type, body, expected) in [
            ("application/dtmf-relay", "Signal=5\nDuration=160\n", '5'),
            ("application/dtmf-relay", "Signal= 10\nDuration=160\n", '*'),
            ("Application/DTMF", "#", '#'),
            ("application/x-dtmf-relay", "signal=7\n", '7'),
            ("application/x-dtmf", "Signal=A\nDuration=100\n", 'A'),
            ("application/x-dtmf", "9", '9'),
            ("application/vnd.nortelnetworks.digits", "d=4\n", '4'),
            ("application/vnd.nortelnetworks.digits; charset=us-ascii", "s=x\nd=11\n", '#'),
        ] {
            let body = customer(content_type, body).expect(content_type);
            assert_eq!(keys(&body), expected.to_string(), "{content_type}");
            assert!(body.sdp.is_none() && body.other.is_none(), "nothing goes on");
        }
        for (content_type, body) in [
            ("application/dtmf-relay", "Duration=160"),
            ("application/dtmf", "55"),
            ("application/vnd.nortelnetworks.digits", "5"),
            ("application/dtmf", "\u{ff}"),
        ] {
            let refused = customer(content_type, body).map(|b| keys(&b));
            assert_eq!(refused, Err(BodyError::UnreadableKey), "{content_type} {body:?}");
        }
    }

    #[test]
    fn the_customer_leg_refuses_what_is_not_on_the_list() {
        for content_type in ["text/plain", "application/isup", "multipart/related; boundary=b"] {
            let refused = customer(content_type, "5").map(|b| keys(&b));
            assert_eq!(refused, Err(BodyError::Unsupported), "{content_type}");
        }
        let no_type = read(Leg::Customer, &Headers::new(), &Bytes::from_static(b"5"));
        assert_eq!(no_type.map(|b| keys(&b)), Err(BodyError::Unsupported));
        assert!(customer("text/plain", "").is_ok_and(|b| b.sdp.is_none()), "no body: nothing");
    }

    const MIXED: &str = "multipart/mixed; boundary=b";

    #[test]
    fn multipart_sdp_is_found_keys_consumed_and_optional_parts_dropped() {
        let text = "--b
Content-Type: application/sdp

v=0
--b
Content-Type: application/isup; version=itu-t92+
Content-Disposition: signal; handling=optional

isup
--b
Content-Type: application/vnd.nortelnetworks.digits

d=3
--b--
";
        let body = customer(MIXED, text).expect("accepted");
        assert_eq!(body.sdp.as_deref(), Some(&b"v=0"[..]));
        assert_eq!(keys(&body), "3");
        assert!(body.other.is_none(), "the ISUP part is dropped");
        // The same from the agent: its SDP only, no digits, nothing else.
        let agent = read(Leg::Agent, &typed(MIXED), &Bytes::from(text.replace('\n', "\r\n")))
            .expect("accepted");
        assert_eq!(agent.sdp.as_deref(), Some(&b"v=0"[..]));
        assert!(agent.digits.is_empty() && agent.other.is_none());
    }

    #[test]
    fn multipart_refusals() {
        let required = "--b\nContent-Type: application/isup\n\nisup\n--b--\n";
        assert_eq!(customer(MIXED, required).map(|b| keys(&b)), Err(BodyError::Unsupported));
        let untyped = "--b\n\nplain text\n--b--\n";
        assert_eq!(customer(MIXED, untyped).map(|b| keys(&b)), Err(BodyError::Unsupported));
        let two_sdp = "--b\nc: application/sdp\n\nv=0\n--b\nc: application/sdp\n\nv=0\n--b--\n";
        assert_eq!(customer(MIXED, two_sdp).map(|b| keys(&b)), Err(BodyError::SeveralSdp));
        let nested = "--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\n\nx\n--c--\n--b--\n";
        assert_eq!(customer(MIXED, nested).map(|b| keys(&b)), Err(BodyError::Unsupported));
        let bad_key = "--b\nContent-Type: application/dtmf\n\nten\n--b--\n";
        assert_eq!(customer(MIXED, bad_key).map(|b| keys(&b)), Err(BodyError::UnreadableKey));
        assert_eq!(
            customer("multipart/alternative", "--b\n\nx\n--b--\n").map(|b| keys(&b)),
            Err(BodyError::Malformed(MultipartError::BadBoundary))
        );
        assert_eq!(
            customer(MIXED, "--b\nContent-Type: application/sdp\n\nv=0\n").map(|b| keys(&b)),
            Err(BodyError::Malformed(MultipartError::Unterminated))
        );
    }

    #[test]
    fn the_agent_leg_passes_other_bodies_as_they_came() {
        let body = read(Leg::Agent, &typed("application/x-note"), &Bytes::from_static(b"hi"))
            .expect("passed");
        assert_eq!(body.other, Some(("application/x-note".to_owned(), Bytes::from_static(b"hi"))));
        assert!(body.digits.is_empty());
    }
}
