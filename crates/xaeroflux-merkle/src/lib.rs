//! RFC 9162 Merkle trees, inclusion and consistency proofs, and C2SP signed
//! checkpoints for Xaeroflux logs.
//!
//! This crate is pure: it does no I/O, so a peer, a binding or another tool can
//! verify what a Xaeroflux store hands out with nothing else.
//!
//! ```
//! use xaeroflux_merkle::{hash_leaf, verify_consistency, verify_inclusion, MemoryTree};
//!
//! let mut tree = MemoryTree::new();
//! for i in 0..10u32 {
//!     tree.push(hash_leaf(&i.to_le_bytes()));
//! }
//! let root = tree.root();
//! let path = tree.inclusion_path(3, 10).unwrap();
//! verify_inclusion(&hash_leaf(&3u32.to_le_bytes()), 3, 10, &path, &root).unwrap();
//!
//! let old_root = tree.root_at(6).unwrap();
//! let proof = tree.consistency_proof(6, 10).unwrap();
//! verify_consistency(6, 10, &old_root, &root, &proof).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checkpoint;
mod mmr;
mod proof;
pub mod reference;
mod statement;

pub use checkpoint::{
    Checkpoint, MAX_NOTE_LEN, NoteVerifier, SignedCheckpoint, key_id, log_origin, peek_checkpoint,
    sign_checkpoint, verifier_key_string,
};
pub use mmr::{Frontier, MemoryTree};
pub use proof::{
    NodeSource, consistency_proof, inclusion_path, mth, root_at, subtree_root, verify_consistency,
    verify_inclusion,
};
pub use statement::{sign_statement, verify_statement};

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node or a root.
pub type Hash = [u8; 32];

/// The root of the empty tree, `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Leaf hash of RFC 9162: `SHA-256(0x00 || data)`.
pub fn hash_leaf(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// Interior node hash of RFC 9162: `SHA-256(0x01 || left || right)`.
pub fn hash_node(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// Plain SHA-256, used for topic ids and key ids.
pub fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Errors of proof generation, proof verification and checkpoint handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// A leaf index at or beyond the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size beyond what the tree holds, or sizes in the wrong order.
    #[error("tree size {requested} is out of range (the tree holds {available})")]
    SizeOutOfRange {
        /// The size asked for.
        requested: u64,
        /// What is available.
        available: u64,
    },
    /// The proof does not lead to the expected root.
    #[error("proof does not verify: {0}")]
    InvalidProof(&'static str),
    /// A note or checkpoint that does not parse.
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// A note without a valid signature by the expected key.
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    /// A node the source could not produce.
    #[error("node (level {level}, index {index}) is not available")]
    MissingNode {
        /// Level of the node (0 = leaves).
        level: u32,
        /// Index of the node within its level.
        index: u64,
    },
}

/// Lowercase hex of a hash.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Parses 64 hex digits into a hash.
pub fn from_hex(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, sha256(&[]));
    }
}
