//! What replication does to a store: pages of other authors' logs received
//! from peers, and fork evidence. These are for the sync layer, not for
//! applications, so they live on a trait of their own.

use crossbeam_channel::bounded;
use xaeroflux_reactive::Observable;
use xaeroflux_types::{ForkSide, ImportPage, LogId};

use super::Store;
use crate::error::{Result, StoreError};
use crate::fork::ForkProof;
use crate::receipts::LogHead;
use crate::subscribe::Commit;
use crate::writer::{Committed, Reply, Request, VerifiedPage};

/// Called once with the result of [`Replication::import_then`].
pub type ImportDone = Box<dyn FnOnce(Result<(LogHead, u64)>) + Send>;

/// How a store takes in what peers send. `Store` implements it; the sync
/// layer (`xaeroflux-net`, the XSP driver) is its user.
pub trait Replication {
    /// Appends a page of another author's log, received from a peer, once it
    /// is verified: the checkpoint is signed by the log's author for this
    /// log; the events start at or before the log's current size with
    /// consecutive seqs and fit a page; and the consistency proof holds
    /// from the tree with these events to the checkpoint's root. Events
    /// the log already holds (another session imported them first) are
    /// skipped: the rest must extend the held tree to the signed root.
    /// Otherwise it returns [`StoreError::Rejected`] and nothing changes.
    /// The checkpoint is kept (the newest per log) once the log reaches its
    /// size, and subscribers see the events like local ones. Returns the
    /// log's head and how many events were new.
    fn import(&self, page: ImportPage) -> Result<(LogHead, u64)>;

    /// [`Replication::import`] without waiting: `done` is called with the
    /// result once the page is committed (or refused), on the store's
    /// flusher thread, so it must not block. Pages started in order are
    /// applied in order.
    fn import_then(&self, page: ImportPage, done: ImportDone);

    /// Keeps a fork proof for `log`: `theirs`, a checkpoint a peer
    /// presented, signed by the log's author, that disagrees with what this
    /// store holds. `their_side`, when the peer gave it, is its tree at
    /// size `at` (its root and the proof from there to `theirs`); without
    /// it `at` is the size of `theirs` when that is not longer than ours.
    /// Refused unless `theirs` verifies under the author's key and what is
    /// kept proves the fork (except for a longer head of the store's own
    /// log, kept as two heads). Returns the proof and whether it was new.
    fn record_fork(
        &self,
        log: &LogId,
        theirs: &str,
        their_side: Option<(u64, ForkSide)>,
    ) -> Result<(ForkProof, bool)>;

    /// The raw commit announcements: one [`Commit`] (log, new size) per log
    /// per group commit, for building custom views. `None` on a read-only
    /// store. Applications want `Store::subscribe`.
    fn commits(&self) -> Option<Observable<Commit>>;
}

/// The head and number of new events of an import's commit.
fn head_of(log: LogId, c: Committed) -> Result<(LogHead, u64)> {
    let (log, size, root) = c
        .heads
        .first()
        .copied()
        .ok_or_else(|| crate::error::internal(format!("an import into {log} has no head")))?;
    Ok((LogHead { log, size, root }, c.events.len() as u64))
}

impl Store {
    /// Checks the checkpoint's signature here, on the caller's thread, and
    /// hands the page to the writer.
    fn send_import(&self, page: ImportPage, reply: Reply<Committed>) -> Result<()> {
        let checkpoint = page.checkpoint()?;
        self.request(Request::Import {
            page: VerifiedPage { page, checkpoint },
            reply,
        })
    }

    /// The fork proofs this store keeps.
    pub fn forks(&self) -> Result<Vec<ForkProof>> {
        crate::fork::load_all(&self.shared.dir)
    }
}

impl Replication for Store {
    fn import(&self, page: ImportPage) -> Result<(LogHead, u64)> {
        let log = page.log;
        let (tx, rx) = bounded(1);
        self.send_import(page, Reply::Chan(tx))?;
        let c = rx.recv().map_err(|_| StoreError::Closed)??;
        head_of(log, c)
    }

    fn import_then(&self, page: ImportPage, done: ImportDone) {
        let log = page.log;
        // The writer calls `reply` exactly once; if the request never
        // reaches it, `done` is called here instead.
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(done)));
        let from_writer = slot.clone();
        let reply = Reply::Call(Box::new(move |r: Result<Committed>| {
            let f = from_writer.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(f) = f {
                f(r.and_then(|c| head_of(log, c)));
            }
        }));
        if let Err(e) = self.send_import(page, reply) {
            let f = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(f) = f {
                f(Err(e));
            }
        }
    }

    fn record_fork(
        &self,
        log: &LogId,
        theirs: &str,
        their_side: Option<(u64, ForkSide)>,
    ) -> Result<(ForkProof, bool)> {
        let v = xaeroflux_merkle::NoteVerifier::new(&log.origin(), &log.author)?;
        let reject =
            |reason: String| StoreError::Rejected(xaeroflux_types::Rejection { log: *log, reason });
        let their_cp = v
            .verify_checkpoint(theirs)
            .map_err(|e| reject(format!("their checkpoint: {e}")))?;
        let ours = self.checkpoint(log)?;
        let (at, their_side) = match their_side {
            Some((at, side)) => (at, Some(side)),
            None if their_cp.size <= ours.checkpoint.size => (
                their_cp.size,
                Some(ForkSide {
                    root: their_cp.root,
                    proof: Vec::new(),
                }),
            ),
            None => (ours.checkpoint.size, None),
        };
        if at > ours.checkpoint.size {
            return Err(reject(format!("no fork evidence at size {at}, past ours")));
        }
        let our_side = ForkSide {
            root: self.root_at(log, at)?,
            proof: self.prove_consistency(log, at, ours.checkpoint.size)?.path,
        };
        let proof = ForkProof {
            log: *log,
            ours: ours.note,
            theirs: theirs.to_string(),
            at,
            our_side,
            their_side,
        };
        let proven = proof.verify()?;
        if !proven && (proof.their_side.is_some() || log.author != self.shared.author) {
            return Err(reject("their checkpoint does not prove a fork".into()));
        }
        let new = crate::fork::save(&self.shared.dir, &proof)?;
        Ok((proof, new))
    }

    fn commits(&self) -> Option<Observable<Commit>> {
        self.commit_notices()
    }
}
