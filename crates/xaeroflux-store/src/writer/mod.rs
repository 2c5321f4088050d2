//! The write path: one writer thread applies what reaches it through its
//! channel to the logs' in-memory state and packs each group commit into a
//! job; one flusher thread writes the job's pages, syncs them once, commits
//! the index once and answers. The two overlap, so the next group is built
//! while the previous one is being made durable. At open, the writer brings
//! the index up to date from the segments' tail.
//!
//! - `request`: what reaches the writer, and how it answers;
//! - `log_state`: each log's in-memory state and its open page;
//! - `page`: the open page buffer and the bytes handed to the flusher;
//! - `append`, `import`: the two ways events enter a log;
//! - `handoff`, `flusher`: the job slot and the thread that makes jobs durable;
//! - `recovery`: the replay at open.

mod append;
mod flusher;
mod handoff;
mod import;
mod log_state;
mod page;
mod recovery;
mod request;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Receiver;
use xaeroflux_merkle::NoteVerifier;
use xaeroflux_reactive::Subject;
use xaeroflux_types::{EventKind, LogId};

use crate::Durability;
use crate::error::{Result, StoreError};
use crate::index::PageLoc;
use crate::shared::Stopped;
use crate::shared::{FastMap, Shared};
use crate::subscribe::Commit;
use flusher::{Flusher, Job};
use log_state::LogState;
pub(crate) use request::{Committed, Reply, Request, VerifiedPage};

/// Events taken into one group commit, at most.
const MAX_GROUP_EVENTS: usize = 16 * 1024;

pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// Logs kept in memory between jobs, at most (more while in flight).
    max_logs: usize,
    /// Number of the job being built.
    job_seq: u64,
    /// The last job the flusher committed.
    committed: Arc<AtomicU64>,
    logs: FastMap<LogId, LogState>,
    touched: Vec<LogId>,
    next_page: PageLoc,
    next_log_no: u32,
    stopped: Stopped,
    flusher: Option<Flusher>,
    /// The sealed payload of the event being appended, reused.
    seal_buf: Vec<u8>,
    clock: crate::options::Clock,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        durability: Durability,
        max_logs: usize,
        notify: Option<Subject<Commit>>,
        clock: crate::options::Clock,
    ) -> Result<Self> {
        let txn = shared.index.read_txn()?;
        let next_page = shared.index.next_page(&txn)?;
        let next_log_no = shared.index.next_log_no(&txn)?;
        drop(txn);
        Ok(Self {
            flusher: Some(Flusher::new(shared.clone(), notify, durability)),
            stopped: shared.stopped.clone(),
            shared,
            max_logs: max_logs.max(1),
            job_seq: 0,
            committed: Arc::new(AtomicU64::new(0)),
            logs: FastMap::default(),
            touched: Vec::new(),
            next_page,
            next_log_no,
            seal_buf: Vec::new(),
            clock,
        })
    }

    /// Finishes a job: the open pages and records of every touched log.
    fn seal_job(&mut self, job: &mut Job) {
        let author = self.shared.author;
        for id in self.touched.drain(..) {
            let Some(st) = self.logs.get_mut(&id) else {
                continue;
            };
            st.touched = false;
            if let Some(open) = st.open.as_mut() {
                job.writes.push(open.take_write(&id));
                job.pages
                    .push((open.loc, open.entry(st.log_no), open.first_ts));
            }
            job.records.push((id, st.record()));
            job.commits.push(Commit {
                log: id,
                size: st.size,
                most_urgent: std::mem::replace(&mut st.class, EventKind::Application),
            });
            if id.author == author {
                job.own_heads.push((id.topic, st.size, st.frontier.root()));
            }
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
        let now = self.clock.now_ms();
        for req in batch {
            match req {
                Request::Append { events, reply } => self.append(events, reply, now, &mut job),
                Request::PutCheckpoint {
                    log,
                    size,
                    note,
                    reply,
                } => self.put_checkpoint(log, size, note, reply, &mut job),
                Request::Sync { reply } => job.syncs.push(reply),
                Request::Import { page, reply } => self.import_request(page, reply, &mut job),
            }
        }
        self.seal_job(&mut job);
        job
    }

    fn put_checkpoint(
        &mut self,
        log: LogId,
        size: u64,
        note: String,
        reply: Reply<()>,
        job: &mut Job,
    ) {
        match self.newer_checkpoint(log, size) {
            Ok(Some(log_no)) => {
                let pending_newer = job
                    .checkpoints
                    .iter()
                    .any(|(n, _, s, _)| *n == log_no && *s >= size);
                if !pending_newer {
                    job.checkpoints.retain(|(n, _, _, _)| *n != log_no);
                    job.checkpoints.push((log_no, log, size, note));
                }
                job.acks.push(reply);
            }
            Ok(None) => job.acks.push(reply),
            Err(e) => reply.send(Err(e)),
        }
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

    /// Gives the flusher the catalog it appends topic names and received
    /// checkpoints to (set at open, after recovery).
    pub fn set_catalog(&mut self, catalog: crate::catalog::Catalog) {
        if let Some(f) = self.flusher.as_mut() {
            f.catalog = Some(catalog);
        }
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
        let (job_tx, job_rx) = handoff::handoff::<Job>();
        let stopped = self.stopped.clone();
        let committed = self.committed.clone();
        let flusher = std::thread::Builder::new()
            .name("xaeroflux-flush".into())
            .spawn(move || flusher.run(job_rx, stopped, committed));
        let flusher = match flusher {
            Ok(h) => Some(h),
            Err(e) => {
                self.stopped.stop(StoreError::Thread(e));
                None
            }
        };
        while let Ok(first) = rx.recv() {
            let mut n = first.events();
            let mut batch = vec![first];
            while n < MAX_GROUP_EVENTS {
                match rx.try_recv() {
                    Ok(r) => {
                        n += r.events();
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            let job = self.build_job(batch);
            self.evict();
            if let Err(job) = job_tx.send(job) {
                // The flusher is gone: answer here.
                let why = self
                    .stopped
                    .stop(StoreError::Internal("the flusher thread stopped".into()));
                for (reply, _) in job.answers {
                    reply.stopped(&why);
                }
            }
        }
        drop(job_tx);
        if let Some(h) = flusher {
            let _ = h.join();
        }
    }
}
