//! A document over a topic: its state folded from the topic's operation
//! events, handles that append operations, snapshots, and a watch on
//! changes.

use std::collections::BTreeMap;
use std::time::Duration;

use xaeroflux::store::{Filter, Since, Subscription};
use xaeroflux::{Core, LogId, Receipt, Topic};

use crate::error::CrdtError;
use crate::op::{Op, OpBody};
use crate::snapshot::{self, Snapshot};
use crate::types::{CrdtKind, DocState, OpId, Stamp};

/// Operations applied since the last snapshot after which opening or
/// refreshing a document writes a new one.
pub const SNAPSHOT_EVERY: u64 = 10_000;

/// Per log of the topic, the seq after the last event folded in.
pub type Frontier = BTreeMap<LogId, u64>;

/// A document: the CRDTs whose operations are the events of one topic.
///
/// Every type merges order-independently (commutative, associative and
/// idempotent), so the state is a pure function of the set of operations:
/// an operation replicated late, whose timestamp puts it in the middle of
/// the topic view, is folded in where it arrives, with no refold. The
/// document keeps, per log, how far it has read, and reads only what is new.
///
/// ```
/// use xaeroflux::{Core, Topic};
/// use xaeroflux_crdt::Doc;
///
/// # fn main() -> Result<(), xaeroflux_crdt::CrdtError> {
/// # let dir = tempfile::tempdir().unwrap();
/// let core = Core::builder().open(dir.path())?;
/// let mut doc = Doc::open(&core, &Topic::new("alice")?)?;
/// doc.map("profile").set("name", "Alice")?;
/// doc.counter("likes").add(3)?;
/// doc.counter("likes").add(-1)?;
/// doc.set("followers").insert("bob")?;
/// assert_eq!(doc.state().counters["likes"].value(), 2);
/// assert_eq!(
///     doc.to_json().to_string(),
///     r#"{"followers":["bob"],"likes":2,"profile":{"name":"Alice"}}"#
/// );
/// # Ok(()) }
/// ```
pub struct Doc<'c> {
    core: &'c Core,
    topic: Topic,
    state: DocState,
    frontier: Frontier,
    since_snapshot: u64,
    malformed: u64,
    folded: u64,
}

impl std::fmt::Debug for Doc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doc")
            .field("topic", &self.topic.name())
            .field("logs", &self.frontier.len())
            .finish()
    }
}

impl<'c> Doc<'c> {
    /// Opens the document of `topic`: from its cached snapshot when there
    /// is a valid one (see [`Doc::save_snapshot`]), then the operations
    /// committed since. A snapshot that does not match the store (damaged,
    /// or of logs the store no longer holds as they were) is set aside and
    /// the document is replayed.
    pub fn open(core: &'c Core, topic: &Topic) -> Result<Self, CrdtError> {
        let mut doc = Self {
            core,
            topic: topic.clone(),
            state: DocState::default(),
            frontier: Frontier::new(),
            since_snapshot: 0,
            malformed: 0,
            folded: 0,
        };
        if let Some(snap) = snapshot::load(core, topic)? {
            doc.state = snap.state;
            doc.frontier = snap.frontier;
        }
        doc.refresh()?;
        Ok(doc)
    }

    /// Opens the document from the operations alone, ignoring any snapshot
    /// (the baseline the snapshot is measured against).
    pub fn replay(core: &'c Core, topic: &Topic) -> Result<Self, CrdtError> {
        let mut doc = Self {
            core,
            topic: topic.clone(),
            state: DocState::default(),
            frontier: Frontier::new(),
            since_snapshot: 0,
            malformed: 0,
            folded: 0,
        };
        doc.fold_new()?;
        Ok(doc)
    }

    /// The state as it was at `at_ms`: the operations stamped before that
    /// moment, read through the index by time (only those are read).
    /// Timestamps are the authors' clocks, so this is the state as the
    /// authors' clocks put it, not as this replica received it.
    pub fn state_at(core: &Core, topic: &Topic, at_ms: u64) -> Result<DocState, CrdtError> {
        let mut state = DocState::default();
        let events = core.iter_topic_range(topic, 0, at_ms);
        for read in core.read_events(events) {
            let read = read?;
            let Some(op) = read.plaintext().filter(|p| Op::is_op(p)) else {
                continue;
            };
            let Ok(op) = Op::decode(op) else { continue };
            let ev = &read.event;
            let stamp = Stamp {
                timestamp_ms: ev.timestamp_ms(),
                id: OpId {
                    author: *ev.author(),
                    seq: ev.seq(),
                },
            };
            state.apply(stamp, &op);
        }
        Ok(state)
    }

    /// Folds in the operations committed since the last read (local or
    /// replicated); returns how many. Writes a snapshot once
    /// [`SNAPSHOT_EVERY`] operations were folded since the last.
    pub fn refresh(&mut self) -> Result<u64, CrdtError> {
        let n = self.fold_new()?;
        if self.since_snapshot >= SNAPSHOT_EVERY && !self.core.is_read_only() {
            self.save_snapshot()?;
        }
        Ok(n)
    }

    fn fold_new(&mut self) -> Result<u64, CrdtError> {
        let frontier = &self.frontier;
        let events = self.core.iter_topic_from(&self.topic.id(), |log| {
            frontier.get(log).copied().unwrap_or(0)
        });
        let mut seen: Vec<(LogId, u64)> = Vec::new();
        let mut n = 0;
        for read in self.core.read_events(events) {
            let read = read?;
            let ev = &read.event;
            seen.push((ev.log_id(), ev.seq() + 1));
            let id = OpId {
                author: *ev.author(),
                seq: ev.seq(),
            };
            // A private topic this store holds no key for, or another event.
            let Some(payload) = read.plaintext().filter(|p| Op::is_op(p)) else {
                self.state.pass_over(id);
                continue;
            };
            let Ok(op) = Op::decode(payload) else {
                self.malformed += 1;
                self.state.pass_over(id);
                continue;
            };
            let stamp = Stamp {
                timestamp_ms: ev.timestamp_ms(),
                id,
            };
            self.state.apply(stamp, &op);
            n += 1;
        }
        for (log, next) in seen {
            let e = self.frontier.entry(log).or_insert(0);
            *e = (*e).max(next);
        }
        self.since_snapshot += n;
        self.folded += n;
        Ok(n)
    }

    /// The state as folded so far.
    pub fn state(&self) -> &DocState {
        &self.state
    }

    /// Per log, the seq after the last event folded in.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Operations this handle has read and folded since it was opened
    /// (those a snapshot covered are not counted: they were not read).
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// Operation events that did not decode (skipped, in every replica).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The state as one JSON object; see [`DocState::to_json`].
    pub fn to_json(&self) -> serde_json::Value {
        self.state.to_json()
    }

    /// Writes the state and frontier as this topic's snapshot in the store
    /// directory (`cache/crdt/`), replacing the last; opening the document
    /// then starts from it.
    pub fn save_snapshot(&mut self) -> Result<(), CrdtError> {
        snapshot::save(
            self.core,
            &self.topic,
            &Snapshot {
                state: self.state.clone(),
                frontier: self.frontier.clone(),
            },
        )?;
        self.since_snapshot = 0;
        Ok(())
    }

    /// Appends an operation (durable on return) and folds it in, with
    /// whatever else was committed since the last read.
    pub fn apply(&mut self, op: Op) -> Result<Receipt, CrdtError> {
        let payload = op.encode()?;
        let r = self
            .core
            .append(self.core.new_event_in(&self.topic, payload))?;
        self.refresh()?;
        Ok(r)
    }

    /// The last-writer-wins map `name`.
    pub fn map(&mut self, name: &str) -> MapRef<'_, 'c> {
        MapRef {
            doc: self,
            name: name.to_string(),
        }
    }

    /// The counter `name`.
    pub fn counter(&mut self, name: &str) -> CounterRef<'_, 'c> {
        CounterRef {
            doc: self,
            name: name.to_string(),
        }
    }

    /// The observed-remove set `name`.
    pub fn set(&mut self, name: &str) -> SetRef<'_, 'c> {
        SetRef {
            doc: self,
            name: name.to_string(),
        }
    }

    /// The last-writer-wins register `name`.
    pub fn register(&mut self, name: &str) -> RegisterRef<'_, 'c> {
        RegisterRef {
            doc: self,
            name: name.to_string(),
        }
    }

    /// The multi-value register `name`.
    pub fn mv_register(&mut self, name: &str) -> MvRegisterRef<'_, 'c> {
        MvRegisterRef {
            doc: self,
            name: name.to_string(),
        }
    }

    /// Watches the document: each change of a CRDT's visible value, once,
    /// after the operation that caused it is committed (local or
    /// replicated), starting from the state as of now.
    pub fn watch(&self) -> Result<DocWatch<'c>, CrdtError> {
        // Subscribe first, then catch up: what is committed in between is
        // both read here and delivered, and the frontier drops the repeat.
        let sub = self
            .core
            .subscribe(Filter::topic(&self.topic), Since::Now)?;
        let mut copy = Doc {
            core: self.core,
            topic: self.topic.clone(),
            state: self.state.clone(),
            frontier: self.frontier.clone(),
            since_snapshot: 0,
            malformed: 0,
            folded: 0,
        };
        copy.fold_new()?;
        Ok(DocWatch { doc: copy, sub })
    }
}

/// A change of one CRDT's visible value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The CRDT's name.
    pub name: String,
    /// Its kind.
    pub kind: CrdtKind,
    /// The operation that caused it.
    pub op: OpId,
}

/// Changes of a document; see [`Doc::watch`].
pub struct DocWatch<'c> {
    doc: Doc<'c>,
    sub: Subscription,
}

impl std::fmt::Debug for DocWatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocWatch")
    }
}

impl DocWatch<'_> {
    /// The next change, waiting at most `timeout`; `None` when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Change>, CrdtError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(ev) = self.sub.recv_timeout(left)? else {
                return Ok(None);
            };
            let next = self.doc.frontier.get(&ev.log).copied().unwrap_or(0);
            if ev.seq < next {
                continue; // folded in already
            }
            self.doc.frontier.insert(ev.log, ev.seq + 1);
            let payload = match self.doc.core.read_event_payload(&ev)?.plaintext() {
                Some(p) => p.to_vec(),
                None => continue,
            };
            let Ok(op) = Op::decode(&payload) else {
                continue;
            };
            let id = OpId {
                author: ev.log.author,
                seq: ev.seq,
            };
            let stamp = Stamp {
                timestamp_ms: ev.timestamp_ms,
                id,
            };
            if self.doc.state.apply(stamp, &op) {
                return Ok(Some(Change {
                    name: op.name.clone(),
                    kind: op.body.kind(),
                    op: id,
                }));
            }
        }
    }

    /// The state as of the last change returned.
    pub fn state(&self) -> &DocState {
        &self.doc.state
    }
}

impl OpBody {
    /// The kind of CRDT the operation is for.
    pub fn kind(&self) -> CrdtKind {
        match self {
            OpBody::RegisterSet(_) => CrdtKind::Register,
            OpBody::MapSet(..) | OpBody::MapDelete(_) => CrdtKind::Map,
            OpBody::CounterAdd(_) => CrdtKind::Counter,
            OpBody::SetAdd(_) | OpBody::SetRemove(..) => CrdtKind::Set,
            OpBody::MvSet(..) => CrdtKind::MvRegister,
        }
    }
}

/// A map of a document; see [`Doc::map`].
#[derive(Debug)]
pub struct MapRef<'d, 'c> {
    doc: &'d mut Doc<'c>,
    name: String,
}

impl MapRef<'_, '_> {
    /// Sets `key` to `value`.
    pub fn set(self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<Receipt, CrdtError> {
        let body = OpBody::MapSet(key.as_ref().to_vec(), value.as_ref().to_vec());
        self.doc.apply(Op {
            name: self.name,
            body,
        })
    }

    /// Deletes `key`.
    pub fn delete(self, key: impl AsRef<[u8]>) -> Result<Receipt, CrdtError> {
        let body = OpBody::MapDelete(key.as_ref().to_vec());
        self.doc.apply(Op {
            name: self.name,
            body,
        })
    }

    /// `key`'s value.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let m = self.doc.state.maps.get(&self.name)?;
        m.get(key.as_ref()).map(<[u8]>::to_vec)
    }
}

/// A counter of a document; see [`Doc::counter`].
#[derive(Debug)]
pub struct CounterRef<'d, 'c> {
    doc: &'d mut Doc<'c>,
    name: String,
}

impl CounterRef<'_, '_> {
    /// Adds `delta` (negative to subtract).
    #[allow(clippy::should_implement_trait)] // the name users look for
    pub fn add(self, delta: i64) -> Result<Receipt, CrdtError> {
        self.doc.apply(Op {
            name: self.name,
            body: OpBody::CounterAdd(delta),
        })
    }

    /// The value.
    pub fn value(&self) -> i64 {
        self.doc
            .state
            .counters
            .get(&self.name)
            .map_or(0, |c| c.value())
    }
}

/// A set of a document; see [`Doc::set`].
#[derive(Debug)]
pub struct SetRef<'d, 'c> {
    doc: &'d mut Doc<'c>,
    name: String,
}

impl SetRef<'_, '_> {
    /// Adds `element`.
    pub fn insert(self, element: impl AsRef<[u8]>) -> Result<Receipt, CrdtError> {
        self.doc.apply(Op {
            name: self.name,
            body: OpBody::SetAdd(element.as_ref().to_vec()),
        })
    }

    /// Removes `element` as this replica sees it: the adds it has observed.
    /// An add made concurrently elsewhere survives (add wins). Removing an
    /// element not in the set appends nothing (`None`).
    pub fn remove(self, element: impl AsRef<[u8]>) -> Result<Option<Receipt>, CrdtError> {
        match self.remove_op(element) {
            Some(op) => self.doc.apply(op).map(Some),
            None => Ok(None),
        }
    }

    /// The operation [`SetRef::remove`] appends (for a caller that appends
    /// it another way, such as through a running node).
    pub fn remove_op(&self, element: impl AsRef<[u8]>) -> Option<Op> {
        let e = element.as_ref();
        let tags = self.doc.state.sets.get(&self.name)?.tags_of(e);
        (!tags.is_empty()).then(|| Op {
            name: self.name.clone(),
            body: OpBody::SetRemove(e.to_vec(), tags),
        })
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: impl AsRef<[u8]>) -> bool {
        self.doc
            .state
            .sets
            .get(&self.name)
            .is_some_and(|s| s.contains(element.as_ref()))
    }
}

/// A register of a document; see [`Doc::register`].
#[derive(Debug)]
pub struct RegisterRef<'d, 'c> {
    doc: &'d mut Doc<'c>,
    name: String,
}

impl RegisterRef<'_, '_> {
    /// Sets the value.
    pub fn set(self, value: impl AsRef<[u8]>) -> Result<Receipt, CrdtError> {
        self.doc.apply(Op {
            name: self.name,
            body: OpBody::RegisterSet(value.as_ref().to_vec()),
        })
    }

    /// The value.
    pub fn get(&self) -> Option<Vec<u8>> {
        let r = self.doc.state.registers.get(&self.name)?;
        r.value().map(<[u8]>::to_vec)
    }
}

/// A multi-value register of a document; see [`Doc::mv_register`].
#[derive(Debug)]
pub struct MvRegisterRef<'d, 'c> {
    doc: &'d mut Doc<'c>,
    name: String,
}

impl MvRegisterRef<'_, '_> {
    /// Writes `value`, replacing every value this replica sees.
    pub fn set(self, value: impl AsRef<[u8]>) -> Result<Receipt, CrdtError> {
        let op = self.set_op(value);
        self.doc.apply(op)
    }

    /// The operation [`MvRegisterRef::set`] appends.
    pub fn set_op(&self, value: impl AsRef<[u8]>) -> Op {
        let seen = self
            .doc
            .state
            .mv_registers
            .get(&self.name)
            .map(|r| r.heads())
            .unwrap_or_default();
        Op {
            name: self.name.clone(),
            body: OpBody::MvSet(value.as_ref().to_vec(), seen),
        }
    }

    /// The current values (more than one after concurrent writes).
    pub fn values(&self) -> Vec<Vec<u8>> {
        self.doc
            .state
            .mv_registers
            .get(&self.name)
            .map(|r| r.values().into_iter().map(<[u8]>::to_vec).collect())
            .unwrap_or_default()
    }
}
