//! The network layer's typed errors.

use std::path::PathBuf;

use xaeroflux_store::StoreError;
use xaeroflux_sync::SyncError;

/// Everything that can go wrong in the network layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A backend name that is not one of [`crate::Backend::NAMES`].
    #[error("unknown sync backend {name:?}: the valid ones are {valid}", valid = crate::Backend::NAMES.join(", "))]
    UnknownBackend {
        /// The name given.
        name: String,
    },
    /// A backend that needs another one (`iroh-gossip` and `iroh-blob` need
    /// `iroh`), or an operation whose backend is not enabled.
    #[error("backend not enabled: {0}")]
    BackendMissing(String),
    /// A peer address that does not parse.
    #[error(
        "invalid peer {input:?}: {reason} (give an iroh ticket, ID@IP:PORT, or an endpoint id)"
    )]
    InvalidPeer {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A topic that cannot be joined.
    #[error("cannot join topic {0:?}")]
    InvalidTopic(String),
    /// An operating-system error on a file (the OS error is the `source`).
    #[error("I/O error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Bytes on disk that are not what this layer wrote.
    #[error("corrupt data in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file or message of another format version.
    #[error("{what}: format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The file or message kind.
        what: String,
        /// Version found.
        found: u8,
        /// Version this build reads and writes.
        supported: u8,
    },
    /// A message from a peer that does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The message kind.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The iroh endpoint, gossip or blob store failed (iroh's message).
    #[error("iroh: {0}")]
    Iroh(String),
    /// A blob that is not held (yet).
    #[error("blob {0} is not held")]
    BlobMissing(String),
    /// The store refused an operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sync session failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The network layer has been shut down.
    #[error("the network layer has shut down")]
    Closed,
    /// No running node answered on the store's local socket.
    #[error("no node is running on {0}")]
    NoNode(PathBuf),
}

pub(crate) fn iroh_err(e: impl std::fmt::Display) -> NetError {
    NetError::Iroh(e.to_string())
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NetError {
    let path = path.into();
    move |source| NetError::Io { path, source }
}
