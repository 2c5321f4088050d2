//! State shared by the store's readers and its writer thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use xaeroflux_merkle::Hash;

use ed25519_dalek::SigningKey;

use crate::error::{Result, StoreError};
use crate::event::NewEvent;
use crate::format::{PAGE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::index::Index;
use crate::segments::Segments;

/// A fast hasher for small integer keys (the multiply-rotate of FxHash).
#[derive(Default)]
pub(crate) struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

type MixMap<K> = HashMap<K, Hash, std::hash::BuildHasherDefault<MixHasher>>;

/// Hashes readers computed rather than read: nodes of not-yet-stored chunks
/// (log number, level, index) and roots of ranges that are not perfect
/// subtrees (log number, start, end). A leaf range's hash never changes once
/// its leaves exist, so entries never go stale; each map is cleared when full.
#[derive(Default)]
pub(crate) struct Memo {
    pub nodes: MixMap<(u32, u32, u64)>,
    pub ranges: MixMap<(u32, u64, u64)>,
}

pub(crate) type NodeMemo = Mutex<Memo>;
/// Entries of the node memo, at most.
pub(crate) const NODE_MEMO_MAX: usize = 1 << 14;

pub(crate) struct Shared {
    pub node_memo: NodeMemo,
    pub dir: PathBuf,
    pub index: Index,
    pub segments: Segments,
    pub key: SigningKey,
    pub author: [u8; 32],
}

impl Shared {
    /// Largest canonical event a page holds.
    pub fn max_event_len(&self) -> usize {
        self.segments.page_size() - PAGE_HEADER_LEN - RECORD_HEADER_LEN
    }

    /// Refuses events that cannot be stored, before anything is written.
    pub fn check_events(&self, events: &[NewEvent]) -> Result<()> {
        let max = self.max_event_len();
        for ev in events {
            if ev.encoded_len() > max {
                return Err(StoreError::EventTooLarge {
                    size: ev.encoded_len(),
                    max,
                    page_size: self.segments.page_size(),
                });
            }
        }
        Ok(())
    }
}
