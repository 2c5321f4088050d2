//! State shared by the store's readers and its writer thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use xaeroflux_merkle::Hash;
use xaeroflux_types::{NewEvent, TopicId};

use crate::error::{Result, StoreError};
use crate::format::{PAGE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::index::Index;
use crate::segments::Segments;

/// A fast hasher for keys that are small integers or made of hashes (log
/// ids): the multiply-rotate of FxHash over integers, and over the first
/// eight bytes of a byte string (already uniform when it is a hash).
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        if let (Some(to), Some(from)) = (b.get_mut(..n), bytes.get(..n)) {
            to.copy_from_slice(from);
        }
        self.write_u64(u64::from_le_bytes(b));
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

/// A hash map keyed with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Hashes readers computed rather than read: nodes of not-yet-stored chunks
/// (log number, level, index) and roots of ranges that are not perfect
/// subtrees (log number, start, end). A leaf range's hash never changes once
/// its leaves exist, so entries never go stale; each map is cleared when full.
#[derive(Default)]
pub(crate) struct Memo {
    pub nodes: FastMap<(u32, u32, u64), Hash>,
    pub ranges: FastMap<(u32, u64, u64), Hash>,
}

pub(crate) type NodeMemo = Mutex<Memo>;
/// Entries of the node memo, at most.
pub(crate) const NODE_MEMO_MAX: usize = 1 << 14;

/// Why the store stopped taking writes, shared by the writer and flusher.
#[derive(Clone, Default)]
pub(crate) struct Stopped(Arc<Mutex<Option<Arc<StoreError>>>>);

impl Stopped {
    /// The error that stopped the store, if one did.
    pub fn reason(&self) -> Option<Arc<StoreError>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the store (the first reason is kept).
    pub fn stop(&self, why: StoreError) -> Arc<StoreError> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert_with(|| Arc::new(why)).clone()
    }
}

pub(crate) struct Shared {
    pub node_memo: NodeMemo,
    pub dir: PathBuf,
    pub index: Index,
    pub segments: Segments,
    pub key: SigningKey,
    pub author: [u8; 32],
    /// The size and root of each of the store's own logs, as of the last
    /// commit: kept by the flusher, so the head of an own log is known
    /// without reading the index.
    pub own_heads: Mutex<FastMap<TopicId, (u64, Hash)>>,
    /// Set when the writer stops after an error: nothing more is written.
    pub stopped: Stopped,
    /// The sealers of private topics.
    pub sealers: crate::seal::Sealers,
    /// Logs sync sessions are pulling into this store now (one session
    /// per log, so a log several peers offer at once comes once).
    pub pull_claims: xaeroflux_sync::PullClaims,
    /// Failpoints on the write path (armed only in tests).
    pub fails: crate::failpoints::Checks,
}

impl Shared {
    /// Largest canonical event a page holds.
    pub fn max_event_len(&self) -> usize {
        self.segments.page_size() - PAGE_HEADER_LEN - RECORD_HEADER_LEN
    }

    /// Refuses events that cannot be stored, before anything is written.
    pub fn check_events(&self, events: &[NewEvent]) -> Result<()> {
        let max = self.max_event_len();
        // A batch is mostly one topic: its sealer is asked once.
        let mut checked: Option<(TopicId, Arc<dyn crate::Sealer>)> = None;
        for ev in events {
            let len = if ev.is_encrypted() {
                let id = ev.topic().id();
                let sealer = match &checked {
                    Some((t, s)) if *t == id => s.clone(),
                    _ => {
                        let Some(sealer) = self.sealers.get(&id) else {
                            return Err(StoreError::InvalidArgument(format!(
                                "topic `{}` is private and this store holds no key to seal in it",
                                ev.topic().name()
                            )));
                        };
                        sealer.check().map_err(|why| {
                            StoreError::InvalidArgument(format!(
                                "cannot seal in private topic `{}`: {why}",
                                ev.topic().name()
                            ))
                        })?;
                        checked = Some((id, sealer.clone()));
                        sealer
                    }
                };
                xaeroflux_types::EVENT_HEADER_LEN + sealer.sealed_len(ev.payload().len())
            } else {
                ev.encoded_len()
            };
            if len > max {
                return Err(StoreError::EventTooLarge {
                    size: len,
                    max,
                    page_size: self.segments.page_size(),
                });
            }
        }
        Ok(())
    }

    /// The last committed head of the store's own log in `topic`.
    pub fn own_head(&self, topic: &TopicId) -> Option<(u64, Hash)> {
        let heads = self.own_heads.lock().unwrap_or_else(|p| p.into_inner());
        heads.get(topic).copied()
    }

    /// Records the committed heads of own logs.
    pub fn set_own_heads(&self, heads: impl IntoIterator<Item = (TopicId, u64, Hash)>) {
        let mut m = self.own_heads.lock().unwrap_or_else(|p| p.into_inner());
        for (t, size, root) in heads {
            m.insert(t, (size, root));
        }
    }
}
