//! The primitives: AES-256-GCM sealing with associated data, HMAC-SHA256 fingerprints,
//! key generation. Every key and plaintext lives in a buffer that is zeroed on drop.
//!
//! Sealed format: `version (1 byte) || nonce (12) || ciphertext || tag (16)`. The nonce is
//! random per message; with 96-bit random nonces a key stays safe for 2^32 messages, far more
//! PANs than one tenant's data key will ever encrypt (a new data key can be made at will).
//! The associated data binds each ciphertext to its row (token id, tenant, data key), so a
//! ciphertext copied into another row does not decrypt.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use rand::TryRng as _;
use rand::rngs::SysRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::VaultError;

/// Length of every key (AES-256, HMAC-SHA256).
pub(crate) const KEY_LEN: usize = 32;
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// 32 bytes of key, zeroed on drop.
pub(crate) type KeyBytes = Zeroizing<[u8; KEY_LEN]>;

/// Fills `buf` from the operating system's generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    SysRng.try_fill_bytes(buf).map_err(|_| VaultError::Randomness)
}

/// A fresh random key.
pub(crate) fn random_key() -> Result<KeyBytes, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(key.as_mut_slice())?;
    Ok(key)
}

fn cipher(key: &KeyBytes) -> Result<Aes256Gcm, VaultError> {
    Aes256Gcm::new_from_slice(key.as_slice()).map_err(|_| VaultError::BadMasterKey)
}

/// Encrypts `plaintext` under `key`, authenticating `aad` too.
pub(crate) fn seal(key: &KeyBytes, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(1 + NONCE_LEN..).ok_or(VaultError::Decryption)?;
    let tag = cipher(key)?
        .encrypt_inout_detached(&Nonce::from(nonce), aad, body.into())
        .map_err(|_| VaultError::Decryption)?;
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// Decrypts what [`seal`] made with the same key and `aad`; any change to either fails.
pub(crate) fn open(
    key: &KeyBytes,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let (&version, rest) = sealed.split_first().ok_or(VaultError::Decryption)?;
    if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Decryption);
    }
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Decryption)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| VaultError::Decryption)?;
    let mut plain = Zeroizing::new(body.to_vec());
    cipher(key)?
        .decrypt_inout_detached(
            &Nonce::from(nonce),
            aad,
            plain.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| VaultError::Decryption)?;
    Ok(plain)
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> Result<[u8; 32], VaultError> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| VaultError::BadMasterKey)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// Lowercase hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends lowercase hex to `out` (for key material: `out` is then the only copy made).
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
}

/// A 32-byte key from 64 hex digits (surrounding whitespace ignored).
pub(crate) fn key_from_hex(text: &str) -> Result<KeyBytes, VaultError> {
    let text = text.trim().as_bytes();
    if text.len() != KEY_LEN * 2 {
        return Err(VaultError::BadMasterKey);
    }
    let value = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(VaultError::BadMasterKey),
    };
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    for (byte, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (value(*hi)?, value(*lo)?),
            _ => return Err(VaultError::BadMasterKey),
        };
        *byte = (hi << 4) | lo;
    }
    Ok(key)
}

#[cfg(test)]
#[allow(
    clippy::panic_in_result_fn,
    clippy::indexing_slicing,
    reason = "tests assert and slice fixed fixtures"
)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_rejections() -> Result<(), VaultError> {
        let key = random_key()?;
        let sealed = seal(&key, b"row-1", b"4242424242424242")?;
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 16 + TAG_LEN);
        assert_eq!(open(&key, b"row-1", &sealed)?.as_slice(), b"4242424242424242");
        // Same plaintext, new nonce: different ciphertext.
        assert_ne!(seal(&key, b"row-1", b"4242424242424242")?, sealed);
        assert!(matches!(open(&key, b"row-2", &sealed), Err(VaultError::Decryption)));
        assert!(matches!(open(&random_key()?, b"row-1", &sealed), Err(VaultError::Decryption)));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x01;
            }
            assert!(matches!(open(&key, b"row-1", &bad), Err(VaultError::Decryption)), "byte {i}");
        }
        assert!(matches!(open(&key, b"row-1", &sealed[..10]), Err(VaultError::Decryption)));
        assert!(matches!(open(&key, b"row-1", &[]), Err(VaultError::Decryption)));
        Ok(())
    }

    #[test]
    fn hex_round_trip() -> Result<(), VaultError> {
        let key = random_key()?;
        assert_eq!(*key_from_hex(&to_hex(key.as_slice()))?, *key);
        assert!(key_from_hex("00").is_err());
        assert!(key_from_hex(&"g".repeat(64)).is_err());
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        assert_eq!(
            to_hex(&hmac(b"Jefe", b"what do ya want for nothing?")?),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        Ok(())
    }
}
