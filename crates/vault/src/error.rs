//! The vault's error type. No variant carries key material, a PAN or a ciphertext.

use std::fmt;

use ivrpay_store::StoreError;

/// What went wrong in a vault operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum VaultError {
    /// The store failed.
    Store(StoreError),
    /// Reading or writing the master key file failed.
    KeyFile {
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The master key file is readable or writable by others than its owner (it must be
    /// 0600, like an SSH key).
    InsecureKeyFile,
    /// The master key material is malformed (not 64 hex digits per key), or missing.
    BadMasterKey,
    /// The master key source cannot be written (an environment variable): rotate by
    /// putting the new key first in the variable and calling `rewrap`.
    ReadOnlyKeySource,
    /// A data key is wrapped by a master key that is not in the keyring.
    UnknownMasterKey,
    /// Authenticated decryption failed: wrong key, or the ciphertext or its row was
    /// tampered with.
    Decryption,
    /// The operating system's random generator failed.
    Randomness,
    /// No such token for this tenant.
    UnknownToken,
    /// The token has expired.
    TokenExpired,
    /// The stored card data is not a card (a corrupted row that still authenticated, or
    /// an expiry out of range).
    CorruptCard,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(err) => write!(f, "vault store: {err}"),
            Self::KeyFile { action, source } => write!(f, "master key file: {action}: {source}"),
            Self::InsecureKeyFile => {
                f.write_str("master key file must be readable by its owner only (chmod 600)")
            }
            Self::BadMasterKey => {
                f.write_str("master key must be 64 hex digits (32 bytes) per key")
            }
            Self::ReadOnlyKeySource => f.write_str(
                "master keys come from the environment: put the new key first and run rewrap",
            ),
            Self::UnknownMasterKey => {
                f.write_str("a data key is wrapped by a master key not in the keyring")
            }
            Self::Decryption => f.write_str("decryption failed: wrong key or tampered data"),
            Self::Randomness => f.write_str("the system random generator failed"),
            Self::UnknownToken => f.write_str("unknown token"),
            Self::TokenExpired => f.write_str("token expired"),
            Self::CorruptCard => f.write_str("stored card data is not a valid card"),
        }
    }
}

impl std::error::Error for VaultError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(err) => Some(err),
            Self::KeyFile { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<StoreError> for VaultError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}
