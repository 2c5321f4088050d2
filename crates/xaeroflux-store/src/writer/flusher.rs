//! The flusher thread: writes each job's pages, syncs them once, commits
//! the index once, tells subscribers and answers, one job behind the
//! writer.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use xaeroflux_merkle::Hash;
use xaeroflux_reactive::Subject;
use xaeroflux_types::{LogId, TopicId};

use super::handoff::HandoffReceiver;
use super::page::PageWrite;
use super::request::{Committed, Reply};
use crate::Durability;
use crate::catalog::{Catalog, encode_records};
use crate::error::{Result, StoreError, internal, io_err};
use crate::failpoints::Point;
use crate::index::{LogRecord, PageEntry, PageLoc};
use crate::shared::{Shared, Stopped};
use crate::subscribe::Commit;
use crate::tree::DoneChunk;

/// In the fast mode, how long the flusher waits for more work before it
/// syncs what it has acknowledged.
const FAST_IDLE_SYNC: Duration = Duration::from_millis(2);
/// How often the (unsynced) index is synced, to bound replay after power loss.
const INDEX_SYNC_EVERY: Duration = Duration::from_secs(1);

/// One group commit, self-contained: what to write, sync, index and answer.
#[derive(Default)]
pub(crate) struct Job {
    /// Its number, in the order jobs are built (recovery's is 0).
    pub seq: u64,
    pub writes: Vec<PageWrite>,
    pub chunks: Vec<(u32, DoneChunk)>,
    /// Page entries, with the timestamp of each page's first event.
    pub pages: Vec<(PageLoc, PageEntry, u64)>,
    pub records: Vec<(LogId, LogRecord)>,
    pub topic_names: Vec<(TopicId, String)>,
    /// (log number, log, size, note): the newest per log.
    pub checkpoints: Vec<(u32, LogId, u64, String)>,
    pub next_page: PageLoc,
    pub next_log_no: u32,
    pub answers: Vec<(Reply<Committed>, Committed)>,
    /// What subscribers are told once the job is committed.
    pub commits: Vec<Commit>,
    /// Heads of the store's own logs after the job.
    pub own_heads: Vec<(TopicId, u64, Hash)>,
    pub acks: Vec<Reply<()>>,
    pub syncs: Vec<Reply<()>>,
}

/// Writes, syncs and indexes jobs, in order.
pub(crate) struct Flusher {
    pub shared: Arc<Shared>,
    /// Where commits are announced to subscribers.
    pub notify: Option<Subject<Commit>>,
    pub durability: Durability,
    /// Where topic names and received checkpoints are kept beside the
    /// index (set at open, after recovery; recovery itself writes none).
    pub catalog: Option<Catalog>,
    files: HashMap<u32, File>,
    unsynced: HashSet<u32>,
    index_synced: Instant,
}

impl Flusher {
    pub fn new(
        shared: Arc<Shared>,
        notify: Option<Subject<Commit>>,
        durability: Durability,
    ) -> Self {
        Self {
            shared,
            notify,
            durability,
            catalog: None,
            files: HashMap::new(),
            unsynced: HashSet::new(),
            index_synced: Instant::now(),
        }
    }

    fn file(&mut self, segment: u32) -> Result<&File> {
        if !self.files.contains_key(&segment) {
            let f = self.shared.segments.open_rw(segment)?;
            self.files.insert(segment, f);
        }
        self.files
            .get(&segment)
            .ok_or_else(|| internal(format!("segment {segment} is not open after opening it")))
    }

    fn sync_segments(&mut self) -> Result<()> {
        for seg in self.unsynced.drain().collect::<Vec<_>>() {
            let path = self.shared.segments.path(seg);
            let fails = self.shared.fails.clone();
            let file = self.file(seg)?;
            fails
                .check(Point::Fsync)
                .and_then(|()| file.sync_data())
                .map_err(io_err(&path))?;
        }
        if let Some(c) = self.catalog.as_mut() {
            c.sync()?;
        }
        Ok(())
    }

    /// Appends the job's topic names and received checkpoints to the
    /// catalog (synced with the segments).
    fn write_catalog(&mut self, job: &Job) -> Result<()> {
        let Some(c) = self.catalog.as_mut() else {
            return Ok(());
        };
        if job.topic_names.is_empty() && job.checkpoints.is_empty() {
            return Ok(());
        }
        let records = encode_records(
            job.topic_names.iter().map(|(t, n)| (t, n.as_str())),
            job.checkpoints
                .iter()
                .map(|(_, log, size, note)| (log, *size, note.as_str())),
            &self.shared.author,
        );
        c.append(&records)
    }

    /// Syncs every segment written since the last sync, and the index.
    pub fn sync_all(&mut self) -> Result<()> {
        self.sync_segments()?;
        self.shared.index.force_sync()?;
        self.index_synced = Instant::now();
        Ok(())
    }

    /// Writes a job's pages (records first, then the headers that count
    /// them), syncs them in the durable mode, then commits the index.
    pub fn execute(&mut self, job: &Job, durable: bool) -> Result<()> {
        self.write_out(job, durable)?;
        self.index_job(job)
    }

    /// Writes a job's pages (records first, then the headers that count
    /// them) and its catalog records, and syncs them in the durable mode:
    /// once this returns, the job's events are as durable as the mode
    /// promises, whether or not the index holds them yet.
    fn write_out(&mut self, job: &Job, durable: bool) -> Result<()> {
        let shared = self.shared.clone();
        let segs = &shared.segments;
        for w in &job.writes {
            let base = segs.page_offset(w.loc);
            let path = segs.path(w.loc.segment);
            let fails = &shared.fails;
            let file = self.file(w.loc.segment)?;
            if !w.records.is_empty() {
                fails
                    .check(Point::SegmentWrite)
                    .and_then(|()| file.write_all_at(&w.records, base + w.from as u64))
                    .map_err(io_err(&path))?;
            }
            fails
                .check(Point::SegmentWrite)
                .and_then(|()| file.write_all_at(&w.header, base))
                .map_err(io_err(&path))?;
            self.unsynced.insert(w.loc.segment);
        }
        self.write_catalog(job)?;
        if durable {
            self.sync_segments()?;
        }
        Ok(())
    }

    /// Commits the job to the index (and compacts the catalog, and syncs
    /// the index once a second).
    fn index_job(&mut self, job: &Job) -> Result<()> {
        self.commit_index(job)?;
        if let Some(c) = self.catalog.as_mut().filter(|c| c.wants_compaction()) {
            let shared = &self.shared;
            c.compact(&shared.index, &shared.segments.store_id(), &shared.author)?;
        }
        if self.index_synced.elapsed() >= INDEX_SYNC_EVERY {
            self.sync_all()?;
        }
        Ok(())
    }

    /// One index transaction with everything the job changed.
    fn commit_index(&self, job: &Job) -> Result<()> {
        let index = &self.shared.index;
        let mut txn = index.write_txn()?;
        for (log_no, c) in &job.chunks {
            index.put_chunk(&mut txn, *log_no, c.tier, c.chunk, &c.nodes)?;
        }
        for (loc, e, first_ts) in &job.pages {
            index.put_page(&mut txn, *loc, e)?;
            if e.count > 0 {
                index.put_page_time(&mut txn, e.log_no, *first_ts, e.first_seq)?;
            }
        }
        for (id, r) in &job.records {
            index.put_log_record(&mut txn, id, r)?;
        }
        for (topic, name) in &job.topic_names {
            index.put_topic_name(&mut txn, topic, name)?;
        }
        for (log_no, _, _, note) in &job.checkpoints {
            index.put_checkpoint(&mut txn, *log_no, note)?;
        }
        index.put_next_page(&mut txn, job.next_page)?;
        index.put_next_log_no(&mut txn, job.next_log_no)?;
        if let Err(e) = self.shared.fails.check(Point::IndexCommit) {
            drop(txn); // aborted: nothing of the job reaches the index
            return Err(index.io_failure(e));
        }
        index.commit(txn)?;
        index.keep_slack()
    }

    /// Answers the callers waiting on a channel for the job's appends and
    /// imports: with their results once the job is written out (before its
    /// index commit, see [`crate::shared::IndexGate`]), or with the error
    /// that stopped the store. Answers that run a function wait for the
    /// commit (see [`Self::answer_rest`]).
    fn answer_waiting(&mut self, job: &mut Job, written: bool, stopped: &Stopped) {
        let (waiting, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut job.answers)
            .into_iter()
            .partition(|(reply, _)| matches!(reply, Reply::Chan(_)));
        job.answers = rest;
        if waiting.is_empty() {
            return;
        }
        if written {
            // Before the first answer: a read its caller starts next waits
            // for this job's index commit.
            self.shared.index_gate.answering(job.seq);
            waiting.into_iter().for_each(|(r, c)| r.send(Ok(c)));
        } else {
            let why = stopped.reason().unwrap_or_else(|| {
                stopped.stop(internal("a job was not written, for no reason given"))
            });
            waiting.into_iter().for_each(|(r, _)| r.stopped(&why));
        }
    }

    /// Answers everyone else the job carries, after its index commit: with
    /// its results, or with the error that stopped the store.
    fn answer_rest(&mut self, job: Job, stopped: &Stopped) {
        if let Some(why) = stopped.reason() {
            for (reply, _) in job.answers {
                reply.stopped(&why);
            }
            for reply in job.acks.into_iter().chain(job.syncs) {
                reply.stopped(&why);
            }
            return;
        }
        for (reply, c) in job.answers {
            reply.send(Ok(c));
        }
        for reply in job.acks {
            reply.send(Ok(()));
        }
        if !job.syncs.is_empty() {
            let r = self.sync_all().map_err(|e| stopped.stop(e));
            for reply in job.syncs {
                reply.send(r.clone().map_err(StoreError::WriterStopped));
            }
        }
    }

    /// Executes one job: writes it out, answers the callers waiting for
    /// it, commits it to the index, then tells subscribers and answers the
    /// rest.
    fn finish(&mut self, mut job: Job, durable: bool, stopped: &Stopped, committed: &AtomicU64) {
        // The writer's state is now ahead of the disk: on an error, stop
        // taking writes.
        let written = stopped.reason().is_none()
            && self
                .write_out(&job, durable)
                .map_err(|e| stopped.stop(e))
                .is_ok();
        self.answer_waiting(&mut job, written, stopped);
        let ok = written && self.index_job(&job).map_err(|e| stopped.stop(e)).is_ok();
        if ok {
            // Heads move with the index, so that a head is always one the
            // store can serve (`Store::own_head` waits at the gate).
            self.shared
                .set_own_heads(std::mem::take(&mut job.own_heads));
        }
        // Done or failed, the commit is over: reads waiting for it go on
        // (after a failure, with the index as it is; the store has stopped
        // and recovery rebuilds the index from the segments at next open).
        self.shared.index_gate.indexed(job.seq);
        if ok
            && !job.commits.is_empty()
            && let Some(n) = self.notify.as_ref().filter(|n| n.subscribers() > 0)
        {
            // Never blocks: a full queue drops and tells subscribers,
            // who catch up from the store.
            n.on_next_batch(std::mem::take(&mut job.commits));
        }
        let seq = job.seq;
        self.answer_rest(job, stopped);
        if ok {
            committed.store(seq, Ordering::Release);
        }
    }

    /// Runs until the writer's end of the hand-over is dropped.
    pub fn run(mut self, jobs: HandoffReceiver<Job>, stopped: Stopped, committed: Arc<AtomicU64>) {
        crate::shared::IndexGate::exempt_this_thread();
        // However the loop ends, reads stop waiting for this thread.
        struct OpenGate(Arc<Shared>);
        impl Drop for OpenGate {
            fn drop(&mut self) {
                self.0.index_gate.open();
            }
        }
        let _open = OpenGate(self.shared.clone());
        let durable = self.durability == Durability::Durable;
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match jobs.recv(None) {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            self.finish(job, durable, &stopped, &committed);
            if !durable && stopped.reason().is_none() {
                // The fast mode makes what it acknowledged durable once the
                // writer has been idle for a moment (and at least once a
                // second under load, in `execute`), so a caller appending one
                // event at a time never waits for a sync.
                match jobs.recv(Some(FAST_IDLE_SYNC)) {
                    Ok(j) => next = Some(j),
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = self.sync_all() {
                            stopped.stop(e);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        if stopped.reason().is_none() {
            let _ = self.sync_all();
        }
        if let Some(n) = self.notify.take() {
            // Subscribers get what was announced, then the end of the stream.
            n.close();
        }
    }
}
