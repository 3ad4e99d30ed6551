//! The store's error type.

use std::fmt;

/// What went wrong in a store operation. Messages name the operation and the problem, never a
/// column value: rows may hold ciphertext and customer references.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The configuration cannot work (an unknown URL scheme, an unusable path).
    Config(&'static str),
    /// Creating the data directory or the database file failed.
    Io(std::io::Error),
    /// Applying the embedded migrations failed.
    Migrate(sqlx::migrate::MigrateError),
    /// The database refused or failed a statement, or the connection broke.
    Database(sqlx::Error),
    /// The idempotency key was used before with different parameters (amount, currency,
    /// target). The first request stands; this one is a client error.
    IdempotencyConflict {
        /// What the key identifies: `payment`, `refund`, `session`.
        kind: &'static str,
    },
    /// No row with that id for that tenant.
    NotFound {
        /// What was looked for.
        kind: &'static str,
    },
    /// The operation does not apply in the row's current state, e.g. refunding a payment that
    /// did not succeed.
    InvalidState {
        /// What was attempted.
        operation: &'static str,
    },
    /// A refund would take the refunded total above the payment's amount, or its currency
    /// differs from the payment's.
    RefundExceedsPayment,
    /// A stored value did not decode (a corrupted or hand-edited row).
    Corrupt {
        /// The column or value that did not decode.
        what: &'static str,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(problem) => write!(f, "store configuration: {problem}"),
            Self::Io(err) => write!(f, "store file system: {err}"),
            Self::Migrate(err) => write!(f, "store migrations: {err}"),
            Self::Database(err) => write!(f, "database: {err}"),
            Self::IdempotencyConflict { kind } => {
                write!(f, "idempotency key already used for a different {kind}")
            }
            Self::NotFound { kind } => write!(f, "{kind} not found"),
            Self::InvalidState { operation } => {
                write!(f, "cannot {operation} in the current state")
            }
            Self::RefundExceedsPayment => {
                f.write_str("refund exceeds the payment's remaining amount or currency differs")
            }
            Self::Corrupt { what } => write!(f, "stored {what} did not decode"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            Self::Migrate(err) => Some(err),
            Self::Database(err) => Some(err),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}

impl StoreError {
    /// True when the database reported a unique-constraint violation.
    #[must_use]
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(err) => err.as_database_error().is_some_and(|e| e.is_unique_violation()),
            _ => false,
        }
    }
}
