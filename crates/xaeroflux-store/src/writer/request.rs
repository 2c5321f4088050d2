//! What reaches the writer thread, and how it answers.

use crossbeam_channel::Sender;
use xaeroflux_merkle::{Checkpoint, Hash};
use xaeroflux_types::{ImportPage, LogId, NewEvent};

use crate::error::{Result, StoreError};

/// What one append or import request committed.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    /// `(log, seq, leaf hash)` of each event, in request order.
    pub events: Vec<(LogId, u64, Hash)>,
    /// `(log, size, root)` of each log the request touched, after it.
    pub heads: Vec<(LogId, u64, Hash)>,
}

/// Where an answer goes: a channel a caller waits on, or a function called
/// on the flusher thread once the commit is durable (for callers that do
/// not wait, such as a sync worker driving many sessions). A function must
/// not block: it runs on the write path.
pub(crate) enum Reply<T> {
    Chan(Sender<Result<T>>),
    Call(Box<dyn FnOnce(Result<T>) + Send>),
}

impl<T> Reply<T> {
    pub fn send(self, r: Result<T>) {
        match self {
            // The caller may have stopped waiting.
            Reply::Chan(tx) => {
                let _ = tx.send(r);
            }
            Reply::Call(f) => f(r),
        }
    }

    /// Answers that the writer stopped after `why`.
    pub fn stopped(self, why: &std::sync::Arc<StoreError>) {
        self.send(Err(StoreError::WriterStopped(why.clone())));
    }
}

pub(crate) enum Request {
    Append {
        events: Vec<NewEvent>,
        reply: Reply<Committed>,
    },
    /// Keeps a signed checkpoint of size `size` unless one at least as
    /// large is kept already.
    PutCheckpoint {
        log: LogId,
        size: u64,
        note: String,
        reply: Reply<()>,
    },
    Sync {
        reply: Reply<()>,
    },
    /// Appends another author's verified events to their log: applied only
    /// if they extend the log as held to the checkpoint's root.
    Import {
        page: VerifiedPage,
        reply: Reply<Committed>,
    },
}

impl Request {
    /// Events the request adds, for sizing group commits.
    pub fn events(&self) -> usize {
        match self {
            Request::Append { events, .. } => events.len(),
            Request::Import { page, .. } => page.page.events.len().max(1),
            _ => 1,
        }
    }
}

/// A page of another author's events whose checkpoint's signature was
/// checked before it reached the writer (see `Store::import`).
pub(crate) struct VerifiedPage {
    pub page: ImportPage,
    pub checkpoint: Checkpoint,
}
