//! Roots, proofs and checkpoints of the logs a store holds.

use crossbeam_channel::bounded;
use xaeroflux_merkle::{
    Checkpoint, EMPTY_ROOT, Hash, NodeSource, NoteVerifier, SignedCheckpoint, consistency_proof,
    inclusion_path, root_at, sign_checkpoint,
};
use xaeroflux_types::{LogId, TopicId};

use super::Store;
use crate::error::{Result, StoreError};
use crate::receipts::{ConsistencyProof, InclusionProof, LogHead};
use crate::writer::{Reply, Request};

impl Store {
    /// The root of a log at its current size.
    pub fn mmr_root(&self, log: &LogId) -> Result<Hash> {
        Ok(self.log_info(log)?.root)
    }

    /// The head (size and root) of the store's own log in `topic` as of the
    /// last commit; the empty log's head when there is none. A writable
    /// store keeps these in memory, so this never fails and never reads
    /// the index (it waits, at most one index commit, for the index to
    /// hold every append already answered); a read-only one reads the
    /// index, where the writer process commits, and falls back to what it
    /// saw last.
    pub fn own_head(&self, topic: &TopicId) -> LogHead {
        self.shared.index_gate.wait();
        if self.read_only {
            let _ = self.refresh_own_head(topic);
        }
        let (size, root) = self.shared.own_head(topic).unwrap_or((0, EMPTY_ROOT));
        LogHead {
            log: LogId {
                author: self.shared.author,
                topic: *topic,
            },
            size,
            root,
        }
    }

    fn refresh_own_head(&self, topic: &TopicId) -> Result<()> {
        let log = LogId {
            author: self.shared.author,
            topic: *topic,
        };
        let txn = self.txn()?;
        if let Some(rec) = self.shared.index.log_record(&txn, &log)? {
            let root = root_at(&self.nodes(&txn, &log, &rec, rec.size), rec.size)?;
            self.shared.set_own_heads([(*topic, rec.size, root)]);
        }
        Ok(())
    }

    /// Reads the heads of the store's own logs at open.
    pub(super) fn load_own_heads(&self) -> Result<()> {
        let txn = self.txn()?;
        let mut heads = Vec::new();
        for (log, rec) in self.shared.index.logs(&txn)? {
            if log.author == self.shared.author {
                let root = root_at(&self.nodes(&txn, &log, &rec, rec.size), rec.size)?;
                heads.push((log.topic, rec.size, root));
            }
        }
        self.shared.set_own_heads(heads);
        Ok(())
    }

    /// The root of a log at an earlier size.
    pub fn root_at(&self, log: &LogId, size: u64) -> Result<Hash> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.check_size(log, &rec, size)?;
        root_at(&self.nodes(&txn, log, &rec, size), size)
    }

    /// An RFC 9162 inclusion proof of event `seq` in the log at `size`.
    pub fn prove_inclusion(&self, log: &LogId, seq: u64, size: u64) -> Result<InclusionProof> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.check_size(log, &rec, size)?;
        if seq >= size {
            return Err(StoreError::SeqOutOfRange {
                log: log.to_string(),
                seq,
                size,
            });
        }
        let nodes = self.nodes(&txn, log, &rec, size);
        Ok(InclusionProof {
            log: *log,
            index: seq,
            size,
            leaf_hash: nodes.node(0, seq)?,
            root: root_at(&nodes, size)?,
            path: inclusion_path(&nodes, seq, size)?,
        })
    }

    /// An RFC 9162 consistency proof between two sizes of a log.
    pub fn prove_consistency(
        &self,
        log: &LogId,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.check_size(log, &rec, new_size)?;
        if old_size > new_size {
            return Err(StoreError::InvalidArgument(format!(
                "old size {old_size} is larger than new size {new_size}"
            )));
        }
        let nodes = self.nodes(&txn, log, &rec, new_size);
        Ok(ConsistencyProof {
            log: *log,
            old_size,
            new_size,
            old_root: root_at(&nodes, old_size)?,
            new_root: root_at(&nodes, new_size)?,
            path: consistency_proof(&nodes, old_size, new_size)?,
        })
    }

    /// The latest checkpoint of a log: signed now for the store's own logs
    /// (and kept in the index), the stored one for others'.
    pub fn checkpoint(&self, log: &LogId) -> Result<SignedCheckpoint> {
        let (rec, stored) = {
            let txn = self.txn()?;
            let rec = self.record(&txn, log)?;
            (rec, self.shared.index.checkpoint(&txn, rec.log_no)?)
        };
        if log.author != self.shared.author {
            let note = stored.ok_or_else(|| StoreError::NoCheckpoint(log.to_string()))?;
            let v = NoteVerifier::new(&log.origin(), &log.author)?;
            let checkpoint = v.verify_checkpoint(&note)?;
            return Ok(SignedCheckpoint { checkpoint, note });
        }
        let cp = Checkpoint {
            origin: log.origin(),
            size: rec.size,
            root: self.root_at(log, rec.size)?,
        };
        let signed = sign_checkpoint(&cp, &self.shared.key);
        // Keeping the note is a cache (restarts serve the same one). A
        // store whose writer stopped after an error still serves what it
        // holds, signed: the note is then not kept, and not needed.
        let writing = self.writer.is_some() && self.shared.stopped.reason().is_none();
        if stored.as_deref() != Some(signed.note.as_str()) && writing {
            let (tx, rx) = bounded(1);
            let kept = self
                .request(Request::PutCheckpoint {
                    log: *log,
                    size: rec.size,
                    note: signed.note.clone(),
                    reply: Reply::Chan(tx),
                })
                .and_then(|()| rx.recv().map_err(|_| StoreError::Closed)?);
            match kept {
                Err(e) if !e.is_terminal() => return Err(e),
                _ => {}
            }
        }
        Ok(signed)
    }
}
