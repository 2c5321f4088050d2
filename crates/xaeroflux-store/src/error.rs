//! The store's typed errors.

use std::path::PathBuf;

use xaeroflux_merkle::MerkleError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system error on a file of the store (the OS error is
    /// the `source`).
    #[error("I/O error on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Bytes on disk that are not what the store wrote.
    #[error("corrupt data in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The file that holds the bad bytes.
        file: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// What is wrong with them.
        reason: String,
    },
    /// A file written by another format version (or not a store file).
    #[error("{file}: format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The LMDB index refused an operation (LMDB's error is the `source`).
    #[error("index error in {path}")]
    Index {
        /// The index directory.
        path: PathBuf,
        /// LMDB's error.
        source: heed::Error,
    },
    /// Another process (or another handle in this one) holds the store for writing.
    #[error("store {path} is locked for writing by {holder}")]
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
    /// A topic name that is not valid.
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
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
    /// The store was closed, or its writer stopped after an earlier error.
    #[error("the store's writer has stopped: {0}")]
    WriterStopped(String),
    /// Another author's events were refused: they do not extend the log as
    /// held, or their proof or checkpoint does not hold. Nothing changed.
    #[error("refused: {0}")]
    Rejected(String),
    /// The store was closed: a subscription has delivered everything it
    /// committed and nothing more will come.
    #[error("the store was closed")]
    Closed,
    /// A bad argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A proof or checkpoint problem.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

pub(crate) fn corrupt(
    file: impl Into<PathBuf>,
    offset: u64,
    reason: impl Into<String>,
) -> StoreError {
    StoreError::Corrupt {
        file: file.into(),
        offset,
        reason: reason.into(),
    }
}
