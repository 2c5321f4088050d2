//! State shared by the store's readers and its writer thread.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

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
    /// Where reads wait for the index to hold what was acknowledged.
    pub index_gate: IndexGate,
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

thread_local! {
    /// Set on the flusher thread, which must never wait on itself.
    static GATE_EXEMPT: Cell<bool> = const { Cell::new(false) };
}

/// The flusher answers an append once its pages are written (and, in the
/// durable mode, synced), and commits the index after: the index lags the
/// segments, which recovery replays, so the commit need not hold up the
/// caller. A read must still see every event acknowledged before it
/// started: it waits here, at most one index commit, when the index is
/// behind what has been answered.
#[derive(Default)]
pub(crate) struct IndexGate {
    /// The last job answered before its index commit.
    answered: AtomicU64,
    /// The last job whose index commit is done (or will never come).
    indexed: AtomicU64,
    lock: Mutex<()>,
    caught_up: Condvar,
}

impl IndexGate {
    /// Marks the flusher's thread: it never waits on the gate.
    pub fn exempt_this_thread() {
        GATE_EXEMPT.with(|e| e.set(true));
    }

    /// Called before job `seq`'s answers are sent, ahead of its index commit.
    pub fn answering(&self, seq: u64) {
        self.answered.fetch_max(seq, Ordering::AcqRel);
    }

    /// Called once job `seq`'s index commit is done or has failed (a failed
    /// commit stops the store; reads go on with the index as it is).
    pub fn indexed(&self, seq: u64) {
        self.indexed.fetch_max(seq, Ordering::AcqRel);
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.caught_up.notify_all();
    }

    /// Opens the gate for good (the flusher has ended).
    pub fn open(&self) {
        self.indexed(u64::MAX);
    }

    /// Waits until the index holds every job answered so far.
    pub fn wait(&self) {
        let want = self.answered.load(Ordering::Acquire);
        if self.indexed.load(Ordering::Acquire) >= want || GATE_EXEMPT.with(Cell::get) {
            return;
        }
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        while self.indexed.load(Ordering::Acquire) < want {
            g = self.caught_up.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod gate_tests {
    use super::IndexGate;
    use std::sync::Arc;

    #[test]
    fn a_read_waits_for_the_index_to_hold_what_was_answered() {
        let gate = Arc::new(IndexGate::default());
        gate.wait(); // nothing answered: no wait
        gate.answering(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let g = gate.clone();
        let reader = std::thread::spawn(move || {
            g.wait();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(50))
                .is_err(),
            "a read must not pass before job 1 is indexed"
        );
        gate.indexed(1);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the read passes once job 1 is indexed");
        reader.join().unwrap();
        // A later answer closes it again; opening ends every wait.
        gate.answering(2);
        let g = gate.clone();
        let reader = std::thread::spawn(move || g.wait());
        gate.open();
        reader.join().unwrap();
    }
}
