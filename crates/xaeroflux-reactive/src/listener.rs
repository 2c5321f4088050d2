//! Listeners: a bounded priority inbox per worker, a handler, counters.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::queue::{Popped, PriorityQueue};
use crate::{Observer, Overflow, Prioritized};

/// Events a worker takes from its inbox at once, at most: a more urgent
/// event overtakes everything still queued, but not these.
const WORKER_BATCH: usize = 64;

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counters of a listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Events the handler returned from.
    pub processed: u64,
    /// Events refused by a full inbox ([`Overflow::DropNewest`]) or
    /// discarded when the listener was dropped.
    pub dropped: u64,
    /// Events whose handler panicked (caught; the worker goes on).
    pub panicked: u64,
    /// Events lost upstream before reaching this listener, as reported by
    /// the source.
    pub missed: u64,
    /// Events waiting in the inboxes.
    pub queued: usize,
}

struct Inner<T> {
    name: String,
    inboxes: Vec<PriorityQueue<T>>,
    overflow: Overflow,
    handler: Box<dyn Fn(T) + Send + Sync>,
    processed: AtomicU64,
    dropped: AtomicU64,
    panicked: AtomicU64,
    missed: AtomicU64,
    /// Signalled after each batch a worker finishes.
    progress: (Mutex<()>, Condvar),
}

impl<T: Prioritized + Send + 'static> Inner<T> {
    fn stats(&self) -> ListenerStats {
        ListenerStats {
            processed: self.processed.load(Ordering::Acquire),
            dropped: self.dropped.load(Ordering::Acquire),
            panicked: self.panicked.load(Ordering::Acquire),
            missed: self.missed.load(Ordering::Acquire),
            queued: self.inboxes.iter().map(PriorityQueue::len).sum(),
        }
    }

    fn work(&self, worker: usize) {
        let Some(inbox) = self.inboxes.get(worker) else {
            return;
        };
        let mut batch = Vec::with_capacity(WORKER_BATCH);
        while inbox.pop_into(&mut batch, WORKER_BATCH, None) == Popped::Items {
            let (mut ok, mut bad) = (0u64, 0u64);
            for item in batch.drain(..) {
                match catch_unwind(AssertUnwindSafe(|| (self.handler)(item))) {
                    Ok(()) => ok += 1,
                    Err(_) => bad += 1,
                }
            }
            self.processed.fetch_add(ok, Ordering::AcqRel);
            if bad > 0 {
                self.panicked.fetch_add(bad, Ordering::AcqRel);
            }
            let _g = lock(&self.progress.0);
            self.progress.1.notify_all();
        }
    }

    fn push(&self, inbox: &PriorityQueue<T>, items: Vec<T>) {
        let r = inbox.push_all(items, self.overflow);
        if r.dropped > 0 {
            self.dropped.fetch_add(r.dropped as u64, Ordering::AcqRel);
        }
    }
}

impl<T: Prioritized + Send + 'static> Observer<T> for Inner<T> {
    fn on_next(&self, item: T) {
        self.on_batch(vec![item])
    }

    fn on_batch(&self, items: Vec<T>) {
        let n = self.inboxes.len();
        if n == 1 {
            if let Some(inbox) = self.inboxes.first() {
                self.push(inbox, items);
            }
            return;
        }
        let mut parts: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
        for item in items {
            let w = (item.route_key() % n as u64) as usize;
            if let Some(p) = parts.get_mut(w) {
                p.push(item);
            }
        }
        for (inbox, part) in self.inboxes.iter().zip(parts) {
            if !part.is_empty() {
                self.push(inbox, part);
            }
        }
    }

    fn on_lagged(&self, missed: u64) {
        self.missed.fetch_add(missed, Ordering::AcqRel);
    }
}

/// A subscriber with a bounded inbox and its own worker thread, or a pool
/// of workers that keeps per-key order (each [`Prioritized::route_key`]
/// always goes to the same worker).
///
/// The handler runs on the workers; a panic in it is caught and counted,
/// and the worker goes on with the next event. Dropping the listener stops
/// its workers (after the event in hand; queued events are discarded and
/// counted as dropped); [`EventListener::close`] lets them finish the queue
/// first. Subscriptions that still point at a dropped listener deliver
/// nothing.
pub struct EventListener<T: Prioritized + Send + 'static> {
    inner: Arc<Inner<T>>,
    workers: Vec<JoinHandle<()>>,
}

impl<T: Prioritized + Send + 'static> std::fmt::Debug for EventListener<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventListener")
            .field("name", &self.inner.name)
            .field("workers", &self.workers.len())
            .field("stats", &self.inner.stats())
            .finish()
    }
}

/// Configures an [`EventListener`].
#[derive(Debug, Clone)]
pub struct ListenerBuilder {
    name: String,
    inbox_capacity: usize,
    pool_size: usize,
    overflow: Overflow,
}

impl ListenerBuilder {
    /// Inbox bound per priority class and per worker (default 8,192).
    pub fn inbox_capacity(mut self, events: usize) -> Self {
        self.inbox_capacity = events.max(1);
        self
    }
    /// Worker threads (default 1, at most 64).
    pub fn pool_size(mut self, workers: usize) -> Self {
        self.pool_size = workers.clamp(1, 64);
        self
    }
    /// What a full inbox does: make the source wait (the default) or drop
    /// and count.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Starts the workers, or says why the system would not.
    pub fn try_build<T: Prioritized + Send + 'static>(
        self,
        handler: impl Fn(T) + Send + Sync + 'static,
    ) -> std::io::Result<EventListener<T>> {
        let inner = Arc::new(Inner {
            name: self.name.clone(),
            inboxes: (0..self.pool_size)
                .map(|_| PriorityQueue::new(self.inbox_capacity))
                .collect(),
            overflow: self.overflow,
            handler: Box::new(handler),
            processed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            progress: (Mutex::new(()), Condvar::new()),
        });
        let mut listener = EventListener {
            inner,
            workers: Vec::with_capacity(self.pool_size),
        };
        for w in 0..self.pool_size {
            let inner = listener.inner.clone();
            // On error the listener is dropped, which stops the workers
            // already started.
            let h = std::thread::Builder::new()
                .name(format!("xf-listen-{}-{w}", self.name))
                .spawn(move || inner.work(w))?;
            listener.workers.push(h);
        }
        Ok(listener)
    }

    /// Starts the workers.
    ///
    /// # Panics
    /// When the operating system refuses to start a thread
    /// ([`ListenerBuilder::try_build`] returns the error instead).
    // The convenience form of `try_build`, documented to panic when the OS
    // refuses a thread; bytes from disk or peers never lead here.
    #[allow(clippy::panic)]
    pub fn build<T: Prioritized + Send + 'static>(
        self,
        handler: impl Fn(T) + Send + Sync + 'static,
    ) -> EventListener<T> {
        match self.try_build(handler) {
            Ok(l) => l,
            Err(e) => panic!("cannot start a listener's workers: {e}"),
        }
    }
}

impl<T: Prioritized + Send + 'static> EventListener<T> {
    /// A listener named `name` that runs `handler` on `pool_size` workers
    /// (1 for strict order), each with an inbox bounded to `inbox_capacity`
    /// events per priority class. A full inbox makes the source wait; see
    /// [`EventListener::builder`] for the drop policy.
    ///
    /// # Panics
    /// When the operating system refuses to start a thread.
    pub fn new(
        name: impl Into<String>,
        handler: impl Fn(T) + Send + Sync + 'static,
        inbox_capacity: usize,
        pool_size: usize,
    ) -> Self {
        Self::builder(name)
            .inbox_capacity(inbox_capacity)
            .pool_size(pool_size)
            .build(handler)
    }

    /// A builder for a listener named `name`.
    pub fn builder(name: impl Into<String>) -> ListenerBuilder {
        ListenerBuilder {
            name: name.into(),
            inbox_capacity: 8192,
            pool_size: 1,
            overflow: Overflow::Block,
        }
    }

    /// The listener's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Current counters.
    pub fn stats(&self) -> ListenerStats {
        self.inner.stats()
    }

    /// The observer that feeds this listener's inboxes, to attach to any
    /// source by hand.
    pub fn observer(&self) -> Arc<dyn Observer<T>> {
        self.inner.clone()
    }

    /// Waits until `done` holds for the counters, at most `timeout`.
    /// Returns whether it did.
    pub fn wait_until(&self, done: impl Fn(&ListenerStats) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &self.inner.progress;
        let mut g = lock(m);
        loop {
            if done(&self.inner.stats()) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Short slices: a counter can change between the check and the
            // wait without a signal reaching this thread.
            let slice = (deadline - now).min(Duration::from_millis(10));
            g = cv
                .wait_timeout(g, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Stops taking events, lets the workers finish what is queued, and
    /// joins them. Returns the final counters.
    pub fn close(mut self) -> ListenerStats {
        for q in &self.inner.inboxes {
            q.close();
        }
        self.join();
        self.inner.stats()
    }

    fn join(&mut self) {
        for h in self.workers.drain(..) {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl<T: Prioritized + Send + 'static> Drop for EventListener<T> {
    fn drop(&mut self) {
        let mut discarded = 0;
        for q in &self.inner.inboxes {
            discarded += q.close_and_clear();
        }
        if discarded > 0 {
            self.inner
                .dropped
                .fetch_add(discarded as u64, Ordering::AcqRel);
        }
        self.join();
    }
}
