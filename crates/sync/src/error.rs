//! The sync's error type.

use std::fmt;

use ivrpay_store::StoreError;

/// What went wrong outside a delivery attempt (attempt failures are recorded, not returned).
#[derive(Debug)]
#[non_exhaustive]
pub enum SyncError {
    /// The store failed.
    Store(StoreError),
    /// A configuration value cannot work: which setting and why.
    Config {
        /// The setting, e.g. `sync.sinks[2].url`.
        setting: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A webhook secret is not `whsec_` followed by base64 of 24 to 64 bytes.
    BadSecret,
    /// The HTTP client or SMTP transport could not be built.
    Transport(String),
}

impl SyncError {
    pub(crate) fn config(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Config { setting: setting.into(), problem: problem.into() }
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "sync: {e}"),
            Self::Config { setting, problem } => {
                write!(f, "sync configuration {setting}: {problem}")
            }
            Self::BadSecret => {
                f.write_str("webhook secret must be whsec_ followed by base64 of 24 to 64 bytes")
            }
            Self::Transport(problem) => write!(f, "sync transport: {problem}"),
        }
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}
