//! The writer's state of each log: size, tree frontier, chunk assembler
//! and open page, loaded from the index on first use and kept between
//! group commits.

use xaeroflux_merkle::{Frontier, Hash};
use xaeroflux_types::{EventKind, LogId};

use super::Writer;
use super::flusher::Job;
use super::page::OpenBuf;
use crate::error::{Result, StoreError, corrupt, internal};
use crate::index::{LogRecord, OpenPage, PageLoc};
use crate::reader::{Expect, open_page};
use crate::tree::{ChunkAssembler, DoneChunk, IndexNodes};

/// The writer's state of one log.
pub(crate) struct LogState {
    pub log_no: u32,
    pub size: u64,
    pub last_ts: u64,
    pub frontier: Frontier,
    pub chunks: ChunkAssembler,
    pub open: Option<OpenBuf>,
    /// Topic name, when this process has seen it (written once per log).
    pub topic_name: Option<String>,
    pub touched: bool,
    /// The last job that touched this log: it may be evicted from memory
    /// once the flusher has committed that job.
    pub last_job: u64,
    /// The most urgent kind appended since the last job was sealed.
    pub class: EventKind,
}

impl LogState {
    fn new(log_no: u32) -> Self {
        Self {
            log_no,
            size: 0,
            last_ts: 0,
            frontier: Frontier::new(),
            chunks: ChunkAssembler::default(),
            open: None,
            topic_name: None,
            touched: false,
            last_job: 0,
            class: EventKind::Application,
        }
    }

    pub fn record(&self) -> LogRecord {
        LogRecord {
            log_no: self.log_no,
            size: self.size,
            last_ts: self.last_ts,
            open: self.open.as_ref().map(|o| OpenPage {
                loc: o.loc,
                first_seq: o.first_seq,
                count: o.count,
                used: o.used,
            }),
        }
    }

    /// The open page (made roomy by `Writer::room_for`).
    pub fn open_mut(&mut self) -> Result<&mut OpenBuf> {
        self.open
            .as_mut()
            .ok_or_else(|| internal("a record for a log with no open page"))
    }

    /// Accounts for the record just placed at the end of the open page.
    pub fn account(
        &mut self,
        leaf: Hash,
        ts: u64,
        rec_len: usize,
        done: &mut Vec<(u32, DoneChunk)>,
    ) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.push(leaf, ts, rec_len);
        let log_no = self.log_no;
        let chunks = &mut self.chunks;
        self.frontier.push_with(leaf, |l, i, h| {
            let mut local = Vec::new();
            chunks.on_node(l, i, h, &mut local);
            done.extend(local.into_iter().map(|c| (log_no, c)));
        });
        self.size += 1;
        self.last_ts = self.last_ts.max(ts);
    }
}

impl Writer {
    pub(super) fn page_size(&self) -> usize {
        self.shared.segments.page_size()
    }

    /// The next page in allocation order, creating its segment file when it
    /// is the first of one.
    pub(super) fn alloc_page(&mut self) -> Result<PageLoc> {
        let mut loc = self.next_page;
        if loc.page > self.shared.segments.segment_pages() {
            loc = PageLoc {
                segment: loc.segment + 1,
                page: 1,
            };
        }
        if loc.segment == u32::MAX {
            return Err(StoreError::Exhausted("segment numbers"));
        }
        if loc.page == 1 && !self.shared.segments.path(loc.segment).exists() {
            let path = self.shared.segments.path(loc.segment);
            self.shared
                .fails
                .check(crate::failpoints::Point::SegmentCreate)
                .map_err(crate::error::io_err(&path))?;
            self.shared.segments.create(loc.segment)?;
        }
        self.next_page = PageLoc {
            segment: loc.segment,
            page: loc.page + 1,
        };
        Ok(loc)
    }

    /// The state of a log, loaded from the index on first use (a log the
    /// index does not know gets the next log number).
    pub(super) fn load_log(&mut self, id: LogId) -> Result<&mut LogState> {
        if !self.logs.contains_key(&id) {
            let st = self.read_log(id)?;
            self.logs.insert(id, st);
        }
        self.log_mut(&id)
    }

    pub(super) fn log_mut(&mut self, id: &LogId) -> Result<&mut LogState> {
        self.logs
            .get_mut(id)
            .ok_or_else(|| internal(format!("log {id} is not loaded")))
    }

    fn read_log(&mut self, id: LogId) -> Result<LogState> {
        let shared = self.shared.clone();
        let index = &shared.index;
        let txn = index.read_txn()?;
        let Some(rec) = index.log_record(&txn, &id)? else {
            let log_no = self.next_log_no;
            self.next_log_no = log_no
                .checked_add(1)
                .ok_or(StoreError::Exhausted("log numbers"))?;
            return Ok(LogState::new(log_no));
        };
        let nodes = IndexNodes::new(
            index,
            &txn,
            &shared.segments,
            rec.log_no,
            id.to_bytes(),
            rec.size,
            rec.size,
        );
        let open = match rec.open {
            None => None,
            Some(o) => Some(self.read_open_page(&id, &o)?),
        };
        Ok(LogState {
            frontier: Frontier::load(&nodes, rec.size)?,
            chunks: ChunkAssembler::load(&nodes, rec.size)?,
            open,
            size: rec.size,
            last_ts: rec.last_ts,
            topic_name: index.topic_name(&txn, &id.topic)?,
            ..LogState::new(rec.log_no)
        })
    }

    /// Copies a log's open page into memory and re-hashes its leaves.
    fn read_open_page(&self, id: &LogId, o: &OpenPage) -> Result<OpenBuf> {
        let segs = &self.shared.segments;
        let log = id.to_bytes();
        let want = Expect {
            log: &log,
            first_seq: o.first_seq,
            count: o.count,
            sealed: false,
        };
        let page = open_page(segs, o.loc, want)?;
        let mut first_ts = 0;
        let leaves = page
            .events(segs)
            .enumerate()
            .map(|(i, ev)| {
                ev.map(|e| {
                    if i == 0 {
                        first_ts = e.timestamp_ms();
                    }
                    e.leaf_hash()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut buf =
            OpenBuf::with_version(o.loc, o.first_seq, page.data.len(), page.header.version);
        buf.count = o.count;
        buf.used = o.used;
        if buf.end() > page.data.len() {
            return Err(corrupt(
                segs.path(o.loc.segment),
                segs.page_offset(o.loc) + crate::format::USED_OFFSET as u64,
                "page use beyond its size",
            ));
        }
        // Bytes past what the index knows of are replayed by recovery, or
        // cleared by it when they are not valid records.
        buf.buf.copy_from_slice(page.data);
        buf.leaves = leaves;
        buf.first_ts = first_ts;
        buf.write_from = buf.end();
        Ok(buf)
    }

    /// Marks a log as touched by the job being built.
    pub(super) fn touch(&mut self, id: LogId) {
        if let Some(st) = self.logs.get_mut(&id) {
            st.last_job = self.job_seq;
            if !st.touched {
                st.touched = true;
                self.touched.push(id);
            }
        }
    }

    /// Seals a log's open page (it goes into the job) and opens a new one.
    fn next_open_page(&mut self, id: &LogId, job: &mut Job) -> Result<()> {
        let loc = self.alloc_page()?;
        let page_size = self.page_size();
        let st = self.log_mut(id)?;
        if let Some(full) = st.open.take() {
            let (w, p) = full.seal(id, st.log_no);
            job.writes.push(w);
            job.pages.push(p);
        }
        st.open = Some(OpenBuf::new(loc, st.size, page_size));
        Ok(())
    }

    /// The log's state, with room for a record of `rec_len` bytes on its
    /// open page (sealing the full one into the job if need be).
    pub(super) fn room_for(
        &mut self,
        id: LogId,
        rec_len: usize,
        job: &mut Job,
    ) -> Result<&mut LogState> {
        let st = self.load_log(id)?;
        if st.open.as_ref().is_none_or(|o| !o.fits(rec_len)) {
            self.next_open_page(&id, job)?;
        }
        self.log_mut(&id)
    }
}
