//! What can go wrong opening, sealing and replaying.

/// An error of end-to-end encryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// Bytes that are not the structure they claim to be (a truncated
    /// envelope, a record with a bad magic, a count out of bounds).
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A format version this code does not read.
    #[error("unsupported {what} version {found} (this build reads {supported})")]
    UnsupportedVersion {
        /// What carries the version.
        what: &'static str,
        /// The version found.
        found: u8,
        /// The version read.
        supported: u8,
    },
    /// The authenticated decryption failed: the bytes were changed, or
    /// moved to another place (seq, log, topic or kind), or sealed with
    /// another key.
    #[error("{what} does not authenticate: tampered with, moved, or sealed with another key")]
    Refused {
        /// What failed to open.
        what: &'static str,
    },
    /// This store holds no key for the epoch (it is not a member, or was
    /// not one then).
    #[error("no key for epoch {epoch}")]
    NoKey {
        /// The epoch the bytes were sealed in.
        epoch: u64,
    },
    /// A key change out of order, or one whose secret does not match its
    /// commitment.
    #[error("bad key change: {0}")]
    KeyChange(String),
    /// The operation needs the controller's role or the current epoch's
    /// secret.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// The result of this crate's operations.
pub type Result<T, E = E2eError> = std::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, why: impl Into<String>) -> E2eError {
    E2eError::Malformed {
        what,
        why: why.into(),
    }
}
