//! Standard Webhooks signing (spec v1): `v1,` + base64 of HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the bytes of a `whsec_` secret.
//! Pure: the timestamp is an argument.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rand::Rng as _;
use sha2::Sha256;

use crate::SyncError;

/// A signing secret. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}

impl WebhookSecret {
    /// A new random secret of 32 bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// Parses `whsec_<base64>` (24 to 64 bytes, as the spec asks).
    ///
    /// # Errors
    /// [`SyncError::BadSecret`] otherwise.
    pub fn parse(text: &str) -> Result<Self, SyncError> {
        let body = text.strip_prefix("whsec_").ok_or(SyncError::BadSecret)?;
        let key = B64.decode(body).map_err(|_| SyncError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SyncError::BadSecret);
        }
        Ok(Self { key })
    }

    /// The text form, `whsec_<base64>`.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("whsec_{}", B64.encode(&self.key))
    }

    /// `v1,<base64 signature>` of one message.
    #[must_use]
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; the secret is 24 to 64 bytes by construction.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per live secret, space-separated (the
/// rotation case: receivers holding either secret verify).
#[must_use]
pub fn signature_header(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut out = String::new();
    for secret in secrets {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&secret.sign(msg_id, timestamp, body));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        // The example of the Standard Webhooks reference libraries.
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let sig =
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let s = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(&s.to_text()).expect("parse"), s);
        assert!(!format!("{s:?}").contains(&s.to_text()));
        for bad in ["", "whsec_", "abc", "whsec_!!!", "whsec_AAAA"] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
        }
        let two = [WebhookSecret::generate(), WebhookSecret::generate()];
        let header = signature_header(&two, "evt_1", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
    }
}
