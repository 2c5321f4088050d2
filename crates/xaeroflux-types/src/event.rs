//! Events and their canonical encoding.
//!
//! The canonical encoding is a fixed 24-byte little-endian header followed
//! by the payload; the leaf hash of an event is `SHA-256(0x00 || encoding)`.
//!
//! ```text
//! offset  size  field
//!      0     1  version (1)
//!      1     1  kind (0 system, 1 identity, 2 application)
//!      2     2  flags (bit 0: payload encrypted)
//!      4     4  payload length
//!      8     8  seq
//!     16     8  timestamp, ms since the Unix epoch
//!     24     n  payload
//! ```

use std::fmt;
use std::str::FromStr;

use bytemuck::{Pod, Zeroable};
use xaeroflux_merkle::{Hash, hash_leaf};
use xaeroflux_reactive::{Prioritized, Priority};

use crate::error::InvalidInput;
use crate::log::{LOG_ID_LEN, LogId};
use crate::topic::Topic;

/// Where an event sits: its log's author and topic, and its header's
/// kind, flags, seq and timestamp. A private topic's seal binds the
/// ciphertext to it, so a sealed payload moved elsewhere does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The log's author (Ed25519 public key).
    pub author: [u8; 32],
    /// The topic.
    pub topic: crate::topic::TopicId,
    /// The event's kind.
    pub kind: EventKind,
    /// The event's flags.
    pub flags: u16,
    /// Its seq in the log.
    pub seq: u64,
    /// Its timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Version byte of the canonical event encoding.
pub const EVENT_VERSION: u8 = 1;
/// Length of the canonical event header.
pub const EVENT_HEADER_LEN: usize = std::mem::size_of::<EventHeader>();
/// Flag bit 0: the payload is encrypted.
pub const FLAG_ENCRYPTED: u16 = 1;
const KNOWN_FLAGS: u16 = FLAG_ENCRYPTED;

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
    #[inline]
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::System),
            1 => Some(Self::Identity),
            2 => Some(Self::Application),
            _ => None,
        }
    }

    /// Lowercase name, as the CLI prints it.
    #[inline]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Identity => "identity",
            Self::Application => "application",
        }
    }
}

impl EventKind {
    /// Where events of this kind wait in a priority queue: `System` first.
    #[inline]
    pub fn priority(&self) -> Priority {
        match self {
            Self::System => Priority::System,
            Self::Identity => Priority::Identity,
            Self::Application => Priority::Application,
        }
    }
}

/// Events go by their kind; a pool of workers keeps each log's order.
impl Prioritized for Event {
    fn priority(&self) -> Priority {
        self.kind.priority()
    }
    fn route_key(&self) -> u64 {
        self.log.route_key()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "system" => Ok(Self::System),
            "identity" => Ok(Self::Identity),
            "application" => Ok(Self::Application),
            _ => Err(InvalidInput::Kind(s.to_string())),
        }
    }
}

/// The fixed little-endian header of the canonical event encoding, readable
/// in place (alignment 1, no padding): the layout in the module docs.
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
    #[inline]
    pub fn seq(&self) -> u64 {
        u64::from_le_bytes(self.seq)
    }
    /// Milliseconds since the Unix epoch.
    #[inline]
    pub fn timestamp_ms(&self) -> u64 {
        u64::from_le_bytes(self.timestamp_ms)
    }
    /// Flags (bit 0: encrypted payload).
    #[inline]
    pub fn flags(&self) -> u16 {
        u16::from_le_bytes(self.flags)
    }
    /// Payload length in bytes.
    #[inline]
    pub fn payload_len(&self) -> u32 {
        u32::from_le_bytes(self.payload_len)
    }
    /// The kind ([`decode_event`] has checked it is a known one).
    #[inline]
    pub fn kind(&self) -> EventKind {
        EventKind::from_u8(self.kind).unwrap_or(EventKind::Application)
    }
}

/// Why bytes are not a canonical event encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// Fewer bytes than the header.
    #[error("event shorter than its header")]
    Short,
    /// A version this build does not read.
    #[error("unknown event format version {0}")]
    Version(u8),
    /// A kind byte that names no kind.
    #[error("unknown event kind {0}")]
    Kind(u8),
    /// Flag bits this version does not define.
    #[error("unknown event flags {0:#06x}")]
    Flags(u16),
    /// The header's payload length disagrees with the bytes.
    #[error("payload length does not match the record")]
    Length,
    /// The buffer is not the size of the encoding.
    #[error("buffer of {0} bytes for an encoding of {1}")]
    Buffer(usize, usize),
}

/// Writes the canonical encoding of an event into `out`, which must be
/// exactly `EVENT_HEADER_LEN + payload.len()` bytes.
#[inline]
pub fn encode_event_into(
    out: &mut [u8],
    seq: u64,
    timestamp_ms: u64,
    kind: EventKind,
    flags: u16,
    payload: &[u8],
) -> Result<(), EncodingError> {
    let want = EVENT_HEADER_LEN + payload.len();
    let have = out.len();
    let len = u32::try_from(payload.len()).map_err(|_| EncodingError::Length)?;
    let (head, body) = out
        .split_at_mut_checked(EVENT_HEADER_LEN)
        .filter(|(_, b)| b.len() == payload.len())
        .ok_or(EncodingError::Buffer(have, want))?;
    let header = EventHeader {
        version: EVENT_VERSION,
        kind: kind as u8,
        flags: flags.to_le_bytes(),
        payload_len: len.to_le_bytes(),
        seq: seq.to_le_bytes(),
        timestamp_ms: timestamp_ms.to_le_bytes(),
    };
    head.copy_from_slice(bytemuck::bytes_of(&header));
    body.copy_from_slice(payload);
    Ok(())
}

/// The canonical encoding of an event, as a new vector.
#[inline]
pub fn encode_event(
    seq: u64,
    timestamp_ms: u64,
    kind: EventKind,
    flags: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![0u8; EVENT_HEADER_LEN + payload.len()];
    // The buffer is made to size; only a payload over 4 GiB fails, and no
    // page or frame holds one.
    let _ = encode_event_into(&mut out, seq, timestamp_ms, kind, flags, payload);
    out
}

/// Checks a canonical encoding and returns its header, read in place.
#[inline]
pub fn decode_event(bytes: &[u8]) -> Result<&EventHeader, EncodingError> {
    let (head, payload) = bytes
        .split_at_checked(EVENT_HEADER_LEN)
        .ok_or(EncodingError::Short)?;
    let header: &EventHeader = bytemuck::from_bytes(head);
    if header.version != EVENT_VERSION {
        return Err(EncodingError::Version(header.version));
    }
    if EventKind::from_u8(header.kind).is_none() {
        return Err(EncodingError::Kind(header.kind));
    }
    if header.flags() & !KNOWN_FLAGS != 0 {
        return Err(EncodingError::Flags(header.flags()));
    }
    if header.payload_len() as usize != payload.len() {
        return Err(EncodingError::Length);
    }
    Ok(header)
}

/// A zero-copy view of a stored event, borrowed from where it lies (a
/// mapped page).
#[derive(Clone, Copy)]
pub struct EventRef<'a> {
    log: &'a [u8; LOG_ID_LEN],
    header: &'a EventHeader,
    bytes: &'a [u8],
}

impl<'a> EventRef<'a> {
    /// A view of the canonical encoding `bytes` of an event of `log`,
    /// checked with [`decode_event`].
    #[inline]
    pub fn new(log: &'a [u8; LOG_ID_LEN], bytes: &'a [u8]) -> Result<Self, EncodingError> {
        let header = decode_event(bytes)?;
        Ok(Self { log, header, bytes })
    }
    /// The log the event belongs to.
    #[inline]
    pub fn log_id(&self) -> LogId {
        LogId::from_bytes(self.log)
    }
    /// The author's public key.
    #[inline]
    pub fn author(&self) -> &'a [u8; 32] {
        let (author, _) = self
            .log
            .split_first_chunk::<32>()
            .unwrap_or((&[0; 32], &[]));
        author
    }
    /// The canonical header.
    #[inline]
    pub fn header(&self) -> &'a EventHeader {
        self.header
    }
    /// Position in its log.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.header.seq()
    }
    /// Milliseconds since the Unix epoch.
    #[inline]
    pub fn timestamp_ms(&self) -> u64 {
        self.header.timestamp_ms()
    }
    /// The kind.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.header.kind()
    }
    /// Flags.
    #[inline]
    pub fn flags(&self) -> u16 {
        self.header.flags()
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(EVENT_HEADER_LEN..).unwrap_or_default()
    }
    /// The canonical encoding (what the leaf hash covers).
    #[inline]
    pub fn canonical_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The RFC 9162 leaf hash of the canonical encoding.
    #[inline]
    pub fn leaf_hash(&self) -> Hash {
        hash_leaf(self.bytes)
    }
    /// An owned copy.
    #[inline]
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
    #[inline]
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
    #[inline]
    pub fn leaf_hash(&self) -> Hash {
        hash_leaf(&self.canonical_bytes())
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// An event to append to the store's own log in a topic; the store assigns
/// its `seq` and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    topic: Topic,
    kind: EventKind,
    flags: u16,
    payload: Vec<u8>,
}

impl NewEvent {
    /// An event of any kind.
    #[inline]
    pub fn new(topic: &Topic, kind: EventKind, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.clone(),
            kind,
            flags: 0,
            payload: payload.into(),
        }
    }
    /// An `Application` event.
    #[inline]
    pub fn application(topic: &Topic, payload: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, EventKind::Application, payload)
    }
    /// An `Identity` event.
    #[inline]
    pub fn identity(topic: &Topic, payload: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, EventKind::Identity, payload)
    }
    /// A `System` event.
    #[inline]
    pub fn system(topic: &Topic, payload: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, EventKind::System, payload)
    }
    /// Whether the payload is marked encrypted (flag bit 0).
    #[inline]
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }
    /// Marks the payload as encrypted (flag bit 0).
    #[inline]
    pub fn encrypted(mut self, yes: bool) -> Self {
        if yes {
            self.flags |= FLAG_ENCRYPTED;
        } else {
            self.flags &= !FLAG_ENCRYPTED;
        }
        self
    }
    /// The topic.
    #[inline]
    pub fn topic(&self) -> &Topic {
        &self.topic
    }
    /// The kind.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.kind
    }
    /// The flags.
    #[inline]
    pub fn flags(&self) -> u16 {
        self.flags
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// Size of the canonical encoding.
    #[inline]
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
    fn a_wrong_buffer_is_refused() {
        let mut out = [0u8; 30];
        assert_eq!(
            encode_event_into(&mut out, 0, 0, EventKind::System, 0, b"abc"),
            Err(EncodingError::Buffer(30, 27))
        );
        assert!(encode_event_into(&mut out[..27], 0, 0, EventKind::System, 0, b"abc").is_ok());
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
            let log = [7u8; LOG_ID_LEN];
            let view = EventRef::new(&log, &bytes).unwrap();
            prop_assert_eq!(view.to_event().canonical_bytes(), bytes.clone());
            prop_assert_eq!(view.author(), &[7u8; 32]);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_event(&bytes);
        }

        #[test]
        fn every_flipped_header_byte_is_caught_or_read_as_another_event(seq in any::<u64>(), i in 0usize..EVENT_HEADER_LEN, bit in 0u8..8) {
            let mut bytes = encode_event(seq, 5, EventKind::Identity, 0, b"payload");
            bytes[i] ^= 1 << bit;
            if let Ok(h) = decode_event(&bytes) {
                let same = (h.seq(), h.timestamp_ms(), h.kind(), h.flags()) == (seq, 5, EventKind::Identity, 0);
                prop_assert!(!same, "flip at {} went unseen", i);
            }
        }
    }
}
