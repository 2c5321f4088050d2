//! What the store hands back: receipts of appends, log heads and infos,
//! proofs with what they prove, and reports.

use xaeroflux_merkle::{Hash, verify_consistency, verify_inclusion};
use xaeroflux_types::LogId;

use crate::error::{Result, StoreError};

/// What an append of one event returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The log the event went to.
    pub log: LogId,
    /// Its position.
    pub seq: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// Size of the log after it.
    pub size: u64,
    /// Root of the log at that size.
    pub root: Hash,
}

/// One event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReceipt {
    /// The log.
    pub log: LogId,
    /// Position.
    pub seq: u64,
    /// Leaf hash.
    pub leaf_hash: Hash,
}

/// A log's head: its size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// The log.
    pub log: LogId,
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// What `append_batch` returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchReceipt {
    /// Each event, in the order given.
    pub events: Vec<EventReceipt>,
    /// Each log the batch touched, after the batch.
    pub heads: Vec<LogHead>,
}

/// What the store knows of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// The log.
    pub log: LogId,
    /// The topic name, when known.
    pub topic_name: Option<String>,
    /// Number of events.
    pub size: u64,
    /// Root at that size.
    pub root: Hash,
}

/// An inclusion proof with what it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The log.
    pub log: LogId,
    /// Leaf index (the event's seq).
    pub index: u64,
    /// Tree size the proof is for.
    pub size: u64,
    /// The event's leaf hash.
    pub leaf_hash: Hash,
    /// Root at `size`.
    pub root: Hash,
    /// RFC 9162 audit path.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the proof with the pure verifier.
    pub fn verify(&self) -> Result<()> {
        Ok(verify_inclusion(
            &self.leaf_hash,
            self.index,
            self.size,
            &self.path,
            &self.root,
        )?)
    }
}

/// A consistency proof with what it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The log.
    pub log: LogId,
    /// Older size.
    pub old_size: u64,
    /// Newer size.
    pub new_size: u64,
    /// Root at the older size.
    pub old_root: Hash,
    /// Root at the newer size.
    pub new_root: Hash,
    /// RFC 9162 consistency proof.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks the proof with the pure verifier.
    pub fn verify(&self) -> Result<()> {
        Ok(verify_consistency(
            self.old_size,
            self.new_size,
            &self.old_root,
            &self.new_root,
            &self.path,
        )?)
    }
}

/// What `verify` checked and found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Logs checked.
    pub logs: u64,
    /// Events read and hashed.
    pub events: u64,
    /// Pages whose headers and records were checked.
    pub pages: u64,
    /// Sealed pages whose page-tree root was recomputed.
    pub sealed_pages: u64,
    /// Index chunks compared with the recomputed tree.
    pub chunks: u64,
    /// Log roots recomputed from the events and compared with the index.
    pub roots: u64,
    /// Stored checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Records of the catalog (`catalog.xfcat`) read and checked.
    pub catalog_records: u64,
    /// What is wrong; empty when all is well.
    pub problems: Vec<StoreError>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a writer's open took back from the catalog (`catalog.xfcat`) into
/// the index: topic names and other authors' checkpoints that the index
/// had lost (all of them after `Store::repair`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogRestore {
    /// Topic names put back.
    pub topic_names: u64,
    /// Checkpoints put back (each checked: signature, size, root).
    pub checkpoints: u64,
    /// Where a damaged catalog was moved by a repair (its whole records
    /// before the damage were kept).
    pub set_aside: Option<std::path::PathBuf>,
}

/// How far a long pass over the store (`verify`, the rebuild of `repair`)
/// has come, for a progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events checked (or replayed) so far.
    pub events: u64,
    /// Bytes of pages read so far.
    pub bytes: u64,
    /// Bytes the pass will read in all.
    pub total_bytes: u64,
}

/// Sizes of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Stats {
    /// Logs.
    pub logs: u64,
    /// Events in all logs.
    pub events: u64,
    /// Segment files.
    pub segments: u64,
    /// Pages in use.
    pub pages: u64,
    /// Of which sealed.
    pub sealed_pages: u64,
    /// Bytes of segment files on disk.
    pub segment_bytes: u64,
    /// Bytes of the index on disk.
    pub index_bytes: u64,
    /// Page size.
    pub page_size: u32,
    /// Pages per segment.
    pub segment_pages: u32,
}
