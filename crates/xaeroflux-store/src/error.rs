//! The store's typed errors.

use std::path::PathBuf;
use std::sync::Arc;

use xaeroflux_merkle::MerkleError;
pub use xaeroflux_types::{Corruption, InvalidInput, IoError, Rejection, UnsupportedVersion};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system error on a file of the store; the text carries
    /// the OS's own message ("No space left on device").
    #[error(transparent)]
    Io(#[from] IoError),
    /// Bytes on disk that are not what the store wrote, with the file and
    /// offset.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    /// A file written by another format version (or not a store file).
    #[error(transparent)]
    UnsupportedVersion(#[from] UnsupportedVersion),
    /// The LMDB index refused an operation (LMDB's error is the `source`).
    #[error("index error in {}: {source}", path.display())]
    Index {
        /// The index directory.
        path: PathBuf,
        /// LMDB's error.
        #[source]
        source: heed::Error,
    },
    /// Another process (or another handle in this one) holds the store for writing.
    #[error("store {} is locked for writing by {holder}", path.display())]
    Locked {
        /// The store directory.
        path: PathBuf,
        /// Who holds it, as written in its lock file.
        holder: String,
    },
    /// An event that does not fit in one page.
    #[error(
        "event of {size} bytes does not fit in a page: at most {max} bytes fit in a {page_size}-byte page (large payloads belong in the blob store: `Core::append_blob` with the iroh-blob backend)"
    )]
    EventTooLarge {
        /// Encoded size of the event.
        size: usize,
        /// Largest encoded event a page holds.
        max: usize,
        /// The store's page size.
        page_size: usize,
    },
    /// A topic name, log id or event kind that is not valid.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A log the store does not hold.
    #[error("unknown log {0}")]
    UnknownLog(String),
    /// A size beyond what the log holds.
    #[error("log {log} holds {size} events, so size {requested} is out of range")]
    SizeOutOfRange {
        /// The log.
        log: String,
        /// The size asked for.
        requested: u64,
        /// The log's size.
        size: u64,
    },
    /// A sequence number at or beyond the log's size.
    #[error("log {log} holds {size} events, so seq {seq} does not exist")]
    SeqOutOfRange {
        /// The log.
        log: String,
        /// The seq asked for.
        seq: u64,
        /// The log's size.
        size: u64,
    },
    /// Only the author can sign a checkpoint, and none is stored for this log.
    #[error(
        "no checkpoint for log {0}: it is not this store's own log and no signed checkpoint was received"
    )]
    NoCheckpoint(String),
    /// The store was opened read-only.
    #[error("the store was opened read-only")]
    ReadOnly,
    /// The store's writer stopped after an error; nothing more is written.
    /// The error that stopped it is the `source`.
    #[error("the store's writer has stopped after an error: {0}")]
    WriterStopped(#[source] Arc<StoreError>),
    /// The store was closed: a subscription has delivered everything it
    /// committed and nothing more will come, or a write came after `close`.
    #[error("the store was closed")]
    Closed,
    /// Another author's events were refused: they do not extend the log as
    /// held, or their proof or checkpoint does not hold. Nothing changed.
    #[error("refused: {0}")]
    Rejected(#[from] Rejection),
    /// A limit of the format is reached (segment numbers, log numbers).
    #[error("the store has no {0} left")]
    Exhausted(&'static str),
    /// The OS refused to start a thread.
    #[error("could not start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A bad argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A proof or checkpoint problem.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// A bug: an invariant of the store itself does not hold. Not the
    /// caller's doing; please report it.
    #[error("internal error (a bug in xaeroflux): {0}")]
    Internal(String),
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let f = IoError::on(path);
    move |source| StoreError::Io(f(source))
}

pub(crate) fn corrupt(
    file: impl Into<PathBuf>,
    offset: u64,
    reason: impl Into<String>,
) -> StoreError {
    StoreError::Corrupt(Corruption::new(file, offset, reason))
}

pub(crate) fn internal(what: impl Into<String>) -> StoreError {
    StoreError::Internal(what.into())
}

impl StoreError {
    /// Whether the store can take no more writes (its writer stopped after
    /// an error, or it was closed).
    pub fn is_terminal(&self) -> bool {
        matches!(self, StoreError::WriterStopped(_) | StoreError::Closed)
    }

    /// The operating system's error behind this one, if the OS caused it:
    /// on a store file, in the index, or the one that stopped the writer.
    /// `os_error().and_then(|e| e.raw_os_error())` is the errno
    /// (`ENOSPC` for a full disk, `EIO` for a failing one).
    pub fn os_error(&self) -> Option<&std::io::Error> {
        match self {
            StoreError::Io(e) => Some(&e.source),
            StoreError::Index {
                source: heed::Error::Io(e),
                ..
            } => Some(e),
            StoreError::WriterStopped(why) => why.os_error(),
            _ => None,
        }
    }

    /// The file or directory an OS error happened on, if it is one.
    pub fn os_error_path(&self) -> Option<&std::path::Path> {
        match self {
            StoreError::Io(e) => Some(&e.path),
            StoreError::Index {
                path,
                source: heed::Error::Io(_),
            } => Some(path),
            StoreError::WriterStopped(why) => why.os_error_path(),
            _ => None,
        }
    }
}
