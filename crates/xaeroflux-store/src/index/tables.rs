//! Reads and writes of each index table.

use heed::{RoTxn, RwTxn};
use xaeroflux_merkle::Hash;
use xaeroflux_types::{LogId, TopicId};

use super::codec::{
    LOG_PAGE_KEY_LEN, chunk_key, decode_loc, decode_loc_key, decode_log_page_key,
    decode_log_record, decode_log_time_key, decode_page_entry, decode_topic_log_key, encode_loc,
    encode_log_record, encode_page_entry, loc_key, log_page_key, log_time_key, sealed,
    topic_log_key,
};
use super::{CHUNK_NODES, Index, LogRecord, PageEntry, PageLoc};
use crate::error::{Result, corrupt};

impl Index {
    // ---- logs ----

    pub fn log_record(&self, txn: &RoTxn, log: &LogId) -> Result<Option<LogRecord>> {
        self.get_checked(
            self.dbs.logs,
            txn,
            &log.to_bytes(),
            "log record",
            decode_log_record,
        )
    }

    pub fn put_log_record(&self, txn: &mut RwTxn, log: &LogId, r: &LogRecord) -> Result<()> {
        self.dbs
            .logs
            .put(txn, &log.to_bytes(), &encode_log_record(r))
            .map_err(self.err())?;
        self.dbs
            .log_ids
            .put(
                txn,
                &r.log_no.to_be_bytes(),
                &sealed(log.to_bytes().to_vec()),
            )
            .map_err(self.err())?;
        self.dbs
            .topic_logs
            .put(txn, &topic_log_key(&log.topic, r.log_no), &[])
            .map_err(self.err())
    }

    pub fn log_id(&self, txn: &RoTxn, log_no: u32) -> Result<LogId> {
        self.get_checked(
            self.dbs.log_ids,
            txn,
            &log_no.to_be_bytes(),
            "log id",
            |b| b.try_into().ok().map(LogId::from_bytes),
        )?
        .ok_or_else(|| {
            corrupt(
                &self.data_file,
                0,
                format!("log number {log_no} has no log id"),
            )
        })
    }

    /// Every log with its record, in log-id order.
    pub fn logs(&self, txn: &RoTxn) -> Result<Vec<(LogId, LogRecord)>> {
        let mut out = Vec::new();
        for item in self.dbs.logs.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let key: &[u8; 64] = k.try_into().map_err(|_| self.bad(k, "log key"))?;
            let body = self.open_value(v, "log record")?;
            let r = decode_log_record(body).ok_or_else(|| self.bad(v, "log record"))?;
            out.push((LogId::from_bytes(key), r));
        }
        Ok(out)
    }

    // ---- pages ----

    pub fn put_page(&self, txn: &mut RwTxn, loc: PageLoc, e: &PageEntry) -> Result<()> {
        self.dbs
            .pages
            .put(txn, &loc_key(loc), &encode_page_entry(e))
            .map_err(self.err())?;
        self.dbs
            .log_pages
            .put(txn, &log_page_key(e.log_no, e.first_seq), &encode_loc(loc))
            .map_err(self.err())
    }

    /// Notes in `log_times` that the page of log `log_no` at `first_seq`
    /// starts with an event of timestamp `first_ts` (a page's first event
    /// never changes, so writing it again is harmless).
    pub fn put_page_time(
        &self,
        txn: &mut RwTxn,
        log_no: u32,
        first_ts: u64,
        first_seq: u64,
    ) -> Result<()> {
        let Some(db) = self.dbs.log_times else {
            return Err(corrupt(&self.data_file, 0, "index lacks table log_times"));
        };
        db.put(
            txn,
            &log_time_key(log_no, first_ts, first_seq),
            &sealed(Vec::new()),
        )
        .map_err(self.err())
    }

    /// The first seq of the last page of log `log_no` whose first event is
    /// older than `ts`, the seq from which a read of the events at `ts` and
    /// later starts (timestamps never decrease within a log, so every event
    /// before it is older than `ts` and the events at `ts` start on that
    /// page or the next): `None` when no page is older, so the log's
    /// events at `ts` and later start at seq 0. One lookup. Call only when
    /// [`Index::has_times`].
    pub fn seq_before_time(&self, txn: &RoTxn, log_no: u32, ts: u64) -> Result<Option<u64>> {
        use std::sync::atomic::Ordering;
        let Some(db) = self.dbs.log_times else {
            return Err(corrupt(&self.data_file, 0, "index lacks table log_times"));
        };
        self.entries_read.fetch_add(1, Ordering::Relaxed);
        let key = log_time_key(log_no, ts, 0);
        let Some((k, v)) = db.get_lower_than(txn, &key).map_err(self.err())? else {
            return Ok(None);
        };
        let Some((no, _, first)) = decode_log_time_key(k) else {
            return Err(self.bad(k, "log time key"));
        };
        self.open_value(v, "log time")?;
        Ok((no == log_no).then_some(first))
    }

    /// Whether reads by time use the `log_times` table (not an index of
    /// version 1 opened read-only).
    pub fn has_times(&self) -> bool {
        self.dbs.log_times.is_some()
    }

    /// Every page in allocation order.
    pub fn pages(&self, txn: &RoTxn) -> Result<Vec<(PageLoc, PageEntry)>> {
        let mut out = Vec::new();
        for item in self.dbs.pages.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let loc = decode_loc_key(k).ok_or_else(|| self.bad(k, "page key"))?;
            let body = self.open_value(v, "page entry")?;
            let e = decode_page_entry(body).ok_or_else(|| self.bad(v, "page entry"))?;
            out.push((loc, e));
        }
        Ok(out)
    }

    /// The entry of one page.
    pub fn page_entry(&self, txn: &RoTxn, loc: PageLoc) -> Result<PageEntry> {
        self.get_checked(
            self.dbs.pages,
            txn,
            &loc_key(loc),
            "page entry",
            decode_page_entry,
        )?
        .ok_or_else(|| {
            corrupt(
                &self.data_file,
                0,
                format!("page {loc:?} is not in the page table"),
            )
        })
    }

    /// The page of a log that holds `seq` (the page with the greatest first
    /// seq not above it).
    pub fn page_of(&self, txn: &RoTxn, log_no: u32, seq: u64) -> Result<Option<(u64, PageLoc)>> {
        self.entries_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = log_page_key(log_no, seq);
        let Some((k, v)) = self
            .dbs
            .log_pages
            .get_lower_than_or_equal_to(txn, &key)
            .map_err(self.err())?
        else {
            return Ok(None);
        };
        let Some((_, first)) = decode_log_page_key(k).filter(|(no, _)| *no == log_no) else {
            return Ok(None);
        };
        let body = self.open_value(v, "page location")?;
        let loc = decode_loc(body).ok_or_else(|| self.bad(v, "page location"))?;
        Ok(Some((first, loc)))
    }

    /// The pages of a log whose first seq is at least `from_first` and
    /// below `until`, in order.
    pub fn log_pages(
        &self,
        txn: &RoTxn,
        log_no: u32,
        from_first: u64,
        until: u64,
        max: usize,
    ) -> Result<Vec<(u64, PageLoc)>> {
        let start = log_page_key(log_no, from_first);
        let end = log_page_key(log_no, u64::MAX);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Included(&end[..]),
        );
        let mut out = Vec::new();
        for item in self.dbs.log_pages.range(txn, &range).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let (_, first) = decode_log_page_key(k)
                .filter(|_| k.len() == LOG_PAGE_KEY_LEN)
                .ok_or_else(|| self.bad(k, "log page key"))?;
            if first >= until || out.len() >= max {
                break;
            }
            self.entries_read
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body = self.open_value(v, "page location")?;
            let loc = decode_loc(body).ok_or_else(|| self.bad(v, "page location"))?;
            out.push((first, loc));
        }
        Ok(out)
    }

    // ---- chunks ----

    pub fn chunk<'t>(
        &self,
        txn: &'t RoTxn,
        log_no: u32,
        tier: u8,
        chunk: u64,
    ) -> Result<Option<&'t [u8; CHUNK_NODES * 32]>> {
        let key = chunk_key(log_no, tier, chunk);
        self.get_checked(self.dbs.chunks, txn, &key, "MMR chunk", |b| {
            b.try_into().ok()
        })
    }

    pub fn put_chunk(
        &self,
        txn: &mut RwTxn,
        log_no: u32,
        tier: u8,
        chunk: u64,
        nodes: &[Hash; CHUNK_NODES],
    ) -> Result<()> {
        let v: Vec<u8> = nodes.iter().flatten().copied().collect();
        self.dbs
            .chunks
            .put(txn, &chunk_key(log_no, tier, chunk), &sealed(v))
            .map_err(self.err())
    }

    // ---- topics ----

    pub fn put_topic_name(&self, txn: &mut RwTxn, topic: &TopicId, name: &str) -> Result<()> {
        self.dbs
            .topics
            .put(txn, &topic.0, &sealed(name.as_bytes().to_vec()))
            .map_err(self.err())
    }

    pub fn topic_name(&self, txn: &RoTxn, topic: &TopicId) -> Result<Option<String>> {
        self.get_checked(self.dbs.topics, txn, &topic.0, "topic name", |b| {
            String::from_utf8(b.to_vec()).ok()
        })
    }

    /// Every topic name, in topic-id order.
    pub fn topic_names(&self, txn: &RoTxn) -> Result<Vec<(TopicId, String)>> {
        let mut out = Vec::new();
        for item in self.dbs.topics.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let id: [u8; 32] = k.try_into().map_err(|_| self.bad(k, "topic key"))?;
            let body = self.open_value(v, "topic name")?;
            let name = String::from_utf8(body.to_vec()).map_err(|_| self.bad(v, "topic name"))?;
            out.push((TopicId(id), name));
        }
        Ok(out)
    }

    /// Log numbers of every log in a topic.
    pub fn topic_logs(&self, txn: &RoTxn, topic: &TopicId) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let iter = self
            .dbs
            .topic_logs
            .prefix_iter(txn, &topic.0)
            .map_err(self.err())?;
        for item in iter {
            let (k, _) = item.map_err(self.err())?;
            let (_, log_no) =
                decode_topic_log_key(k).ok_or_else(|| self.bad(k, "topic log key"))?;
            out.push(log_no);
        }
        Ok(out)
    }

    // ---- checkpoints ----

    pub fn put_checkpoint(&self, txn: &mut RwTxn, log_no: u32, note: &str) -> Result<()> {
        self.dbs
            .checkpoints
            .put(
                txn,
                &log_no.to_be_bytes(),
                &sealed(note.as_bytes().to_vec()),
            )
            .map_err(self.err())
    }

    pub fn checkpoint(&self, txn: &RoTxn, log_no: u32) -> Result<Option<String>> {
        self.get_checked(
            self.dbs.checkpoints,
            txn,
            &log_no.to_be_bytes(),
            "checkpoint",
            |b| String::from_utf8(b.to_vec()).ok(),
        )
    }

    /// Every stored checkpoint note, by log number.
    pub fn checkpoints(&self, txn: &RoTxn) -> Result<Vec<(u32, String)>> {
        let mut out = Vec::new();
        for item in self.dbs.checkpoints.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let no: [u8; 4] = k.try_into().map_err(|_| self.bad(k, "checkpoint key"))?;
            let body = self.open_value(v, "checkpoint")?;
            let note = String::from_utf8(body.to_vec()).map_err(|_| self.bad(v, "checkpoint"))?;
            out.push((u32::from_be_bytes(no), note));
        }
        Ok(out)
    }
}
