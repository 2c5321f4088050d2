//! What the sync protocol carries between stores: a run of another
//! author's events with what proves them, and the evidence of a fork. The
//! checks a receiver makes before it stores anything are here too, so
//! that the store and any other implementation of the protocol apply the
//! same rules.

use xaeroflux_merkle::{Checkpoint, Frontier, Hash, NoteVerifier, hash_leaf, verify_consistency};

use crate::event::decode_event;
use crate::log::LogId;

/// A run of another author's events received from a peer, with what proves
/// them: the signed checkpoint they lead to and the consistency proof from
/// the log's size after them to that checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPage {
    /// The log.
    pub log: LogId,
    /// The topic's name, kept if it hashes to the log's topic id.
    pub topic_name: Option<String>,
    /// Seq of the first event: at most the log's size as held.
    pub first_seq: u64,
    /// The events' canonical encodings, in order.
    pub events: Vec<Vec<u8>>,
    /// The checkpoint (a signed note by the log's author).
    pub note: String,
    /// RFC 9162 consistency proof from `first_seq + events.len()` to the
    /// checkpoint's size.
    pub proof: Vec<Hash>,
}

/// Why a page, a checkpoint or a fork claim was refused: nothing of it
/// may be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log {log}: {reason}")]
pub struct Rejection {
    /// The log.
    pub log: LogId,
    /// What did not hold.
    pub reason: String,
}

/// A page that holds against the log as held: how many of its first events
/// the log holds already, and the leaf hashes of the rest (which extend
/// the held tree to the checkpoint's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPage {
    /// Events at the start of the page the log holds already.
    pub skip: usize,
    /// Leaf hashes of the events after those.
    pub leaves: Vec<Hash>,
}

impl ImportPage {
    fn reject(&self, reason: impl Into<String>) -> Rejection {
        Rejection {
            log: self.log,
            reason: reason.into(),
        }
    }

    /// The checkpoint, once its note verifies under the log author's key
    /// and names this log.
    pub fn checkpoint(&self) -> Result<Checkpoint, Rejection> {
        let verifier = NoteVerifier::new(&self.log.origin(), &self.log.author)
            .map_err(|e| self.reject(format!("author key: {e}")))?;
        let cp = verifier
            .verify_checkpoint(&self.note)
            .map_err(|e| self.reject(format!("checkpoint: {e}")))?;
        if cp.origin != self.log.origin() {
            return Err(self.reject("the checkpoint names another log"));
        }
        Ok(cp)
    }

    /// Checks the page against the log as held (`frontier` is its tree, of
    /// `frontier.size()` events), changing nothing: the page starts at or
    /// before the held size, its events carry consecutive seqs, none is
    /// larger than `max_event` bytes, and the consistency proof holds from
    /// the held tree extended with the page's new events to `checkpoint`.
    /// Events the log already holds (another session stored them first)
    /// are skipped.
    pub fn check(
        &self,
        checkpoint: &Checkpoint,
        frontier: &Frontier,
        max_event: usize,
    ) -> Result<CheckedPage, Rejection> {
        let held = frontier.size();
        if self.first_seq > held {
            return Err(self.reject(format!(
                "the page starts at seq {} but the log has {held} events",
                self.first_seq
            )));
        }
        let skip = usize::try_from(held - self.first_seq)
            .unwrap_or(usize::MAX)
            .min(self.events.len());
        if skip == self.events.len() {
            return Ok(CheckedPage {
                skip,
                leaves: Vec::new(),
            });
        }
        let mut tree = frontier.clone();
        let mut leaves = Vec::with_capacity(self.events.len() - skip);
        for (bytes, want) in self.events.iter().skip(skip).zip(held..) {
            if bytes.len() > max_event {
                return Err(self.reject(format!("event {want} is larger than a page holds")));
            }
            let h = decode_event(bytes).map_err(|r| self.reject(format!("event {want}: {r}")))?;
            if h.seq() != want {
                return Err(self.reject(format!("event {want} carries seq {}", h.seq())));
            }
            let leaf = hash_leaf(bytes);
            tree.push(leaf);
            leaves.push(leaf);
        }
        let new_size = tree.size();
        if new_size > checkpoint.size {
            return Err(self.reject(format!(
                "the page runs to size {new_size}, past the checkpoint's {}",
                checkpoint.size
            )));
        }
        verify_consistency(
            new_size,
            checkpoint.size,
            &tree.root(),
            &checkpoint.root,
            &self.proof,
        )
        .map_err(|e| {
            self.reject(format!(
                "consistency proof from {new_size} to {}: {e}",
                checkpoint.size
            ))
        })?;
        Ok(CheckedPage { skip, leaves })
    }
}

/// One side of a fork: its tree's root at a size, and the consistency
/// proof from there to that side's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkSide {
    /// The root at the compared size.
    pub root: Hash,
    /// RFC 9162 consistency proof from that size to the side's checkpoint.
    pub proof: Vec<Hash>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, encode_event};
    use crate::topic::Topic;
    use xaeroflux_merkle::{MemoryTree, sign_checkpoint};

    fn page_of(n: u64, from: u64, to: u64) -> (ImportPage, Checkpoint, Vec<Hash>) {
        let secret = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let log = LogId {
            author: secret.verifying_key().to_bytes(),
            topic: Topic::id_of("t"),
        };
        let events: Vec<Vec<u8>> = (0..n)
            .map(|i| encode_event(i, i, EventKind::Application, 0, &i.to_le_bytes()))
            .collect();
        let mut tree = MemoryTree::new();
        let leaves: Vec<Hash> = events.iter().map(|e| hash_leaf(e)).collect();
        for l in &leaves {
            tree.push(*l);
        }
        let cp = Checkpoint {
            origin: log.origin(),
            size: n,
            root: tree.root(),
        };
        let signed = sign_checkpoint(&cp, &secret);
        let page = ImportPage {
            log,
            topic_name: None,
            first_seq: from,
            events: events[from as usize..to as usize].to_vec(),
            note: signed.note,
            proof: tree.consistency_proof(to, n).unwrap(),
        };
        (page, cp, leaves)
    }

    fn held(leaves: &[Hash]) -> Frontier {
        let mut f = Frontier::new();
        for l in leaves {
            f.push(*l);
        }
        f
    }

    #[test]
    fn a_page_extending_the_held_tree_is_accepted_and_overlap_skipped() {
        let (page, cp, leaves) = page_of(10, 2, 6);
        assert_eq!(page.checkpoint().unwrap(), cp);
        let ok = page.check(&cp, &held(&leaves[..2]), 1 << 20).unwrap();
        assert_eq!((ok.skip, ok.leaves.as_slice()), (0, &leaves[2..6]));
        let ok = page.check(&cp, &held(&leaves[..4]), 1 << 20).unwrap();
        assert_eq!((ok.skip, ok.leaves.as_slice()), (2, &leaves[4..6]));
        let ok = page.check(&cp, &held(&leaves[..8]), 1 << 20).unwrap();
        assert_eq!((ok.skip, ok.leaves.len()), (4, 0));
    }

    #[test]
    fn gaps_wrong_proofs_big_events_and_other_logs_are_refused() {
        let (page, cp, leaves) = page_of(10, 2, 6);
        assert!(page.check(&cp, &held(&leaves[..1]), 1 << 20).is_err());
        assert!(page.check(&cp, &held(&leaves[..2]), 10).is_err());
        let mut bad = page.clone();
        bad.proof.pop();
        assert!(bad.check(&cp, &held(&leaves[..2]), 1 << 20).is_err());
        let mut bad = page.clone();
        bad.events.swap(0, 1);
        assert!(bad.check(&cp, &held(&leaves[..2]), 1 << 20).is_err());
        let mut bad = page.clone();
        bad.log.topic = Topic::id_of("other");
        assert!(bad.checkpoint().is_err());
    }
}
