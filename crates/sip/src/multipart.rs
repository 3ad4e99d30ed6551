//! `multipart/*` bodies (RFC 2046 §5.1), read just far enough to judge each part: its
//! Content-Type, whether it may be ignored (Content-Disposition `handling=optional`, RFC 3261
//! §20.11) and its bytes. Carriers send SDP with ISUP this way (RFC 3204), and a body that
//! carries key presses can hide among the parts, so every part is looked at.
//!
//! Bounded: at most [`MAX_PARTS`] parts of at most [`MAX_PART_HEADERS`] header lines; the
//! body itself is bounded by the message size. The parts are slices of the body (no copy).
//! Anything that does not follow the grammar is an error, never a guess.

use std::fmt;

use bytes::Bytes;

/// The most parts a body may have (SDP, ISUP and a few more: far more than a carrier sends).
pub const MAX_PARTS: usize = 8;
/// The most header lines a part may have.
pub const MAX_PART_HEADERS: usize = 8;
/// RFC 2046's longest boundary.
const MAX_BOUNDARY: usize = 70;

/// One part of a multipart body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its Content-Type as written (`None`: RFC 2046's default, `text/plain`).
    pub content_type: Option<String>,
    /// Its Content-Disposition says `handling=optional`: a receiver that does not understand
    /// it may ignore it.
    pub optional: bool,
    pub body: Bytes,
}

/// Why a multipart body cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// The Content-Type has no `boundary`, or one RFC 2046 does not allow.
    BadBoundary,
    /// No delimiter line in the body.
    NoDelimiter,
    /// The body ends before the closing delimiter.
    Unterminated,
    /// More than [`MAX_PARTS`] parts.
    TooManyParts,
    /// A part's headers cannot be read: no blank line after them, a line that is not
    /// `name: value` or not UTF-8, or more than [`MAX_PART_HEADERS`] lines.
    BadPartHeaders,
}

impl MultipartError {
    /// A short description, fit for a SIP reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            MultipartError::BadBoundary => "Multipart body without a valid boundary",
            MultipartError::NoDelimiter => "Multipart body without a delimiter",
            MultipartError::Unterminated => "Multipart body without a closing delimiter",
            MultipartError::TooManyParts => "Multipart body with too many parts",
            MultipartError::BadPartHeaders => "Multipart body part with malformed headers",
        }
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for MultipartError {}

/// The `boundary` parameter of a `multipart/*` Content-Type value, unquoted and checked.
pub fn boundary(content_type: &str) -> Result<&str, MultipartError> {
    let value = content_type
        .split(';')
        .skip(1)
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim())
        .ok_or(MultipartError::BadBoundary)?;
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"').ok_or(MultipartError::BadBoundary)?,
        None => value,
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    let valid = (1..=MAX_BOUNDARY).contains(&value.len())
        && value.bytes().all(allowed)
        && !value.ends_with(' ');
    if valid { Ok(value) } else { Err(MultipartError::BadBoundary) }
}

/// The parts of `body`, delimited by `boundary` (from [`boundary`]). The preamble and the
/// epilogue are ignored, as RFC 2046 asks.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = first_delimiter(body, delimiter).ok_or(MultipartError::NoDelimiter)?;
    let mut parts = Vec::new();
    loop {
        let Some(Line::Open { part_start }) = delimiter_line(body, at, delimiter) else {
            return Ok(parts); // the closing delimiter
        };
        let end =
            next_delimiter(body, part_start, delimiter).ok_or(MultipartError::Unterminated)?;
        if parts.len() == MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        parts.push(part(body.slice(part_start..end))?);
        at = end + 2; // past the CRLF that belongs to the delimiter
    }
}

/// What follows a `--boundary` at the start of a line.
enum Line {
    /// `--boundary` LWSP CRLF: a part starts at `part_start`.
    Open { part_start: usize },
    /// `--boundary--`: the last part has ended.
    Close,
}

/// The delimiter line at `at` (which starts with `delimiter`), or `None` if the line only
/// begins like one (`--boundaryX`: content, RFC 2046 §5.1.1).
fn delimiter_line(body: &[u8], at: usize, delimiter: &[u8]) -> Option<Line> {
    let rest = body.get(at + delimiter.len()..)?;
    if rest.starts_with(b"--") {
        return Some(Line::Close);
    }
    let padding = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
    rest[padding..]
        .starts_with(b"\r\n")
        .then_some(Line::Open { part_start: at + delimiter.len() + padding + 2 })
}

/// The first delimiter: at the very start of the body or after a preamble line.
fn first_delimiter(body: &[u8], delimiter: &[u8]) -> Option<usize> {
    if body.starts_with(delimiter) && delimiter_line(body, 0, delimiter).is_some() {
        return Some(0);
    }
    next_delimiter(body, 0, delimiter).map(|crlf| crlf + 2)
}

/// Where the CRLF before the next delimiter line at or after `from` is. Linear: the
/// comparison starts only at each CR.
fn next_delimiter(body: &[u8], from: usize, delimiter: &[u8]) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = body.get(at..)?.iter().position(|b| *b == b'\r') {
        let crlf = at + offset;
        let line = crlf + 2;
        if body[crlf..].starts_with(b"\r\n")
            && body.get(line..).is_some_and(|rest| rest.starts_with(delimiter))
            && delimiter_line(body, line, delimiter).is_some()
        {
            return Some(crlf);
        }
        at = crlf + 1;
    }
    None
}

/// One part: headers, a blank line, the body (no headers at all: a blank line first).
fn part(bytes: Bytes) -> Result<Part, MultipartError> {
    let (head_len, body_start) = if bytes.starts_with(b"\r\n") {
        (0, 2)
    } else {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
        let end = end.ok_or(MultipartError::BadPartHeaders)?;
        (end, end + 4)
    };
    let head =
        std::str::from_utf8(&bytes[..head_len]).map_err(|_| MultipartError::BadPartHeaders)?;
    let mut part = Part { content_type: None, optional: false, body: bytes.slice(body_start..) };
    for (n, (name, value)) in unfolded(head).enumerate() {
        let (name, value) = (name.trim(), value.trim());
        // A line that is not `name: value` shows up as an empty name.
        if n == MAX_PART_HEADERS || name.is_empty() || name.contains([' ', '\t']) {
            return Err(MultipartError::BadPartHeaders);
        }
        if name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("c") {
            part.content_type = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-disposition") {
            part.optional = value.split(';').skip(1).any(|param| {
                param.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("handling")
                        && value.trim().eq_ignore_ascii_case("optional")
                })
            });
        }
    }
    Ok(part)
}

/// The header lines of a part's head as (name, value), continuation lines (starting with
/// white space) joined to the line before; a line without a colon has an empty name.
fn unfolded(head: &str) -> impl Iterator<Item = (&str, String)> {
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty()).peekable();
    std::iter::from_fn(move || {
        let line = lines.next()?;
        let (name, value) = line.split_once(':').unwrap_or(("", line));
        let mut value = value.to_owned();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
        }
        Some((name, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Bytes {
        Bytes::from(text.replace('\n', "\r\n"))
    }

    const SDP_AND_ISUP: &str = "--unique-boundary-1
Content-Type: application/sdp

v=0
o=- 1 1 IN IP4 192.0.2.1

--unique-boundary-1
Content-Type: application/ISUP; version=itu-t92+
Content-Disposition: signal; handling=optional

\u{1}\u{2}\u{3}
--unique-boundary-1--
";

    #[test]
    fn reads_sdp_and_isup_parts() {
        let parts = parse(&body(SDP_AND_ISUP), "unique-boundary-1").expect("valid");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type.as_deref(), Some("application/sdp"));
        assert!(!parts[0].optional);
        assert_eq!(&parts[0].body[..], b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
        assert_eq!(parts[1].content_type.as_deref(), Some("application/ISUP; version=itu-t92+"));
        assert!(parts[1].optional);
        assert_eq!(&parts[1].body[..], b"\x01\x02\x03");
    }

    #[test]
    fn preamble_epilogue_padding_folding_and_headerless_parts() {
        let text = "This is the preamble.
--b   
c: application/dtmf
Content-Disposition: signal;
 handling=optional

5
--b

no headers: text/plain
--boundary-lookalike is content
--b--
epilogue
";
        let parts = parse(&body(text), "b").expect("valid");
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0].content_type.as_deref(), Some("application/dtmf"));
        assert!(parts[0].optional, "folded Content-Disposition");
        assert_eq!(&parts[0].body[..], b"5");
        assert_eq!(parts[1].content_type, None);
        assert_eq!(
            &parts[1].body[..],
            b"no headers: text/plain\r\n--boundary-lookalike is content"
        );
    }

    #[test]
    fn boundaries_from_the_content_type() {
        assert_eq!(boundary("multipart/mixed;boundary=unique-boundary-1"), Ok("unique-boundary-1"));
        assert_eq!(boundary("multipart/mixed; charset=x; BOUNDARY=\"a b:c\""), Ok("a b:c"));
        for bad in [
            "multipart/mixed",
            "multipart/mixed; boundary=",
            "multipart/mixed; boundary=\"unclosed",
            "multipart/mixed; boundary=semi\"quote",
            "multipart/mixed; boundary=\"trailing \"",
            &format!("multipart/mixed; boundary={}", "x".repeat(71)),
        ] {
            assert_eq!(boundary(bad), Err(MultipartError::BadBoundary), "{bad}");
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let unterminated = "--b\nContent-Type: application/sdp\n\nv=0\n";
        let no_blank_line = "--b\nContent-Type: application/sdp\n--b--\n";
        let not_a_header = "--b\nthis is not a header\n\nx\n--b--\n";
        let header_bytes = b"--b\r\nContent-Type: \xff\r\n\r\nx\r\n--b--\r\n";
        let too_many_headers = format!("--b\n{}\nx\n--b--\n", "X-A: 1\n".repeat(9));
        let too_many_parts = format!("{}--b--\n", "--b\nc: a/b\n\nx\n".repeat(MAX_PARTS + 1));
        for (text, error) in [
            ("no delimiter at all", MultipartError::NoDelimiter),
            (unterminated, MultipartError::Unterminated),
            (no_blank_line, MultipartError::BadPartHeaders),
            (not_a_header, MultipartError::BadPartHeaders),
            (&too_many_headers, MultipartError::BadPartHeaders),
            (&too_many_parts, MultipartError::TooManyParts),
        ] {
            assert_eq!(parse(&body(text), "b"), Err(error), "{text}");
        }
        assert_eq!(
            parse(&Bytes::from_static(header_bytes), "b"),
            Err(MultipartError::BadPartHeaders)
        );
        let exactly_max = format!("{}--b--\n", "--b\nc: a/b\n\nx\n".repeat(MAX_PARTS));
        assert_eq!(parse(&body(&exactly_max), "b").map(|p| p.len()), Ok(MAX_PARTS));
    }

    /// Arbitrary bytes never panic, and every part read lies inside the body.
    #[test]
    fn does_not_panic_on_noise() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let alphabet = b"-b\r\n: ;=\"xc";
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 96) as usize;
            let noise: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 60)) as usize + i) % alphabet.len()])
                .collect();
            if let Ok(parts) = parse(&Bytes::from(noise.clone()), "b") {
                assert!(parts.len() <= MAX_PARTS);
                assert!(parts.iter().all(|p| p.body.len() <= noise.len()));
            }
        }
    }
}
