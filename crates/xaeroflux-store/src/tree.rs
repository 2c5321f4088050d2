//! How a log's MMR nodes are kept in the index: in chunks of four levels.
//!
//! A chunk of tier `t` holds 16 consecutive nodes of level `4t` (its inputs)
//! and the 15 nodes above them, up to its root at level `4t + 4`: 31 hashes,
//! written once, when the root exists. Nodes of incomplete chunks (the right
//! edge of the tree) are recomputed from the complete chunks below them or,
//! at tier 0, from the events. A proof thus costs a handful of lookups.

use std::cell::RefCell;

use heed::RoTxn;
use xaeroflux_merkle::{Hash, MerkleError, NodeSource, hash_node};

use crate::error::{StoreError, corrupt, internal};
use crate::index::{CHUNK_NODES, Index};
use crate::reader::leaf_at;
use crate::segments::Segments;
use crate::shared::{NODE_MEMO_MAX, NodeMemo};

/// Offset in a chunk of the nodes of relative level `r` (0..=4): 16 inputs,
/// then 8, 4, 2 and the root.
fn level_offset(r: u32) -> usize {
    32 - (32 >> r.min(5))
}

/// Slot of a chunk's root.
const ROOT_SLOT: usize = CHUNK_NODES - 1;

/// Tier, chunk number and slot of node `(level, index)`.
pub(crate) fn locate(level: u32, index: u64) -> (u8, u64, usize) {
    let tier = level / 4;
    let r = level % 4;
    let per = 16u64 >> r;
    (
        tier as u8,
        index / per,
        level_offset(r) + (index % per) as usize,
    )
}

/// Hash `slot` of a stored chunk.
fn slot_of(chunk: &[u8; CHUNK_NODES * 32], slot: usize) -> Option<Hash> {
    chunk.get(slot * 32..slot * 32 + 32)?.try_into().ok()
}

/// A complete chunk ready to be stored.
pub(crate) struct DoneChunk {
    pub tier: u8,
    pub chunk: u64,
    pub nodes: Box<[Hash; CHUNK_NODES]>,
}

#[derive(Clone)]
struct Buf {
    chunk: u64,
    nodes: Box<[Hash; CHUNK_NODES]>,
}

/// Tiers of chunks a tree of 2^64 leaves needs: 64 levels, 4 per tier.
const TIERS: usize = 16;

/// Collects the nodes a writer's frontier produces into chunks.
#[derive(Clone, Default)]
pub(crate) struct ChunkAssembler {
    tiers: [Option<Buf>; TIERS],
}

impl ChunkAssembler {
    /// The buffer of `tier`, holding `chunk` (cleared when it held another).
    fn buf(&mut self, tier: usize, chunk: u64) -> Option<&mut Buf> {
        let b = self.tiers.get_mut(tier)?.get_or_insert_with(|| Buf {
            chunk: u64::MAX,
            nodes: Box::new([[0u8; 32]; CHUNK_NODES]),
        });
        if b.chunk != chunk {
            b.chunk = chunk;
            b.nodes.fill([0u8; 32]);
        }
        Some(b)
    }

    fn set(&mut self, tier: usize, chunk: u64, slot: usize, hash: &Hash) {
        if let Some(n) = self.buf(tier, chunk).and_then(|b| b.nodes.get_mut(slot)) {
            *n = *hash;
        }
    }

    /// Takes one node from the frontier; a completed chunk goes to `done`.
    pub fn on_node(&mut self, level: u32, index: u64, hash: &Hash, done: &mut Vec<DoneChunk>) {
        let (tier, chunk, slot) = locate(level, index);
        self.set(tier as usize, chunk, slot, hash);
        if level > 0 && level.is_multiple_of(4) {
            // Also the root of chunk `index` of the tier below, which is now complete.
            let below = tier as usize - 1;
            self.set(below, index, ROOT_SLOT, hash);
            if let Some(b) = self.buf(below, index) {
                done.push(DoneChunk {
                    tier: tier - 1,
                    chunk: index,
                    nodes: b.nodes.clone(),
                });
            }
        }
    }

    /// The assembler of a tree of `size` leaves, its incomplete chunks
    /// filled from a node source.
    pub fn load<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Self, S::Error> {
        let mut a = Self::default();
        let mut tier = 0u32;
        while (tier as usize) < TIERS && (size >> (4 * tier)) > 0 {
            let inputs = size >> (4 * tier);
            let chunk = inputs / 16;
            let have = inputs % 16;
            a.buf(tier as usize, chunk);
            for r in 0..4u32 {
                let per = 16u64 >> r;
                for j in 0..(have >> r) {
                    let level = 4 * tier + r;
                    let h = src.node(level, chunk * per + j)?;
                    a.set(tier as usize, chunk, level_offset(r) + j as usize, &h);
                }
            }
            tier += 1;
        }
        Ok(a)
    }
}

/// The nodes of one log at one size, read from the index and the pages.
///
/// It remembers the chunks it has looked up and the right-edge nodes it has
/// computed, so one proof (path, leaf and root) reads each chunk once.
pub(crate) struct IndexNodes<'a> {
    index: &'a Index,
    txn: &'a RoTxn<'a>,
    segments: &'a Segments,
    log_no: u32,
    log: [u8; 64],
    /// The tree size nodes are read at (at most the log's size).
    size: u64,
    /// The log's size: what its pages may hold.
    log_size: u64,
    chunks: RefCell<Vec<ChunkEntry<'a>>>,
    memo: Option<&'a NodeMemo>,
}

/// A looked-up chunk: (tier, chunk number) and its bytes, if stored.
type ChunkEntry<'a> = ((u8, u64), Option<&'a [u8; CHUNK_NODES * 32]>);

/// Chunks remembered by one `IndexNodes`, at most (a proof needs a few per tier).
const CHUNK_CACHE: usize = 64;

impl<'a> IndexNodes<'a> {
    pub fn new(
        index: &'a Index,
        txn: &'a RoTxn<'a>,
        segments: &'a Segments,
        log_no: u32,
        log: [u8; 64],
        log_size: u64,
        size: u64,
    ) -> Self {
        Self {
            index,
            txn,
            segments,
            log_no,
            log,
            size: size.min(log_size),
            log_size,
            chunks: RefCell::new(Vec::new()),
            memo: None,
        }
    }

    /// Shares computed right-edge nodes through a store-wide memo.
    pub fn with_memo(mut self, memo: &'a NodeMemo) -> Self {
        self.memo = Some(memo);
        self
    }

    fn remembered(&self, level: u32, index: u64) -> Option<Hash> {
        let m = self.memo?.lock().unwrap_or_else(|p| p.into_inner());
        m.nodes.get(&(self.log_no, level, index)).copied()
    }

    fn remember(&self, level: u32, index: u64, h: Hash) {
        if let Some(memo) = self.memo {
            let mut m = memo.lock().unwrap_or_else(|p| p.into_inner());
            if m.nodes.len() >= NODE_MEMO_MAX {
                m.nodes.clear();
            }
            m.nodes.insert((self.log_no, level, index), h);
        }
    }

    fn chunk(
        &self,
        tier: u8,
        chunk: u64,
    ) -> Result<Option<&'a [u8; CHUNK_NODES * 32]>, StoreError> {
        if let Some((_, c)) = self
            .chunks
            .borrow()
            .iter()
            .find(|(k, _)| *k == (tier, chunk))
        {
            return Ok(*c);
        }
        let c = self.index.chunk(self.txn, self.log_no, tier, chunk)?;
        let mut cache = self.chunks.borrow_mut();
        if cache.len() >= CHUNK_CACHE {
            cache.clear();
        }
        cache.push(((tier, chunk), c));
        Ok(c)
    }
}

impl NodeSource for IndexNodes<'_> {
    type Error = StoreError;

    fn remembered_range(&self, start: u64, end: u64) -> Option<Hash> {
        let m = self.memo?.lock().unwrap_or_else(|p| p.into_inner());
        m.ranges.get(&(self.log_no, start, end)).copied()
    }

    fn remember_range(&self, start: u64, end: u64, hash: &Hash) {
        if end > self.size {
            return;
        }
        if let Some(memo) = self.memo {
            let mut m = memo.lock().unwrap_or_else(|p| p.into_inner());
            if m.ranges.len() >= NODE_MEMO_MAX {
                m.ranges.clear();
            }
            m.ranges.insert((self.log_no, start, end), *hash);
        }
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        let fits = level < 64
            && index
                .checked_add(1)
                .and_then(|i| i.checked_shl(level))
                .is_some_and(|end| end <= self.size && (end >> level) == index + 1);
        if !fits {
            return Err(MerkleError::MissingNode { level, index }.into());
        }
        let (tier, chunk, slot) = locate(level, index);
        if let Some(c) = self.chunk(tier, chunk)? {
            return slot_of(c, slot).ok_or_else(|| internal(format!("chunk slot {slot}")));
        }
        if let Some(h) = self.remembered(level, index) {
            return Ok(h);
        }
        if level == 0 {
            let h = leaf_at(
                self.index,
                self.txn,
                self.segments,
                self.log_no,
                &self.log,
                self.log_size,
                index,
            )?;
            self.remember(0, index, h);
            return Ok(h);
        }
        if level.is_multiple_of(4) {
            let below = self.chunk(tier - 1, index)?.ok_or_else(|| {
                corrupt(
                    self.index.data_file(),
                    0,
                    format!(
                        "log {} lacks MMR chunk {} of tier {}",
                        self.log_no,
                        index,
                        tier - 1
                    ),
                )
            })?;
            return slot_of(below, ROOT_SLOT).ok_or_else(|| internal("chunk root slot"));
        }
        let l = self.node(level - 1, 2 * index)?;
        let r = self.node(level - 1, 2 * index + 1)?;
        let h = hash_node(&l, &r);
        self.remember(level, index, h);
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xaeroflux_merkle::{Frontier, MemoryTree, hash_leaf};

    #[test]
    fn chunks_hold_exactly_the_tree_nodes() {
        let mut tree = MemoryTree::new();
        let mut f = Frontier::new();
        let mut a = ChunkAssembler::default();
        let mut done = Vec::new();
        for i in 0..5000u32 {
            let leaf = hash_leaf(&i.to_le_bytes());
            tree.push(leaf);
            f.push_with(leaf, |l, i, h| a.on_node(l, i, h, &mut done));
        }
        // 5000 leaves: 312 chunks of tier 0, 19 of tier 1, 1 of tier 2.
        assert_eq!(done.len(), 312 + 19 + 1);
        for c in &done {
            for r in 0..5u32 {
                let per = 16u64 >> r;
                for j in 0..per {
                    let level = 4 * c.tier as u32 + r;
                    let want = tree.node(level, c.chunk * per + j).unwrap();
                    assert_eq!(c.nodes[level_offset(r) + j as usize], want);
                }
            }
        }
        // Reloading the assembler from the tree gives the same buffers.
        let mut b = ChunkAssembler::load(&tree, 5000).unwrap();
        let mut done_a = Vec::new();
        let mut done_b = Vec::new();
        let mut f2 = f.clone();
        for i in 5000..9000u32 {
            let leaf = hash_leaf(&i.to_le_bytes());
            f.push_with(leaf, |l, i, h| a.on_node(l, i, h, &mut done_a));
            f2.push_with(leaf, |l, i, h| b.on_node(l, i, h, &mut done_b));
        }
        assert_eq!(done_a.len(), done_b.len());
        for (x, y) in done_a.iter().zip(&done_b) {
            assert_eq!((x.tier, x.chunk), (y.tier, y.chunk));
            assert_eq!(x.nodes, y.nodes);
        }
    }
}
