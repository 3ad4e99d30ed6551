//! SIP messages: framing, parsing into ezk-sip-types parts, and printing.
//!
//! Headers stay as ezk `Headers` (name → raw values, decoded on demand): a B2BUA copies most
//! headers untouched and only needs a handful decoded, so nothing is parsed twice or for
//! nothing.

use std::fmt::{self, Write as _};

use bytes::{Bytes, BytesMut};
use bytesstr::BytesStr;
use ezk_sip_types::header::typed::{CSeq, CallID, ContentLength, MaxForwards, Via};
use ezk_sip_types::msg::{Line, MessageLine, PullParser, StatusLine};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::print::{AppendCtx, PrintCtx};
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Headers, Method, Name, StatusCode};

/// Largest message we accept (a UDP datagram or a TCP-framed message).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A SIP request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub uri: SipUri,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response.
#[derive(Clone, Debug)]
pub struct Response {
    pub code: StatusCode,
    pub reason: Option<BytesStr>,
    pub headers: Headers,
    pub body: Bytes,
}

/// Either.
#[derive(Clone, Debug)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Why a message could not be parsed. Requests whose headers could still be read come with
/// them, so that the endpoint can answer 400 (or 416) rather than drop them.
#[derive(Debug)]
#[non_exhaustive]
pub enum ParseError {
    /// Not even a start line: nothing can be answered.
    BadStartLine,
    /// A header line that is not `name: value`, or not UTF-8.
    BadHeaderLine,
    /// The head never ends (no empty line).
    Incomplete,
    /// Content-Length promises more body than arrived.
    ShortBody { declared: usize, available: usize },
    /// Too large.
    TooLarge { len: usize },
    /// The Request-URI is not a SIP URI we can parse (tel:, garbage); the headers are there.
    BadRequestUri { headers: Headers },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadStartLine => f.write_str("no SIP request or status line"),
            ParseError::BadHeaderLine => f.write_str("malformed header line"),
            ParseError::Incomplete => f.write_str("message head is not terminated"),
            ParseError::ShortBody { declared, available } => {
                write!(f, "Content-Length {declared} but only {available} bytes of body")
            }
            ParseError::TooLarge { len } => write!(f, "message of {len} bytes is too large"),
            ParseError::BadRequestUri { .. } => f.write_str("unsupported or malformed Request-URI"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one complete message (a datagram, or a frame cut by [`frame_length`]).
pub fn parse(buffer: Bytes) -> Result<Message, ParseError> {
    if buffer.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge { len: buffer.len() });
    }
    let mut parser = PullParser::new(&buffer, 0);
    let first = match parser.next() {
        Some(Ok(line)) => std::str::from_utf8(line).map_err(|_| ParseError::BadStartLine)?,
        _ => return Err(ParseError::BadStartLine),
    };
    let is_response = first.starts_with("SIP/2.0 ");
    let start = MessageLine::parse(&buffer)(first).ok().map(|(_, line)| line);
    if start.is_none() && (is_response || !looks_like_request_line(first)) {
        return Err(ParseError::BadStartLine);
    }
    let mut headers = Headers::new();
    for line in &mut parser {
        let line = line.map_err(|_| ParseError::Incomplete)?;
        let line = std::str::from_utf8(line).map_err(|_| ParseError::BadHeaderLine)?;
        let (_, line) = Line::parse(&buffer, line).map_err(|_| ParseError::BadHeaderLine)?;
        headers.insert(line.name, line.value);
    }
    let head_end = parser.head_end();
    if head_end == 0 || head_end > buffer.len() {
        return Err(ParseError::Incomplete);
    }
    let body = match headers.get_named::<ContentLength>() {
        Ok(ContentLength(0)) => Bytes::new(),
        Ok(ContentLength(declared)) => {
            let available = buffer.len() - head_end;
            if available < declared {
                return Err(ParseError::ShortBody { declared, available });
            }
            buffer.slice(head_end..head_end + declared)
        }
        // No (or a bad) Content-Length on a datagram: the rest of it is the body.
        Err(_) => buffer.slice(head_end..),
    };
    match start {
        Some(MessageLine::Request(line)) => {
            Ok(Message::Request(Request { method: line.method, uri: line.uri, headers, body }))
        }
        Some(MessageLine::Response(StatusLine { code, reason })) => {
            Ok(Message::Response(Response { code, reason, headers, body }))
        }
        None => Err(ParseError::BadRequestUri { headers }),
    }
}

/// The readable headers of a request that [`parse`] refused for a bad header line or a body
/// shorter than its Content-Length, so that it can still be answered 400 (RFC 3261 §18.3
/// asks for that on a datagram cut short). Lines that cannot be read are left out; `None`
/// for a response or when there is no request line. Only the error path calls this.
pub fn salvage_request(buffer: &Bytes) -> Option<Headers> {
    let mut parser = PullParser::new(buffer, 0);
    let first = std::str::from_utf8(parser.next()?.ok()?).ok()?;
    if first.starts_with("SIP/2.0 ") || !looks_like_request_line(first) {
        return None;
    }
    let mut headers = Headers::new();
    for line in &mut parser {
        let Ok(line) = line else { break };
        let Ok(line) = std::str::from_utf8(line) else { continue };
        if let Ok((_, line)) = Line::parse(buffer, line) {
            headers.insert(line.name, line.value);
        }
    }
    Some(headers)
}

/// `METHOD something SIP/2.0`: a request line whose URI we could not parse.
fn looks_like_request_line(line: &str) -> bool {
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("");
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.next().is_some_and(|uri| !uri.is_empty())
        && parts.next() == Some("SIP/2.0")
}

/// For a stream transport: the length of the first complete message in `buffer`, `None` if
/// more bytes are needed, or an error if the head is malformed or too large.
pub fn frame_length(buffer: &[u8]) -> Result<Option<usize>, ParseError> {
    // Keep-alive CRLFs between messages (RFC 5626) are skipped by the caller.
    let Some(head_end) = find_head_end(buffer) else {
        return if buffer.len() > MAX_MESSAGE {
            Err(ParseError::TooLarge { len: buffer.len() })
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| ParseError::BadHeaderLine)?;
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            length = Some(value.trim().parse::<usize>().map_err(|_| ParseError::BadHeaderLine)?);
        }
    }
    // RFC 3261 §18.3: Content-Length is mandatory on stream transports.
    let total = head_end + length.ok_or(ParseError::BadHeaderLine)?;
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge { len: total });
    }
    Ok((buffer.len() >= total).then_some(total))
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

impl Request {
    /// Writes the request, with a Content-Length that matches the body.
    pub fn encode(&self, out: &mut BytesMut) {
        let ctx = PrintCtx { method: Some(&self.method), uri: None };
        let _ = write!(Writer(out), "{} {} SIP/2.0\r\n", self.method, self.uri.print_ctx(ctx));
        write_headers(out, &self.headers, self.body.len());
        out.extend_from_slice(&self.body);
    }

    /// The decoded essentials, or which one is missing.
    pub fn essentials(&self) -> Result<Essentials, MissingHeader> {
        Essentials::read(&self.headers)
    }
}

impl Response {
    /// A response with the reason phrase of its code.
    pub fn new(code: StatusCode, headers: Headers) -> Response {
        Response {
            code,
            reason: code.text().map(BytesStr::from_static),
            headers,
            body: Bytes::new(),
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        let line = StatusLine { code: self.code, reason: self.reason.clone() };
        let _ = write!(Writer(out), "{line}\r\n");
        write_headers(out, &self.headers, self.body.len());
        out.extend_from_slice(&self.body);
    }

    pub fn essentials(&self) -> Result<Essentials, MissingHeader> {
        Essentials::read(&self.headers)
    }

    /// Status code as a number.
    pub fn status(&self) -> u16 {
        self.code.into_u16()
    }
}

impl Message {
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::Request(r) => r.encode(out),
            Message::Response(r) => r.encode(out),
        }
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

fn write_headers(out: &mut BytesMut, headers: &Headers, body_len: usize) {
    for (name, value) in headers.iter() {
        if *name == Name::CONTENT_LENGTH {
            continue;
        }
        let _ = write!(Writer(out), "{}: {}\r\n", name.as_print_str(), value);
    }
    let _ = write!(Writer(out), "Content-Length: {body_len}\r\n\r\n");
}

/// `fmt::Write` into a `BytesMut`.
struct Writer<'a>(&'a mut BytesMut);

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A header the transaction layer cannot do without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingHeader(pub &'static str);

impl fmt::Display for MissingHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing or malformed {} header", self.0)
    }
}

/// What every message must carry (RFC 3261 §8.1.1), decoded once. From and To stay raw
/// (any URI scheme, e.g. tel:), with their tags picked out.
#[derive(Clone, Debug)]
pub struct Essentials {
    /// The topmost Via.
    pub via: Via,
    pub call_id: BytesStr,
    pub cseq: CSeq,
    pub from: BytesStr,
    pub from_tag: Option<BytesStr>,
    pub to: BytesStr,
    pub to_tag: Option<BytesStr>,
    pub max_forwards: Option<u32>,
}

impl Essentials {
    fn read(headers: &Headers) -> Result<Essentials, MissingHeader> {
        // Decoding a single `Via` reads the topmost value.
        let via = headers.get_named::<Via>().map_err(|_| MissingHeader("Via"))?;
        if via.params.get_val("branch").is_none() {
            return Err(MissingHeader("Via branch"));
        }
        let call_id = headers.get_named::<CallID>().map_err(|_| MissingHeader("Call-ID"))?.0;
        let cseq = headers.get_named::<CSeq>().map_err(|_| MissingHeader("CSeq"))?;
        let from = headers.get_raw(&Name::FROM).next().cloned().ok_or(MissingHeader("From"))?;
        let to = headers.get_raw(&Name::TO).next().cloned().ok_or(MissingHeader("To"))?;
        let from_tag = tag_param(&from);
        let to_tag = tag_param(&to);
        let max_forwards = headers.get_named::<MaxForwards>().ok().map(|m| u32::from(m.0));
        Ok(Essentials { via, call_id, cseq, from, from_tag, to, to_tag, max_forwards })
    }

    /// The top Via's branch (present: checked when read).
    pub fn branch(&self) -> &str {
        self.via.params.get_val("branch").map(|b| b.as_str()).unwrap_or("")
    }
}

/// The `tag` parameter of a From or To value (outside the `<...>` of the URI).
pub fn tag_param(value: &BytesStr) -> Option<BytesStr> {
    let params = header_params(value.as_str())?;
    let start = params_find(params, "tag")?;
    let offset = value.as_str().len() - params.len() + start;
    let rest = &value.as_str()[offset..];
    let end = rest.find(';').unwrap_or(rest.len());
    Some(value.slice_ref(rest[..end].trim()))
}

/// The value with its `tag` parameter replaced by (or set to) `tag`.
pub fn with_tag(value: &str, tag: &str) -> String {
    let (head, params) = match header_params(value) {
        // `params` starts after its `;`: leave that separator out of the head, or every
        // rewrite would add one more (`<sip:a@b>;;tag=x`).
        Some(params) => {
            let (head, params) = value.split_at(value.len() - params.len());
            (head.strip_suffix(';').unwrap_or(head), params)
        }
        None => (value, ""),
    };
    let mut out = String::with_capacity(value.len() + tag.len() + 5);
    out.push_str(head.trim_end());
    for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let name = param.split('=').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("tag") {
            out.push(';');
            out.push_str(param);
        }
    }
    out.push_str(";tag=");
    out.push_str(tag);
    out
}

/// The `;...` header parameters after a name-addr or addr-spec (without the leading `;` of
/// the first), or `None` if there are none.
fn header_params(value: &str) -> Option<&str> {
    let after_uri = match value.rfind('>') {
        Some(close) => close + 1,
        // addr-spec form: parameters after the first ';' belong to the header.
        None => 0,
    };
    let rest = &value[after_uri..];
    rest.find(';').map(|i| &rest[i + 1..])
}

/// Where the value of parameter `name` starts inside `params`.
fn params_find(params: &str, name: &str) -> Option<usize> {
    let mut offset = 0;
    for param in params.split(';') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.trim().eq_ignore_ascii_case(name) && !value.is_empty() {
            let value_start = param.len() - value.len();
            return Some(offset + value_start);
        }
        offset += param.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_tag_replaces_or_adds_the_tag_without_doubling_separators() {
        for (value, expected) in [
            ("\"C\" <sip:c@h:5061>;tag=old", "\"C\" <sip:c@h:5061>;tag=new"),
            ("<sip:c@h>", "<sip:c@h>;tag=new"),
            ("<sip:c@h>;x=1;tag=old;y=2", "<sip:c@h>;x=1;y=2;tag=new"),
            ("sip:c@h;tag=old", "sip:c@h;tag=new"),
        ] {
            assert_eq!(with_tag(value, "new"), expected, "{value}");
        }
    }

    #[test]
    fn salvage_reads_what_it_can_of_a_broken_request() {
        let broken = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nnot a header\r\n\
              Call-ID: x\r\nContent-Length: 10\r\n\r\nabc",
        );
        assert!(parse(broken.clone()).is_err());
        let headers = salvage_request(&broken).expect("a request");
        assert!(headers.contains(&Name::VIA) && headers.contains(&Name::CALL_ID));
        assert!(salvage_request(&Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n")).is_none());
        assert!(salvage_request(&Bytes::from_static(b"\x01\x02 garbage\r\n\r\n")).is_none());
    }
}
