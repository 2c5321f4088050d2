//! The CRDT types and the state of a document: every `apply` is
//! commutative, associative and idempotent, so the state is a pure
//! function of the set of operations, whatever their order of delivery,
//! their duplicates or the interleaving of their authors.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::op::{Op, OpBody};

/// An operation's id: the event that carries it (its author and seq in the
/// document's topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    /// The author's public key.
    pub author: [u8; 32],
    /// The event's seq in the author's log of the topic.
    pub seq: u64,
}

/// The order last-writer-wins types use: timestamp, then author, then seq
/// (never the order of arrival).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// The event's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The operation.
    pub id: OpId,
}

/// A last-writer-wins register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister {
    last: Option<(Stamp, Vec<u8>)>,
}

impl LwwRegister {
    /// Sets the value if `stamp` is later than the current one's.
    pub fn apply(&mut self, stamp: Stamp, value: &[u8]) -> bool {
        if self.last.as_ref().is_some_and(|(s, _)| *s >= stamp) {
            return false;
        }
        let changed = self.value() != Some(value);
        self.last = Some((stamp, value.to_vec()));
        changed
    }

    /// The value, if set.
    pub fn value(&self) -> Option<&[u8]> {
        self.last.as_ref().map(|(_, v)| v.as_slice())
    }
}

/// A map of last-writer-wins entries; a delete is a write of "absent".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwMap {
    entries: BTreeMap<Vec<u8>, (Stamp, Option<Vec<u8>>)>,
}

impl LwwMap {
    /// Sets (`Some`) or deletes (`None`) a key if `stamp` is later than the
    /// key's last write.
    pub fn apply(&mut self, stamp: Stamp, key: &[u8], value: Option<&[u8]>) -> bool {
        let before = self.get(key).map(<[u8]>::to_vec);
        match self.entries.get_mut(key) {
            Some((s, _)) if *s >= stamp => return false,
            Some(e) => *e = (stamp, value.map(<[u8]>::to_vec)),
            None => {
                self.entries
                    .insert(key.to_vec(), (stamp, value.map(<[u8]>::to_vec)));
            }
        }
        before.as_deref() != value
    }

    /// A key's value.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).and_then(|(_, v)| v.as_deref())
    }

    /// The keys present and their values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .filter_map(|(k, (_, v))| v.as_deref().map(|v| (k.as_slice(), v)))
    }

    /// Keys present.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Sets of seqs per author, kept as ranges: an author's operations in
/// order take one range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Per author, disjoint half-open ranges `start -> end`.
    ranges: BTreeMap<[u8; 32], BTreeMap<u64, u64>>,
}

impl Applied {
    /// Adds an id; `false` when it was already there.
    pub fn insert(&mut self, id: OpId) -> bool {
        let r = self.ranges.entry(id.author).or_default();
        let s = id.seq;
        let below = r.range(..=s).next_back().map(|(a, b)| (*a, *b));
        if let Some((_, end)) = below
            && s < end
        {
            return false;
        }
        let above = s
            .checked_add(1)
            .and_then(|n| r.get(&n).copied().map(|e| (n, e)));
        let start = match below {
            Some((a, end)) if end == s => a,
            _ => s,
        };
        let end = match above {
            Some((n, e)) => {
                r.remove(&n);
                e
            }
            None => s.saturating_add(1),
        };
        r.insert(start, end);
        true
    }

    /// Whether an id is there.
    pub fn contains(&self, id: &OpId) -> bool {
        self.ranges.get(&id.author).is_some_and(|r| {
            r.range(..=id.seq)
                .next_back()
                .is_some_and(|(_, end)| id.seq < *end)
        })
    }
}

/// A counter that goes up and down: per author, the sums of its increments
/// and of its decrements; the value is their difference (wrapping on
/// overflow, so it is order-independent). Each operation must be applied
/// once: [`DocState::apply`] drops repeated operation ids before any type
/// sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnCounter {
    /// Per author: (sum of increments, sum of decrements).
    parts: BTreeMap<[u8; 32], (u64, u64)>,
}

impl PnCounter {
    /// Adds `delta`, an operation of `author`.
    pub fn apply(&mut self, author: [u8; 32], delta: i64) -> bool {
        let (p, n) = self.parts.entry(author).or_default();
        if delta >= 0 {
            *p = p.wrapping_add(delta.unsigned_abs());
        } else {
            *n = n.wrapping_add(delta.unsigned_abs());
        }
        delta != 0
    }

    /// The counter's value.
    pub fn value(&self) -> i64 {
        self.parts.values().fold(0i64, |v, (p, n)| {
            v.wrapping_add(*p as i64).wrapping_sub(*n as i64)
        })
    }
}

/// An observed-remove set (add wins). Each add is tagged with its
/// operation id; a remove of an element carries, per author, the latest add
/// tag of it that the remover observed, and removes that author's adds of
/// the element up to that tag, so an add the remover had not seen survives.
///
/// "Up to" is sound because replicas hold prefixes of each log: whoever saw
/// an author's add at seq 9 saw its earlier adds too. It keeps the state
/// to one entry per element and author, however many adds and removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrSet {
    /// Per element, per author: the seq of the latest add not removed.
    adds: BTreeMap<Vec<u8>, BTreeMap<[u8; 32], u64>>,
    /// Per element, per author: adds up to this seq are removed.
    removed: BTreeMap<Vec<u8>, BTreeMap<[u8; 32], u64>>,
}

impl OrSet {
    /// An add of `element` tagged `id`; whether the element appeared.
    pub fn add(&mut self, id: OpId, element: &[u8]) -> bool {
        let gone = self
            .removed
            .get(element)
            .and_then(|r| r.get(&id.author))
            .is_some_and(|s| *s >= id.seq);
        if gone {
            return false;
        }
        let was = self.contains(element);
        let tags = self.adds.entry(element.to_vec()).or_default();
        let latest = tags.entry(id.author).or_insert(id.seq);
        *latest = (*latest).max(id.seq);
        !was
    }

    /// A remove of `element` that observed the tags `observed`; whether the
    /// element disappeared.
    pub fn remove(&mut self, element: &[u8], observed: &[OpId]) -> bool {
        let was = self.contains(element);
        let removed = self.removed.entry(element.to_vec()).or_default();
        for id in observed {
            let r = removed.entry(id.author).or_insert(id.seq);
            *r = (*r).max(id.seq);
        }
        if let Some(tags) = self.adds.get_mut(element) {
            tags.retain(|author, seq| removed.get(author).is_none_or(|r| *seq > *r));
            if tags.is_empty() {
                self.adds.remove(element);
            }
        }
        was && !self.contains(element)
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &[u8]) -> bool {
        self.adds.get(element).is_some_and(|t| !t.is_empty())
    }

    /// The live add tags of `element`, one per author (what a remove of
    /// it carries).
    pub fn tags_of(&self, element: &[u8]) -> Vec<OpId> {
        self.adds
            .get(element)
            .map(|t| {
                t.iter()
                    .map(|(author, seq)| OpId {
                        author: *author,
                        seq: *seq,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The elements, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.adds.keys().map(Vec::as_slice)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.adds.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty()
    }
}

/// A multi-value register: a write replaces the writes it observed;
/// concurrent writes are all kept, until a write that saw them. A write
/// carries, per author, the latest write it observed, and replaces that
/// author's writes up to it; an author's later write replaces its earlier
/// ones (its own log is a prefix of what it saw). One entry per author.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvRegister {
    /// Per author: its latest write not replaced.
    values: BTreeMap<[u8; 32], (u64, Vec<u8>)>,
    /// Per author: writes up to this seq are replaced.
    superseded: BTreeMap<[u8; 32], u64>,
}

impl MvRegister {
    /// A write of `value` by `id`, which observed the writes `observed`;
    /// whether the visible values changed.
    pub fn apply(&mut self, id: OpId, value: &[u8], observed: &[OpId]) -> bool {
        let before = self.value_set();
        for o in observed {
            let s = self.superseded.entry(o.author).or_insert(o.seq);
            *s = (*s).max(o.seq);
        }
        let sup = &self.superseded;
        self.values
            .retain(|author, (seq, _)| sup.get(author).is_none_or(|s| *seq > *s));
        let replaced = sup.get(&id.author).is_some_and(|s| *s >= id.seq);
        let older = self
            .values
            .get(&id.author)
            .is_some_and(|(seq, _)| *seq >= id.seq);
        if !replaced && !older {
            self.values.insert(id.author, (id.seq, value.to_vec()));
        }
        before != self.value_set()
    }

    /// The ids of the current values (what a new write observes).
    pub fn heads(&self) -> Vec<OpId> {
        self.values
            .iter()
            .map(|(author, (seq, _))| OpId {
                author: *author,
                seq: *seq,
            })
            .collect()
    }

    /// The current values, sorted, without repeats.
    pub fn values(&self) -> Vec<&[u8]> {
        let set: BTreeSet<&[u8]> = self.values.values().map(|(_, v)| v.as_slice()).collect();
        set.into_iter().collect()
    }

    fn value_set(&self) -> BTreeSet<Vec<u8>> {
        self.values.values().map(|(_, v)| v.clone()).collect()
    }
}

/// Which CRDT a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CrdtKind {
    /// [`LwwRegister`].
    Register,
    /// [`LwwMap`].
    Map,
    /// [`PnCounter`].
    Counter,
    /// [`OrSet`].
    Set,
    /// [`MvRegister`].
    MvRegister,
}

/// The state of a document: its CRDTs by kind and name. Each kind has its
/// own names, so an operation on `likes` as a counter and one on `likes`
/// as a set do not interfere, in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocState {
    /// The operations applied (and other events of the topic passed over),
    /// as ranges of seqs per author: a repeated operation is dropped here.
    pub applied: Applied,
    /// Last-writer-wins registers.
    pub registers: BTreeMap<String, LwwRegister>,
    /// Last-writer-wins maps.
    pub maps: BTreeMap<String, LwwMap>,
    /// Counters.
    pub counters: BTreeMap<String, PnCounter>,
    /// Observed-remove sets.
    pub sets: BTreeMap<String, OrSet>,
    /// Multi-value registers.
    pub mv_registers: BTreeMap<String, MvRegister>,
}

impl DocState {
    /// Applies one operation, carried by the event `stamp` names; returns
    /// whether the visible state of its CRDT changed.
    pub fn apply(&mut self, stamp: Stamp, op: &Op) -> bool {
        let id = stamp.id;
        if !self.applied.insert(id) {
            return false;
        }
        let name = op.name.clone();
        match &op.body {
            OpBody::RegisterSet(v) => self.registers.entry(name).or_default().apply(stamp, v),
            OpBody::MapSet(k, v) => self.maps.entry(name).or_default().apply(stamp, k, Some(v)),
            OpBody::MapDelete(k) => self.maps.entry(name).or_default().apply(stamp, k, None),
            OpBody::CounterAdd(d) => self.counters.entry(name).or_default().apply(id.author, *d),
            OpBody::SetAdd(e) => self.sets.entry(name).or_default().add(id, e),
            OpBody::SetRemove(e, tags) => self.sets.entry(name).or_default().remove(e, tags),
            OpBody::MvSet(v, seen) => self
                .mv_registers
                .entry(name)
                .or_default()
                .apply(id, v, seen),
        }
    }

    /// Notes an event of the topic that is not an operation (or does not
    /// decode), so the ranges of seqs seen stay whole.
    pub fn pass_over(&mut self, id: OpId) {
        self.applied.insert(id);
    }

    /// The document as one JSON object keyed by each CRDT's name: maps as
    /// objects, counters as numbers, sets as sorted arrays, registers as a
    /// string (or null), multi-value registers as sorted arrays. Bytes are
    /// shown as UTF-8 (invalid sequences replaced). Where two kinds share a
    /// name, the later kind in that list wins the key.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        let text = |b: &[u8]| Value::String(String::from_utf8_lossy(b).into_owned());
        let mut out = Map::new();
        for (n, r) in &self.registers {
            out.insert(n.clone(), r.value().map_or(Value::Null, text));
        }
        for (n, m) in &self.maps {
            let obj: Map<String, Value> = m
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), text(v)))
                .collect();
            out.insert(n.clone(), Value::Object(obj));
        }
        for (n, c) in &self.counters {
            out.insert(n.clone(), Value::from(c.value()));
        }
        for (n, s) in &self.sets {
            // Sorted as text, so the array reads sorted whatever the bytes.
            let mut items: Vec<String> = s
                .iter()
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect();
            items.sort();
            out.insert(n.clone(), Value::from(items));
        }
        for (n, r) in &self.mv_registers {
            let mut items: Vec<String> = r
                .values()
                .into_iter()
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect();
            items.sort();
            out.insert(n.clone(), Value::from(items));
        }
        Value::Object(out)
    }
}
