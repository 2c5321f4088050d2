//! The sessions the worker drives: bytes from the runtime go in, bytes for
//! the runtime and store writes come out; the writes' results come back as
//! jobs from the store's flusher.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, oneshot};
use xaeroflux_store::Store;
use xaeroflux_sync::{Outcome, Session, StoreFault, SyncError, SyncStore};

use super::{Board, Job, JobSender, Open, SESSION_OUT_LIMIT};

/// How long the worker sleeps when no session has a deadline.
const IDLE: Duration = Duration::from_secs(3600);

struct Slot<'s> {
    session: Session<'s, Store>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    done: Option<oneshot::Sender<Result<Outcome, SyncError>>>,
    credit: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    timeout: Duration,
    hello_timeout: Duration,
    said_hello: Arc<AtomicBool>,
    deadline: Instant,
    /// Chunks taken while the session's input was paused: their credit
    /// goes back once it has read them all.
    owed_credit: usize,
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
    board: Board,
}

impl<'s> Sessions<'s> {
    pub fn new(store: &'s Store, jobs: JobSender, board: Board) -> Self {
        Self {
            store,
            jobs,
            slots: HashMap::new(),
            board,
        }
    }

    /// Notes how far session `id` has come (or that it has ended).
    fn report(&self, id: u64) {
        let mut b = self.board.lock().unwrap_or_else(|p| p.into_inner());
        match self.slots.get(&id) {
            Some(s) => {
                let o = s.session.outcome();
                b.insert(id, [o.events_wanted, o.events_in, o.bytes_in]);
            }
            None => {
                b.remove(&id);
            }
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
                    hello_timeout: o.hello_timeout,
                    said_hello: o.said_hello,
                    // Until the peer's HELLO, the shorter deadline holds.
                    deadline: Instant::now() + o.timeout.min(o.hello_timeout),
                    owed_credit: 0,
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
        let r = slot.session.receive(bytes);
        // While messages stay unread, the reader gets no more credit.
        if slot.session.input_paused() {
            slot.owed_credit += 1;
        } else {
            slot.credit.add_permits(1);
        }
        // Bytes that are not yet a HELLO do not extend the HELLO deadline:
        // a peer trickling a byte at a time is dropped as one sending none.
        if slot.session.peer_said_hello() {
            slot.deadline = Instant::now() + slot.timeout;
            slot.said_hello.store(true, Ordering::Release);
        }
        self.after(id, r);
        self.pump(id);
    }

    /// Lets a session whose input is paused read on, while the answers
    /// queued for its peer stay within [`SESSION_OUT_LIMIT`] (the writer
    /// sends `Job::Drained` when they fall back under it).
    pub fn pump(&mut self, id: u64) {
        loop {
            let Some(slot) = self.slots.get_mut(&id) else {
                return;
            };
            if !slot.session.input_paused() {
                slot.credit
                    .add_permits(std::mem::take(&mut slot.owed_credit));
                return;
            }
            if slot.queued.load(Ordering::Acquire) > SESSION_OUT_LIMIT {
                return;
            }
            let r = slot.session.receive(&[]);
            self.after(id, r);
        }
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
        self.report(id);
    }

    pub fn broken(&mut self, id: u64, error: std::io::Error) {
        if let Some(mut slot) = self.slots.remove(&id) {
            let e = slot.session.fail(SyncError::Io(error));
            slot.finish(Err(e));
        }
        self.report(id);
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
                let why = if slot.session.peer_said_hello() {
                    SyncError::Timeout(slot.timeout)
                } else {
                    SyncError::NoHello(slot.timeout.min(slot.hello_timeout))
                };
                let e = slot.session.fail(why);
                slot.finish(Err(e));
            }
            self.report(id);
        }
    }

    pub fn shutdown(&mut self) {
        for (_, mut slot) in self.slots.drain() {
            let e = slot
                .session
                .fail(SyncError::Protocol("the node is shutting down".into()));
            slot.finish(Err(e));
        }
        self.board.lock().unwrap_or_else(|p| p.into_inner()).clear();
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
        self.report(id);
    }
}
