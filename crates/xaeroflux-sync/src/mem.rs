//! A whole store in memory: the same rules as the real store (every
//! imported page verified against its author's signed checkpoint, the
//! held prefix of a page skipped, checkpoints kept once reached), none of
//! its files. For tests, simulations and tools that sync into memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use xaeroflux_merkle::{Checkpoint, Hash, MemoryTree, NoteVerifier, sha256, sign_checkpoint};
use xaeroflux_types::{EventKind, LogId, Rejection, Topic, TopicId, encode_event};

use crate::StoreFault;
use crate::codec::{MAX_EVENT, PeakEntry, TopicEntry};
use crate::session::{Done, EventRange, StoreOp, SyncStore};

/// One log held in memory.
#[derive(Default)]
struct MemLog {
    events: Vec<Vec<u8>>,
    tree: MemoryTree,
    /// The newest checkpoint reached (another author's log), or the last
    /// one signed (the store's own).
    note: Option<(u64, String)>,
}

#[derive(Default)]
struct State {
    logs: BTreeMap<LogId, MemLog>,
    names: BTreeMap<TopicId, String>,
    forks: BTreeSet<(LogId, String)>,
    clock: u64,
    /// Told of every log that reaches a new checkpoint ([`MemStore::watch`]).
    watchers: Vec<crossbeam_channel::Sender<LogId>>,
}

impl State {
    /// Tells the watchers that `log` has a new checkpoint; those gone are
    /// dropped.
    fn changed(&mut self, log: LogId) {
        self.watchers.retain(|w| w.send(log).is_ok());
    }
}

/// A store in memory with an identity of its own, implementing
/// [`SyncStore`]: writes are applied when they are started.
pub struct MemStore {
    key: SigningKey,
    author: [u8; 32],
    state: Mutex<State>,
    claims: crate::PullClaims,
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStore")
            .field("author", &hex(&self.author))
            .finish()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn failed(why: &str) -> StoreFault {
    StoreFault::Failed(why.into())
}

impl MemStore {
    /// A store whose identity is derived from `seed` (the same seed, the
    /// same author: simulations replay exactly).
    pub fn with_seed(seed: u64) -> Self {
        let secret = sha256(&[b"xaeroflux memstore seed", &seed.to_le_bytes()]);
        let key = SigningKey::from_bytes(&secret);
        Self {
            author: key.verifying_key().to_bytes(),
            key,
            state: Mutex::new(State::default()),
            claims: crate::PullClaims::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an `Application` event to this store's own log in `topic`;
    /// timestamps come from a logical clock. Returns the log.
    pub fn append(&self, topic: &Topic, payload: &[u8]) -> LogId {
        let log = LogId {
            author: self.author,
            topic: topic.id(),
        };
        let mut st = self.state();
        st.clock += 1;
        let ts = st.clock;
        st.names.insert(topic.id(), topic.name().to_string());
        let l = st.logs.entry(log).or_default();
        let bytes = encode_event(l.tree.len(), ts, EventKind::Application, 0, payload);
        l.tree.push(xaeroflux_merkle::hash_leaf(&bytes));
        l.events.push(bytes);
        st.changed(log);
        log
    }

    /// The logs that reach a new checkpoint from now on, as they do: each
    /// append to the store's own log, each import that completes a pull
    /// to a checkpoint. What a live session's driver announces
    /// ([`crate::driver::RunOptions::live`]).
    pub fn watch(&self) -> crossbeam_channel::Receiver<LogId> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.state().watchers.push(tx);
        rx
    }

    /// Every log held, with its size and root.
    pub fn heads(&self) -> BTreeMap<LogId, (u64, Hash)> {
        self.state()
            .logs
            .iter()
            .map(|(id, l)| (*id, (l.tree.len(), l.tree.root())))
            .collect()
    }

    /// A log's root, if the store holds events of it.
    pub fn root(&self, log: &LogId) -> Option<Hash> {
        self.state().logs.get(log).map(|l| l.tree.root())
    }

    /// The fork evidence kept: each log and the peer's checkpoint note.
    pub fn forks(&self) -> Vec<(LogId, String)> {
        self.state().forks.iter().cloned().collect()
    }

    /// Applies a write now, as the real store's writer does.
    pub fn apply(&self, op: StoreOp) -> Result<u64, StoreFault> {
        match op {
            StoreOp::Import(page) => {
                let cp = page.checkpoint()?;
                if page.log.author == self.author {
                    return Err(Rejection {
                        log: page.log,
                        reason: "the store's own log is never imported".into(),
                    }
                    .into());
                }
                let mut st = self.state();
                let l = st.logs.entry(page.log).or_default();
                let checked = page.check(&cp, l.tree.frontier(), MAX_EVENT)?;
                for (bytes, leaf) in page.events.iter().skip(checked.skip).zip(&checked.leaves) {
                    l.events.push(bytes.clone());
                    l.tree.push(*leaf);
                }
                let newer = l.note.as_ref().is_none_or(|(s, _)| *s < cp.size);
                let reached = l.tree.len() == cp.size && newer;
                if reached {
                    l.note = Some((cp.size, page.note.clone()));
                }
                if let Some(name) = page
                    .topic_name
                    .filter(|n| Topic::id_of(n) == page.log.topic)
                {
                    st.names.entry(page.log.topic).or_insert(name);
                }
                if reached {
                    st.changed(page.log);
                }
                Ok(checked.leaves.len() as u64)
            }
            // The real store keeps both sides as a proof file; in memory the
            // peer's signed note is what simulations compare.
            StoreOp::RecordFork { log, theirs, .. } => {
                let v = NoteVerifier::new(&log.origin(), &log.author)
                    .map_err(|e| failed(&e.to_string()))?;
                v.verify_checkpoint(&theirs).map_err(|e| Rejection {
                    log,
                    reason: format!("their checkpoint: {e}"),
                })?;
                self.state().forks.insert((log, theirs));
                Ok(0)
            }
        }
    }

    fn with_log<T>(
        &self,
        log: &LogId,
        f: impl FnOnce(&MemLog) -> Result<T, StoreFault>,
    ) -> Result<T, StoreFault> {
        match self.state().logs.get(log) {
            Some(l) => f(l),
            None => Err(failed(&format!("unknown log {log}"))),
        }
    }
}

impl SyncStore for MemStore {
    fn author(&self) -> [u8; 32] {
        self.author
    }

    fn pull_claims(&self) -> Option<&crate::PullClaims> {
        Some(&self.claims)
    }

    fn topics(&self) -> Result<Vec<TopicEntry>, StoreFault> {
        let st = self.state();
        let ids: BTreeSet<TopicId> = st.logs.keys().map(|l| l.topic).collect();
        Ok(ids
            .into_iter()
            .map(|id| TopicEntry {
                id,
                name: st.names.get(&id).cloned().unwrap_or_default(),
                digest: [0; 32],
            })
            .collect())
    }

    fn peaks(&self, topic: &TopicId) -> Result<Vec<PeakEntry>, StoreFault> {
        let mut st = self.state();
        let mut out = Vec::new();
        for (id, l) in st.logs.iter_mut().filter(|(id, _)| id.topic == *topic) {
            if id.author == self.author && l.note.as_ref().is_none_or(|(s, _)| *s != l.tree.len()) {
                let cp = Checkpoint {
                    origin: id.origin(),
                    size: l.tree.len(),
                    root: l.tree.root(),
                };
                l.note = Some((cp.size, sign_checkpoint(&cp, &self.key).note));
            }
            if let Some((size, note)) = l.note.clone().filter(|(s, _)| *s > 0) {
                out.push(PeakEntry {
                    author: id.author,
                    size,
                    note,
                });
            }
        }
        Ok(out)
    }

    fn log_size(&self, log: &LogId) -> Result<u64, StoreFault> {
        Ok(self.state().logs.get(log).map_or(0, |l| l.tree.len()))
    }

    fn root_at(&self, log: &LogId, size: u64) -> Result<Hash, StoreFault> {
        self.with_log(log, |l| {
            l.tree.root_at(size).map_err(|e| failed(&e.to_string()))
        })
    }

    fn read_events(&self, log: &LogId, range: EventRange) -> Result<Vec<Vec<u8>>, StoreFault> {
        self.with_log(log, |l| {
            let events = (0u64..)
                .zip(&l.events)
                .skip(usize::try_from(range.from).unwrap_or(usize::MAX));
            range.take(events.map(|(seq, e)| Ok((seq, e.as_slice()))))
        })
    }

    fn prove_consistency(&self, log: &LogId, old: u64, new: u64) -> Result<Vec<Hash>, StoreFault> {
        self.with_log(log, |l| {
            l.tree
                .consistency_proof(old, new)
                .map_err(|e| failed(&e.to_string()))
        })
    }

    fn start(&self, op: StoreOp, done: Done) {
        done(self.apply(op));
    }
}
