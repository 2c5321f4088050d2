//! The sessions the worker drives: bytes from the runtime go in, bytes for
//! the runtime and store writes come out; the writes' results come back as
//! jobs from the store's flusher.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, oneshot};
use xaeroflux_store::Store;
use xaeroflux_sync::{Outcome, Session, StoreFault, SyncError, SyncStore};

use super::{Job, JobSender, Open};

/// How long the worker sleeps when no session has a deadline.
const IDLE: Duration = Duration::from_secs(3600);

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
    /// Hands what the session wrote to the runtime.
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

/// Every running session, by id.
pub(super) struct Sessions<'s> {
    store: &'s Store,
    jobs: JobSender,
    slots: HashMap<u64, Slot<'s>>,
}

impl<'s> Sessions<'s> {
    pub fn new(store: &'s Store, jobs: JobSender) -> Self {
        Self {
            store,
            jobs,
            slots: HashMap::new(),
        }
    }

    /// How long until the next session times out.
    pub fn next_deadline(&self) -> Duration {
        let now = Instant::now();
        self.slots
            .values()
            .map(|s| s.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(IDLE)
    }

    pub fn open(&mut self, o: Open) {
        match Session::new(self.store, o.config) {
            Ok(session) => {
                let slot = Slot {
                    session,
                    out: o.out,
                    done: Some(o.done),
                    credit: o.credit,
                    queued: o.queued,
                    timeout: o.timeout,
                    deadline: Instant::now() + o.timeout,
                };
                self.slots.insert(o.id, slot);
                self.after(o.id, Ok(()));
            }
            Err(e) => {
                let _ = o.done.send(Err(e));
            }
        }
    }

    pub fn data(&mut self, id: u64, bytes: &[u8]) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.credit.add_permits(1);
        slot.deadline = Instant::now() + slot.timeout;
        let r = slot.session.receive(bytes);
        self.after(id, r);
    }

    pub fn done(&mut self, id: u64, token: u64, result: Result<u64, StoreFault>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let r = slot.session.complete(token, result);
        self.after(id, r);
    }

    pub fn eof(&mut self, id: u64) {
        if let Some(mut slot) = self.slots.remove(&id) {
            let r = slot
                .session
                .peer_closed()
                .map(|()| slot.session.outcome().clone());
            slot.finish(r);
        }
    }

    pub fn broken(&mut self, id: u64, error: std::io::Error) {
        if let Some(mut slot) = self.slots.remove(&id) {
            let e = slot.session.fail(SyncError::Io(error));
            slot.finish(Err(e));
        }
    }

    /// Ends the sessions whose peer stayed silent too long.
    pub fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(mut slot) = self.slots.remove(&id) {
                let e = slot.session.fail(SyncError::Timeout(slot.timeout));
                slot.finish(Err(e));
            }
        }
    }

    pub fn shutdown(&mut self) {
        for (_, mut slot) in self.slots.drain() {
            let e = slot
                .session
                .fail(SyncError::Protocol("the node is shutting down".into()));
            slot.finish(Err(e));
        }
    }

    /// After a session took input: sends what it wrote, starts the store
    /// writes it asked for (their results come back as `Job::Done`), and
    /// ends it if it is over.
    fn after(&mut self, id: u64, r: Result<(), SyncError>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.flush();
        for action in slot.session.take_actions() {
            let jobs = self.jobs.clone();
            let token = action.token;
            self.store.start(
                action.op,
                Box::new(move |result| {
                    let _ = jobs.send(Job::Done { id, token, result });
                }),
            );
        }
        let end = match r {
            Err(e) => Some(Err(e)),
            Ok(()) if slot.session.is_finished() => {
                Some(match slot.session.outcome().error.clone() {
                    None => Ok(slot.session.outcome().clone()),
                    Some(e) => Err(SyncError::Protocol(e)),
                })
            }
            Ok(()) => None,
        };
        if let Some(result) = end
            && let Some(slot) = self.slots.remove(&id)
        {
            slot.finish(result);
        }
    }
}
