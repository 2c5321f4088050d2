//! The catalog file, `catalog.xfcat`: an append-only list of what the
//! segments do not hold but a rebuilt index needs, namely topic names and
//! the checkpoints received from other authors.
//!
//! ```text
//! header
//!  0  magic "XFCATLOG"      8
//!  8  version (u16 LE)      2
//! 10  reserved              2
//! 12  store id              16
//! 28  CRC-32C of 0..28      4
//! then records, one after another
//!  0  length n (u32 LE)     4   of what follows the CRC
//!  4  CRC-32C (u32 LE)      4   over the n bytes, started from n
//!  8  tag (u8)              1
//!  9  body                  n - 1
//! tag 1, topic name: topic id (32), name (UTF-8, 1 to 255 bytes)
//! tag 2, checkpoint: author (32), topic id (32), size (u64 LE), note (UTF-8)
//! ```

use xaeroflux_merkle::MAX_NOTE_LEN;
use xaeroflux_types::bytes::u32_le_at;
use xaeroflux_types::{LogId, MAX_TOPIC_LEN, TopicId};

use super::crc_of;

/// Magic of the catalog file.
const CATALOG_MAGIC: [u8; 8] = *b"XFCATLOG";
/// Catalog format version.
pub(crate) const CATALOG_VERSION: u16 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const RESERVED_OFFSET: usize = VERSION_OFFSET + 2;
const STORE_ID_OFFSET: usize = RESERVED_OFFSET + 2;
const HEADER_CRC_OFFSET: usize = STORE_ID_OFFSET + 16;
/// Bytes of the catalog header.
pub(crate) const CATALOG_HEADER_LEN: usize = HEADER_CRC_OFFSET + 4;

const LEN_OFFSET: usize = 0;
const CRC_OFFSET: usize = LEN_OFFSET + 4;
const TAG_OFFSET: usize = CRC_OFFSET + 4;
const BODY_OFFSET: usize = TAG_OFFSET + 1;

const TAG_TOPIC_NAME: u8 = 1;
const TAG_CHECKPOINT: u8 = 2;

const TOPIC_ID_LEN: usize = 32;
const CHECKPOINT_FIXED: usize = 32 + 32 + 8;
/// Longest record body (the n of a record): a tag, a log id, a size and the
/// longest note.
const MAX_RECORD_LEN: usize = 1 + CHECKPOINT_FIXED + MAX_NOTE_LEN;

/// One record of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CatalogEntry {
    /// The name of a topic.
    TopicName { topic: TopicId, name: String },
    /// A signed checkpoint of another author's log, kept once the store
    /// held the log up to its size.
    Checkpoint { log: LogId, size: u64, note: String },
}

/// The header's bytes for the store `store_id`.
pub(crate) fn encode_header(store_id: &[u8; 16]) -> [u8; CATALOG_HEADER_LEN] {
    let mut b = [0u8; CATALOG_HEADER_LEN];
    b[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&CATALOG_MAGIC);
    b[VERSION_OFFSET..RESERVED_OFFSET].copy_from_slice(&CATALOG_VERSION.to_le_bytes());
    b[STORE_ID_OFFSET..HEADER_CRC_OFFSET].copy_from_slice(store_id);
    let c = crc_of(&[&b[..HEADER_CRC_OFFSET]]);
    b[HEADER_CRC_OFFSET..].copy_from_slice(&c.to_le_bytes());
    b
}

/// What is wrong with a header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not a catalog header (short, bad magic or checksum), at an offset.
    Bad(u64, &'static str),
    /// A version this build does not read.
    Version(u16),
}

/// Reads a header: the store id it names.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<[u8; 16], HeaderError> {
    let b: &[u8; CATALOG_HEADER_LEN] = bytes
        .first_chunk()
        .ok_or(HeaderError::Bad(0, "catalog shorter than its header"))?;
    if b[MAGIC_OFFSET..VERSION_OFFSET] != CATALOG_MAGIC {
        return Err(HeaderError::Bad(MAGIC_OFFSET as u64, "bad catalog magic"));
    }
    let crc = u32_le_at(b, HEADER_CRC_OFFSET).unwrap_or(0);
    if crc != crc_of(&[&b[..HEADER_CRC_OFFSET]]) {
        return Err(HeaderError::Bad(
            HEADER_CRC_OFFSET as u64,
            "catalog header checksum mismatch",
        ));
    }
    let version = u16::from_le_bytes([b[VERSION_OFFSET], b[VERSION_OFFSET + 1]]);
    if version != CATALOG_VERSION {
        return Err(HeaderError::Version(version));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[STORE_ID_OFFSET..HEADER_CRC_OFFSET]);
    Ok(id)
}

/// Appends the record of `e` to `out`.
pub(crate) fn encode_entry(e: &CatalogEntry, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    match e {
        CatalogEntry::TopicName { topic, name } => {
            body.push(TAG_TOPIC_NAME);
            body.extend_from_slice(&topic.0);
            body.extend_from_slice(name.as_bytes());
        }
        CatalogEntry::Checkpoint { log, size, note } => {
            body.push(TAG_CHECKPOINT);
            body.extend_from_slice(&log.to_bytes());
            body.extend_from_slice(&size.to_le_bytes());
            body.extend_from_slice(note.as_bytes());
        }
    }
    let len = body.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c_append(len, &body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Why reading stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The last record was cut short by a crash (or the tail is zeros):
    /// what precedes `offset` is whole.
    Torn { offset: u64 },
    /// A record that is not what the store wrote, with bytes after it.
    Corrupt { offset: u64, reason: String },
}

/// What reading the records found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Each whole record, with its offset.
    pub entries: Vec<(u64, CatalogEntry)>,
    /// Where the whole records end.
    pub valid_end: u64,
    /// Why reading stopped early, if it did.
    pub damage: Option<Damage>,
}

/// Reads the records of a catalog whose header is the first bytes of
/// `file` (checked by the caller).
pub(crate) fn scan(file: &[u8]) -> Scan {
    let mut out = Scan {
        valid_end: CATALOG_HEADER_LEN.min(file.len()) as u64,
        ..Scan::default()
    };
    let mut off = CATALOG_HEADER_LEN;
    while off < file.len() {
        let rest = file.get(off..).unwrap_or_default();
        let torn = Some(Damage::Torn { offset: off as u64 });
        if rest.iter().all(|b| *b == 0) {
            out.damage = torn;
            return out;
        }
        let (Some(len), Some(crc)) = (u32_le_at(rest, LEN_OFFSET), u32_le_at(rest, CRC_OFFSET))
        else {
            out.damage = torn;
            return out;
        };
        let corrupt = |reason: &str| {
            Some(Damage::Corrupt {
                offset: off as u64,
                reason: reason.to_string(),
            })
        };
        let n = len as usize;
        if n == 0 || n > MAX_RECORD_LEN {
            out.damage = corrupt("catalog record length out of range");
            return out;
        }
        let end = TAG_OFFSET + n;
        let Some(body) = rest.get(TAG_OFFSET..end) else {
            out.damage = torn;
            return out;
        };
        if crc32c::crc32c_append(len, body) != crc {
            out.damage = if end == rest.len() {
                torn
            } else {
                corrupt("catalog record checksum mismatch")
            };
            return out;
        }
        match decode_body(body) {
            Ok(e) => out.entries.push((off as u64, e)),
            Err(reason) => {
                out.damage = corrupt(reason);
                return out;
            }
        }
        off += end;
        out.valid_end = off as u64;
    }
    out
}

/// Decodes a record's tag and body (its CRC already checked).
fn decode_body(body: &[u8]) -> Result<CatalogEntry, &'static str> {
    let (&tag, rest) = body.split_first().ok_or("empty catalog record")?;
    debug_assert_eq!(BODY_OFFSET - TAG_OFFSET, 1);
    match tag {
        TAG_TOPIC_NAME => {
            let (id, name) = rest
                .split_first_chunk::<TOPIC_ID_LEN>()
                .ok_or("topic record shorter than a topic id")?;
            if name.is_empty() || name.len() > MAX_TOPIC_LEN {
                return Err("topic name length out of range");
            }
            let name = std::str::from_utf8(name).map_err(|_| "topic name is not UTF-8")?;
            Ok(CatalogEntry::TopicName {
                topic: TopicId(*id),
                name: name.to_string(),
            })
        }
        TAG_CHECKPOINT => {
            let (fixed, note) = rest
                .split_first_chunk::<CHECKPOINT_FIXED>()
                .ok_or("checkpoint record shorter than its fixed part")?;
            let (log, size) = fixed
                .split_first_chunk::<64>()
                .ok_or("checkpoint record shorter than a log id")?;
            let size: [u8; 8] = size.try_into().map_err(|_| "checkpoint size cut short")?;
            let note = std::str::from_utf8(note).map_err(|_| "checkpoint note is not UTF-8")?;
            Ok(CatalogEntry::Checkpoint {
                log: LogId::from_bytes(log),
                size: u64::from_le_bytes(size),
                note: note.to_string(),
            })
        }
        _ => Err("unknown catalog record tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<CatalogEntry> {
        vec![
            CatalogEntry::TopicName {
                topic: TopicId([7; 32]),
                name: "chat".into(),
            },
            CatalogEntry::Checkpoint {
                log: LogId {
                    author: [1; 32],
                    topic: TopicId([7; 32]),
                },
                size: 42,
                note: "origin\n42\nroot\n\n— sig\n".into(),
            },
        ]
    }

    fn file_of(entries: &[CatalogEntry]) -> Vec<u8> {
        let mut f = encode_header(&[9; 16]).to_vec();
        for e in entries {
            encode_entry(e, &mut f);
        }
        f
    }

    #[test]
    fn header_round_trips_and_every_flip_is_caught() {
        let h = encode_header(&[3; 16]);
        assert_eq!(decode_header(&h), Ok([3; 16]));
        for i in 0..CATALOG_HEADER_LEN {
            let mut b = h;
            b[i] ^= 0x04;
            assert!(decode_header(&b).is_err(), "flip at {i}");
        }
        assert!(decode_header(&h[..20]).is_err());
        // A newer version is told apart from damage.
        let mut b = h;
        b[VERSION_OFFSET] = 2;
        let c = crc_of(&[&b[..HEADER_CRC_OFFSET]]);
        b[HEADER_CRC_OFFSET..].copy_from_slice(&c.to_le_bytes());
        assert_eq!(decode_header(&b), Err(HeaderError::Version(2)));
    }

    #[test]
    fn records_round_trip_in_order() {
        let f = file_of(&sample());
        let s = scan(&f);
        assert_eq!(s.damage, None);
        assert_eq!(s.valid_end, f.len() as u64);
        let got: Vec<_> = s.entries.into_iter().map(|(_, e)| e).collect();
        assert_eq!(got, sample());
    }

    #[test]
    fn a_cut_tail_is_torn_and_a_flip_before_the_end_is_corruption() {
        let f = file_of(&sample());
        let first_end = s_end_of_first(&f);
        for cut in first_end + 1..f.len() {
            let s = scan(&f[..cut]);
            assert_eq!(s.entries.len(), 1, "cut at {cut}");
            assert_eq!(s.valid_end, first_end as u64);
            assert_eq!(
                s.damage,
                Some(Damage::Torn {
                    offset: first_end as u64
                })
            );
        }
        // Zeros after the last record (a file extended by a crash) are torn.
        let mut z = f.clone();
        z.extend_from_slice(&[0; 100]);
        assert!(matches!(scan(&z).damage, Some(Damage::Torn { .. })));
        // A flipped byte in the first record, with a record after it.
        for i in CATALOG_HEADER_LEN..first_end {
            let mut b = f.clone();
            b[i] ^= 0x20;
            let s = scan(&b);
            assert!(s.entries.is_empty(), "flip at {i}");
            assert!(s.damage.is_some(), "flip at {i}");
        }
    }

    fn s_end_of_first(f: &[u8]) -> usize {
        let s = scan(f);
        match s.entries.get(1) {
            Some((off, _)) => *off as usize,
            None => f.len(),
        }
    }

    proptest! {
        #[test]
        fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut f = encode_header(&[0; 16]).to_vec();
            f.extend_from_slice(&bytes);
            let s = scan(&f);
            prop_assert!(s.valid_end <= f.len() as u64);
        }

        #[test]
        fn any_entries_round_trip(names in proptest::collection::vec("[a-z]{1,40}", 0..8), size in any::<u64>(), note in "\\PC{0,200}") {
            let mut entries: Vec<CatalogEntry> = names.iter().map(|n| CatalogEntry::TopicName {
                topic: TopicId([n.len() as u8; 32]),
                name: n.clone(),
            }).collect();
            entries.push(CatalogEntry::Checkpoint {
                log: LogId { author: [2; 32], topic: TopicId([3; 32]) },
                size,
                note,
            });
            let f = file_of(&entries);
            let s = scan(&f);
            prop_assert_eq!(s.damage, None);
            let got: Vec<_> = s.entries.into_iter().map(|(_, e)| e).collect();
            prop_assert_eq!(got, entries);
        }
    }
}
