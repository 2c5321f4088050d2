//! The write path: one writer thread applies what reaches it through its
//! channel to the logs' in-memory state and packs each group commit into a
//! job; one flusher thread writes the job's pages, syncs them once, commits
//! the index once and answers. The two overlap, so the next group is built
//! while the previous one is being made durable. At open, the writer brings
//! the index up to date from the segments' tail.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use xaeroflux_merkle::{Frontier, Hash, NoteVerifier, hash_leaf, mth};
use xaeroflux_reactive::Subject;

use crate::Durability;
use crate::error::{Result, StoreError, corrupt, io_err};
use crate::event::{
    EVENT_HEADER_LEN, EventKind, LogId, NewEvent, Topic, TopicId, decode_event, encode_event_into,
};
use crate::format::{
    FLAG_SEALED, PAGE_HEADER_LEN, PageHeader, RECORD_HEADER_LEN, read_record, write_record_header,
};
use crate::index::{LogRecord, OpenPage, PageEntry, PageLoc};
use crate::shared::Shared;
use crate::subscribe::Commit;
use crate::tree::{ChunkAssembler, DoneChunk, IndexNodes};

/// Events taken into one group commit, at most.
const MAX_GROUP_EVENTS: usize = 16 * 1024;
/// In the fast mode, how long the flusher waits for more work before it
/// syncs what it has acknowledged.
const FAST_IDLE_SYNC: Duration = Duration::from_millis(2);
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
    /// Keeps a signed checkpoint of size `size` unless one at least as
    /// large is kept already.
    PutCheckpoint {
        log: LogId,
        size: u64,
        note: String,
        reply: Sender<Result<()>>,
    },
    Sync {
        reply: Sender<Result<()>>,
    },
    /// Appends another author's verified events to their log: applied only
    /// if the log still has `first_seq` events and the tree with them has
    /// `root`, and the consistency proof from there to the checkpoint holds.
    Import {
        page: VerifiedPage,
        reply: Sender<Result<Committed>>,
    },
}

/// A page of another author's events with what proves it (see
/// [`crate::Store::import`]); the checkpoint's signature is checked before
/// it reaches the writer.
pub(crate) struct VerifiedPage {
    pub log: LogId,
    pub topic_name: Option<String>,
    pub first_seq: u64,
    /// Canonical encodings, decoded and bounded by the caller.
    pub events: Vec<Vec<u8>>,
    pub checkpoint: xaeroflux_merkle::Checkpoint,
    pub note: String,
    /// Consistency proof from `first_seq + events.len()` to the checkpoint.
    pub proof: Vec<Hash>,
}

/// Log ids are made of hashes: their first bytes are already uniform, so
/// the writer's maps need no keyed hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(b);
    }
}

type IdMap<V> = HashMap<LogId, V, BuildHasherDefault<IdHasher>>;

/// A log's open page, held in memory by the writer.
struct OpenBuf {
    loc: PageLoc,
    first_seq: u64,
    count: u32,
    used: u32,
    buf: Vec<u8>,
    leaves: Vec<Hash>,
    /// Page offset from which bytes have not been handed to the flusher yet.
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
            write_from: PAGE_HEADER_LEN,
            sealed: false,
        }
    }

    fn room(&self) -> usize {
        self.buf.len() - PAGE_HEADER_LEN - self.used as usize
    }

    fn entry(&self, log_no: u32) -> PageEntry {
        PageEntry {
            log_no,
            first_seq: self.first_seq,
            count: self.count,
            sealed: self.sealed,
        }
    }

    /// Seals the page and hands its last bytes and its page-table entry to a job.
    fn seal_into(mut self, log: &LogId, log_no: u32, job: &mut Job) {
        self.sealed = true;
        job.writes.push(self.take_write(log));
        job.pages.push((self.loc, self.entry(log_no)));
    }

    /// The bytes still to write: the header and the records not yet handed over.
    fn take_write(&mut self, log: &LogId) -> PageWrite {
        let header = PageHeader {
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
        };
        let mut head = [0u8; PAGE_HEADER_LEN];
        header.write(&mut head);
        let end = PAGE_HEADER_LEN + self.used as usize;
        let from = self.write_from.clamp(PAGE_HEADER_LEN, end);
        self.write_from = end;
        PageWrite {
            loc: self.loc,
            header: head,
            from,
            records: self.buf[from..end].to_vec(),
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
    /// Topic name, when this process has seen it (written once per log).
    topic_name: Option<String>,
    touched: bool,
    /// The last job that touched this log: it may be evicted from memory
    /// once the flusher has committed that job.
    last_job: u64,
    /// The most urgent kind appended since the last job was sealed.
    class: EventKind,
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
        self.frontier.push_with(leaf, |l, i, h| {
            let mut local = Vec::new();
            chunks.on_node(l, i, h, &mut local);
            done.extend(local.into_iter().map(|c| (log_no, c)));
        });
        self.size += 1;
        self.last_ts = self.last_ts.max(ts);
    }
}

/// One page's bytes for the flusher.
struct PageWrite {
    loc: PageLoc,
    header: [u8; PAGE_HEADER_LEN],
    from: usize,
    records: Vec<u8>,
}

/// A one-slot hand-over from the writer to the flusher that blocks without
/// spinning: on a small machine, a thread spinning for the next job takes a
/// core from the threads (subscribers, the caller) that have work.
struct Handoff<T> {
    slot: Mutex<(Option<T>, bool)>,
    filled: std::sync::Condvar,
    emptied: std::sync::Condvar,
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new((None, false)),
            filled: std::sync::Condvar::new(),
            emptied: std::sync::Condvar::new(),
        }
    }
}

struct HandoffSender<T>(Arc<Handoff<T>>);
struct HandoffReceiver<T>(Arc<Handoff<T>>);

impl<T> HandoffSender<T> {
    /// Waits for the slot to be free; gives the value back if the receiver
    /// has gone.
    fn send(&self, value: T) -> std::result::Result<(), T> {
        let h = &self.0;
        let mut g = h.slot.lock().unwrap_or_else(|p| p.into_inner());
        while g.0.is_some() && !g.1 {
            g = h.emptied.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        if g.1 {
            return Err(value);
        }
        g.0 = Some(value);
        drop(g);
        h.filled.notify_one();
        Ok(())
    }
}

impl<T> Drop for HandoffSender<T> {
    fn drop(&mut self) {
        self.0.slot.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.0.filled.notify_all();
    }
}

impl<T> HandoffReceiver<T> {
    /// The next value, waiting at most `timeout` (for ever if `None`).
    fn recv(&self, timeout: Option<Duration>) -> std::result::Result<T, RecvTimeoutError> {
        let h = &self.0;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = h.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = g.0.take() {
                drop(g);
                h.emptied.notify_one();
                return Ok(v);
            }
            if g.1 {
                return Err(RecvTimeoutError::Disconnected);
            }
            g = match deadline {
                None => h.filled.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    h.filled
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

impl<T> Drop for HandoffReceiver<T> {
    fn drop(&mut self) {
        self.0.slot.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.0.emptied.notify_all();
    }
}

/// One group commit, self-contained: what to write, sync, index and answer.
#[derive(Default)]
struct Job {
    /// Its number, in the order jobs are built (recovery's is 0).
    seq: u64,
    writes: Vec<PageWrite>,
    chunks: Vec<(u32, DoneChunk)>,
    pages: Vec<(PageLoc, PageEntry)>,
    records: Vec<(LogId, LogRecord)>,
    topic_names: Vec<(TopicId, String)>,
    /// (log number, size, note): the newest per log.
    checkpoints: Vec<(u32, u64, String)>,
    next_page: PageLoc,
    next_log_no: u32,
    answers: Vec<(Sender<Result<Committed>>, Committed)>,
    /// What subscribers are told once the job is committed.
    commits: Vec<Commit>,
    acks: Vec<Sender<Result<()>>>,
    syncs: Vec<Sender<Result<()>>>,
}

/// Why the store stopped taking writes, shared by the writer and flusher.
type Stopped = Arc<Mutex<Option<String>>>;

fn stopped_reason(s: &Stopped) -> Option<String> {
    s.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn stop(s: &Stopped, why: String) {
    let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
    if g.is_none() {
        *g = Some(why);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes, syncs and indexes jobs, in order.
struct Flusher {
    shared: Arc<Shared>,
    /// Where commits are announced to subscribers.
    notify: Option<Subject<Commit>>,
    durability: Durability,
    files: HashMap<u32, File>,
    unsynced: HashSet<u32>,
    index_synced: Instant,
}

impl Flusher {
    fn file(&mut self, segment: u32) -> Result<&File> {
        if !self.files.contains_key(&segment) {
            let f = self.shared.segments.open_rw(segment)?;
            self.files.insert(segment, f);
        }
        self.files
            .get(&segment)
            .ok_or_else(|| StoreError::InvalidArgument(format!("segment {segment} is not open")))
    }

    fn sync_segments(&mut self) -> Result<()> {
        for seg in self.unsynced.drain().collect::<Vec<_>>() {
            let path = self.shared.segments.path(seg);
            self.file(seg)?.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Syncs every segment written since the last sync, and the index.
    fn sync_all(&mut self) -> Result<()> {
        self.sync_segments()?;
        self.shared.index.force_sync()?;
        self.index_synced = Instant::now();
        Ok(())
    }

    /// Writes a job's pages (records first, then the headers that count
    /// them), syncs them in the durable mode, then commits the index.
    fn execute(&mut self, job: &Job, durable: bool) -> Result<()> {
        let shared = self.shared.clone();
        let segs = &shared.segments;
        for w in &job.writes {
            let base = segs.page_offset(w.loc);
            let path = segs.path(w.loc.segment);
            let file = self.file(w.loc.segment)?;
            if !w.records.is_empty() {
                file.write_all_at(&w.records, base + w.from as u64)
                    .map_err(io_err(&path))?;
            }
            file.write_all_at(&w.header, base).map_err(io_err(&path))?;
            self.unsynced.insert(w.loc.segment);
        }
        if durable {
            self.sync_segments()?;
        }
        let index = &shared.index;
        let mut txn = index.write_txn()?;
        for (log_no, c) in &job.chunks {
            index.put_chunk(&mut txn, *log_no, c.tier, c.chunk, &c.nodes)?;
        }
        for (loc, e) in &job.pages {
            index.put_page(&mut txn, *loc, e)?;
        }
        for (id, r) in &job.records {
            index.put_log_record(&mut txn, id, r)?;
        }
        for (topic, name) in &job.topic_names {
            index.put_topic_name(&mut txn, topic, name)?;
        }
        for (log_no, _, note) in &job.checkpoints {
            index.put_checkpoint(&mut txn, *log_no, note)?;
        }
        index.put_next_page(&mut txn, job.next_page)?;
        index.put_next_log_no(&mut txn, job.next_log_no)?;
        index.commit(txn)?;
        index.keep_slack()?;
        if self.index_synced.elapsed() >= INDEX_SYNC_EVERY {
            self.sync_all()?;
        }
        Ok(())
    }

    fn answer(&mut self, job: Job, result: Result<()>, stopped: &Stopped) {
        if let Err(e) = result {
            // The writer's state is now ahead of the disk: stop taking writes.
            stop(stopped, e.to_string());
        }
        if let Some(why) = stopped_reason(stopped) {
            let err = || StoreError::WriterStopped(why.clone());
            for (reply, _) in job.answers {
                let _ = reply.send(Err(err()));
            }
            for reply in job.acks.into_iter().chain(job.syncs) {
                let _ = reply.send(Err(err()));
            }
            return;
        }
        for (reply, c) in job.answers {
            let _ = reply.send(Ok(c));
        }
        for reply in job.acks {
            let _ = reply.send(Ok(()));
        }
        if !job.syncs.is_empty() {
            let r = self.sync_all().map_err(|e| e.to_string());
            for reply in job.syncs {
                let _ = reply.send(r.clone().map_err(StoreError::WriterStopped));
            }
        }
    }

    fn run(mut self, jobs: HandoffReceiver<Job>, stopped: Stopped, committed: Arc<AtomicU64>) {
        let durable = self.durability == Durability::Durable;
        let mut next: Option<Job> = None;
        loop {
            let mut job = match next.take() {
                Some(j) => j,
                None => match jobs.recv(None) {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            let result = if stopped_reason(&stopped).is_some() {
                Ok(())
            } else {
                self.execute(&job, durable)
            };
            let seq = job.seq;
            let ok = result.is_ok();
            if ok
                && !job.commits.is_empty()
                && let Some(n) = self.notify.as_ref().filter(|n| n.subscribers() > 0)
            {
                // Never blocks: a full queue drops and tells subscribers,
                // who catch up from the store.
                n.on_next_batch(std::mem::take(&mut job.commits));
            }
            self.answer(job, result, &stopped);
            if ok {
                committed.store(seq, Ordering::Release);
            }
            if !durable && stopped_reason(&stopped).is_none() {
                // The fast mode makes what it acknowledged durable once the
                // writer has been idle for a moment (and at least once a
                // second under load, in `execute`), so a caller appending one
                // event at a time never waits for a sync.
                match jobs.recv(Some(FAST_IDLE_SYNC)) {
                    Ok(j) => next = Some(j),
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = self.sync_all() {
                            stop(&stopped, e.to_string());
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        if stopped_reason(&stopped).is_none() {
            let _ = self.sync_all();
        }
        if let Some(n) = self.notify.take() {
            // Subscribers get what was announced, then the end of the stream.
            n.close();
        }
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// Logs kept in memory between jobs, at most (more while in flight).
    max_logs: usize,
    /// Number of the job being built.
    job_seq: u64,
    /// The last job the flusher committed.
    committed: Arc<AtomicU64>,
    logs: IdMap<LogState>,
    touched: Vec<LogId>,
    next_page: PageLoc,
    next_log_no: u32,
    stopped: Stopped,
    flusher: Option<Flusher>,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        durability: Durability,
        max_logs: usize,
        notify: Option<Subject<Commit>>,
    ) -> Result<Self> {
        let txn = shared.index.read_txn()?;
        let next_page = shared.index.next_page(&txn)?;
        let next_log_no = shared.index.next_log_no(&txn)?;
        drop(txn);
        let flusher = Flusher {
            shared: shared.clone(),
            notify,
            durability,
            files: HashMap::new(),
            unsynced: HashSet::new(),
            index_synced: Instant::now(),
        };
        Ok(Self {
            shared,
            max_logs: max_logs.max(1),
            job_seq: 0,
            committed: Arc::new(AtomicU64::new(0)),
            logs: IdMap::default(),
            touched: Vec::new(),
            next_page,
            next_log_no,
            stopped: Arc::new(Mutex::new(None)),
            flusher: Some(flusher),
        })
    }

    fn page_size(&self) -> usize {
        self.shared.segments.page_size()
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
        if loc.page == 1 && !self.shared.segments.path(loc.segment).exists() {
            self.shared.segments.create(loc.segment)?;
        }
        self.next_page = PageLoc {
            segment: loc.segment,
            page: loc.page + 1,
        };
        Ok(loc)
    }

    /// The state of a log, loaded from the index on first use.
    fn load_log(&mut self, id: LogId) -> Result<&mut LogState> {
        if !self.logs.contains_key(&id) {
            let st = self.read_log(id)?;
            self.logs.insert(id, st);
        }
        self.logs
            .get_mut(&id)
            .ok_or_else(|| StoreError::UnknownLog(id.to_string()))
    }

    fn read_log(&mut self, id: LogId) -> Result<LogState> {
        let shared = self.shared.clone();
        let index = &shared.index;
        let txn = index.read_txn()?;
        Ok(match index.log_record(&txn, &id)? {
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
                    touched: false,
                    last_job: 0,
                    class: EventKind::Application,
                }
            }
            Some(rec) => {
                let nodes = IndexNodes::new(
                    index,
                    &txn,
                    &shared.segments,
                    rec.log_no,
                    id.to_bytes(),
                    rec.size,
                    rec.size,
                );
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
                    topic_name: index.topic_name(&txn, &id.topic)?,
                    touched: false,
                    last_job: 0,
                    class: EventKind::Application,
                }
            }
        })
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
        let end = PAGE_HEADER_LEN + o.used as usize;
        if end > page.data.len() {
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
            buf: page.data.to_vec(),
            leaves,
            write_from: end,
            sealed: false,
        })
    }

    fn touch(&mut self, id: LogId) {
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
        let st = self
            .logs
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownLog(id.to_string()))?;
        if let Some(full) = st.open.take() {
            full.seal_into(id, st.log_no, job);
        }
        st.open = Some(OpenBuf::new(loc, st.size, page_size));
        Ok(())
    }

    /// The log's state, with room for a record of `rec_len` bytes on its
    /// open page (sealing the full one into the job if need be).
    fn room_for(&mut self, id: LogId, rec_len: usize, job: &mut Job) -> Result<&mut LogState> {
        let st = self.load_log(id)?;
        if st.open.as_ref().is_none_or(|o| o.room() < rec_len) {
            self.next_open_page(&id, job)?;
        }
        self.logs
            .get_mut(&id)
            .ok_or_else(|| StoreError::UnknownLog(id.to_string()))
    }

    fn apply_event(
        &mut self,
        ev: &NewEvent,
        id: LogId,
        now: u64,
        job: &mut Job,
    ) -> Result<(LogId, u64, Hash)> {
        let rec_len = RECORD_HEADER_LEN + EVENT_HEADER_LEN + ev.payload.len();
        let st = self.room_for(id, rec_len, job)?;
        if st.topic_name.is_none() {
            st.topic_name = Some(ev.topic.name().to_string());
            job.topic_names
                .push((id.topic, ev.topic.name().to_string()));
        }
        let ts = now.max(st.last_ts);
        let seq = st.size;
        st.class = st.class.min(ev.kind);
        let (head, rest) = slot(st, &id, rec_len)?;
        encode_event_into(rest, seq, ts, ev.kind, ev.flags, &ev.payload);
        write_record_header(head, rest);
        let leaf = hash_leaf(rest);
        st.account(leaf, ts, rec_len, &mut job.chunks);
        self.touch(id);
        Ok((id, seq, leaf))
    }

    /// Places one already-encoded event (another author's) at the end of
    /// its log's open page.
    fn apply_encoded(&mut self, bytes: &[u8], leaf: Hash, id: LogId, job: &mut Job) -> Result<()> {
        let header = decode_event(bytes).map_err(|r| StoreError::InvalidArgument(r.into()))?;
        let (ts, kind) = (header.timestamp_ms(), header.kind());
        let rec_len = RECORD_HEADER_LEN + bytes.len();
        let st = self.room_for(id, rec_len, job)?;
        st.class = st.class.min(kind);
        let (head, rest) = slot(st, &id, rec_len)?;
        rest.copy_from_slice(bytes);
        write_record_header(head, rest);
        st.account(leaf, ts, rec_len, &mut job.chunks);
        self.touch(id);
        Ok(())
    }

    /// Checks an imported page against the log as it is now, without
    /// changing anything: the size, each event's seq and size, and the
    /// proof from the tree with the page's leaves to the checkpoint.
    /// Checks a page; returns how many of its first events the log holds
    /// already, and the leaf hashes of the rest.
    fn check_import(&mut self, page: &VerifiedPage) -> Result<(usize, Vec<Hash>)> {
        let log = page.log;
        let bad = |why: String| StoreError::Rejected(format!("log {log}: {why}"));
        if log.author == self.shared.author {
            return Err(bad("the store's own log is never imported".into()));
        }
        let known = match self.logs.get(&log) {
            Some(st) => Some((st.size, st.frontier.clone())),
            None => {
                let txn = self.shared.index.read_txn()?;
                let exists = self.shared.index.log_record(&txn, &log)?.is_some();
                drop(txn);
                if exists {
                    let st = self.load_log(log)?;
                    Some((st.size, st.frontier.clone()))
                } else {
                    None
                }
            }
        };
        let (size, mut frontier) = known.unwrap_or((0, Frontier::new()));
        if page.first_seq > size {
            return Err(bad(format!(
                "the page starts at seq {} but the log has {size} events",
                page.first_seq
            )));
        }
        // Another import (a concurrent session) may have got here first:
        // the held prefix of the page is skipped (the store keeps its own
        // copy), and the rest has to extend the held tree to the signed
        // root.
        let skip = (size - page.first_seq).min(page.events.len() as u64) as usize;
        if skip == page.events.len() {
            return Ok((skip, Vec::new()));
        }
        let max = self.shared.max_event_len();
        let mut leaves = Vec::with_capacity(page.events.len() - skip);
        for (i, bytes) in page.events.iter().enumerate().skip(skip) {
            let want = page.first_seq + i as u64;
            if bytes.len() > max {
                return Err(bad(format!("event {want} is larger than a page holds")));
            }
            let h = decode_event(bytes).map_err(|r| bad(format!("event {want}: {r}")))?;
            if h.seq() != want {
                return Err(bad(format!("event {want} carries seq {}", h.seq())));
            }
            let leaf = hash_leaf(bytes);
            frontier.push(leaf);
            leaves.push(leaf);
        }
        let new_size = frontier.size();
        let cp = &page.checkpoint;
        if new_size > cp.size {
            return Err(bad(format!(
                "the page runs to size {new_size}, past the checkpoint's {}",
                cp.size
            )));
        }
        xaeroflux_merkle::verify_consistency(
            new_size,
            cp.size,
            &frontier.root(),
            &cp.root,
            &page.proof,
        )
        .map_err(|e| {
            bad(format!(
                "consistency proof from {new_size} to {}: {e}",
                cp.size
            ))
        })?;
        Ok((skip, leaves))
    }

    fn import(&mut self, page: VerifiedPage, job: &mut Job) -> Result<Committed> {
        let (skip, leaves) = self.check_import(&page)?;
        let id = page.log;
        let mut c = Committed {
            events: Vec::with_capacity(page.events.len()),
            heads: Vec::new(),
        };
        // Allocates the log (when new) only now that the page is verified.
        self.load_log(id)?;
        for (i, (bytes, leaf)) in page.events.iter().skip(skip).zip(leaves).enumerate() {
            self.apply_encoded(bytes, leaf, id, job)?;
            c.events
                .push((id, page.first_seq + (skip + i) as u64, leaf));
        }
        if let Some(st) = self.logs.get_mut(&id) {
            if st.topic_name.is_none()
                && let Some(name) = page.topic_name.filter(|n| Topic::id_of(n) == id.topic)
            {
                st.topic_name = Some(name.clone());
                job.topic_names.push((id.topic, name));
            }
            c.heads.push((id, st.size, st.frontier.root()));
        }
        // The checkpoint is kept once the log reaches it, so a kept
        // checkpoint always covers events the store holds (and can serve).
        let reached = self
            .logs
            .get(&id)
            .is_some_and(|st| st.size == page.checkpoint.size);
        if reached && let Some(log_no) = self.newer_checkpoint(id, page.checkpoint.size)? {
            job.checkpoints.retain(|(n, _, _)| *n != log_no);
            job.checkpoints
                .push((log_no, page.checkpoint.size, page.note));
        }
        Ok(c)
    }

    /// Finishes a job: the open pages and records of every touched log.
    fn seal_job(&mut self, job: &mut Job) {
        for id in self.touched.drain(..) {
            let Some(st) = self.logs.get_mut(&id) else {
                continue;
            };
            st.touched = false;
            if let Some(open) = st.open.as_mut() {
                job.writes.push(open.take_write(&id));
                job.pages.push((open.loc, open.entry(st.log_no)));
            }
            job.records.push((id, st.record()));
            job.commits.push(Commit {
                log: id,
                size: st.size,
                most_urgent: std::mem::replace(&mut st.class, EventKind::Application),
            });
        }
        job.next_page = self.next_page;
        job.next_log_no = self.next_log_no;
    }

    /// Applies one group of requests and packs it into a job.
    fn build_job(&mut self, batch: Vec<Request>) -> Job {
        self.job_seq += 1;
        let mut job = Job {
            seq: self.job_seq,
            ..Job::default()
        };
        let author = self.shared.author;
        let now = now_ms();
        for req in batch {
            match req {
                Request::Append { events, reply } => {
                    if let Some(why) = stopped_reason(&self.stopped) {
                        let _ = reply.send(Err(StoreError::WriterStopped(why)));
                        continue;
                    }
                    if let Err(e) = self.shared.check_events(&events) {
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    let mut c = Committed {
                        events: Vec::with_capacity(events.len()),
                        heads: Vec::new(),
                    };
                    let mut failed = None;
                    for ev in &events {
                        let id = LogId {
                            author,
                            topic: ev.topic.id(),
                        };
                        match self.apply_event(ev, id, now, &mut job) {
                            Ok(r) => c.events.push(r),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    if let Some(e) = failed {
                        // Part of this request is in memory but cannot be
                        // written consistently: stop, as after an I/O error.
                        stop(&self.stopped, e.to_string());
                        let _ = reply.send(Err(e));
                        continue;
                    }
                    // Each log the request touched, once, in first-touch order.
                    let mut seen: HashSet<LogId, BuildHasherDefault<IdHasher>> = HashSet::default();
                    for (id, _, _) in &c.events {
                        if seen.insert(*id)
                            && let Some(st) = self.logs.get(id)
                        {
                            c.heads.push((*id, st.size, st.frontier.root()));
                        }
                    }
                    job.answers.push((reply, c));
                }
                Request::PutCheckpoint {
                    log,
                    size,
                    note,
                    reply,
                } => match self.newer_checkpoint(log, size) {
                    Ok(Some(log_no)) => {
                        let pending_newer = job
                            .checkpoints
                            .iter()
                            .any(|(n, s, _)| *n == log_no && *s >= size);
                        if !pending_newer {
                            job.checkpoints.retain(|(n, _, _)| *n != log_no);
                            job.checkpoints.push((log_no, size, note));
                        }
                        job.acks.push(reply);
                    }
                    Ok(None) => job.acks.push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Request::Sync { reply } => job.syncs.push(reply),
                Request::Import { page, reply } => {
                    if let Some(why) = stopped_reason(&self.stopped) {
                        let _ = reply.send(Err(StoreError::WriterStopped(why)));
                        continue;
                    }
                    match self.import(page, &mut job) {
                        Ok(c) => job.answers.push((reply, c)),
                        Err(e @ StoreError::Rejected(_)) => {
                            // Refused before anything changed.
                            let _ = reply.send(Err(e));
                        }
                        Err(e) => {
                            // Failed midway (an I/O error allocating a page):
                            // stop, as after any write error.
                            stop(&self.stopped, e.to_string());
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
        }
        self.seal_job(&mut job);
        job
    }

    /// The log number, if a checkpoint of `size` is newer than the one kept.
    fn newer_checkpoint(&mut self, log: LogId, size: u64) -> Result<Option<u32>> {
        let log_no = self.load_log(log)?.log_no;
        let index = &self.shared.index;
        let txn = index.read_txn()?;
        let Some(kept) = index.checkpoint(&txn, log_no)? else {
            return Ok(Some(log_no));
        };
        let v = NoteVerifier::new(&log.origin(), &log.author)?;
        Ok(match v.verify_checkpoint(&kept) {
            Ok(cp) if cp.size >= size => None,
            _ => Some(log_no),
        })
    }

    /// Keeps at most `max_logs` logs in memory: when there are more, drops
    /// those whose last job the flusher has committed (they reload from the
    /// index when next needed).
    fn evict(&mut self) {
        if self.logs.len() <= self.max_logs {
            return;
        }
        let committed = self.committed.load(Ordering::Acquire);
        self.logs.retain(|_, st| st.last_job > committed);
    }

    /// Runs the writer loop until every sender is gone; the flusher runs on
    /// its own thread, one job behind.
    pub fn run(mut self, rx: Receiver<Request>) {
        let Some(flusher) = self.flusher.take() else {
            return;
        };
        let handoff = Arc::new(Handoff::<Job>::default());
        let (job_tx, job_rx) = (HandoffSender(handoff.clone()), HandoffReceiver(handoff));
        let stopped = self.stopped.clone();
        let committed = self.committed.clone();
        let flusher: Option<JoinHandle<()>> = std::thread::Builder::new()
            .name("xaeroflux-flush".into())
            .spawn(move || flusher.run(job_rx, stopped, committed))
            .ok();
        if flusher.is_none() {
            stop(&self.stopped, "could not start the flusher thread".into());
        }
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
            let job = self.build_job(batch);
            self.evict();
            if let Err(job) = job_tx.send(job) {
                // The flusher is gone: answer here.
                stop(&self.stopped, "the flusher thread stopped".into());
                for (reply, _) in job.answers {
                    let _ = reply.send(Err(StoreError::WriterStopped(
                        "the flusher thread stopped".into(),
                    )));
                }
            }
        }
        drop(job_tx);
        if let Some(h) = flusher {
            let _ = h.join();
        }
    }

    /// Brings the index up to date with the segments: events written (and
    /// possibly acknowledged) after the index's last commit are replayed.
    /// Returns the number of events replayed. Runs before the threads start.
    pub fn recover(&mut self) -> Result<u64> {
        let shared = self.shared.clone();
        let index = &shared.index;
        let segs = &shared.segments;
        let mut job = Job::default();
        let mut replayed = 0u64;
        // 1. The open page of every indexed log may hold more records.
        let logs = {
            let txn = index.read_txn()?;
            index.logs(&txn)?
        };
        for (id, rec) in logs {
            let Some(open) = rec.open else { continue };
            // Only a log whose open page holds a valid record past the
            // indexed end needs loading: one CRC check per log otherwise.
            let page = segs.page(open.loc)?;
            let next = read_record(page, PAGE_HEADER_LEN + open.used as usize)
                .ok()
                .and_then(|(bytes, _)| decode_event(bytes).ok().map(|h| h.seq()));
            if next != Some(rec.size) {
                continue;
            }
            self.load_log(id)?;
            replayed += self.replay_open_page(&id, &mut job)?;
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
            let size = self.load_log(id)?.size;
            if h.first_seq != size {
                break;
            }
            let page_size = self.page_size();
            if let Some(st) = self.logs.get_mut(&id) {
                if let Some(mut full) = st.open.take() {
                    // Its records are on disk already; rewrite them whole.
                    full.write_from = PAGE_HEADER_LEN;
                    full.seal_into(&id, st.log_no, &mut job);
                }
                let mut open = OpenBuf::new(loc, size, page_size);
                open.buf.copy_from_slice(data);
                st.open = Some(open);
            }
            self.touch(id);
            self.next_page = PageLoc {
                segment: loc.segment,
                page: loc.page + 1,
            };
            replayed += self.replay_open_page(&id, &mut job)?;
        }
        self.seal_job(&mut job);
        let mut flusher = self
            .flusher
            .take()
            .ok_or_else(|| StoreError::WriterStopped("recovery ran twice".into()))?;
        // Whatever was replayed is on disk already; this writes the headers
        // and index entries that count it, durably.
        let r = flusher.execute(&job, true).and_then(|_| flusher.sync_all());
        self.flusher = Some(flusher);
        r?;
        Ok(replayed)
    }

    /// Accounts for valid records found after the end of a log's open page.
    fn replay_open_page(&mut self, id: &LogId, job: &mut Job) -> Result<u64> {
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
            st.account(leaf, ts, end - off, &mut job.chunks);
            n += 1;
        }
        if let Some(open) = st.open.as_mut() {
            // Anything after the last valid record is garbage from a torn write.
            let end = PAGE_HEADER_LEN + open.used as usize;
            open.buf[end..].fill(0);
            if n > 0 {
                open.write_from = PAGE_HEADER_LEN;
            }
        }
        if n > 0 {
            self.touch(*id);
        }
        Ok(n)
    }
}

/// The next record's slot on a log's open page (made roomy by
/// `Writer::room_for`): its header and its body.
fn slot<'a>(
    st: &'a mut LogState,
    id: &LogId,
    rec_len: usize,
) -> Result<(&'a mut [u8], &'a mut [u8])> {
    let open = st
        .open
        .as_mut()
        .ok_or_else(|| StoreError::UnknownLog(id.to_string()))?;
    let off = PAGE_HEADER_LEN + open.used as usize;
    Ok(open.buf[off..off + rec_len].split_at_mut(RECORD_HEADER_LEN))
}

fn request_events(r: &Request) -> usize {
    match r {
        Request::Append { events, .. } => events.len(),
        Request::Import { page, .. } => page.events.len().max(1),
        _ => 1,
    }
}
