//! Topics, logs and events, and the canonical event encoding.

use std::fmt;
use std::str::FromStr;

use bytemuck::{Pod, Zeroable};
use xaeroflux_merkle::{Hash, hash_leaf, sha256};

use crate::error::{Result, StoreError};

/// Domain prefix of topic ids: `SHA-256("xaeroflux/topic/v1\0" || name)`.
pub const TOPIC_DOMAIN: &[u8] = b"xaeroflux/topic/v1\0";
/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;
/// Version byte of the canonical event encoding.
pub const EVENT_VERSION: u8 = 1;
/// Length of the canonical event header.
pub const EVENT_HEADER_LEN: usize = std::mem::size_of::<EventHeader>();
/// Flag bit 0: the payload is encrypted (reserved; the store does not look inside).
pub const FLAG_ENCRYPTED: u16 = 1;
const KNOWN_FLAGS: u16 = FLAG_ENCRYPTED;

/// The id of a topic: a SHA-256 of its name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub [u8; 32]);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

/// An application-chosen topic: a UTF-8 name of 1 to 255 bytes without
/// control characters, and its id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    name: std::sync::Arc<str>,
    id: TopicId,
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", self.name)
    }
}

impl Topic {
    /// Validates a topic name and computes its id.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() {
            return Err(StoreError::InvalidTopic(
                "a topic name cannot be empty".into(),
            ));
        }
        if name.len() > MAX_TOPIC_LEN {
            return Err(StoreError::InvalidTopic(format!(
                "a topic name has at most {MAX_TOPIC_LEN} bytes, this one {}",
                name.len()
            )));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(StoreError::InvalidTopic(format!(
                "a topic name cannot contain control character {c:?}"
            )));
        }
        Ok(Self {
            name: name.into(),
            id: Self::id_of(name),
        })
    }

    /// The id of a name (without validating it).
    pub fn id_of(name: &str) -> TopicId {
        TopicId(sha256(&[TOPIC_DOMAIN, name.as_bytes()]))
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id.
    pub fn id(&self) -> TopicId {
        self.id
    }
}

/// A log: the events one author writes to one topic.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    /// The author's Ed25519 public key.
    pub author: [u8; 32],
    /// The topic id.
    pub topic: TopicId,
}

impl LogId {
    /// The 64 bytes `author || topic`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.author);
        b[32..].copy_from_slice(&self.topic.0);
        b
    }

    /// From the 64 bytes `author || topic`.
    pub fn from_bytes(b: &[u8; 64]) -> Self {
        let mut author = [0u8; 32];
        let mut topic = [0u8; 32];
        author.copy_from_slice(&b[..32]);
        topic.copy_from_slice(&b[32..]);
        Self {
            author,
            topic: TopicId(topic),
        }
    }

    /// The checkpoint origin (and signing key name) of this log.
    pub fn origin(&self) -> String {
        xaeroflux_merkle::log_origin(&self.author, &self.topic.0)
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", hex::encode(self.author), self.topic)
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({self})")
    }
}

impl FromStr for LogId {
    type Err = StoreError;
    /// Parses `AUTHOR_HEX/TOPIC_ID_HEX`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            StoreError::InvalidArgument(format!("{s:?} is not a log id (AUTHOR_HEX/TOPIC_ID_HEX)"))
        };
        let (a, t) = s.split_once('/').ok_or_else(bad)?;
        let mut author = [0u8; 32];
        let mut topic = [0u8; 32];
        hex::decode_to_slice(a, &mut author).map_err(|_| bad())?;
        hex::decode_to_slice(t, &mut topic).map_err(|_| bad())?;
        Ok(Self {
            author,
            topic: TopicId(topic),
        })
    }
}

/// The kind of an event; the order is its priority (`System` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// Local node state: sync progress, peers, errors.
    System = 0,
    /// Keys, profiles.
    Identity = 1,
    /// Everything the application writes.
    Application = 2,
}

impl EventKind {
    /// From its wire byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::System),
            1 => Some(Self::Identity),
            2 => Some(Self::Application),
            _ => None,
        }
    }

    /// Lowercase name, as the CLI prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Identity => "identity",
            Self::Application => "application",
        }
    }
}

impl FromStr for EventKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "system" => Ok(Self::System),
            "identity" => Ok(Self::Identity),
            "application" => Ok(Self::Application),
            _ => Err(StoreError::InvalidArgument(format!(
                "unknown event kind {s:?} (system, identity or application)"
            ))),
        }
    }
}

/// The fixed little-endian header of the canonical event encoding, readable
/// in place (alignment 1, no padding).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct EventHeader {
    version: u8,
    kind: u8,
    flags: [u8; 2],
    payload_len: [u8; 4],
    seq: [u8; 8],
    timestamp_ms: [u8; 8],
}

impl EventHeader {
    /// Position in its log.
    pub fn seq(&self) -> u64 {
        u64::from_le_bytes(self.seq)
    }
    /// Milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> u64 {
        u64::from_le_bytes(self.timestamp_ms)
    }
    /// Flags (bit 0: encrypted payload).
    pub fn flags(&self) -> u16 {
        u16::from_le_bytes(self.flags)
    }
    /// Payload length in bytes.
    pub fn payload_len(&self) -> u32 {
        u32::from_le_bytes(self.payload_len)
    }
    /// The kind (the decoder has checked it).
    pub fn kind(&self) -> EventKind {
        EventKind::from_u8(self.kind).unwrap_or(EventKind::Application)
    }
}

/// Writes the canonical encoding of an event into `out` (which must be
/// exactly `EVENT_HEADER_LEN + payload.len()` bytes).
pub(crate) fn encode_event_into(
    out: &mut [u8],
    seq: u64,
    timestamp_ms: u64,
    kind: EventKind,
    flags: u16,
    payload: &[u8],
) {
    let header = EventHeader {
        version: EVENT_VERSION,
        kind: kind as u8,
        flags: flags.to_le_bytes(),
        payload_len: (payload.len() as u32).to_le_bytes(),
        seq: seq.to_le_bytes(),
        timestamp_ms: timestamp_ms.to_le_bytes(),
    };
    out[..EVENT_HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&header));
    out[EVENT_HEADER_LEN..].copy_from_slice(payload);
}

/// The canonical encoding of an event, as a new vector.
pub fn encode_event(
    seq: u64,
    timestamp_ms: u64,
    kind: EventKind,
    flags: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![0u8; EVENT_HEADER_LEN + payload.len()];
    encode_event_into(&mut out, seq, timestamp_ms, kind, flags, payload);
    out
}

/// Checks a canonical encoding and returns its header, read in place.
pub fn decode_event(bytes: &[u8]) -> std::result::Result<&EventHeader, &'static str> {
    let head = bytes
        .get(..EVENT_HEADER_LEN)
        .ok_or("event shorter than its header")?;
    let header: &EventHeader = bytemuck::from_bytes(head);
    if header.version != EVENT_VERSION {
        return Err("unknown event format version");
    }
    if EventKind::from_u8(header.kind).is_none() {
        return Err("unknown event kind");
    }
    if header.flags() & !KNOWN_FLAGS != 0 {
        return Err("unknown event flags");
    }
    if header.payload_len() as usize != bytes.len() - EVENT_HEADER_LEN {
        return Err("payload length does not match the record");
    }
    Ok(header)
}

/// A zero-copy view of a stored event, borrowed from a mapped page.
#[derive(Clone, Copy)]
pub struct EventRef<'a> {
    log: &'a [u8; 64],
    header: &'a EventHeader,
    bytes: &'a [u8],
}

impl<'a> EventRef<'a> {
    pub(crate) fn new(log: &'a [u8; 64], header: &'a EventHeader, bytes: &'a [u8]) -> Self {
        Self { log, header, bytes }
    }
    /// The log the event belongs to.
    pub fn log_id(&self) -> LogId {
        LogId::from_bytes(self.log)
    }
    /// The author's public key.
    pub fn author(&self) -> &'a [u8] {
        &self.log[..32]
    }
    /// The canonical header.
    pub fn header(&self) -> &'a EventHeader {
        self.header
    }
    /// Position in its log.
    pub fn seq(&self) -> u64 {
        self.header.seq()
    }
    /// Milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> u64 {
        self.header.timestamp_ms()
    }
    /// The kind.
    pub fn kind(&self) -> EventKind {
        self.header.kind()
    }
    /// Flags.
    pub fn flags(&self) -> u16 {
        self.header.flags()
    }
    /// The payload.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[EVENT_HEADER_LEN..]
    }
    /// The canonical encoding (what the leaf hash covers).
    pub fn canonical_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The RFC 9162 leaf hash of the canonical encoding.
    pub fn leaf_hash(&self) -> Hash {
        hash_leaf(self.bytes)
    }
    /// An owned copy.
    pub fn to_event(&self) -> Event {
        Event {
            log: self.log_id(),
            seq: self.seq(),
            timestamp_ms: self.timestamp_ms(),
            kind: self.kind(),
            flags: self.flags(),
            payload: self.payload().to_vec(),
        }
    }
}

impl fmt::Debug for EventRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRef")
            .field("log", &self.log_id())
            .field("seq", &self.seq())
            .field("timestamp_ms", &self.timestamp_ms())
            .field("kind", &self.kind())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

/// An owned event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its log.
    pub log: LogId,
    /// Position in the log.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Kind.
    pub kind: EventKind,
    /// Flags.
    pub flags: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Event {
    /// The canonical encoding.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        encode_event(
            self.seq,
            self.timestamp_ms,
            self.kind,
            self.flags,
            &self.payload,
        )
    }
    /// The leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        hash_leaf(&self.canonical_bytes())
    }
}

/// An event to append to the store's own log in a topic; the store assigns
/// its `seq` and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub(crate) topic: Topic,
    pub(crate) kind: EventKind,
    pub(crate) flags: u16,
    pub(crate) payload: Vec<u8>,
}

impl NewEvent {
    /// An event of any kind.
    pub fn new(topic: &Topic, kind: EventKind, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.clone(),
            kind,
            flags: 0,
            payload: payload.into(),
        }
    }
    /// An `Application` event.
    pub fn application(topic: &Topic, payload: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, EventKind::Application, payload)
    }
    /// An `Identity` event.
    pub fn identity(topic: &Topic, payload: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, EventKind::Identity, payload)
    }
    /// A `System` event.
    pub fn system(topic: &Topic, payload: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, EventKind::System, payload)
    }
    /// Whether the payload is marked encrypted (flag bit 0).
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }
    /// Marks the payload as encrypted (flag bit 0).
    pub fn encrypted(mut self, yes: bool) -> Self {
        if yes {
            self.flags |= FLAG_ENCRYPTED;
        } else {
            self.flags &= !FLAG_ENCRYPTED;
        }
        self
    }
    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }
    /// The kind.
    pub fn kind(&self) -> EventKind {
        self.kind
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// Size of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        EVENT_HEADER_LEN + self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_is_24_bytes_without_padding() {
        assert_eq!(EVENT_HEADER_LEN, 24);
        assert_eq!(std::mem::align_of::<EventHeader>(), 1);
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(Topic::new("chat").is_ok());
        assert!(Topic::new("").is_err());
        assert!(Topic::new(&"x".repeat(255)).is_ok());
        assert!(Topic::new(&"x".repeat(256)).is_err());
        assert!(Topic::new("a\nb").is_err());
        assert!(Topic::new("\u{7f}").is_err());
        assert_eq!(Topic::new("chat").unwrap().id(), Topic::id_of("chat"));
    }

    #[test]
    fn log_ids_round_trip_through_text() {
        let id = LogId {
            author: [1; 32],
            topic: TopicId([2; 32]),
        };
        assert_eq!(id.to_string().parse::<LogId>().unwrap(), id);
        assert!("zz/00".parse::<LogId>().is_err());
        assert!("nothing".parse::<LogId>().is_err());
    }

    proptest! {
        #[test]
        fn encoding_round_trips(seq in any::<u64>(), ts in any::<u64>(), kind in 0u8..3, enc in any::<bool>(),
                                payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let kind = EventKind::from_u8(kind).unwrap();
            let flags = if enc { FLAG_ENCRYPTED } else { 0 };
            let bytes = encode_event(seq, ts, kind, flags, &payload);
            let h = decode_event(&bytes).unwrap();
            prop_assert_eq!(h.seq(), seq);
            prop_assert_eq!(h.timestamp_ms(), ts);
            prop_assert_eq!(h.kind(), kind);
            prop_assert_eq!(h.flags(), flags);
            prop_assert_eq!(&bytes[EVENT_HEADER_LEN..], &payload[..]);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_event(&bytes);
        }
    }
}
