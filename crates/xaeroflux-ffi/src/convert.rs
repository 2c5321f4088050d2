//! The records that cross the boundary, and the conversions to and from
//! the Rust types.

use xaeroflux::{BatchReceipt, Hash, LogId, MemberKey, Payload, ReadEvent, Topic};

use crate::XaerofluxError;

/// What an append returns: where the event is and the log's root after it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Receipt {
    /// The log, `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The event's position in its log, from 0.
    pub seq: u64,
    /// The RFC 9162 leaf hash of the event (32 bytes).
    pub leaf_hash: Vec<u8>,
    /// The log's root after the append (32 bytes).
    pub root: Vec<u8>,
    /// The log's size after the append.
    pub size: u64,
}

impl From<xaeroflux::Receipt> for Receipt {
    fn from(r: xaeroflux::Receipt) -> Self {
        Receipt {
            log: r.log.to_string(),
            seq: r.seq,
            leaf_hash: r.leaf_hash.to_vec(),
            root: r.root.to_vec(),
            size: r.size,
        }
    }
}

/// Per-event receipts of a batch. The batch is one append: each event's
/// `root` and `size` are its log's after the batch (prove an event against
/// them, or ask `prove_inclusion` for any other size).
pub(crate) fn batch_receipts(batch: BatchReceipt) -> Result<Vec<Receipt>, XaerofluxError> {
    batch
        .events
        .iter()
        .map(|e| {
            let head = batch.heads.iter().find(|h| h.log == e.log).ok_or_else(|| {
                XaerofluxError::Internal {
                    reason: format!("no head for {} in a batch receipt", e.log),
                }
            })?;
            Ok(Receipt {
                log: e.log.to_string(),
                seq: e.seq,
                leaf_hash: e.leaf_hash.to_vec(),
                root: head.root.to_vec(),
                size: head.size,
            })
        })
        .collect()
}

/// What kind of event: system and identity events are routed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EventKind {
    /// Local node state: sync progress, peers, errors.
    System,
    /// Keys, profiles.
    Identity,
    /// Everything the application writes.
    Application,
}

impl From<xaeroflux::EventKind> for EventKind {
    fn from(k: xaeroflux::EventKind) -> Self {
        match k {
            xaeroflux::EventKind::System => EventKind::System,
            xaeroflux::EventKind::Identity => EventKind::Identity,
            _ => EventKind::Application,
        }
    }
}

/// An event as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Event {
    /// Its log, `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// Its author's key (32 bytes).
    pub author: Vec<u8>,
    /// Its position in the log, from 0.
    pub seq: u64,
    /// When its author appended it, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its kind.
    pub kind: EventKind,
    /// The payload: in a private topic, the plaintext for a member.
    pub payload: Vec<u8>,
    /// True when the payload is a private topic's sealed bytes that this
    /// store holds no key for.
    pub encrypted: bool,
}

pub(crate) fn read_event(r: &ReadEvent<'_>) -> Event {
    let ev = &r.event;
    let (payload, encrypted) = match &r.payload {
        Payload::Plain(p) => (p.to_vec(), false),
        Payload::Decrypted(p) => (p.clone(), false),
        Payload::Encrypted { .. } => (ev.payload().to_vec(), true),
    };
    Event {
        log: ev.log_id().to_string(),
        author: ev.author().to_vec(),
        seq: ev.seq(),
        timestamp_ms: ev.timestamp_ms(),
        kind: ev.kind().into(),
        payload,
        encrypted,
    }
}

/// What the store knows of one log.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogInfo {
    /// The log, `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// Its topic's name, when known.
    pub topic_name: Option<String>,
    /// Its number of events.
    pub size: u64,
    /// Its root (32 bytes).
    pub root: Vec<u8>,
}

impl From<xaeroflux::LogInfo> for LogInfo {
    fn from(l: xaeroflux::LogInfo) -> Self {
        LogInfo {
            log: l.log.to_string(),
            topic_name: l.topic_name,
            size: l.size,
            root: l.root.to_vec(),
        }
    }
}

/// An RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InclusionProof {
    /// The log.
    pub log: String,
    /// The event's seq (its leaf index).
    pub index: u64,
    /// The size of the tree proved against.
    pub size: u64,
    /// The event's leaf hash.
    pub leaf_hash: Vec<u8>,
    /// The root at `size`.
    pub root: Vec<u8>,
    /// The audit path, leaf to root.
    pub path: Vec<Vec<u8>>,
}

impl From<xaeroflux::InclusionProof> for InclusionProof {
    fn from(p: xaeroflux::InclusionProof) -> Self {
        InclusionProof {
            log: p.log.to_string(),
            index: p.index,
            size: p.size,
            leaf_hash: p.leaf_hash.to_vec(),
            root: p.root.to_vec(),
            path: p.path.iter().map(|h| h.to_vec()).collect(),
        }
    }
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConsistencyProof {
    /// The log.
    pub log: String,
    /// The older size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// The root at `old_size`.
    pub old_root: Vec<u8>,
    /// The root at `new_size`.
    pub new_root: Vec<u8>,
    /// The proof's hashes.
    pub path: Vec<Vec<u8>>,
}

impl From<xaeroflux::ConsistencyProof> for ConsistencyProof {
    fn from(p: xaeroflux::ConsistencyProof) -> Self {
        ConsistencyProof {
            log: p.log.to_string(),
            old_size: p.old_size,
            new_size: p.new_size,
            old_root: p.old_root.to_vec(),
            new_root: p.new_root.to_vec(),
            path: p.path.iter().map(|h| h.to_vec()).collect(),
        }
    }
}

/// A private topic this store created.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrivateTopic {
    /// Its name (`xfe1.` and 26 characters): append to it, give it to
    /// members.
    pub name: String,
    /// Its id in hex (all a relay sees).
    pub topic_id: String,
    /// The current epoch.
    pub epoch: u64,
}

/// A member of a private topic.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    /// Its member key.
    pub member_key: String,
    /// The epoch it joined at.
    pub since_epoch: u64,
}

/// The topic `name` names: a private topic's name registers it, so that
/// appends are sealed and reads opened with this store's keys.
pub(crate) fn topic_of(core: &xaeroflux::Core, name: &str) -> Result<Topic, XaerofluxError> {
    if xaeroflux::e2e::parse_topic_name(name).is_some() {
        Ok(core.private_topic(name)?)
    } else {
        Ok(Topic::new(name)?)
    }
}

pub(crate) fn log_of(s: &str) -> Result<LogId, XaerofluxError> {
    Ok(s.parse::<LogId>()?)
}

pub(crate) fn member_key(s: &str) -> Result<MemberKey, XaerofluxError> {
    Ok(s.parse::<MemberKey>()?)
}

pub(crate) fn hash_of(what: &str, bytes: &[u8]) -> Result<Hash, XaerofluxError> {
    bytes.try_into().map_err(|_| XaerofluxError::InvalidInput {
        reason: format!("{what}: a hash is 32 bytes, not {}", bytes.len()),
    })
}

pub(crate) fn hashes_of(what: &str, list: &[Vec<u8>]) -> Result<Vec<Hash>, XaerofluxError> {
    list.iter().map(|h| hash_of(what, h)).collect()
}
