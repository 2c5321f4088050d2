//! The incremental side of the tree: a Merkle Mountain Range frontier (its
//! peaks) and an in-memory tree that keeps every node.

use crate::{EMPTY_ROOT, Hash, MerkleError, NodeSource, hash_node, proof};

/// The peaks of a Merkle Mountain Range: all a writer needs to append leaves
/// and compute the RFC 9162 root, O(log n) hashes.
///
/// The peaks are the perfect subtrees of the binary decomposition of the size,
/// highest first; the root bags them right to left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The empty frontier.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier from its size and peaks (highest first).
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Result<Self, MerkleError> {
        if peaks.len() != size.count_ones() as usize {
            return Err(MerkleError::MalformedNote(format!(
                "a tree of size {size} has {} peaks, not {}",
                size.count_ones(),
                peaks.len()
            )));
        }
        Ok(Self { size, peaks })
    }

    /// Loads the frontier of a tree of `size` leaves from a node source.
    pub fn load<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Self, S::Error> {
        let mut peaks = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                peaks.push(src.node(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(Self { size, peaks })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, highest first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf hash; `on_node(level, index, hash)` sees every node the
    /// append completes, the leaf itself (level 0) first.
    pub fn push_with(&mut self, leaf: Hash, mut on_node: impl FnMut(u32, u64, &Hash)) {
        let mut h = leaf;
        let mut level = 0u32;
        let mut index = self.size;
        on_node(level, index, &h);
        let mut s = self.size;
        while s & 1 == 1 {
            // The size's trailing one bits are exactly the peaks that merge.
            let Some(left) = self.peaks.pop() else { break };
            h = hash_node(&left, &h);
            level += 1;
            index >>= 1;
            on_node(level, index, &h);
            s >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// The RFC 9162 root: the peaks bagged right to left.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(last) = it.next() else {
            return EMPTY_ROOT;
        };
        let mut r = *last;
        for p in it {
            r = hash_node(p, &r);
        }
        r
    }
}

/// A tree kept wholly in memory, every node stored: for tests, tools and
/// small logs.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.frontier.size()
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.push_with(leaf, |level, _, h| {
            let level = level as usize;
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            if let Some(l) = levels.get_mut(level) {
                l.push(*h);
            }
        });
    }

    /// The root at the current size.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The frontier at the current size.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        if size > self.len() {
            return Err(MerkleError::SizeOutOfRange {
                requested: size,
                available: self.len(),
            });
        }
        Ok(())
    }

    /// The root at an earlier size.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        proof::root_at(self, size)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_path(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(size)?;
        proof::inclusion_path(self, index, size)
    }

    /// The consistency proof between two sizes.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(new_size)?;
        proof::consistency_proof(self, old_size, new_size)
    }
}

impl NodeSource for MemoryTree {
    type Error = MerkleError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.levels
            .get(level as usize)
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }
}
