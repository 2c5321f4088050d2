//! The one blocking thread of the network layer. It runs every XSP session
//! (the [`Session`] state machine does no I/O, so one thread can drive all
//! of them), and everything else that waits on the store: signing
//! checkpoints to announce, scanning replicated events for blob
//! references, appends handed over by other processes, and recording sync
//! events. The tokio runtime only moves bytes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::{Semaphore, mpsc, oneshot};
use xaeroflux_store::{Commit, LogId, NewEvent, Receipt, Store, StoreError, Topic, TopicId};
use xaeroflux_sync::{Outcome, Session, SessionConfig, SyncError};

use crate::events::{SYNC_TOPIC, SyncEvent};
use crate::wire::{Announcement, BlobRef};

/// Chunks a session's reader may have queued for the worker at once.
pub(crate) const SESSION_CREDIT: usize = 16;
/// Bytes of a session's answers waiting for the peer to read them, past
/// which its reader stops taking requests (so a peer that asks without
/// reading cannot make the node buffer without bound).
pub(crate) const SESSION_OUT_LIMIT: usize = 8 << 20;

/// What the runtime asks of the worker.
pub(crate) enum Job {
    /// A new session.
    Open {
        id: u64,
        config: SessionConfig,
        /// Bytes the session answers; dropped when the session ends.
        out: mpsc::UnboundedSender<Vec<u8>>,
        done: oneshot::Sender<Result<Outcome, SyncError>>,
        /// Given back one permit per chunk handled.
        credit: Arc<Semaphore>,
        /// Bytes handed to the writer and not yet written.
        queued: Arc<AtomicUsize>,
        timeout: Duration,
    },
    /// Bytes from the peer.
    Data { id: u64, bytes: Vec<u8> },
    /// The peer finished its stream.
    Eof { id: u64 },
    /// Reading or writing failed.
    Broken { id: u64, error: std::io::Error },
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

/// Where the worker sends what it produced.
pub(crate) struct Outputs {
    /// Announcements to gossip.
    pub announce: mpsc::UnboundedSender<Announcement>,
    /// Blob references found in events, to fetch if missing.
    pub blobs: Option<mpsc::UnboundedSender<BlobRef>>,
    /// This node's endpoint id (the announcer).
    pub me: [u8; 32],
}

struct Slot<'s> {
    session: Session<'s, Store>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    done: Option<oneshot::Sender<Result<Outcome, SyncError>>>,
    credit: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    timeout: Duration,
    deadline: Instant,
}

impl Slot<'_> {
    fn flush(&mut self) {
        let out = self.session.take_output();
        if !out.is_empty() {
            self.queued.fetch_add(out.len(), Ordering::AcqRel);
            // A closed channel means the writer has gone; the session ends
            // through `Broken` or its timeout.
            let _ = self.out.send(out);
        }
    }

    fn finish(mut self, result: Result<Outcome, SyncError>) {
        self.flush();
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
    }
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
    let mut sessions: HashMap<u64, Slot<'_>> = HashMap::new();
    let mut joined: HashSet<TopicId> = HashSet::new();
    let mut dirty: HashSet<LogId> = HashSet::new();
    // Size each log was last announced at, and scanned for blobs up to.
    let mut announced: HashMap<LogId, u64> = HashMap::new();
    let mut scanned: HashMap<LogId, u64> = HashMap::new();
    let sync_topic = Topic::new(SYNC_TOPIC).ok();
    loop {
        let wait = sessions
            .values()
            .map(|s| s.deadline.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        let first = match rx.recv_timeout(wait) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Handle everything queued before turning to announcements, so a
        // burst of commits costs one checkpoint per log.
        let mut stop = false;
        for job in first.into_iter().chain(rx.try_iter()) {
            match job {
                Job::Open {
                    id,
                    config,
                    out,
                    done,
                    credit,
                    queued,
                    timeout,
                } => match Session::new(store, config) {
                    Ok(session) => {
                        let mut slot = Slot {
                            session,
                            out,
                            done: Some(done),
                            credit,
                            queued,
                            timeout,
                            deadline: Instant::now() + timeout,
                        };
                        slot.flush();
                        sessions.insert(id, slot);
                    }
                    Err(e) => {
                        let _ = done.send(Err(e));
                    }
                },
                Job::Data { id, bytes } => {
                    let Some(slot) = sessions.get_mut(&id) else {
                        continue;
                    };
                    slot.credit.add_permits(1);
                    slot.deadline = Instant::now() + slot.timeout;
                    let r = slot.session.receive(&bytes);
                    slot.flush();
                    match r {
                        Err(e) => {
                            if let Some(slot) = sessions.remove(&id) {
                                slot.finish(Err(e));
                            }
                        }
                        Ok(()) if slot.session.is_finished() => {
                            if let Some(slot) = sessions.remove(&id) {
                                let r = finished(&slot.session);
                                slot.finish(r);
                            }
                        }
                        Ok(()) => {}
                    }
                }
                Job::Eof { id } => {
                    if let Some(mut slot) = sessions.remove(&id) {
                        let r = slot
                            .session
                            .peer_closed()
                            .map(|()| slot.session.outcome().clone());
                        slot.finish(r);
                    }
                }
                Job::Broken { id, error } => {
                    if let Some(mut slot) = sessions.remove(&id) {
                        let e = slot.session.fail(SyncError::Io(error));
                        slot.finish(Err(e));
                    }
                }
                Job::Commit(c) => {
                    if joined.contains(&c.log.topic) {
                        dirty.insert(c.log);
                    }
                }
                Job::Join(topic) => {
                    if joined.insert(topic)
                        && let Ok(logs) = store.topic_logs(&topic)
                    {
                        dirty.extend(logs.into_iter().map(|l| l.log));
                    }
                }
                Job::Append { events, reply } => {
                    // Submitted together, so they share one group commit.
                    let pending: Result<Vec<_>, StoreError> =
                        events.into_iter().map(|e| store.submit(e)).collect();
                    let r = pending.and_then(|p| p.into_iter().map(|p| p.wait()).collect());
                    let _ = reply.send(r);
                }
                Job::Record(events) => {
                    if let Some(topic) = &sync_topic {
                        let batch: Vec<NewEvent> = events
                            .iter()
                            .map(|e| NewEvent::system(topic, e.to_string().into_bytes()))
                            .collect();
                        // Recorded in the background: the worker does not
                        // wait for the commit.
                        for ev in batch {
                            let _ = store.submit(ev);
                        }
                    }
                }
                Job::Shutdown => stop = true,
            }
        }
        if stop {
            break;
        }
        let now = Instant::now();
        let expired: Vec<u64> = sessions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(mut slot) = sessions.remove(&id) {
                let e = slot.session.fail(SyncError::Timeout(slot.timeout));
                slot.finish(Err(e));
            }
        }
        for log in dirty.drain() {
            let Ok(size) = store.log_size(&log) else {
                continue;
            };
            if announced.get(&log).is_none_or(|&s| s < size)
                && let Ok(signed) = store.checkpoint(&log)
                && signed.checkpoint.size == size
            {
                announced.insert(log, size);
                let _ = outputs.announce.send(Announcement {
                    announcer: outputs.me,
                    log,
                    note: signed.note,
                });
            }
            if let Some(blobs) = &outputs.blobs {
                let from = scanned.get(&log).copied().unwrap_or(0);
                if from < size
                    && let Ok(iter) = store.iter_log_range(&log, from, size)
                {
                    for ev in iter.flatten() {
                        if let Some(r) = BlobRef::decode(ev.payload()) {
                            let _ = blobs.send(r);
                        }
                    }
                    scanned.insert(log, size);
                }
            }
        }
    }
    for (_, mut slot) in sessions.drain() {
        let e = slot
            .session
            .fail(SyncError::Protocol("the node is shutting down".into()));
        slot.finish(Err(e));
    }
}

fn finished(session: &Session<'_, Store>) -> Result<Outcome, SyncError> {
    match session.outcome().error.clone() {
        None => Ok(session.outcome().clone()),
        Some(e) => Err(SyncError::Protocol(e)),
    }
}

/// Sends jobs to the worker.
pub(crate) type JobSender = Sender<Job>;
