//! The error shapes every area of Xaeroflux reports about files and
//! formats, defined once: each area's error enum wraps them (`Io`,
//! `Corrupt`, `UnsupportedVersion`), so a caller matches the same fields
//! whichever crate failed.

use std::path::PathBuf;

/// An operating-system error on a file or directory. The OS's own message
/// is part of the text ("No space left on device"), and the
/// [`std::io::Error`] is the `source`.
#[derive(Debug, thiserror::Error)]
#[error("I/O error on {}: {source}", path.display())]
pub struct IoError {
    /// The file or directory.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// An error on `path`.
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self {
            path: path.into(),
            source,
        }
    }

    /// A closure for `map_err`: the error on `path`.
    pub fn on(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self { path, source }
    }

    /// The kind of the OS error (`StorageFull`, `PermissionDenied`, ...).
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }
}

/// Bytes in a file that are not what Xaeroflux wrote there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt data in {} at offset {offset}: {reason}", file.display())]
pub struct Corruption {
    /// The file that holds the bad bytes.
    pub file: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    /// What is wrong with them.
    pub reason: String,
}

impl Corruption {
    /// Bad bytes in `file` at `offset`.
    pub fn new(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// A file or message written in a format version this build does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: format version {found} is not supported (this build reads {supported})")]
pub struct UnsupportedVersion {
    /// The file (its path) or the kind of message.
    pub what: String,
    /// The version found.
    pub found: u32,
    /// The version this build reads and writes.
    pub supported: u32,
}

/// A value given by the caller that is not valid: a topic name, a log id,
/// an event kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A topic name that is not valid.
    #[error("invalid topic name: {0}")]
    Topic(String),
    /// Text that is not a log id (`AUTHOR_HEX/TOPIC_ID_HEX`).
    #[error("{0:?} is not a log id (AUTHOR_HEX/TOPIC_ID_HEX)")]
    LogId(String),
    /// An event kind that does not exist.
    #[error("unknown event kind {0:?} (system, identity or application)")]
    Kind(String),
}
