//! The one blocking thread of the network layer. It runs every XSP session
//! (the [`Session`](xaeroflux_sync::Session) state machine does no I/O and
//! never waits, so one thread drives all of them, and a page being made
//! durable for one session holds up none of the others), and everything
//! else that reads the store: signing checkpoints to announce, scanning
//! replicated events for blob references, appends handed over by other
//! processes, and recording sync events. The tokio runtime only moves
//! bytes.
//!
//! - `sessions`: the sessions and their byte and write traffic;
//! - `announce`: which logs to announce and scan for blobs after commits.

mod announce;
mod sessions;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::{Semaphore, mpsc, oneshot};
use xaeroflux_store::{Commit, NewEvent, Receipt, Store, StoreError, Topic, TopicId};
use xaeroflux_sync::{Outcome, SessionConfig, StoreFault, SyncError};

use crate::events::{SYNC_TOPIC, SyncEvent};
use crate::wire::{Announcement, BlobRef};
use announce::Announcer;
use sessions::Sessions;

/// Chunks a session's reader may have queued for the worker at once.
pub(crate) const SESSION_CREDIT: usize = 16;
/// Bytes of a session's answers waiting for the peer to read them, past
/// which its reader stops taking requests (so a peer that asks without
/// reading cannot make the node buffer without bound).
pub(crate) const SESSION_OUT_LIMIT: usize = 8 << 20;

/// A new session, as the runtime opens it.
pub(crate) struct Open {
    pub id: u64,
    pub config: SessionConfig,
    /// Bytes the session answers; dropped when the session ends.
    pub out: mpsc::UnboundedSender<Vec<u8>>,
    pub done: oneshot::Sender<Result<Outcome, SyncError>>,
    /// Given back one permit per chunk handled.
    pub credit: Arc<Semaphore>,
    /// Bytes handed to the writer and not yet written.
    pub queued: Arc<AtomicUsize>,
    pub timeout: Duration,
    /// How long the peer has to send its HELLO.
    pub hello_timeout: Duration,
    /// Set once the peer's HELLO has arrived (an accepted session that has
    /// not said HELLO may be evicted to make room).
    pub said_hello: Arc<std::sync::atomic::AtomicBool>,
}

/// What the runtime (and the store's flusher) asks of the worker.
pub(crate) enum Job {
    /// A new session.
    Open(Box<Open>),
    /// Bytes from the peer.
    Data { id: u64, bytes: Vec<u8> },
    /// The peer finished its stream.
    Eof { id: u64 },
    /// The answers queued for the peer fell back under the bound: a
    /// session that left messages unread goes on.
    Drained { id: u64 },
    /// Reading or writing failed.
    Broken { id: u64, error: std::io::Error },
    /// A store write a session asked for has finished.
    Done {
        id: u64,
        token: u64,
        result: Result<u64, StoreFault>,
    },
    /// A new commit of the store.
    Commit(Commit),
    /// A topic was joined: announce and scan its logs.
    Join(TopicId),
    /// Appends from another process.
    Append {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Receipt>, StoreError>>,
    },
    /// A sync event to record.
    Record(Vec<SyncEvent>),
    /// Stop.
    Shutdown,
}

/// Sends jobs to the worker.
pub(crate) type JobSender = Sender<Job>;

/// What each running session has moved so far, by session id: events it
/// set out to pull, events and bytes received.
pub(crate) type Board = Arc<std::sync::Mutex<std::collections::HashMap<u64, [u64; 3]>>>;

/// Where the worker sends what it produced.
pub(crate) struct Outputs {
    /// Where sessions report how far they have come.
    pub board: Board,
    /// Announcements to gossip.
    pub announce: mpsc::UnboundedSender<Announcement>,
    /// Blob references found in events, to fetch if missing.
    pub blobs: Option<mpsc::UnboundedSender<BlobRef>>,
    /// This node's endpoint id (the announcer).
    pub me: [u8; 32],
    /// The worker's own queue, for the results of store writes.
    pub jobs: JobSender,
}

/// Starts the worker thread.
pub(crate) fn spawn(
    store: Arc<Store>,
    rx: Receiver<Job>,
    outputs: Outputs,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("xf-net-sync".into())
        .spawn(move || run(&store, rx, outputs))
}

fn run(store: &Store, rx: Receiver<Job>, outputs: Outputs) {
    let mut sessions = Sessions::new(store, outputs.jobs.clone(), outputs.board.clone());
    let mut announcer = Announcer::new(outputs);
    let sync_topic = Topic::new(SYNC_TOPIC).ok();
    loop {
        let first = match rx.recv_timeout(sessions.next_deadline()) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Handle everything queued before turning to announcements, so a
        // burst of commits costs one checkpoint per log.
        let mut stop = false;
        for job in first.into_iter().chain(rx.try_iter()) {
            match job {
                Job::Open(open) => sessions.open(*open),
                Job::Data { id, bytes } => sessions.data(id, &bytes),
                Job::Eof { id } => sessions.eof(id),
                Job::Drained { id } => sessions.pump(id),
                Job::Broken { id, error } => sessions.broken(id, error),
                Job::Done { id, token, result } => sessions.done(id, token, result),
                Job::Commit(c) => announcer.commit(c),
                Job::Join(topic) => announcer.join(store, topic),
                Job::Append { events, reply } => {
                    // Submitted together, so they share one group commit.
                    let pending: Result<Vec<_>, StoreError> =
                        events.into_iter().map(|e| store.submit(e)).collect();
                    let r = pending.and_then(|p| p.into_iter().map(|p| p.wait()).collect());
                    let _ = reply.send(r);
                }
                Job::Record(events) => record(store, sync_topic.as_ref(), &events),
                Job::Shutdown => stop = true,
            }
        }
        if stop {
            break;
        }
        sessions.expire();
        announcer.flush(store);
    }
    sessions.shutdown();
}

/// Records sync events as `System` events of the sync topic, in the
/// background: the worker does not wait for the commit.
fn record(store: &Store, topic: Option<&Topic>, events: &[SyncEvent]) {
    let Some(topic) = topic else { return };
    for e in events {
        let _ = store.submit(NewEvent::system(topic, e.to_string().into_bytes()));
    }
}
