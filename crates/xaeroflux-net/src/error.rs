//! The network layer's typed errors.

use std::path::PathBuf;

use xaeroflux_store::StoreError;
use xaeroflux_sync::SyncError;
use xaeroflux_types::{Corruption, IoError, UnsupportedVersion};

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
    /// An operating-system error on a file; the text carries the OS's own
    /// message.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Bytes on disk that are not what this layer wrote.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// A file or message of another format version.
    #[error(transparent)]
    UnsupportedVersion(#[from] UnsupportedVersion),
    /// The OS refused to start a thread or a runtime.
    #[error("could not start {what}: {source}")]
    Start {
        /// What was being started.
        what: &'static str,
        /// The OS's error.
        #[source]
        source: std::io::Error,
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
    /// The network is paused (`Core::pause`): no sockets are open until
    /// it is resumed.
    #[error("the network is paused; resume it first")]
    Paused,
    /// The running node refused a request handed to it (its reason).
    #[error("the node refused: {0}")]
    Refused(String),
    /// No running node answered on the store's local socket.
    #[error("no node is running on {0}")]
    NoNode(PathBuf),
}

pub(crate) fn iroh_err(e: impl std::fmt::Display) -> NetError {
    NetError::Iroh(e.to_string())
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NetError {
    let f = IoError::on(path);
    move |source| NetError::Io(f(source))
}

pub(crate) fn start_err(what: &'static str) -> impl FnOnce(std::io::Error) -> NetError {
    move |source| NetError::Start { what, source }
}
