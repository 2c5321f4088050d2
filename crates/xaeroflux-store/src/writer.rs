//! The one writer thread: it owns every write, group-commits what reaches it
//! through its channel (many events, one data sync, one index transaction),
//! and at open brings the index up to date from the segments' tail.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use xaeroflux_merkle::{Frontier, Hash, hash_leaf, mth};

use crate::Durability;
use crate::error::{Result, StoreError, corrupt, io_err};
use crate::event::{EVENT_HEADER_LEN, LogId, NewEvent, decode_event, encode_event_into};
use crate::format::{
    FLAG_SEALED, PAGE_HEADER_LEN, PageHeader, RECORD_HEADER_LEN, read_record, write_record_header,
};
use crate::index::{LogRecord, OpenPage, PageEntry, PageLoc};
use crate::shared::Shared;
use crate::tree::{ChunkAssembler, DoneChunk, IndexNodes};

/// Events taken into one group commit, at most.
const MAX_GROUP_EVENTS: usize = 16 * 1024;
/// How often the (unsynced) index is synced, to bound replay after power loss.
const INDEX_SYNC_EVERY: Duration = Duration::from_secs(1);

/// What one append request committed.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    /// `(log, seq, leaf hash)` of each event, in request order.
    pub events: Vec<(LogId, u64, Hash)>,
    /// `(log, size, root)` of each log the request touched, after it.
    pub heads: Vec<(LogId, u64, Hash)>,
}

pub(crate) enum Request {
    Append {
        events: Vec<NewEvent>,
        reply: Sender<Result<Committed>>,
    },
    PutCheckpoint {
        log: LogId,
        note: String,
        reply: Sender<Result<()>>,
    },
    Sync {
        reply: Sender<Result<()>>,
    },
}

/// A log's open page, held in memory by the writer.
struct OpenBuf {
    loc: PageLoc,
    first_seq: u64,
    count: u32,
    used: u32,
    buf: Vec<u8>,
    leaves: Vec<Hash>,
    /// Page offset from which bytes have not been written yet.
    write_from: usize,
    sealed: bool,
}

impl OpenBuf {
    fn new(loc: PageLoc, first_seq: u64, page_size: usize) -> Self {
        Self {
            loc,
            first_seq,
            count: 0,
            used: 0,
            buf: vec![0u8; page_size],
            leaves: Vec::new(),
            write_from: 0,
            sealed: false,
        }
    }

    fn room(&self) -> usize {
        self.buf.len() - PAGE_HEADER_LEN - self.used as usize
    }

    fn header(&self, log: &LogId) -> PageHeader {
        PageHeader {
            flags: if self.sealed { FLAG_SEALED } else { 0 },
            log: log.to_bytes(),
            first_seq: self.first_seq,
            segment: self.loc.segment,
            page: self.loc.page,
            count: self.count,
            used: self.used,
            page_root: if self.sealed {
                mth(&self.leaves)
            } else {
                [0u8; 32]
            },
        }
    }

    fn entry(&self, log_no: u32) -> PageEntry {
        PageEntry {
            log_no,
            first_seq: self.first_seq,
            count: self.count,
            sealed: self.sealed,
        }
    }
}

/// The writer's state of one log.
struct LogState {
    log_no: u32,
    size: u64,
    last_ts: u64,
    frontier: Frontier,
    chunks: ChunkAssembler,
    open: Option<OpenBuf>,
    topic_name: Option<String>,
}

impl LogState {
    fn record(&self) -> LogRecord {
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

    /// Accounts for the record just placed at the end of the open page.
    fn account(&mut self, leaf: Hash, ts: u64, rec_len: usize, done: &mut Vec<(u32, DoneChunk)>) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.leaves.push(leaf);
        open.count += 1;
        open.used += rec_len as u32;
        let log_no = self.log_no;
        let chunks = &mut self.chunks;
        let mut local = Vec::new();
        self.frontier
            .push_with(leaf, |l, i, h| chunks.on_node(l, i, h, &mut local));
        done.extend(local.into_iter().map(|c| (log_no, c)));
        self.size += 1;
        self.last_ts = self.last_ts.max(ts);
    }
}

/// What one group commit has to write.
#[derive(Default)]
struct Pending {
    touched: HashSet<LogId>,
    sealed: Vec<(LogId, OpenBuf)>,
    chunks: Vec<(u32, DoneChunk)>,
    new_logs: Vec<LogId>,
    checkpoints: Vec<(u32, String)>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    durability: Durability,
    files: HashMap<u32, File>,
    logs: HashMap<LogId, LogState>,
    next_page: PageLoc,
    next_log_no: u32,
    unsynced: HashSet<u32>,
    index_synced: Instant,
    stopped: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Writer {
    pub fn new(shared: Arc<Shared>, durability: Durability) -> Result<Self> {
        let txn = shared.index.read_txn()?;
        let next_page = shared.index.next_page(&txn)?;
        let next_log_no = shared.index.next_log_no(&txn)?;
        drop(txn);
        Ok(Self {
            shared,
            durability,
            files: HashMap::new(),
            logs: HashMap::new(),
            next_page,
            next_log_no,
            unsynced: HashSet::new(),
            index_synced: Instant::now(),
            stopped: None,
        })
    }

    fn page_size(&self) -> usize {
        self.shared.segments.page_size()
    }

    fn file(&mut self, segment: u32) -> Result<&File> {
        if !self.files.contains_key(&segment) {
            let f = if self.shared.segments.path(segment).exists() {
                self.shared.segments.open_rw(segment)?
            } else {
                self.shared.segments.create(segment)?
            };
            self.files.insert(segment, f);
        }
        self.files
            .get(&segment)
            .ok_or_else(|| StoreError::InvalidArgument(format!("segment {segment} is not open")))
    }

    fn alloc_page(&mut self) -> Result<PageLoc> {
        let mut loc = self.next_page;
        if loc.page > self.shared.segments.segment_pages() {
            loc = PageLoc {
                segment: loc.segment + 1,
                page: 1,
            };
        }
        if loc.segment == u32::MAX {
            return Err(StoreError::InvalidArgument(
                "the store has no segment numbers left".into(),
            ));
        }
        self.file(loc.segment)?;
        self.next_page = PageLoc {
            segment: loc.segment,
            page: loc.page + 1,
        };
        Ok(loc)
    }

    /// The state of a log, loaded from the index on first use.
    fn load_log(&mut self, id: LogId) -> Result<()> {
        if self.logs.contains_key(&id) {
            return Ok(());
        }
        let shared = self.shared.clone();
        let index = &shared.index;
        let txn = index.read_txn()?;
        let st = match index.log_record(&txn, &id)? {
            None => {
                let log_no = self.next_log_no;
                self.next_log_no = log_no
                    .checked_add(1)
                    .ok_or_else(|| StoreError::InvalidArgument("too many logs".into()))?;
                LogState {
                    log_no,
                    size: 0,
                    last_ts: 0,
                    frontier: Frontier::new(),
                    chunks: ChunkAssembler::default(),
                    open: None,
                    topic_name: None,
                }
            }
            Some(rec) => {
                let nodes = IndexNodes {
                    index,
                    txn: &txn,
                    segments: &shared.segments,
                    log_no: rec.log_no,
                    log: id.to_bytes(),
                    size: rec.size,
                };
                let frontier = Frontier::load(&nodes, rec.size)?;
                let chunks = ChunkAssembler::load(&nodes, rec.size)?;
                let open = match rec.open {
                    None => None,
                    Some(o) => Some(self.read_open_page(&id, &o)?),
                };
                LogState {
                    log_no: rec.log_no,
                    size: rec.size,
                    last_ts: rec.last_ts,
                    frontier,
                    chunks,
                    open,
                    topic_name: None,
                }
            }
        };
        self.logs.insert(id, st);
        Ok(())
    }

    /// Copies a log's open page into memory and re-hashes its leaves.
    fn read_open_page(&self, id: &LogId, o: &OpenPage) -> Result<OpenBuf> {
        let segs = &self.shared.segments;
        let page =
            crate::reader::open_page(segs, o.loc, &id.to_bytes(), o.first_seq, o.count, false)?;
        let mut leaves = Vec::with_capacity(o.count as usize);
        for ev in page.events(segs) {
            leaves.push(ev?.leaf_hash());
        }
        let buf = page.data.to_vec();
        let end = PAGE_HEADER_LEN + o.used as usize;
        if end > buf.len() {
            return Err(corrupt(
                segs.path(o.loc.segment),
                segs.page_offset(o.loc) + 96,
                "page use beyond its size",
            ));
        }
        // Bytes past what the index knows of are replayed by recovery, or
        // cleared by it when they are not valid records.
        Ok(OpenBuf {
            loc: o.loc,
            first_seq: o.first_seq,
            count: o.count,
            used: o.used,
            buf,
            leaves,
            write_from: end,
            sealed: false,
        })
    }

    /// Makes room for a record of `rec_len` bytes in a log's open page,
    /// sealing the full one and allocating another as needed.
    fn room_for(&mut self, id: &LogId, rec_len: usize, pending: &mut Pending) -> Result<()> {
        let page_size = self.page_size();
        let needs_new = match self.logs.get(id).and_then(|s| s.open.as_ref()) {
            Some(o) => o.room() < rec_len,
            None => true,
        };
        if !needs_new {
            return Ok(());
        }
        let loc = self.alloc_page()?;
        let st = self
            .logs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownLog(id.to_string()))?;
        if let Some(mut full) = st.open.take() {
            full.sealed = true;
            pending.sealed.push((*id, full));
        }
        st.open = Some(OpenBuf::new(loc, st.size, page_size));
        Ok(())
    }

    fn apply_event(
        &mut self,
        ev: &NewEvent,
        author: [u8; 32],
        pending: &mut Pending,
    ) -> Result<(LogId, u64, Hash)> {
        let id = LogId {
            author,
            topic: ev.topic.id(),
        };
        self.load_log(id)?;
        let enc_len = EVENT_HEADER_LEN + ev.payload.len();
        let rec_len = RECORD_HEADER_LEN + enc_len;
        self.room_for(&id, rec_len, pending)?;
        let st = self
            .logs
            .get_mut(&id)
            .ok_or_else(|| StoreError::UnknownLog(id.to_string()))?;
        if st.topic_name.is_none() {
            st.topic_name = Some(ev.topic.name().to_string());
            pending.new_logs.push(id);
        }
        let ts = now_ms().max(st.last_ts);
        let seq = st.size;
        let open = st
            .open
            .as_mut()
            .ok_or_else(|| StoreError::UnknownLog(id.to_string()))?;
        let off = PAGE_HEADER_LEN + open.used as usize;
        let (head, rest) = open.buf[off..off + rec_len].split_at_mut(RECORD_HEADER_LEN);
        encode_event_into(rest, seq, ts, ev.kind, ev.flags, &ev.payload);
        write_record_header(head, rest);
        let leaf = hash_leaf(rest);
        st.account(leaf, ts, rec_len, &mut pending.chunks);
        pending.touched.insert(id);
        Ok((id, seq, leaf))
    }

    /// Writes pages, syncs them (durable mode) and commits the index.
    fn flush(&mut self, pending: Pending) -> Result<()> {
        let durable = self.durability == Durability::Durable;
        let mut synced: HashSet<u32> = HashSet::new();
        let shared = self.shared.clone();
        let segs = &shared.segments;
        // Pages sealed in this commit, then every touched log's open page.
        let mut writes: Vec<(PageLoc, Vec<u8>, usize, usize)> = Vec::new();
        for (id, page) in &pending.sealed {
            let mut head = vec![0u8; PAGE_HEADER_LEN];
            page.header(id).write(&mut head);
            let end = PAGE_HEADER_LEN + page.used as usize;
            let from = page.write_from.max(PAGE_HEADER_LEN);
            let mut body = head;
            body.extend_from_slice(&page.buf[PAGE_HEADER_LEN..end]);
            writes.push((page.loc, body, from, end));
        }
        for id in &pending.touched {
            let Some(st) = self.logs.get_mut(id) else {
                continue;
            };
            let Some(open) = st.open.as_mut() else {
                continue;
            };
            let h = open.header(id);
            h.write(&mut open.buf);
            let end = PAGE_HEADER_LEN + open.used as usize;
            let from = open.write_from.max(PAGE_HEADER_LEN);
            let mut body = open.buf[..PAGE_HEADER_LEN].to_vec();
            body.extend_from_slice(&open.buf[PAGE_HEADER_LEN..end]);
            writes.push((open.loc, body, from, end));
            open.write_from = end;
        }
        for (loc, body, from, end) in &writes {
            let base = segs.page_offset(*loc);
            let path = segs.path(loc.segment);
            let file = self.file(loc.segment)?;
            // Records first, then the header that counts them.
            if end > from {
                file.write_all_at(&body[*from..*end], base + *from as u64)
                    .map_err(io_err(&path))?;
            }
            file.write_all_at(&body[..PAGE_HEADER_LEN], base)
                .map_err(io_err(&path))?;
            synced.insert(loc.segment);
        }
        if durable {
            for seg in &synced {
                let path = segs.path(*seg);
                self.file(*seg)?.sync_data().map_err(io_err(&path))?;
            }
            for seg in self.unsynced.drain().collect::<Vec<_>>() {
                if !synced.contains(&seg) {
                    let path = segs.path(seg);
                    self.file(seg)?.sync_data().map_err(io_err(&path))?;
                }
            }
        } else {
            self.unsynced.extend(synced);
        }

        let index = &shared.index;
        let mut txn = index.write_txn()?;
        for (log_no, c) in &pending.chunks {
            index.put_chunk(&mut txn, *log_no, c.tier, c.chunk, &c.nodes)?;
        }
        for (id, page) in &pending.sealed {
            let log_no = self.logs.get(id).map(|s| s.log_no).unwrap_or_default();
            index.put_page(&mut txn, page.loc, &page.entry(log_no))?;
        }
        for id in &pending.touched {
            let Some(st) = self.logs.get(id) else {
                continue;
            };
            if let Some(open) = &st.open {
                index.put_page(&mut txn, open.loc, &open.entry(st.log_no))?;
            }
            index.put_log_record(&mut txn, id, &st.record())?;
        }
        for id in &pending.new_logs {
            if let Some(name) = self.logs.get(id).and_then(|s| s.topic_name.as_deref()) {
                index.put_topic_name(&mut txn, &id.topic, name)?;
            }
        }
        for (log_no, note) in &pending.checkpoints {
            index.put_checkpoint(&mut txn, *log_no, note)?;
        }
        index.put_next_page(&mut txn, self.next_page)?;
        index.put_next_log_no(&mut txn, self.next_log_no)?;
        index.commit(txn)?;
        index.keep_slack()?;
        if self.index_synced.elapsed() >= INDEX_SYNC_EVERY {
            self.sync_all()?;
        }
        Ok(())
    }

    /// Syncs every segment written since the last sync, and the index.
    fn sync_all(&mut self) -> Result<()> {
        for seg in self.unsynced.drain().collect::<Vec<_>>() {
            let path = self.shared.segments.path(seg);
            self.file(seg)?.sync_data().map_err(io_err(&path))?;
        }
        self.shared.index.force_sync()?;
        self.index_synced = Instant::now();
        Ok(())
    }

    /// One group commit: applies every request, writes once, answers each.
    fn commit(&mut self, batch: Vec<Request>) {
        let mut pending = Pending::default();
        let mut answers: Vec<(Sender<Result<Committed>>, Result<Committed>)> = Vec::new();
        let mut small: Vec<Sender<Result<()>>> = Vec::new();
        let mut syncs: Vec<Sender<Result<()>>> = Vec::new();
        let author = self.shared.author;
        let mut fatal: Option<StoreError> = None;
        for req in batch {
            match req {
                Request::Append { events, reply } => {
                    if let Some(msg) = &self.stopped {
                        let _ = reply.send(Err(StoreError::WriterStopped(msg.clone())));
                        continue;
                    }
                    if fatal.is_some() {
                        answers.push((
                            reply,
                            Err(StoreError::WriterStopped("an earlier write failed".into())),
                        ));
                        continue;
                    }
                    if let Err(e) = self.shared.check_events(&events) {
                        answers.push((reply, Err(e)));
                        continue;
                    }
                    let mut c = Committed {
                        events: Vec::with_capacity(events.len()),
                        heads: Vec::new(),
                    };
                    let mut logs_in_req: Vec<LogId> = Vec::new();
                    for ev in &events {
                        match self.apply_event(ev, author, &mut pending) {
                            Ok(r) => {
                                if !logs_in_req.contains(&r.0) {
                                    logs_in_req.push(r.0);
                                }
                                c.events.push(r);
                            }
                            Err(e) => {
                                fatal = Some(e);
                                break;
                            }
                        }
                    }
                    if fatal.is_some() {
                        answers.push((
                            reply,
                            Err(StoreError::WriterStopped("a write failed".into())),
                        ));
                        continue;
                    }
                    for id in logs_in_req {
                        if let Some(st) = self.logs.get(&id) {
                            c.heads.push((id, st.size, st.frontier.root()));
                        }
                    }
                    answers.push((reply, Ok(c)));
                }
                Request::PutCheckpoint { log, note, reply } => {
                    let res = self.load_log(log).and_then(|_| {
                        self.logs
                            .get(&log)
                            .map(|s| s.log_no)
                            .ok_or_else(|| StoreError::UnknownLog(log.to_string()))
                    });
                    match res {
                        Ok(log_no) => {
                            pending.checkpoints.push((log_no, note));
                            small.push(reply);
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Request::Sync { reply } => syncs.push(reply),
            }
        }
        let result = match fatal {
            Some(e) => Err(e),
            None => self.flush(pending),
        };
        if let Err(e) = result {
            // The in-memory state is now ahead of the disk: stop taking writes.
            let msg = e.to_string();
            self.stopped = Some(msg.clone());
            for (reply, _) in answers {
                let _ = reply.send(Err(StoreError::WriterStopped(msg.clone())));
            }
            for reply in small.into_iter().chain(syncs) {
                let _ = reply.send(Err(StoreError::WriterStopped(msg.clone())));
            }
            return;
        }
        for (reply, a) in answers {
            let _ = reply.send(a);
        }
        for reply in small {
            let _ = reply.send(Ok(()));
        }
        if !syncs.is_empty() {
            let r = self.sync_all();
            for reply in syncs {
                let _ = reply.send(
                    r.as_ref()
                        .map(|_| ())
                        .map_err(|e| StoreError::WriterStopped(e.to_string())),
                );
            }
        }
    }

    /// The writer loop: runs until every sender is gone.
    pub fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut n = request_events(&first);
            let mut batch = vec![first];
            while n < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(r) => {
                        n += request_events(&r);
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch);
            if self.durability == Durability::Fast && rx.is_empty() && self.stopped.is_none() {
                // Idle: make what fast mode acknowledged durable.
                if let Err(e) = self.sync_all() {
                    self.stopped = Some(e.to_string());
                }
            }
        }
        if self.stopped.is_none() {
            let _ = self.sync_all();
        }
    }

    /// Brings the index up to date with the segments: events written (and
    /// possibly acknowledged) after the index's last commit are replayed.
    /// Returns the number of events replayed.
    pub fn recover(&mut self) -> Result<u64> {
        let shared = self.shared.clone();
        let index = &shared.index;
        let segs = &shared.segments;
        let mut pending = Pending::default();
        let mut replayed = 0u64;
        // 1. The open page of every indexed log may hold more records.
        let logs = {
            let txn = index.read_txn()?;
            index.logs(&txn)?
        };
        for (id, rec) in logs {
            if rec.open.is_none() {
                continue;
            }
            self.load_log(id)?;
            replayed += self.replay_open_page(&id, &mut pending)?;
        }
        // 2. Pages allocated after the index's last commit.
        loop {
            let mut loc = self.next_page;
            if loc.page > segs.segment_pages() {
                loc = PageLoc {
                    segment: loc.segment + 1,
                    page: 1,
                };
            }
            if !segs.path(loc.segment).exists() {
                break;
            }
            let data = segs.page(loc)?;
            let Ok(h) = PageHeader::read(data) else { break };
            if h.segment != loc.segment || h.page != loc.page {
                break;
            }
            let id = LogId::from_bytes(&h.log);
            self.load_log(id)?;
            let page_size = self.page_size();
            let Some(st) = self.logs.get_mut(&id) else {
                break;
            };
            if h.first_seq != st.size {
                break;
            }
            if let Some(mut full) = st.open.take() {
                full.sealed = true;
                full.write_from = PAGE_HEADER_LEN;
                pending.sealed.push((id, full));
            }
            let mut open = OpenBuf::new(loc, st.size, page_size);
            open.buf.copy_from_slice(data);
            open.write_from = PAGE_HEADER_LEN;
            st.open = Some(open);
            pending.touched.insert(id);
            self.next_page = PageLoc {
                segment: loc.segment,
                page: loc.page + 1,
            };
            self.file(loc.segment)?;
            replayed += self.replay_open_page(&id, &mut pending)?;
        }
        if !pending.touched.is_empty() || !pending.sealed.is_empty() {
            // Whatever was replayed is on disk already; this writes the headers
            // and index entries that count it.
            let was = self.durability;
            self.durability = Durability::Durable;
            let r = self.flush(pending);
            self.durability = was;
            r?;
        }
        self.sync_all()?;
        Ok(replayed)
    }

    /// Accounts for valid records found after the end of a log's open page.
    fn replay_open_page(&mut self, id: &LogId, pending: &mut Pending) -> Result<u64> {
        let Some(st) = self.logs.get_mut(id) else {
            return Ok(0);
        };
        let mut n = 0u64;
        while let Some(open) = st.open.as_ref() {
            let off = PAGE_HEADER_LEN + open.used as usize;
            let Ok((bytes, end)) = read_record(&open.buf, off) else {
                break;
            };
            let Ok(header) = decode_event(bytes) else {
                break;
            };
            if header.seq() != st.size {
                break;
            }
            let ts = header.timestamp_ms();
            let leaf = hash_leaf(bytes);
            let rec_len = end - off;
            st.account(leaf, ts, rec_len, &mut pending.chunks);
            pending.touched.insert(*id);
            n += 1;
        }
        if let Some(open) = st.open.as_mut() {
            // Anything after the last valid record is garbage from a torn write.
            let end = PAGE_HEADER_LEN + open.used as usize;
            open.buf[end..].fill(0);
            if n > 0 {
                open.write_from = open.write_from.min(end);
            }
        }
        Ok(n)
    }
}

fn request_events(r: &Request) -> usize {
    match r {
        Request::Append { events, .. } => events.len(),
        _ => 1,
    }
}
