//! The small formats this layer puts on the wire and in events: gossip
//! announcements, blob references, and the text of sync events. Each
//! starts with a magic and a version that decoding checks; decoding never
//! trusts a length it has not bounded. Written up in `docs/net.md`.

use std::fmt;

use xaeroflux_merkle::{Checkpoint, NoteVerifier};
use xaeroflux_types::bytes::Cursor;
use xaeroflux_types::{LogId, UnsupportedVersion};

use crate::error::NetError;

/// Magic of a gossip announcement.
pub const ANNOUNCE_MAGIC: &[u8; 4] = b"XFAN";
/// Version of the announcement format.
pub const ANNOUNCE_VERSION: u8 = 1;
/// Longest checkpoint note an announcement carries.
pub const MAX_NOTE: usize = 1024;
/// Longest encoded announcement: well under gossip's 4 KiB message limit.
pub const MAX_ANNOUNCE: usize = 4 + 1 + 32 + 64 + 2 + MAX_NOTE;

/// "This node holds log `log` up to the checkpoint `note`": what a node
/// gossips on a topic after each new checkpoint of a log in it. The note is
/// signed by the log's author, so any node may forward it; `announcer` is
/// the node that holds the events and will serve them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Endpoint id of the node that holds the events.
    pub announcer: [u8; 32],
    /// The log.
    pub log: LogId,
    /// The log author's signed checkpoint note.
    pub note: String,
}

impl Announcement {
    /// The encoding: magic, version, announcer, log id (64 bytes), note
    /// length (u16 LE), note.
    pub fn encode(&self) -> Vec<u8> {
        let note = self.note.as_bytes();
        let mut out = Vec::with_capacity(103 + note.len());
        out.extend_from_slice(ANNOUNCE_MAGIC);
        out.push(ANNOUNCE_VERSION);
        out.extend_from_slice(&self.announcer);
        out.extend_from_slice(&self.log.to_bytes());
        out.extend_from_slice(&(note.len() as u16).to_le_bytes());
        out.extend_from_slice(note);
        out
    }

    /// Decodes, checking magic, version and every length.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        let bad = |reason: &str| NetError::Malformed {
            what: "announcement",
            reason: reason.into(),
        };
        if bytes.len() > MAX_ANNOUNCE {
            return Err(bad("longer than the bound"));
        }
        let mut c = Cursor::new(bytes);
        if c.array::<4>().as_ref() != Some(ANNOUNCE_MAGIC) {
            return Err(bad("bad magic"));
        }
        match c.u8() {
            Some(ANNOUNCE_VERSION) => {}
            Some(found) => {
                return Err(UnsupportedVersion {
                    what: "announcement".into(),
                    found: found as u32,
                    supported: ANNOUNCE_VERSION as u32,
                }
                .into());
            }
            None => return Err(bad("truncated header")),
        }
        let (Some(announcer), Some(log), Some(len)) = (c.array(), c.array(), c.u16_le()) else {
            return Err(bad("truncated header"));
        };
        let len = len as usize;
        if len > MAX_NOTE {
            return Err(bad("note longer than the bound"));
        }
        let note = c.rest();
        if note.len() != len {
            return Err(bad("note length does not match"));
        }
        let note = std::str::from_utf8(note).map_err(|_| bad("note is not UTF-8"))?;
        Ok(Self {
            announcer,
            log: LogId::from_bytes(&log),
            note: note.to_owned(),
        })
    }

    /// Checks the note's signature against the log's author and origin.
    pub fn verify(&self) -> Result<Checkpoint, NetError> {
        let v = NoteVerifier::new(&self.log.origin(), &self.log.author).map_err(|e| {
            NetError::Malformed {
                what: "announcement",
                reason: e.to_string(),
            }
        })?;
        v.verify_checkpoint(&self.note)
            .map_err(|e| NetError::Malformed {
                what: "announcement",
                reason: format!("checkpoint does not verify: {e}"),
            })
    }
}

/// Magic of a blob reference (the payload of an event made by
/// `append_blob`).
pub const BLOB_MAGIC: &[u8; 6] = b"XFBLOB";
/// Version of the blob reference format.
pub const BLOB_VERSION: u8 = 1;
/// Length of an encoded blob reference.
pub const BLOB_REF_LEN: usize = 6 + 1 + 32 + 8;

/// A BLAKE3 hash naming a blob.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// BLAKE3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*iroh_blobs::Hash::new(bytes).as_bytes())
    }

    /// From 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, NetError> {
        xaeroflux_merkle::from_hex(s)
            .map(Self)
            .ok_or_else(|| NetError::Malformed {
                what: "blob hash",
                reason: "not 64 hex digits".into(),
            })
    }

    pub(crate) fn to_iroh(self) -> iroh_blobs::Hash {
        iroh_blobs::Hash::from(self.0)
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&xaeroflux_merkle::to_hex(&self.0))
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

/// What an event made by `append_blob` carries: the blob's BLAKE3 hash
/// and size. Encoding: magic `XFBLOB`, version 1, hash, size (u64 LE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    /// The content's BLAKE3 hash.
    pub hash: BlobHash,
    /// The content's length in bytes.
    pub size: u64,
}

impl BlobRef {
    /// The event payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BLOB_REF_LEN);
        out.extend_from_slice(BLOB_MAGIC);
        out.push(BLOB_VERSION);
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.size.to_le_bytes());
        out
    }

    /// The reference in an event payload, if it is one (of this version).
    pub fn decode(payload: &[u8]) -> Option<Self> {
        if payload.len() != BLOB_REF_LEN {
            return None;
        }
        let mut c = Cursor::new(payload);
        if c.array::<6>().as_ref() != Some(BLOB_MAGIC) || c.u8() != Some(BLOB_VERSION) {
            return None;
        }
        Some(Self {
            hash: BlobHash(c.array()?),
            size: c.u64_le()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use xaeroflux_store::TopicId;

    fn ann(note: String, a: [u8; 32], author: [u8; 32], topic: [u8; 32]) -> Announcement {
        Announcement {
            announcer: a,
            log: LogId {
                author,
                topic: TopicId(topic),
            },
            note,
        }
    }

    proptest! {
        #[test]
        fn announcement_round_trips(note in "[ -~\n]{0,1024}", a in any::<[u8; 32]>(), au in any::<[u8; 32]>(), t in any::<[u8; 32]>()) {
            let x = ann(note, a, au, t);
            let bytes = x.encode();
            prop_assert!(bytes.len() <= MAX_ANNOUNCE);
            prop_assert_eq!(Announcement::decode(&bytes).unwrap(), x);
            // Every strict prefix is refused, never a panic.
            for cut in 0..bytes.len() {
                prop_assert!(Announcement::decode(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn announcement_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = Announcement::decode(&bytes);
        }

        #[test]
        fn blob_ref_round_trips(h in any::<[u8; 32]>(), size in any::<u64>()) {
            let r = BlobRef { hash: BlobHash(h), size };
            let bytes = r.encode();
            prop_assert_eq!(BlobRef::decode(&bytes), Some(r));
            for i in 0..7 {
                let mut bad = bytes.clone();
                bad[i] ^= 1;
                prop_assert_eq!(BlobRef::decode(&bad), None);
            }
            prop_assert_eq!(BlobRef::decode(&bytes[..bytes.len() - 1]), None);
        }
    }

    #[test]
    fn other_version_is_named() {
        let mut bytes = ann("x".into(), [1; 32], [2; 32], [3; 32]).encode();
        bytes[4] = 9;
        assert!(matches!(
            Announcement::decode(&bytes),
            Err(NetError::UnsupportedVersion(UnsupportedVersion {
                found: 9,
                ..
            }))
        ));
    }
}
