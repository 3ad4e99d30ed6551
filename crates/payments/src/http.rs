//! What the HTTP connectors share: the client, request bodies that are wiped after
//! sending, form encoding, and transport errors.

use std::time::Duration;

use bytes::Bytes;
use zeroize::Zeroize;

use crate::error::GatewayError;

/// A request body that is zeroized when the HTTP stack drops it: it holds the card
/// number and security code. (Copies that the TLS layer or the socket buffers make are
/// beyond reach; this wipes ours.)
struct WipedBody(Vec<u8>);

impl AsRef<[u8]> for WipedBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedBody {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A body for `bytes`, wiped when sent and dropped.
pub(crate) fn wiped_body(bytes: Vec<u8>) -> reqwest::Body {
    reqwest::Body::from(Bytes::from_owner(WipedBody(bytes)))
}

/// Room for a whole request body, so that the buffer never reallocates (a reallocation
/// would leave an unwiped copy of the card number behind).
pub(crate) const BODY_CAPACITY: usize = 2048;

/// An `application/x-www-form-urlencoded` body written into one pre-sized buffer.
pub(crate) struct Form {
    buf: Vec<u8>,
}

impl Form {
    pub(crate) fn new() -> Form {
        Form { buf: Vec::with_capacity(BODY_CAPACITY) }
    }

    /// Appends `name=value`.
    pub(crate) fn field(&mut self, name: &str, value: &str) -> &mut Form {
        if !self.buf.is_empty() {
            self.buf.push(b'&');
        }
        encode(&mut self.buf, name);
        self.buf.push(b'=');
        encode(&mut self.buf, value);
        self
    }

    pub(crate) fn into_body(mut self) -> reqwest::Body {
        wiped_body(std::mem::take(&mut self.buf))
    }

    #[cfg(test)]
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf).unwrap_or("")
    }
}

impl Drop for Form {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

fn encode(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

/// An HTTP client with rustls on *ring* (no cmake, no system OpenSSL) and the platform's
/// roots. The process-wide rustls provider is installed if nobody installed one.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, GatewayError> {
    // `Err` means a provider is already installed, which is what is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
        .map_err(|_| GatewayError::Protocol("cannot build the HTTP client"))
}

/// Classifies a transport failure. The reqwest error itself is dropped: it can name the
/// URL, never the body, but nothing from it is needed.
pub(crate) fn transport_error(e: &reqwest::Error) -> GatewayError {
    if e.is_timeout() {
        GatewayError::Timeout
    } else if e.is_decode() || e.is_body() {
        GatewayError::Protocol("unreadable response body")
    } else {
        GatewayError::Connection
    }
}

/// The error for an HTTP status outside the protocol's own answers.
pub(crate) fn status_error(status: u16) -> GatewayError {
    match status {
        401 | 403 => GatewayError::Authentication,
        408 => GatewayError::Timeout,
        409 => GatewayError::IdempotencyConflict,
        429 => GatewayError::RateLimited,
        500..=599 => GatewayError::Server { status },
        _ => GatewayError::InvalidRequest { code: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        let mut f = Form::new();
        f.field("card[number]", "4242").field("metadata[note]", "a b&c=d/é");
        assert_eq!(f.as_str(), "card%5Bnumber%5D=4242&metadata%5Bnote%5D=a+b%26c%3Dd%2F%C3%A9");
    }
}
