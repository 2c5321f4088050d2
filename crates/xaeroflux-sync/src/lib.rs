//! XSP, the Xaeroflux sync protocol: two stores find out in a few round
//! trips which log suffixes each lacks and move only those, a page at a
//! time, each page verified on its own against the log author's signed
//! checkpoint before it is committed. Any peer may serve any author's log.
//!
//! The [`codec`] and the [`Session`] state machine do no I/O: bytes go in,
//! bytes come out, and the store is reached through the [`SyncStore`]
//! trait. [`driver`] runs a session over any byte stream (an in-memory
//! [`pipe`] or TCP).
//!
//! ```
//! use std::time::Duration;
//! use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};
//! use xaeroflux_sync::{SessionConfig, driver};
//!
//! # let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
//! let a = Store::open(da.path(), StoreOptions::default())?;
//! let b = Store::open(db.path(), StoreOptions::default())?;
//! let chat = Topic::new("chat")?;
//! let r = a.append(NewEvent::application(&chat, b"hi".to_vec()))?;
//!
//! let ((ar, aw), (br, bw)) = xaeroflux_sync::pipe();
//! let timeout = Duration::from_secs(10);
//! let (out_a, out_b) = std::thread::scope(|s| {
//!     let t = s.spawn(|| driver::run(&a, SessionConfig::default(), ar, aw, timeout));
//!     let out_b = driver::run(&b, SessionConfig::default(), br, bw, timeout);
//!     (t.join().unwrap(), out_b)
//! });
//! assert_eq!(out_b?.events_in, 1);
//! assert_eq!(out_a?.events_out, 1);
//! assert_eq!(b.mmr_root(&r.log)?, a.mmr_root(&r.log)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod codec;
pub mod driver;
mod pipe;
mod session;

pub use codec::{Decoder, ErrorCode, Message};
pub use pipe::{PipeReader, PipeWriter, pipe};
pub use session::{Outcome, Session, SessionConfig, SyncStore};

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A frame or message could not be decoded; `offset` counts bytes from
    /// the start of the stream.
    #[error("malformed message at byte {offset}: {reason}")]
    Malformed {
        /// Where in the stream.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A frame announced more bytes than the bound.
    #[error("frame at byte {offset} is {len} bytes, more than {max}")]
    FrameTooLong {
        /// Where in the stream.
        offset: u64,
        /// The announced length.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// The peer speaks another version.
    #[error("the peer speaks XSP version {0}, this is version {v}", v = codec::VERSION)]
    Version(u16),
    /// A message came out of order, or named something not agreed on.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Data, a proof or a signature from the peer did not verify; nothing
    /// of it was stored.
    #[error("refused the peer's data: {0}")]
    Rejected(String),
    /// The peer sent nothing for too long.
    #[error("the peer sent nothing for {0:?}")]
    Timeout(std::time::Duration),
    /// The peer closed the stream before the session ended.
    #[error("the peer closed the connection before the session ended")]
    Closed,
    /// The peer ended the session with an error.
    #[error("the peer ended the session: {code:?}: {reason}")]
    Peer {
        /// Its code.
        code: ErrorCode,
        /// Its reason.
        reason: String,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] xaeroflux_store::StoreError),
    /// Reading or writing the stream failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl SyncError {
    /// The code sent to the peer when this error ends a session.
    pub fn code(&self) -> ErrorCode {
        match self {
            SyncError::Malformed { .. } | SyncError::FrameTooLong { .. } => ErrorCode::Malformed,
            SyncError::Version(_) => ErrorCode::Version,
            SyncError::Protocol(_) => ErrorCode::Protocol,
            SyncError::Rejected(_) => ErrorCode::Rejected,
            SyncError::Timeout(_) => ErrorCode::Timeout,
            _ => ErrorCode::Internal,
        }
    }
}
