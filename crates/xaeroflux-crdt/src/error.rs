//! Errors of documents.

use std::path::PathBuf;

/// Why a document operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrdtError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] xaeroflux::Error),
    /// An operation payload that does not decode.
    #[error("malformed operation: {0}")]
    Malformed(String),
    /// An argument that cannot be encoded (a name too long, say).
    #[error("{0}")]
    Invalid(String),
    /// A snapshot file that is damaged or not this document's.
    #[error("snapshot {}: {reason} (at offset {offset})", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a snapshot file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The text adapter (Loro) refused an update.
    #[error("text document: {0}")]
    Text(String),
}

impl From<xaeroflux::store::StoreError> for CrdtError {
    fn from(e: xaeroflux::store::StoreError) -> Self {
        Self::Store(e.into())
    }
}

impl From<xaeroflux::InvalidInput> for CrdtError {
    fn from(e: xaeroflux::InvalidInput) -> Self {
        Self::Store(e.into())
    }
}
