//! Reading: every event, one log, or a topic view, as zero-copy views of
//! the mapped pages, checked as they are read; and live subscriptions.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use heed::RoTxn;
use xaeroflux_merkle::root_at;
use xaeroflux_reactive::Observable;
use xaeroflux_types::{EventRef, LOG_ID_LEN, LogId, Topic, TopicId};

use super::Store;
use crate::error::{Result, StoreError, corrupt};
use crate::index::{LogRecord, PageEntry, PageLoc};
use crate::reader::{Expect, PageEvents, open_page};
use crate::receipts::LogInfo;
use crate::segments::Segments;
use crate::shared::Shared;
use crate::subscribe::{Commit, Filter, Since, Subscription};

impl Store {
    /// Iterates every event of the store, page by page in the order pages
    /// were written; the views borrow the mapped segments (no copy).
    pub fn iter_events(&self) -> Result<EventIter<'_>> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let logs: HashMap<u32, [u8; LOG_ID_LEN]> = index
            .logs(&txn)?
            .into_iter()
            .map(|(id, rec)| (rec.log_no, id.to_bytes()))
            .collect();
        let mut pages = Vec::new();
        for (loc, e) in index.pages(&txn)? {
            let log = *logs.get(&e.log_no).ok_or_else(|| {
                corrupt(
                    index.data_file(),
                    0,
                    format!("page {loc:?} names unknown log {}", e.log_no),
                )
            })?;
            pages.push((loc, e, log));
        }
        Ok(EventIter(PageWalk::new(&self.shared.segments, pages, 0)))
    }

    /// Iterates one log from `from_seq` on, as of now.
    pub fn iter_log(&self, log: &LogId, from_seq: u64) -> Result<LogIter<'_>> {
        self.iter_log_range(log, from_seq, u64::MAX)
    }

    /// Iterates one log from `from_seq` on, looking up only the pages that
    /// hold events before `end` (the last may hold a few more): for reading
    /// a slice of a long log without listing all its later pages.
    pub fn iter_log_range(&self, log: &LogId, from_seq: u64, end: u64) -> Result<LogIter<'_>> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        log_iter_in(&self.shared, &txn, log, &rec, from_seq, end)
    }

    /// Iterates the topic view: every log of the topic merged by
    /// (timestamp, author, seq), the same order on every replica.
    pub fn iter_topic(&self, topic: &Topic) -> Result<TopicIter<'_>> {
        self.iter_topic_id(&topic.id())
    }

    /// The topic view by topic id.
    pub fn iter_topic_id(&self, topic: &TopicId) -> Result<TopicIter<'_>> {
        self.iter_topic_from(topic, |_| 0)
    }

    /// The rest of a topic view: each log of the topic from the seq `from`
    /// gives for it on (0 for a log the reader has not seen), merged in
    /// the view's order. A reader that keeps, per log, the seq after the
    /// last event it took resumes where it stopped, and still gets the
    /// events replicated since into the view before that point.
    pub fn iter_topic_from(
        &self,
        topic: &TopicId,
        from: impl Fn(&LogId) -> u64,
    ) -> Result<TopicIter<'_>> {
        let txn = self.txn()?;
        let mut iters = Vec::new();
        for (log, rec) in self.topic_records(&txn, topic)? {
            let start = from(&log);
            if start < rec.size {
                iters.push(log_iter_in(
                    &self.shared,
                    &txn,
                    &log,
                    &rec,
                    start,
                    rec.size,
                )?);
            }
        }
        TopicIter::new(iters)
    }

    /// Subscribes to the events `filter` selects: each log's history from
    /// `since`, then its events as they are committed (local appends and
    /// replicated ones), with no gap and no duplicate. On a read-only store
    /// the writer is in another process: the subscription looks for its
    /// commits every 50 ms.
    ///
    /// ```
    /// # use xaeroflux_store::{Filter, NewEvent, Store, StoreOptions, Topic};
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path(), StoreOptions::default())?;
    /// let chat = Topic::new("chat")?;
    /// store.append(NewEvent::application(&chat, b"before".to_vec()))?;
    /// let mut sub = store.subscribe(Filter::topic(&chat), 0)?;
    /// store.append(NewEvent::application(&chat, b"after".to_vec()))?;
    /// let a = sub.recv_timeout(Duration::from_secs(10))?.unwrap();
    /// let b = sub.recv_timeout(Duration::from_secs(10))?.unwrap();
    /// assert_eq!((a.seq, &a.payload[..]), (0, &b"before"[..]));
    /// assert_eq!((b.seq, &b.payload[..]), (1, &b"after"[..]));
    /// # Ok::<(), xaeroflux_store::StoreError>(())
    /// ```
    pub fn subscribe(&self, filter: Filter, since: impl Into<Since>) -> Result<Subscription> {
        Subscription::new(
            self.shared.clone(),
            self.commits.as_ref(),
            filter,
            since.into(),
        )
    }

    pub(super) fn commit_notices(&self) -> Option<Observable<Commit>> {
        self.commits.clone()
    }

    /// The topic name of a topic id, when the store knows it.
    pub fn topic_name(&self, topic: &TopicId) -> Result<Option<String>> {
        let txn = self.txn()?;
        self.shared.index.topic_name(&txn, topic)
    }

    fn info(
        &self,
        txn: &RoTxn,
        log: LogId,
        rec: &LogRecord,
        name: Option<String>,
    ) -> Result<LogInfo> {
        Ok(LogInfo {
            log,
            topic_name: name,
            size: rec.size,
            root: root_at(&self.nodes(txn, &log, rec, rec.size), rec.size)?,
        })
    }

    /// Every log the store holds, with its size and root.
    pub fn logs(&self) -> Result<Vec<LogInfo>> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let mut out = Vec::new();
        for (log, rec) in index.logs(&txn)? {
            let name = index.topic_name(&txn, &log.topic)?;
            out.push(self.info(&txn, log, &rec, name)?);
        }
        Ok(out)
    }

    /// The logs of one topic (every author's), with their sizes and roots.
    pub fn topic_logs(&self, topic: &TopicId) -> Result<Vec<LogInfo>> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let name = index.topic_name(&txn, topic)?;
        let mut out = Vec::new();
        for log_no in index.topic_logs(&txn, topic)? {
            let log = index.log_id(&txn, log_no)?;
            let rec = self.record(&txn, &log)?;
            out.push(self.info(&txn, log, &rec, name.clone())?);
        }
        Ok(out)
    }

    /// One log's size and root.
    pub fn log_info(&self, log: &LogId) -> Result<LogInfo> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        let name = self.shared.index.topic_name(&txn, &log.topic)?;
        self.info(&txn, *log, &rec, name)
    }

    /// Number of events in a log (0 for a log the store does not hold).
    pub fn log_size(&self, log: &LogId) -> Result<u64> {
        let txn = self.txn()?;
        Ok(self
            .shared
            .index
            .log_record(&txn, log)?
            .map_or(0, |r| r.size))
    }
}

/// A page to walk: where it is, what the index says of it, and its log.
type WalkPage = (PageLoc, PageEntry, [u8; LOG_ID_LEN]);

/// Walks pages in order and yields their events from `skip_to` on; the
/// first damaged page or record ends the walk with its error.
struct PageWalk<'a> {
    segments: &'a Segments,
    pages: std::vec::IntoIter<WalkPage>,
    current: Option<PageEvents<'a>>,
    skip_to: u64,
    /// Events from this seq on are not yielded.
    until: u64,
}

impl<'a> PageWalk<'a> {
    fn new(segments: &'a Segments, pages: Vec<WalkPage>, skip_to: u64) -> Self {
        Self {
            segments,
            pages: pages.into_iter(),
            current: None,
            skip_to,
            until: u64::MAX,
        }
    }

    fn stop(&mut self, err: StoreError) -> Option<Result<EventRef<'a>>> {
        self.pages = Vec::new().into_iter();
        self.current = None;
        Some(Err(err))
    }
}

impl<'a> Iterator for PageWalk<'a> {
    type Item = Result<EventRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(cur) = self.current.as_mut() {
                match cur.next() {
                    Some(Ok(ev)) if ev.seq() < self.skip_to => continue,
                    Some(Ok(ev)) if ev.seq() >= self.until => {
                        self.pages = Vec::new().into_iter();
                        self.current = None;
                        return None;
                    }
                    Some(Err(e)) => return self.stop(e),
                    Some(ok) => return Some(ok),
                    None => self.current = None,
                }
            }
            let (loc, e, log) = self.pages.next()?;
            let want = Expect {
                log: &log,
                first_seq: e.first_seq,
                count: e.count,
                sealed: e.sealed,
            };
            match open_page(self.segments, loc, want) {
                Ok(p) => self.current = Some(p.events(self.segments)),
                Err(err) => return self.stop(err),
            }
        }
    }
}

/// Iterates one log from `from_seq` on, over the pages that hold events
/// before `end` (at most the size in `rec`; the last page may run past it).
pub(crate) fn log_iter_in<'a>(
    shared: &'a Shared,
    txn: &RoTxn,
    log: &LogId,
    rec: &LogRecord,
    from_seq: u64,
    end: u64,
) -> Result<LogIter<'a>> {
    log_iter_pages(shared, txn, log, rec, from_seq, end, usize::MAX)
}

/// [`log_iter_in`] over at most `max_pages` pages.
pub(crate) fn log_iter_pages<'a>(
    shared: &'a Shared,
    txn: &RoTxn,
    log: &LogId,
    rec: &LogRecord,
    from_seq: u64,
    end: u64,
    max_pages: usize,
) -> Result<LogIter<'a>> {
    let index = &shared.index;
    let end = end.min(rec.size);
    let mut pages = Vec::new();
    if from_seq < end {
        let start = index
            .page_of(txn, rec.log_no, from_seq)?
            .map_or(0, |(f, _)| f);
        for (first, loc) in index.log_pages(txn, rec.log_no, start, end, max_pages)? {
            let e = index.page_entry(txn, loc)?;
            if e.log_no != rec.log_no || e.first_seq != first || first + e.count as u64 > rec.size {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    "page table disagrees with the log table",
                ));
            }
            pages.push((loc, e, log.to_bytes()));
        }
    }
    Ok(LogIter(PageWalk::new(&shared.segments, pages, from_seq)))
}

/// Iterator over every event of the store.
pub struct EventIter<'a>(PageWalk<'a>);

impl<'a> Iterator for EventIter<'a> {
    type Item = Result<EventRef<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// Iterator over one log.
pub struct LogIter<'a>(PageWalk<'a>);

impl LogIter<'_> {
    /// Stops before the event at `end`.
    pub(crate) fn until(mut self, end: u64) -> Self {
        self.0.until = end;
        self
    }
}

impl<'a> Iterator for LogIter<'a> {
    type Item = Result<EventRef<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// Topic-view order: timestamp, author, seq (and which log, to find it again).
type ViewKey = (u64, [u8; 32], u64, usize);

fn key(ev: &EventRef<'_>, i: usize) -> ViewKey {
    (ev.timestamp_ms(), *ev.author(), ev.seq(), i)
}

/// Iterator over a topic view: a k-way merge of its logs.
pub struct TopicIter<'a> {
    iters: Vec<LogIter<'a>>,
    heads: BinaryHeap<Reverse<ViewKey>>,
    peeked: Vec<Option<EventRef<'a>>>,
    failed: Option<StoreError>,
}

impl<'a> TopicIter<'a> {
    pub(crate) fn new(mut iters: Vec<LogIter<'a>>) -> Result<Self> {
        let mut heads = BinaryHeap::new();
        let mut peeked = Vec::with_capacity(iters.len());
        for (i, it) in iters.iter_mut().enumerate() {
            match it.next() {
                Some(Ok(ev)) => {
                    heads.push(Reverse(key(&ev, i)));
                    peeked.push(Some(ev));
                }
                Some(Err(e)) => return Err(e),
                None => peeked.push(None),
            }
        }
        Ok(Self {
            iters,
            heads,
            peeked,
            failed: None,
        })
    }
}

impl<'a> Iterator for TopicIter<'a> {
    type Item = Result<EventRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            self.heads.clear();
            return Some(Err(e));
        }
        let Reverse((_, _, _, i)) = self.heads.pop()?;
        let out = self.peeked.get_mut(i)?.take()?;
        match self.iters.get_mut(i)?.next() {
            Some(Ok(ev)) => {
                self.heads.push(Reverse(key(&ev, i)));
                if let Some(slot) = self.peeked.get_mut(i) {
                    *slot = Some(ev);
                }
            }
            Some(Err(e)) => self.failed = Some(e),
            None => {}
        }
        Some(Ok(out))
    }
}
