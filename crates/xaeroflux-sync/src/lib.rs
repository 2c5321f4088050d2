//! XSP, the Xaeroflux sync protocol: two stores find out in a few round
//! trips which log suffixes each lacks and move only those, a page at a
//! time, each page verified on its own against the log author's signed
//! checkpoint before it is committed. Any peer may serve any author's log.
//!
//! The [`codec`] and the [`Session`] state machine do no I/O and never
//! wait: bytes go in, bytes come out, the store is read through the
//! [`SyncStore`] trait, and what the session wants written (a page to
//! import, fork evidence to keep) comes out as an [`Action`] whose result
//! the driver hands back. [`driver`] runs a session over any byte stream
//! (an in-memory [`pipe`] or TCP), pipelining those writes; [`serve`] is
//! a TCP server whose handshake deadline and caps keep silent or greedy
//! peers from holding it. [`live`] keeps live sessions (new checkpoints
//! announced and pulled as they happen) with peers over any transport
//! that moves bytes: TCP, in-memory pipes, onion services. [`MemStore`]
//! is a whole store in memory, for tests and tools; with the `sim`
//! feature, [`sim`] drives many of them through a simulated network.
//!
//! ```
//! use std::time::Duration;
//! use xaeroflux_sync::{MemStore, SessionConfig, driver};
//! use xaeroflux_types::Topic;
//!
//! let (a, b) = (MemStore::with_seed(1), MemStore::with_seed(2));
//! let chat = Topic::new("chat")?;
//! let log = a.append(&chat, b"hi");
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
//! assert_eq!(b.root(&log), a.root(&log));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod claims;
pub mod codec;
pub mod driver;
pub mod live;
mod mem;
mod pipe;
pub mod schedule;
pub mod serve;
mod session;
#[cfg(feature = "sim")]
pub mod sim;

pub use claims::PullClaims;
pub use codec::{Decoder, ErrorCode, Message};
pub use mem::MemStore;
pub use pipe::{PipeCloser, PipeEnd, PipeReader, PipeWriter, closable_pipe, pipe};
pub use session::{
    Action, Done, EventRange, OUTPUT_PAUSE, Outcome, Session, SessionConfig, StoreOp, SyncStore,
};

/// What a [`SyncStore`] reports when a read or a write fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreFault {
    /// The peer's data did not verify: nothing of it was stored.
    #[error(transparent)]
    Rejected(#[from] xaeroflux_types::Rejection),
    /// A log with no checkpoint this store can present (another author's
    /// log whose pull was interrupted before a checkpoint was reached).
    #[error("no checkpoint for log {0}")]
    NoCheckpoint(xaeroflux_types::LogId),
    /// The store failed (its own error is the source).
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

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
    /// The peer did not complete its `HELLO` within the handshake deadline.
    #[error("the peer sent no HELLO within {0:?}")]
    NoHello(std::time::Duration),
    /// This side has no room for the session (a session cap is reached).
    #[error("busy: {0}")]
    Busy(String),
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
    Store(#[from] StoreFault),
    /// Reading or writing the stream failed.
    #[error("stream I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A bug: the session was driven in a way it does not allow.
    #[error("internal error (a bug in xaeroflux): {0}")]
    Internal(String),
}

impl SyncError {
    /// The code sent to the peer when this error ends a session.
    pub fn code(&self) -> ErrorCode {
        match self {
            SyncError::Malformed { .. } | SyncError::FrameTooLong { .. } => ErrorCode::Malformed,
            SyncError::Version(_) => ErrorCode::Version,
            SyncError::Protocol(_) => ErrorCode::Protocol,
            SyncError::Rejected(_) => ErrorCode::Rejected,
            SyncError::Timeout(_) | SyncError::NoHello(_) => ErrorCode::Timeout,
            SyncError::Busy(_) => ErrorCode::Busy,
            _ => ErrorCode::Internal,
        }
    }
}
