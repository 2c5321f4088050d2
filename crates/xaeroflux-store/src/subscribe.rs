//! Live subscriptions: a log's history from a chosen `seq`, then its events
//! as they are committed, with no gap and no duplicate.
//!
//! The flusher announces each group commit as one [`Commit`] per log it
//! touched (the log and its new size) on a subject. A subscription's inbox
//! holds only these small notices; the events themselves are read from the
//! store, where they already are. Each subscription keeps, per log, the
//! next `seq` it owes its reader, so a notice that arrives twice or late
//! changes nothing, and a notice that was dropped (a slow reader's inbox
//! was full) is made up for by reading the store's log sizes again. The
//! writer never waits for a subscriber, memory per subscription is bounded,
//! and a slow subscriber still sees every event.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xaeroflux_reactive::{
    EventListener, Inbox, Observable, Overflow, Prioritized, Priority, Received, SubscriptionGuard,
};

use xaeroflux_types::{Event, EventKind, LogId, Topic, TopicId};

use crate::error::{Result, StoreError};
use crate::index::LogRecord;
use crate::shared::Shared;
use crate::store::log_iter_in;

/// Notices a subscription's inbox holds per priority class; beyond that it
/// drops them and catches up from the store.
const NOTICE_CAPACITY: usize = 1024;
/// Events read from the store at a time, at most.
const READ_BATCH: usize = 512;
/// How often a subscription on a read-only store looks for new events
/// committed by the writer in another process.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One log's new size after a group commit, as announced to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The log.
    pub log: LogId,
    /// Its size once the commit is durable (or, in the fast mode, written).
    pub size: u64,
    /// The most urgent kind among the events this commit added to the log.
    pub most_urgent: EventKind,
}

fn priority_of(kind: EventKind) -> Priority {
    kind.priority()
}

impl Prioritized for Commit {
    fn priority(&self) -> Priority {
        self.most_urgent.priority()
    }
    fn route_key(&self) -> u64 {
        self.log.route_key()
    }
}

/// Which events a subscription receives: those of one log, of one topic's
/// logs, or of every log, optionally of one kind only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    topic: Option<TopicId>,
    log: Option<LogId>,
    kind: Option<EventKind>,
}

impl Filter {
    /// Every event of every log.
    pub fn all() -> Self {
        Self::default()
    }
    /// The events of every log (every author's) in a topic.
    pub fn topic(topic: &Topic) -> Self {
        Self::topic_id(topic.id())
    }
    /// The events of every log in a topic, by id.
    pub fn topic_id(topic: TopicId) -> Self {
        Self {
            topic: Some(topic),
            ..Self::default()
        }
    }
    /// The events of one log.
    pub fn log(log: LogId) -> Self {
        Self {
            topic: Some(log.topic),
            log: Some(log),
            kind: None,
        }
    }
    /// Events of one kind, in every log.
    pub fn kind(kind: EventKind) -> Self {
        Self::all().with_kind(kind)
    }
    /// Narrows this filter to events of one kind.
    pub fn with_kind(mut self, kind: EventKind) -> Self {
        self.kind = Some(kind);
        self
    }

    fn matches_log(&self, log: &LogId) -> bool {
        self.log.is_none_or(|l| l == *log) && self.topic.is_none_or(|t| t == log.topic)
    }

    fn matches_kind(&self, kind: EventKind) -> bool {
        self.kind.is_none_or(|k| k == kind)
    }
}

/// Where a subscription starts in each log it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// From this `seq` on in every log the filter covers (0: the whole
    /// history).
    Seq(u64),
    /// Only events committed after the subscription was made. Logs that
    /// first appear later are delivered from their start.
    Now,
}

impl From<u64> for Since {
    fn from(seq: u64) -> Self {
        Since::Seq(seq)
    }
}

/// Counters of a subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionStats {
    /// Events handed to the reader.
    pub delivered: u64,
    /// Times the subscription fell behind its inbox and caught up from the
    /// store (or, on a read-only store, polled it).
    pub catch_ups: u64,
    /// Commit notices received.
    pub notices: u64,
    /// Most events held in memory at once (bounded by the read batch).
    pub max_buffered: usize,
}

/// A live view of the store: the events a [`Filter`] selects, from the
/// chosen [`Since`] on, and then each new one as it is committed, local or
/// replicated. Within a log, events arrive in `seq` order with no gap and
/// no duplicate; logs with urgent (`System`, then `Identity`) commits are
/// read before others. It is a blocking iterator ([`Subscription::recv`],
/// [`Subscription::recv_timeout`]) and can feed an [`EventListener`]
/// ([`Subscription::forward_to`]). Dropping it unsubscribes.
///
/// The stream ends (`None`) once the store is closed and every event
/// committed before has been delivered. A subscription keeps the store's
/// files open while it lives, so the same directory cannot be opened again
/// in this process until it is dropped.
pub struct Subscription {
    shared: Arc<Shared>,
    filter: Filter,
    since: Since,
    inbox: Arc<Inbox<Commit>>,
    _guard: Option<SubscriptionGuard>,
    /// Read-only store: no notices, look at the index now and then.
    poll: bool,
    /// Per log: the next seq owed to the reader, and the size known to exist.
    next: HashMap<LogId, u64>,
    target: HashMap<LogId, u64>,
    /// Logs with events to read, most urgent class first.
    dirty: [VecDeque<LogId>; 3],
    dirty_set: HashSet<LogId>,
    ready: VecDeque<Event>,
    notices: Vec<Commit>,
    ended: bool,
    stats: SubscriptionStats,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .field("since", &self.since)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        commits: Option<&Observable<Commit>>,
        filter: Filter,
        since: Since,
    ) -> Result<Self> {
        let inbox = Arc::new(Inbox::new(NOTICE_CAPACITY, Overflow::DropNewest));
        // Listen first, then look at the store: a commit after the look is
        // announced, one before it is in what the look found.
        let guard = commits.map(|c| c.subscribe_observer(inbox.clone()));
        let mut s = Self {
            poll: guard.is_none(),
            shared,
            filter,
            since,
            inbox,
            _guard: guard,
            next: HashMap::new(),
            target: HashMap::new(),
            dirty: Default::default(),
            dirty_set: HashSet::new(),
            ready: VecDeque::new(),
            notices: Vec::new(),
            ended: false,
            stats: SubscriptionStats::default(),
        };
        s.look(true)?;
        Ok(s)
    }

    /// Current counters.
    pub fn stats(&self) -> SubscriptionStats {
        self.stats
    }

    /// The next event, waiting as long as it takes; `None` once the store
    /// has closed and everything before has been delivered.
    pub fn recv(&mut self) -> Option<Result<Event>> {
        loop {
            match self.recv_deadline(None) {
                Ok(Some(ev)) => return Some(Ok(ev)),
                Ok(None) if self.ended => return None,
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next event, waiting at most `timeout`: `Ok(None)` if none came
    /// in time, [`StoreError::Closed`] once the store has closed and
    /// everything before has been delivered.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let deadline = Instant::now() + timeout;
        match self.recv_deadline(Some(deadline))? {
            Some(ev) => Ok(Some(ev)),
            None if self.ended => Err(StoreError::Closed),
            None => Ok(None),
        }
    }

    /// An event already at hand, without waiting for a new one.
    pub fn try_recv(&mut self) -> Result<Option<Event>> {
        self.recv_timeout(Duration::ZERO)
    }

    fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<Option<Event>> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                self.stats.delivered += 1;
                return Ok(Some(ev));
            }
            if let Some(log) = self.pop_dirty() {
                self.read(log)?;
                continue;
            }
            if self.ended {
                return Ok(None);
            }
            // Nothing to read: wait for a commit (or, read-only, poll).
            let wait = match (deadline, self.poll) {
                (d, false) => d,
                (None, true) => Some(Instant::now() + POLL_INTERVAL),
                (Some(d), true) => Some(d.min(Instant::now() + POLL_INTERVAL)),
            };
            let mut notices = std::mem::take(&mut self.notices);
            let got = self.inbox.recv_into(&mut notices, 256, wait);
            for c in notices.drain(..) {
                self.stats.notices += 1;
                self.note(c.log, c.size, c.most_urgent);
            }
            self.notices = notices;
            match got {
                Received::Items => {}
                Received::Lagged(_) => {
                    self.stats.catch_ups += 1;
                    self.look(false)?;
                }
                Received::Closed => {
                    // The store closed: what it committed is all there is.
                    self.look(false)?;
                    self.ended = true;
                }
                Received::TimedOut => {
                    if self.poll {
                        self.stats.catch_ups += 1;
                        self.look(false)?;
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) && self.dirty_set.is_empty() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Records that `log` has `size` events, the newest among them as
    /// urgent as `class`.
    fn note(&mut self, log: LogId, size: u64, class: EventKind) {
        if !self.filter.matches_log(&log) {
            return;
        }
        let start = match self.since {
            Since::Seq(s) => s,
            // Not seen at subscribe time: the log is newer than that.
            Since::Now => 0,
        };
        let next = *self.next.entry(log).or_insert(start);
        let target = self.target.entry(log).or_insert(0);
        *target = (*target).max(size);
        if next < *target && self.dirty_set.insert(log) {
            self.queue(priority_of(class), log);
        }
    }

    /// Queues `log` to be read, in the class of `p`.
    fn queue(&mut self, p: Priority, log: LogId) {
        let i = (p as usize).min(self.dirty.len() - 1);
        if let Some(q) = self.dirty.get_mut(i) {
            q.push_back(log);
        }
    }

    fn pop_dirty(&mut self) -> Option<LogId> {
        let log = self.dirty.iter_mut().find_map(|q| q.pop_front())?;
        self.dirty_set.remove(&log);
        Some(log)
    }

    /// Looks at the sizes of the logs the filter covers. At subscribe time
    /// (`first`), `Since::Now` starts each existing log at its current size.
    fn look(&mut self, first: bool) -> Result<()> {
        self.shared.index_gate.wait();
        let index = &self.shared.index;
        let txn = index.read_txn()?;
        let logs: Vec<(LogId, LogRecord)> = match (self.filter.log, self.filter.topic) {
            (Some(log), _) => index
                .log_record(&txn, &log)?
                .map(|r| vec![(log, r)])
                .unwrap_or_default(),
            (None, Some(topic)) => {
                let mut out = Vec::new();
                for log_no in index.topic_logs(&txn, &topic)? {
                    let log = index.log_id(&txn, log_no)?;
                    if let Some(r) = index.log_record(&txn, &log)? {
                        out.push((log, r));
                    }
                }
                out
            }
            (None, None) => index.logs(&txn)?,
        };
        drop(txn);
        for (log, rec) in logs {
            if first && self.since == Since::Now {
                self.next.insert(log, rec.size);
            }
            self.note(log, rec.size, EventKind::Application);
        }
        Ok(())
    }

    /// Reads up to a batch of `log`'s owed events into `ready`.
    fn read(&mut self, log: LogId) -> Result<()> {
        let from = self.next.get(&log).copied().unwrap_or(0);
        let target = self.target.get(&log).copied().unwrap_or(0);
        if from >= target {
            return Ok(());
        }
        let end = target.min(from + READ_BATCH as u64);
        let shared = self.shared.clone();
        shared.index_gate.wait();
        let txn = shared.index.read_txn()?;
        let rec = shared
            .index
            .log_record(&txn, &log)?
            .ok_or_else(|| StoreError::UnknownLog(log.to_string()))?;
        let end = end.min(rec.size);
        let mut seq = from;
        for ev in log_iter_in(&shared, &txn, &log, &rec, from, end)? {
            let ev = ev?;
            if ev.seq() != seq {
                return Err(crate::error::corrupt(
                    shared.index.data_file(),
                    0,
                    format!("log {log} skips from seq {seq} to {}", ev.seq()),
                ));
            }
            if self.filter.matches_kind(ev.kind()) {
                self.ready.push_back(ev.to_event());
            }
            seq += 1;
            if seq >= end {
                break;
            }
        }
        drop(txn);
        self.next.insert(log, seq);
        self.stats.max_buffered = self.stats.max_buffered.max(self.ready.len());
        if seq < target && self.dirty_set.insert(log) {
            // More to read: back of the queue, so other logs get a turn.
            self.queue(Priority::Application, log);
        }
        Ok(())
    }

    /// Hands every event to `listener` from a thread of its own, until the
    /// returned [`Forwarding`] is dropped or the store closes. The listener
    /// should block when full (the default): the subscription then falls
    /// behind and catches up from the store, and nothing is lost.
    pub fn forward_to(self, listener: &EventListener<Event>) -> Result<Forwarding> {
        let observer = listener.observer();
        let stop = Arc::new(AtomicBool::new(false));
        let inbox = self.inbox.clone();
        let s2 = stop.clone();
        let stats = Arc::new(Mutex::new(self.stats));
        let st2 = stats.clone();
        let mut sub = self;
        let thread = std::thread::Builder::new()
            .name("xf-subscription".into())
            .spawn(move || {
                // Blocks until a commit: no timer. Dropping the Forwarding
                // closes the inbox, which ends the stream.
                while !s2.load(Ordering::Acquire) {
                    match sub.recv() {
                        Some(Ok(ev)) => {
                            let mut batch = vec![ev];
                            while batch.len() < READ_BATCH {
                                match sub.try_recv() {
                                    Ok(Some(ev)) => batch.push(ev),
                                    _ => break,
                                }
                            }
                            *st2.lock().unwrap_or_else(|p| p.into_inner()) = sub.stats;
                            if s2.load(Ordering::Acquire) {
                                break;
                            }
                            observer.on_batch(batch);
                        }
                        None => {
                            if !s2.load(Ordering::Acquire) {
                                observer.on_complete();
                            }
                            break;
                        }
                        // A read failed (damage): try again later rather
                        // than spin.
                        Some(Err(_)) => std::thread::park_timeout(Duration::from_millis(200)),
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Forwarding {
            stop,
            inbox,
            stats,
            thread: Some(thread),
        })
    }
}

impl Subscription {
    /// A handle that ends this subscription from another thread: once it
    /// is closed, a blocked [`Subscription::recv`] wakes, what was already
    /// committed may still be delivered, and then the stream ends (`None`),
    /// as when the store closes. No timer is needed to notice it.
    pub fn closer(&self) -> SubscriptionCloser {
        SubscriptionCloser {
            inbox: self.inbox.clone(),
        }
    }
}

/// Ends a [`Subscription`] from another thread ([`Subscription::closer`]).
#[derive(Clone)]
pub struct SubscriptionCloser {
    inbox: Arc<Inbox<Commit>>,
}

impl std::fmt::Debug for SubscriptionCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionCloser").finish_non_exhaustive()
    }
}

impl SubscriptionCloser {
    /// Ends the subscription's stream.
    pub fn close(&self) {
        self.inbox.close();
    }
}

impl Iterator for Subscription {
    type Item = Result<Event>;
    /// Blocks until the next event; `None` once the store has closed.
    fn next(&mut self) -> Option<Result<Event>> {
        self.recv()
    }
}

/// A subscription feeding a listener from its own thread; dropping it
/// stops and joins that thread and unsubscribes.
#[derive(Debug)]
pub struct Forwarding {
    stop: Arc<AtomicBool>,
    inbox: Arc<Inbox<Commit>>,
    stats: Arc<Mutex<SubscriptionStats>>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarding {
    /// The subscription's counters as of its last hand-over.
    pub fn stats(&self) -> SubscriptionStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the thread if it waits for a commit.
        self.inbox.close();
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
