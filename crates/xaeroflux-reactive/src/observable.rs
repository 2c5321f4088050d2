//! The reading side of a stream and its operators.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{EventListener, Observer, Prioritized};

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Something observers attach to.
pub(crate) trait Source<T>: Send + Sync {
    fn attach(self: Arc<Self>, observer: Arc<dyn Observer<T>>) -> SubscriptionGuard;
}

/// Keeps a subscription alive; dropping it (or calling
/// [`SubscriptionGuard::unsubscribe`]) detaches the observer and stops
/// anything the subscription started (a `buffer_time` timer). Once it
/// returns, the observer is not called again.
#[must_use = "dropping the guard unsubscribes at once"]
pub struct SubscriptionGuard {
    // Behind a mutex only so that a guard can be shared between threads
    // (a handle holding one stays `Sync`); it is taken once, on drop.
    detach: std::sync::Mutex<Vec<Detach>>,
}

type Detach = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for SubscriptionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionGuard")
            .field("parts", &self.parts().len())
            .finish()
    }
}

impl SubscriptionGuard {
    fn from_parts(parts: Vec<Detach>) -> Self {
        Self {
            detach: std::sync::Mutex::new(parts),
        }
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Vec<Detach>> {
        self.detach.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn new(detach: impl FnOnce() + Send + 'static) -> Self {
        Self::from_parts(vec![Box::new(detach)])
    }

    pub(crate) fn empty() -> Self {
        Self::from_parts(Vec::new())
    }

    /// Runs `also` after this guard's own detaching.
    pub(crate) fn and_then(self, also: impl FnOnce() + Send + 'static) -> Self {
        self.parts().push(Box::new(also));
        self
    }

    pub(crate) fn join(self, other: SubscriptionGuard) -> Self {
        let theirs = std::mem::take(&mut *other.parts());
        self.parts().extend(theirs);
        self
    }

    /// Unsubscribes now.
    pub fn unsubscribe(self) {}
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        let parts = std::mem::take(&mut *self.parts());
        for d in parts {
            d();
        }
    }
}

/// A stream of events that observers subscribe to and operators compose on.
/// Cheap to clone. Operators are lazy: each subscription builds its own
/// chain (with its own `scan` state and buffers) on the subject upstream,
/// and the operators run on that subject's dispatch thread.
pub struct Observable<T> {
    source: Arc<dyn Source<T>>,
}

impl<T> Clone for Observable<T> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Observable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observable")
    }
}

impl<T: Send + 'static> Observable<T> {
    pub(crate) fn from_source(source: Arc<dyn Source<T>>) -> Self {
        Self { source }
    }

    fn derive<U: Send + 'static>(
        &self,
        attach: impl Fn(&Observable<T>, Arc<dyn Observer<U>>) -> SubscriptionGuard
        + Send
        + Sync
        + 'static,
    ) -> Observable<U> {
        Observable::from_source(Arc::new(Derived {
            upstream: self.clone(),
            attach,
        }))
    }

    /// Attaches any observer. Dropping the guard detaches it.
    pub fn subscribe_observer(&self, observer: Arc<dyn Observer<T>>) -> SubscriptionGuard {
        self.source.clone().attach(observer)
    }

    /// Feeds a listener's inbox with every event from now on.
    pub fn subscribe(&self, listener: &EventListener<T>) -> SubscriptionGuard
    where
        T: Prioritized,
    {
        self.subscribe_observer(listener.observer())
    }

    /// Calls `f` for each event on the dispatch thread itself: for quick,
    /// non-blocking work (a slow closure delays every subscriber; use an
    /// [`EventListener`] for anything else). A panic in `f` is caught and
    /// skips that event only.
    pub fn subscribe_fn(&self, f: impl Fn(T) + Send + Sync + 'static) -> SubscriptionGuard {
        self.subscribe_observer(Arc::new(FnObserver(f)))
    }

    /// Each event transformed by `f`.
    pub fn map<U: Send + 'static>(
        &self,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Observable<U> {
        let f = Arc::new(f);
        self.derive(move |up, down: Arc<dyn Observer<U>>| {
            up.subscribe_observer(Arc::new(MapObserver {
                f: f.clone(),
                down,
                _t: std::marker::PhantomData,
            }))
        })
    }

    /// Only the events for which `keep` is true.
    pub fn filter(&self, keep: impl Fn(&T) -> bool + Send + Sync + 'static) -> Observable<T> {
        let keep = Arc::new(keep);
        self.derive(move |up, down: Arc<dyn Observer<T>>| {
            up.subscribe_observer(Arc::new(FilterObserver {
                keep: keep.clone(),
                down,
            }))
        })
    }

    /// A running fold: each event updates the accumulator (starting from
    /// `seed` for each subscription) and the new accumulator is emitted.
    pub fn scan<S: Clone + Send + Sync + 'static>(
        &self,
        seed: S,
        f: impl Fn(&S, T) -> S + Send + Sync + 'static,
    ) -> Observable<S> {
        let f = Arc::new(f);
        self.derive(move |up, down: Arc<dyn Observer<S>>| {
            up.subscribe_observer(Arc::new(ScanObserver {
                f: f.clone(),
                acc: Mutex::new(seed.clone()),
                down,
                _t: std::marker::PhantomData,
            }))
        })
    }

    /// Events gathered into vectors of `count` (the last one, at the end of
    /// the stream, may be shorter).
    pub fn buffer(&self, count: usize) -> Observable<Vec<T>> {
        let count = count.max(1);
        self.derive(move |up, down: Arc<dyn Observer<Vec<T>>>| {
            up.subscribe_observer(Arc::new(CountBuffer {
                count,
                buf: Mutex::new(Vec::with_capacity(count)),
                down,
            }))
        })
    }

    /// Events gathered over each `period`: a non-empty vector is emitted at
    /// the end of every period in which events arrived. Each subscription
    /// runs a timer thread, stopped when it is dropped.
    pub fn buffer_time(&self, period: Duration) -> Observable<Vec<T>> {
        let period = period.max(Duration::from_millis(1));
        self.derive(move |up, down: Arc<dyn Observer<Vec<T>>>| {
            let timed = Arc::new(TimeBuffer {
                state: Mutex::new(TimeState {
                    buf: Vec::new(),
                    stopped: false,
                    completed: false,
                }),
                wake: Condvar::new(),
                down,
            });
            let guard = up.subscribe_observer(timed.clone());
            let t = timed.clone();
            let timer = std::thread::Builder::new()
                .name("xf-buffer-time".into())
                .spawn(move || t.run(period));
            match timer {
                Ok(h) => guard.and_then(move || {
                    timed.stop();
                    if h.thread().id() != std::thread::current().id() {
                        let _ = h.join();
                    }
                }),
                Err(_) => {
                    // No timer: flush on every batch instead of by time.
                    lock(&timed.state).stopped = true;
                    guard
                }
            }
        })
    }

    /// The events of both streams, interleaved as they arrive; completes
    /// when both have.
    pub fn merge(&self, other: &Observable<T>) -> Observable<T> {
        let other = other.clone();
        self.derive(move |up, down: Arc<dyn Observer<T>>| {
            let merged = Arc::new(MergeObserver {
                open: AtomicUsize::new(2),
                down,
            });
            let a = up.subscribe_observer(merged.clone());
            let b = other.subscribe_observer(merged);
            a.join(b)
        })
    }
}

struct Derived<T, F> {
    upstream: Observable<T>,
    attach: F,
}

impl<T, U, F> Source<U> for Derived<T, F>
where
    T: Send + 'static,
    F: Fn(&Observable<T>, Arc<dyn Observer<U>>) -> SubscriptionGuard + Send + Sync,
{
    fn attach(self: Arc<Self>, observer: Arc<dyn Observer<U>>) -> SubscriptionGuard {
        (self.attach)(&self.upstream, observer)
    }
}

struct FnObserver<F>(F);

impl<T, F: Fn(T) + Send + Sync> Observer<T> for FnObserver<F> {
    fn on_next(&self, item: T) {
        // A panic skips this event only, not the rest of its batch.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(item)));
    }
}

struct MapObserver<T, U, F> {
    f: Arc<F>,
    down: Arc<dyn Observer<U>>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, U, F: Fn(T) -> U + Send + Sync> Observer<T> for MapObserver<T, U, F> {
    fn on_next(&self, item: T) {
        self.down.on_next((self.f)(item))
    }
    fn on_batch(&self, items: Vec<T>) {
        self.down
            .on_batch(items.into_iter().map(&*self.f).collect())
    }
    fn on_lagged(&self, missed: u64) {
        self.down.on_lagged(missed)
    }
    fn on_complete(&self) {
        self.down.on_complete()
    }
}

struct FilterObserver<T, F> {
    keep: Arc<F>,
    down: Arc<dyn Observer<T>>,
}

impl<T, F: Fn(&T) -> bool + Send + Sync> Observer<T> for FilterObserver<T, F> {
    fn on_next(&self, item: T) {
        if (self.keep)(&item) {
            self.down.on_next(item)
        }
    }
    fn on_batch(&self, mut items: Vec<T>) {
        items.retain(|i| (self.keep)(i));
        if !items.is_empty() {
            self.down.on_batch(items)
        }
    }
    fn on_lagged(&self, missed: u64) {
        self.down.on_lagged(missed)
    }
    fn on_complete(&self) {
        self.down.on_complete()
    }
}

struct ScanObserver<T, S, F> {
    f: Arc<F>,
    acc: Mutex<S>,
    down: Arc<dyn Observer<S>>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, S: Clone + Send, F: Fn(&S, T) -> S + Send + Sync> Observer<T> for ScanObserver<T, S, F> {
    fn on_next(&self, item: T) {
        self.on_batch(vec![item])
    }
    fn on_batch(&self, items: Vec<T>) {
        let out: Vec<S> = {
            let mut acc = lock(&self.acc);
            items
                .into_iter()
                .map(|i| {
                    *acc = (self.f)(&acc, i);
                    acc.clone()
                })
                .collect()
        };
        self.down.on_batch(out)
    }
    fn on_lagged(&self, missed: u64) {
        self.down.on_lagged(missed)
    }
    fn on_complete(&self) {
        self.down.on_complete()
    }
}

struct CountBuffer<T> {
    count: usize,
    buf: Mutex<Vec<T>>,
    down: Arc<dyn Observer<Vec<T>>>,
}

impl<T: Send> Observer<T> for CountBuffer<T> {
    fn on_next(&self, item: T) {
        self.on_batch(vec![item])
    }
    fn on_batch(&self, items: Vec<T>) {
        let mut full = Vec::new();
        {
            let mut buf = lock(&self.buf);
            for i in items {
                buf.push(i);
                if buf.len() == self.count {
                    full.push(std::mem::replace(&mut *buf, Vec::with_capacity(self.count)));
                }
            }
        }
        if !full.is_empty() {
            self.down.on_batch(full)
        }
    }
    fn on_lagged(&self, missed: u64) {
        self.down.on_lagged(missed)
    }
    fn on_complete(&self) {
        let rest = std::mem::take(&mut *lock(&self.buf));
        if !rest.is_empty() {
            self.down.on_next(rest);
        }
        self.down.on_complete()
    }
}

struct TimeState<T> {
    buf: Vec<T>,
    /// The timer has stopped (unsubscribed, or no timer thread).
    stopped: bool,
    completed: bool,
}

struct TimeBuffer<T> {
    state: Mutex<TimeState<T>>,
    wake: Condvar,
    down: Arc<dyn Observer<Vec<T>>>,
}

impl<T: Send> TimeBuffer<T> {
    fn run(&self, period: Duration) {
        let mut next = Instant::now() + period;
        let mut st = lock(&self.state);
        loop {
            if st.stopped {
                return;
            }
            let now = Instant::now();
            if now < next {
                st = self
                    .wake
                    .wait_timeout(st, next - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            next += period;
            if next < now {
                next = now + period;
            }
            let out = std::mem::take(&mut st.buf);
            let done = st.completed;
            drop(st);
            if !out.is_empty() {
                self.down.on_next(out);
            }
            if done {
                self.down.on_complete();
                lock(&self.state).stopped = true;
                return;
            }
            st = lock(&self.state);
        }
    }

    fn stop(&self) {
        lock(&self.state).stopped = true;
        self.wake.notify_all();
    }
}

impl<T: Send> Observer<T> for TimeBuffer<T> {
    fn on_next(&self, item: T) {
        self.on_batch(vec![item])
    }
    fn on_batch(&self, items: Vec<T>) {
        let mut st = lock(&self.state);
        st.buf.extend(items);
        if st.stopped && !st.completed {
            // No timer is running: hand the events on as they come.
            let out = std::mem::take(&mut st.buf);
            drop(st);
            self.down.on_next(out);
        }
    }
    fn on_lagged(&self, missed: u64) {
        self.down.on_lagged(missed)
    }
    fn on_complete(&self) {
        let mut st = lock(&self.state);
        if st.stopped {
            let out = std::mem::take(&mut st.buf);
            drop(st);
            if !out.is_empty() {
                self.down.on_next(out);
            }
            self.down.on_complete();
        } else {
            // The timer flushes what is left at the end of the period, then
            // completes.
            st.completed = true;
        }
    }
}

struct MergeObserver<T> {
    open: AtomicUsize,
    down: Arc<dyn Observer<T>>,
}

impl<T> Observer<T> for MergeObserver<T> {
    fn on_next(&self, item: T) {
        self.down.on_next(item)
    }
    fn on_batch(&self, items: Vec<T>) {
        self.down.on_batch(items)
    }
    fn on_lagged(&self, missed: u64) {
        self.down.on_lagged(missed)
    }
    fn on_complete(&self) {
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.down.on_complete()
        }
    }
}
