//! Reads by time and from the end: a topic view between two moments and a
//! topic's last events, through the `log_times` index (one lookup per log
//! and moment, then the events read), never a scan from the start.

use std::sync::atomic::Ordering;

use heed::RoTxn;
use xaeroflux_types::{LogId, TopicId};

use super::Store;
use super::read::{LogIter, TopicIter, log_iter_in, log_iter_pages};
use crate::error::Result;
use crate::index::LogRecord;

impl Store {
    /// The topic view between two moments: the events of every log of
    /// `topic` with `from_ms <= timestamp_ms < to_ms`, in the view's order
    /// (timestamp, author, seq), exactly what filtering [`Store::iter_topic`]
    /// by timestamp gives. It costs one index lookup per log and end, one
    /// page read per log and end, then the events returned: O(L log n + k)
    /// for L logs of n events and k events returned.
    ///
    /// ```
    /// # use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path(), StoreOptions::default())?;
    /// let chat = Topic::new("chat")?;
    /// let r = store.append(NewEvent::application(&chat, b"hi".to_vec()))?;
    /// let ts = store.iter_log(&r.log, 0)?.next().unwrap()?.timestamp_ms();
    /// assert_eq!(store.iter_topic_range(&chat.id(), ts, ts + 1)?.count(), 1);
    /// assert_eq!(store.iter_topic_range(&chat.id(), 0, ts)?.count(), 0);
    /// # Ok::<(), xaeroflux_store::StoreError>(())
    /// ```
    pub fn iter_topic_range(
        &self,
        topic: &TopicId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<TopicIter<'_>> {
        let txn = self.txn()?;
        let mut iters = Vec::new();
        for (log, rec) in self.topic_records(&txn, topic)? {
            let start = self.seq_at_time(&txn, &log, &rec, from_ms)?;
            let end = self.seq_at_time(&txn, &log, &rec, to_ms.max(from_ms))?;
            if start < end {
                iters.push(log_iter_in(&self.shared, &txn, &log, &rec, start, end)?.until(end));
            }
        }
        TopicIter::new(iters)
    }

    /// The last `n` events of a topic view, in the view's order. Each log
    /// gives at most its last `n` events (a log's order is the view's order
    /// restricted to it), so this reads at most `n` events per log.
    pub fn iter_topic_last(&self, topic: &TopicId, n: u64) -> Result<TopicIter<'_>> {
        let txn = self.txn()?;
        let mut iters: Vec<LogIter<'_>> = Vec::new();
        let mut total = 0u64;
        for (log, rec) in self.topic_records(&txn, topic)? {
            let start = rec.size.saturating_sub(n);
            if start < rec.size {
                total += rec.size - start;
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
        let mut it = TopicIter::new(iters)?;
        for _ in 0..total.saturating_sub(n) {
            if let Some(Err(e)) = it.next() {
                return Err(e);
            }
        }
        Ok(it)
    }

    /// The seq of a log's first event at `ts` or later (its size when
    /// every event is older). One index lookup and at most one page read.
    pub fn log_seq_at_time(&self, log: &LogId, ts: u64) -> Result<u64> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.seq_at_time(&txn, log, &rec, ts)
    }

    /// Index entries (of `log_times` and `log_pages`) read by lookups so
    /// far; tests use it to check reads by time cost O(log n + k).
    #[doc(hidden)]
    pub fn index_entries_read(&self) -> u64 {
        self.shared.index.entries_read.load(Ordering::Relaxed)
    }

    /// Every log of a topic with its index record.
    pub(super) fn topic_records(
        &self,
        txn: &RoTxn,
        topic: &TopicId,
    ) -> Result<Vec<(LogId, LogRecord)>> {
        let index = &self.shared.index;
        let mut out = Vec::new();
        for log_no in index.topic_logs(txn, topic)? {
            let log = index.log_id(txn, log_no)?;
            let rec = self.record(txn, &log)?;
            out.push((log, rec));
        }
        Ok(out)
    }

    fn seq_at_time(&self, txn: &RoTxn, log: &LogId, rec: &LogRecord, ts: u64) -> Result<u64> {
        if rec.size == 0 || ts == 0 {
            return Ok(0);
        }
        if rec.last_ts < ts {
            return Ok(rec.size);
        }
        let index = &self.shared.index;
        // An index of version 1 opened read-only has no times: scan.
        let (first, max_pages) = if index.has_times() {
            match index.seq_before_time(txn, rec.log_no, ts)? {
                None => return Ok(0),
                Some(first) => (first, 1),
            }
        } else {
            (0, usize::MAX)
        };
        // Every page after this one starts at `ts` or later: the answer is
        // on this page, or it is the next page's first seq.
        let mut seq = first;
        for ev in log_iter_pages(&self.shared, txn, log, rec, first, rec.size, max_pages)? {
            let ev = ev?;
            if ev.timestamp_ms() >= ts {
                return Ok(ev.seq());
            }
            seq = ev.seq() + 1;
        }
        Ok(seq)
    }
}
