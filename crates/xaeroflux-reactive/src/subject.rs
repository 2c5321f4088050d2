//! The hot multicast source and its dispatch thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};

use crate::observable::{Observable, Source, SubscriptionGuard};
use crate::queue::{Popped, PriorityQueue};
use crate::{EventListener, Observer, Overflow, Prioritized};

/// Events the dispatch loop takes from the input queue at once, at most.
const DISPATCH_BATCH: usize = 1024;

type ObserverList<T> = Arc<Vec<(u64, Arc<dyn Observer<T>>)>>;

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct SubjectInner<T> {
    name: String,
    queue: PriorityQueue<T>,
    overflow: Overflow,
    /// Copied on write; the dispatch loop takes a snapshot per batch.
    observers: Mutex<ObserverList<T>>,
    next_id: AtomicU64,
    /// Held by the dispatch loop while it delivers a batch, so that an
    /// unsubscribe returns only once its observer is no longer called.
    delivering: Mutex<()>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    dispatcher_id: Mutex<Option<ThreadId>>,
    completed: AtomicBool,
    published: AtomicU64,
    dropped: AtomicU64,
    /// Dropped at the input and not yet reported to observers.
    unreported: AtomicU64,
    delivered_batches: AtomicU64,
    observer_panics: AtomicU64,
}

impl<T> SubjectInner<T> {
    fn on_dispatcher(&self) -> bool {
        *lock(&self.dispatcher_id) == Some(std::thread::current().id())
    }
}

impl<T: Clone + Prioritized + Send + 'static> SubjectInner<T> {
    fn deliver(&self, observers: &ObserverList<T>, mut batch: Vec<T>) {
        let missed = self.unreported.swap(0, Ordering::AcqRel);
        let n = observers.len();
        for (i, (_, obs)) in observers.iter().enumerate() {
            let items = if i + 1 == n {
                std::mem::take(&mut batch)
            } else {
                batch.clone()
            };
            let r = catch_unwind(AssertUnwindSafe(|| {
                if missed > 0 {
                    obs.on_lagged(missed);
                }
                obs.on_batch(items);
            }));
            if r.is_err() {
                self.observer_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.delivered_batches.fetch_add(1, Ordering::Relaxed);
    }

    fn run(self: Arc<Self>) {
        let mut batch = Vec::with_capacity(DISPATCH_BATCH);
        while self.queue.pop_into(&mut batch, DISPATCH_BATCH, None) == Popped::Items {
            let _g = lock(&self.delivering);
            let observers = lock(&self.observers).clone();
            self.deliver(&observers, std::mem::take(&mut batch));
            batch.reserve(DISPATCH_BATCH);
        }
        let _g = lock(&self.delivering);
        self.completed.store(true, Ordering::Release);
        let observers = std::mem::take(&mut *lock(&self.observers));
        let missed = self.unreported.swap(0, Ordering::AcqRel);
        for (_, obs) in observers.iter() {
            let r = catch_unwind(AssertUnwindSafe(|| {
                if missed > 0 {
                    obs.on_lagged(missed);
                }
                obs.on_complete();
            }));
            if r.is_err() {
                self.observer_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<T: Clone + Prioritized + Send + 'static> Source<T> for SubjectInner<T> {
    fn attach(self: Arc<Self>, observer: Arc<dyn Observer<T>>) -> SubscriptionGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            // From the dispatch thread itself (an observer subscribing
            // another), the lock is already held by this thread.
            let _g = (!self.on_dispatcher()).then(|| lock(&self.delivering));
            if self.completed.load(Ordering::Acquire) {
                drop(_g);
                observer.on_complete();
                return SubscriptionGuard::empty();
            }
            let mut list = lock(&self.observers);
            let mut next = Vec::with_capacity(list.len() + 1);
            next.extend(list.iter().cloned());
            next.push((id, observer));
            *list = Arc::new(next);
        }
        let inner = self;
        SubscriptionGuard::new(move || {
            // Waiting for the batch in flight would deadlock when the
            // dispatch thread itself unsubscribes (from an operator).
            let _g = (!inner.on_dispatcher()).then(|| lock(&inner.delivering));
            let mut list = lock(&inner.observers);
            let next: Vec<_> = list.iter().filter(|(i, _)| *i != id).cloned().collect();
            *list = Arc::new(next);
        })
    }
}

/// Counters of a subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectStats {
    /// Events taken into the input queue.
    pub published: u64,
    /// Events refused by a full input queue ([`Overflow::DropNewest`]).
    pub dropped: u64,
    /// Events waiting in the input queue.
    pub queued: usize,
    /// Current subscribers.
    pub subscribers: usize,
    /// Panics caught around observers (an [`EventListener`] catches its
    /// handler's panics itself; these come from operators and closures).
    pub observer_panics: u64,
}

/// A hot multicast source. Publishing puts events on a bounded priority
/// queue; one dispatch thread hands each batch to every subscriber.
///
/// `Subject` is the publishing side and can subscribe too; the
/// [`Observable`] returned beside it is the reading side, where operators
/// compose. Clones publish into the same stream. When every clone is
/// dropped (or [`Subject::close`] is called) the stream completes: what is
/// queued is delivered, subscribers get `on_complete`, and the dispatch
/// thread ends.
pub struct Subject<T: Clone + Prioritized + Send + 'static> {
    inner: Arc<SubjectInner<T>>,
    _open: Arc<OpenToken<T>>,
}

impl<T: Clone + Prioritized + Send + 'static> Clone for Subject<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _open: self._open.clone(),
        }
    }
}

impl<T: Clone + Prioritized + Send + 'static> std::fmt::Debug for Subject<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.inner.name)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Closes the input queue when the last publishing handle goes.
struct OpenToken<T>(Arc<SubjectInner<T>>);

impl<T> Drop for OpenToken<T> {
    fn drop(&mut self) {
        self.0.queue.close();
    }
}

/// Configures a [`Subject`].
#[derive(Debug, Clone)]
pub struct SubjectBuilder {
    name: String,
    capacity: usize,
    overflow: Overflow,
}

impl Default for SubjectBuilder {
    fn default() -> Self {
        Self {
            name: "subject".into(),
            capacity: 64 * 1024,
            overflow: Overflow::Block,
        }
    }
}

impl SubjectBuilder {
    /// Names the subject (and its dispatch thread).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Input queue bound, per priority class (default 65,536).
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events.max(1);
        self
    }
    /// What publishing does when the input queue is full: wait (the
    /// default) or drop and report the loss to subscribers as `on_lagged`.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Starts the dispatch thread.
    ///
    /// # Panics
    /// When the operating system refuses to start a thread.
    // The convenience form of `try_build`, documented to panic when the OS
    // refuses a thread; bytes from disk or peers never lead here.
    #[allow(clippy::panic)]
    pub fn build<T: Clone + Prioritized + Send + 'static>(self) -> (Subject<T>, Observable<T>) {
        match self.try_build() {
            Ok(pair) => pair,
            Err(e) => panic!("cannot start a subject's dispatch thread: {e}"),
        }
    }

    /// Starts the dispatch thread, or says why the system would not.
    pub fn try_build<T: Clone + Prioritized + Send + 'static>(
        self,
    ) -> std::io::Result<(Subject<T>, Observable<T>)> {
        let inner = Arc::new(SubjectInner {
            name: self.name.clone(),
            queue: PriorityQueue::new(self.capacity),
            overflow: self.overflow,
            observers: Mutex::new(Arc::new(Vec::new())),
            next_id: AtomicU64::new(0),
            delivering: Mutex::new(()),
            dispatcher: Mutex::new(None),
            dispatcher_id: Mutex::new(None),
            completed: AtomicBool::new(false),
            published: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            delivered_batches: AtomicU64::new(0),
            observer_panics: AtomicU64::new(0),
        });
        let run = inner.clone();
        let handle = std::thread::Builder::new()
            .name(format!("xf-subject-{}", self.name))
            .spawn(move || run.run())?;
        *lock(&inner.dispatcher_id) = Some(handle.thread().id());
        *lock(&inner.dispatcher) = Some(handle);
        let observable = Observable::from_source(inner.clone());
        let subject = Subject {
            _open: Arc::new(OpenToken(inner.clone())),
            inner,
        };
        Ok((subject, observable))
    }
}

impl<T: Clone + Prioritized + Send + 'static> Subject<T> {
    /// A subject with the defaults: input bound 65,536 per class, blocking
    /// when full. Returns the publishing side and the reading side.
    ///
    /// # Panics
    /// When the operating system refuses to start a thread
    /// ([`SubjectBuilder::try_build`] returns the error instead).
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (Subject<T>, Observable<T>) {
        SubjectBuilder::default().build()
    }

    /// A builder for a subject with other settings.
    pub fn builder() -> SubjectBuilder {
        SubjectBuilder::default()
    }

    /// Publishes one event. Waits for room when the input queue is full and
    /// the subject blocks; drops it (counted, and reported to subscribers)
    /// when the subject drops. After [`Subject::on_complete`] it does
    /// nothing.
    pub fn on_next(&self, item: T) {
        self.on_next_batch(std::iter::once(item));
    }

    /// Publishes several events, in order, taking the queue's lock once.
    /// Returns how many were taken.
    pub fn on_next_batch(&self, items: impl IntoIterator<Item = T>) -> usize {
        let r = self.inner.queue.push_all(items, self.inner.overflow);
        self.inner
            .published
            .fetch_add(r.accepted as u64, Ordering::Relaxed);
        if r.dropped > 0 {
            self.inner
                .dropped
                .fetch_add(r.dropped as u64, Ordering::Relaxed);
            self.inner
                .unreported
                .fetch_add(r.dropped as u64, Ordering::AcqRel);
        }
        r.accepted
    }

    /// Ends the stream: later events are ignored; queued ones are still
    /// delivered, then subscribers get `on_complete`.
    pub fn on_complete(&self) {
        self.inner.queue.close();
    }

    /// Ends the stream and waits for the dispatch thread to deliver what is
    /// queued and stop.
    pub fn close(self) {
        self.on_complete();
        if self.inner.on_dispatcher() {
            return;
        }
        let handle = lock(&self.inner.dispatcher).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Subscribes a listener: its inbox receives every event published
    /// from now on. Dropping the guard unsubscribes.
    pub fn subscribe(&self, listener: &EventListener<T>) -> SubscriptionGuard {
        self.observable().subscribe(listener)
    }

    /// The reading side, where operators compose.
    pub fn observable(&self) -> Observable<T> {
        Observable::from_source(self.inner.clone())
    }

    /// The subject's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Current number of subscribers (a publisher can skip building
    /// events nobody would receive).
    pub fn subscribers(&self) -> usize {
        lock(&self.inner.observers).len()
    }

    /// Current counters.
    pub fn stats(&self) -> SubjectStats {
        SubjectStats {
            published: self.inner.published.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            queued: self.inner.queue.len(),
            subscribers: lock(&self.inner.observers).len(),
            observer_panics: self.inner.observer_panics.load(Ordering::Relaxed),
        }
    }
}
