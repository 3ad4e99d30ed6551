//! The tokenization vault: PAN + expiry in, a random token (`tok_…`) out.
//!
//! # Design
//!
//! Envelope encryption, after juspay/hyperswitch-card-vault (research/payments.md §2.1) with
//! the PCI DSS Requirement 3 points it leaves open:
//!
//! - **PANs** are encrypted with AES-256-GCM under a per-tenant **data key**, with the token
//!   id, tenant and data key id as associated data (a ciphertext moved to another row does
//!   not decrypt). The token is 128 random bits: no relation to the PAN (3.5.1).
//! - **Data keys** are stored wrapped (AES-256-GCM) by a **master key**, which never enters
//!   the database (3.6.1.2). The master key is created on first start under the data
//!   directory (mode 0600 in a 0700 directory), or read from a file or an environment
//!   variable ([`MasterKeySource`]).
//! - **Rotation** ([`Vault::rotate`]) makes a new master key active and re-wraps every data
//!   key under it (3.7.4). Tokens and data keys are untouched, so tokenize and detokenize
//!   carry on during the rotation; old master keys stay in the keyring until
//!   [`Vault::retire_master_keys`] removes the unused ones (3.7.5).
//! - **Fingerprints** are HMAC-SHA256 of the PAN under a separate per-tenant key (keyed
//!   hashes, 3.5.1.1): repeat cards are found without decrypting anything, and nothing
//!   outside the vault can test a guessed PAN against them.
//! - **The CVV never reaches the vault**: no API takes one. Detokenizing returns a [`Pan`]
//!   (the card crate's zeroize-on-drop secret); every key and plaintext buffer here is
//!   zeroed on drop.
//!
//! The store does no cryptography and holds only ciphertext, wrapped keys and fingerprints;
//! master key ids are derived from the keys, so a substituted key is refused (3.7.7).
//!
//! [`Pan`]: ivrpay_card::Pan

// The panic lints of hyperswitch-card-vault (STYLE.md rule 7), plus slicing: a vault must
// answer every input with an error, never a panic.
#![warn(
    clippy::as_conversions,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::missing_panics_doc,
    clippy::panic,
    clippy::panic_in_result_fn,
    clippy::panicking_unwrap,
    clippy::todo,
    clippy::unimplemented,
    clippy::unreachable,
    clippy::unwrap_in_result,
    clippy::unwrap_used,
    clippy::use_self
)]

mod crypto;
mod error;
mod master;
mod vault;

pub use error::VaultError;
pub use master::{MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, MasterKeySource};
pub use vault::{DetokenizedCard, Fingerprint, RotationReport, SealedCard, Token, Vault};
