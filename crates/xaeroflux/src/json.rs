//! The JSON shapes of receipts, logs, events, proofs and checkpoints, as
//! `xf --json` prints them and the MCP server returns them: one serde type
//! per record, hashes as lowercase hex, a proof's `path` a list of them.
//! The field names are an interface (scripts and agents read them); they
//! are listed in `docs/proofs-and-checkpoints.md`.
//!
//! ```
//! # fn main() -> Result<(), xaeroflux::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! use xaeroflux::{Core, json};
//! let core = Core::builder().open(dir.path())?;
//! let receipt = core.append(core.new_event(b"hello"))?;
//! let out = json::Receipt::from(&receipt);
//! assert_eq!(out.seq, 0);
//! assert_eq!(out.leaf_hash, json::hex(&receipt.leaf_hash));
//! # Ok(()) }
//! ```

use serde::{Deserialize, Serialize};
use xaeroflux_merkle::SignedCheckpoint;
use xaeroflux_store::{ConsistencyProof, EventRef, InclusionProof, LogId, LogInfo};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

fn hexes(hs: &[[u8; 32]]) -> Vec<String> {
    hs.iter().map(|h| hex(h)).collect()
}

/// An append's receipt: where the event went and the log's head after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Receipt {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The event's position in its log.
    pub seq: u64,
    /// The event's RFC 9162 leaf hash.
    pub leaf_hash: String,
    /// The log's size after the event.
    pub size: u64,
    /// The log's root at that size.
    pub root: String,
}

impl From<&xaeroflux_store::Receipt> for Receipt {
    fn from(r: &xaeroflux_store::Receipt) -> Self {
        Self {
            log: r.log.to_string(),
            seq: r.seq,
            leaf_hash: hex(&r.leaf_hash),
            size: r.size,
            root: hex(&r.root),
        }
    }
}

/// One log, as `xf logs --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Log {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The author's key.
    pub author: String,
    /// The topic's id.
    pub topic_id: String,
    /// The topic's name, when the store knows it.
    pub topic: Option<String>,
    /// Events in the log.
    pub size: u64,
    /// The log's root at that size.
    pub root: String,
}

impl From<&LogInfo> for Log {
    fn from(l: &LogInfo) -> Self {
        Self {
            log: l.log.to_string(),
            author: hex(&l.log.author),
            topic_id: l.log.topic.to_string(),
            topic: l.topic_name.clone(),
            size: l.size,
            root: hex(&l.root),
        }
    }
}

/// One event, as `xf dump --json` prints it: `bytes_hex` is the canonical
/// encoding the leaf hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Dump {
    /// Position in its log.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, as the author's clock had it.
    pub timestamp_ms: u64,
    /// `application`, `system` or `identity`.
    pub kind: String,
    /// The RFC 9162 leaf hash.
    pub leaf_hash: String,
    /// The canonical encoding.
    pub bytes_hex: String,
    /// The payload.
    pub payload_hex: String,
}

impl From<&EventRef<'_>> for Dump {
    fn from(ev: &EventRef<'_>) -> Self {
        Self {
            seq: ev.seq(),
            timestamp_ms: ev.timestamp_ms(),
            kind: ev.kind().as_str().to_string(),
            leaf_hash: hex(&ev.leaf_hash()),
            bytes_hex: hex(ev.canonical_bytes()),
            payload_hex: hex(ev.payload()),
        }
    }
}

/// An RFC 9162 inclusion proof: `path` leads from `leaf_hash` at `index`
/// to `root`, the root of the first `size` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Inclusion {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The event's seq.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The event's leaf hash.
    pub leaf_hash: String,
    /// The root at `size`.
    pub root: String,
    /// The audit path, leaf to root.
    pub path: Vec<String>,
}

impl From<&InclusionProof> for Inclusion {
    fn from(p: &InclusionProof) -> Self {
        Self {
            log: p.log.to_string(),
            index: p.index,
            size: p.size,
            leaf_hash: hex(&p.leaf_hash),
            root: hex(&p.root),
            path: hexes(&p.path),
        }
    }
}

/// An RFC 9162 consistency proof from size `from` to size `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Consistency {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The root at `from`.
    pub old_root: String,
    /// The root at `to`.
    pub new_root: String,
    /// The proof's hashes.
    pub path: Vec<String>,
}

impl From<&ConsistencyProof> for Consistency {
    fn from(p: &ConsistencyProof) -> Self {
        Self {
            log: p.log.to_string(),
            from: p.old_size,
            to: p.new_size,
            old_root: hex(&p.old_root),
            new_root: hex(&p.new_root),
            path: hexes(&p.path),
        }
    }
}

/// A log's signed checkpoint: the C2SP signed note and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Checkpoint {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The note's origin line (the log's name in the note).
    pub origin: String,
    /// The tree size it signs.
    pub size: u64,
    /// The root it signs.
    pub root: String,
    /// The whole signed note, exactly as C2SP specifies (`xf checkpoint`
    /// prints it).
    pub note: String,
}

impl Checkpoint {
    /// The JSON shape of `log`'s checkpoint `cp`.
    pub fn new(log: &LogId, cp: &SignedCheckpoint) -> Self {
        Self {
            log: log.to_string(),
            origin: cp.checkpoint.origin.clone(),
            size: cp.checkpoint.size,
            root: hex(&cp.checkpoint.root),
            note: cp.note.clone(),
        }
    }
}

/// A fork proof kept: two heads its author signed that disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Fork {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The size our checkpoint signs.
    pub our_size: u64,
    /// The size theirs signs.
    pub their_size: u64,
    /// The size at which the trees are compared.
    pub at: u64,
    /// Whether the two trees are shown to differ at `at`.
    pub proven: bool,
    /// Our signed note.
    pub ours: String,
    /// Theirs.
    pub theirs: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
