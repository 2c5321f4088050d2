//! The index's keys and values. Keys are big-endian so LMDB's bytewise
//! order is numeric order; values are little-endian and end with a
//! CRC-32C of what precedes it (added and checked by `Index`).
//!
//! ```text
//! log record (41 bytes + CRC)       page entry (17 bytes + CRC)
//!  0 log number      u32             0 log number   u32
//!  4 size            u64             4 first seq    u64
//! 12 last timestamp  u64            12 count        u32
//! 20 open page?      u8 (0 or 1)    16 sealed       u8 (0 or 1)
//! 21 segment         u32
//! 25 page            u32            page location (8 bytes + CRC)
//! 29 first seq       u64             0 segment      u32
//! 37 count           u32             4 page         u32
//! 41 used            u32
//! ```

use xaeroflux_types::TopicId;
use xaeroflux_types::bytes::Cursor;

/// A page location: segment number and page number within it (1-based; page
/// 0 of a segment holds the segment header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct PageLoc {
    pub segment: u32,
    pub page: u32,
}

/// The open (not yet sealed) page of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenPage {
    pub loc: PageLoc,
    pub first_seq: u64,
    pub count: u32,
    pub used: u32,
}

/// What the index knows of one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogRecord {
    pub log_no: u32,
    pub size: u64,
    pub last_ts: u64,
    pub open: Option<OpenPage>,
}

/// What the index knows of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageEntry {
    pub log_no: u32,
    pub first_seq: u64,
    pub count: u32,
    pub sealed: bool,
}

const LOG_RECORD_LEN: usize = 45;
const PAGE_ENTRY_LEN: usize = 17;
const LOC_LEN: usize = 8;
/// Bytes of a page-table key: segment, page.
pub(crate) const LOC_KEY_LEN: usize = 8;
/// Bytes of a log-page key: log number, first seq.
pub(crate) const LOG_PAGE_KEY_LEN: usize = 12;
/// Bytes of a topic-log key: topic id, log number.
pub(crate) const TOPIC_LOG_KEY_LEN: usize = 36;

/// Appends a value's CRC-32C.
pub(crate) fn sealed(mut v: Vec<u8>) -> Vec<u8> {
    let c = crc32c::crc32c(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

pub(crate) fn loc_key(loc: PageLoc) -> [u8; LOC_KEY_LEN] {
    let mut k = [0u8; LOC_KEY_LEN];
    k[..4].copy_from_slice(&loc.segment.to_be_bytes());
    k[4..].copy_from_slice(&loc.page.to_be_bytes());
    k
}

pub(crate) fn decode_loc_key(k: &[u8]) -> Option<PageLoc> {
    let mut c = Cursor::new(k);
    let loc = PageLoc {
        segment: c.u32_be()?,
        page: c.u32_be()?,
    };
    (c.left() == 0).then_some(loc)
}

pub(crate) fn log_page_key(log_no: u32, first_seq: u64) -> [u8; LOG_PAGE_KEY_LEN] {
    let mut k = [0u8; LOG_PAGE_KEY_LEN];
    k[..4].copy_from_slice(&log_no.to_be_bytes());
    k[4..].copy_from_slice(&first_seq.to_be_bytes());
    k
}

/// `(log number, first seq)` of a log-page key.
pub(crate) fn decode_log_page_key(k: &[u8]) -> Option<(u32, u64)> {
    let mut c = Cursor::new(k);
    let v = (c.u32_be()?, c.u64_be()?);
    (c.left() == 0).then_some(v)
}

/// Bytes of a log-time key: log number, first timestamp, first seq.
pub(crate) const LOG_TIME_KEY_LEN: usize = 20;

/// A `log_times` key: a page of log `log_no` whose first event, at
/// `first_seq`, has timestamp `first_ts`.
pub(crate) fn log_time_key(log_no: u32, first_ts: u64, first_seq: u64) -> [u8; LOG_TIME_KEY_LEN] {
    let mut k = [0u8; LOG_TIME_KEY_LEN];
    k[..4].copy_from_slice(&log_no.to_be_bytes());
    k[4..12].copy_from_slice(&first_ts.to_be_bytes());
    k[12..].copy_from_slice(&first_seq.to_be_bytes());
    k
}

/// `(log number, first timestamp, first seq)` of a log-time key.
pub(crate) fn decode_log_time_key(k: &[u8]) -> Option<(u32, u64, u64)> {
    let mut c = Cursor::new(k);
    let v = (c.u32_be()?, c.u64_be()?, c.u64_be()?);
    (c.left() == 0).then_some(v)
}

pub(crate) fn chunk_key(log_no: u32, tier: u8, chunk: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..4].copy_from_slice(&log_no.to_be_bytes());
    k[4] = tier;
    k[5..].copy_from_slice(&chunk.to_be_bytes());
    k
}

pub(crate) fn topic_log_key(topic: &TopicId, log_no: u32) -> [u8; TOPIC_LOG_KEY_LEN] {
    let mut k = [0u8; TOPIC_LOG_KEY_LEN];
    k[..32].copy_from_slice(&topic.0);
    k[32..].copy_from_slice(&log_no.to_be_bytes());
    k
}

/// `(topic id, log number)` of a topic-log key.
pub(crate) fn decode_topic_log_key(k: &[u8]) -> Option<([u8; 32], u32)> {
    let mut c = Cursor::new(k);
    let v = (c.array()?, c.u32_be()?);
    (c.left() == 0).then_some(v)
}

pub(crate) fn encode_log_record(r: &LogRecord) -> Vec<u8> {
    let mut v = Vec::with_capacity(LOG_RECORD_LEN + 4);
    v.extend_from_slice(&r.log_no.to_le_bytes());
    v.extend_from_slice(&r.size.to_le_bytes());
    v.extend_from_slice(&r.last_ts.to_le_bytes());
    match r.open {
        Some(o) => {
            v.push(1);
            v.extend_from_slice(&o.loc.segment.to_le_bytes());
            v.extend_from_slice(&o.loc.page.to_le_bytes());
            v.extend_from_slice(&o.first_seq.to_le_bytes());
            v.extend_from_slice(&o.count.to_le_bytes());
            v.extend_from_slice(&o.used.to_le_bytes());
        }
        None => {
            v.push(0);
            v.extend_from_slice(&[0u8; LOG_RECORD_LEN - 21]);
        }
    }
    sealed(v)
}

pub(crate) fn decode_log_record(b: &[u8]) -> Option<LogRecord> {
    if b.len() != LOG_RECORD_LEN {
        return None;
    }
    let mut c = Cursor::new(b);
    let (log_no, size, last_ts) = (c.u32_le()?, c.u64_le()?, c.u64_le()?);
    let flag = c.u8()?;
    let page = OpenPage {
        loc: PageLoc {
            segment: c.u32_le()?,
            page: c.u32_le()?,
        },
        first_seq: c.u64_le()?,
        count: c.u32_le()?,
        used: c.u32_le()?,
    };
    let open = match flag {
        0 => None,
        1 => Some(page),
        _ => return None,
    };
    Some(LogRecord {
        log_no,
        size,
        last_ts,
        open,
    })
}

pub(crate) fn encode_page_entry(e: &PageEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(PAGE_ENTRY_LEN + 4);
    v.extend_from_slice(&e.log_no.to_le_bytes());
    v.extend_from_slice(&e.first_seq.to_le_bytes());
    v.extend_from_slice(&e.count.to_le_bytes());
    v.push(e.sealed as u8);
    sealed(v)
}

pub(crate) fn decode_page_entry(b: &[u8]) -> Option<PageEntry> {
    if b.len() != PAGE_ENTRY_LEN {
        return None;
    }
    let mut c = Cursor::new(b);
    let (log_no, first_seq, count) = (c.u32_le()?, c.u64_le()?, c.u32_le()?);
    let sealed = match c.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(PageEntry {
        log_no,
        first_seq,
        count,
        sealed,
    })
}

pub(crate) fn encode_loc(loc: PageLoc) -> Vec<u8> {
    let mut v = Vec::with_capacity(LOC_LEN + 4);
    v.extend_from_slice(&loc.segment.to_le_bytes());
    v.extend_from_slice(&loc.page.to_le_bytes());
    sealed(v)
}

pub(crate) fn decode_loc(b: &[u8]) -> Option<PageLoc> {
    if b.len() != LOC_LEN {
        return None;
    }
    let mut c = Cursor::new(b);
    Some(PageLoc {
        segment: c.u32_le()?,
        page: c.u32_le()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_round_trip() {
        let r = LogRecord {
            log_no: 3,
            size: 1000,
            last_ts: 77,
            open: Some(OpenPage {
                loc: PageLoc {
                    segment: 2,
                    page: 9,
                },
                first_seq: 990,
                count: 10,
                used: 1234,
            }),
        };
        let v = encode_log_record(&r);
        assert_eq!(v.len(), LOG_RECORD_LEN + 4);
        assert_eq!(decode_log_record(&v[..v.len() - 4]), Some(r));
        let r2 = LogRecord { open: None, ..r };
        let v = encode_log_record(&r2);
        assert_eq!(decode_log_record(&v[..v.len() - 4]), Some(r2));
        let e = PageEntry {
            log_no: 1,
            first_seq: 5,
            count: 6,
            sealed: true,
        };
        let v = encode_page_entry(&e);
        assert_eq!(decode_page_entry(&v[..v.len() - 4]), Some(e));
        let loc = PageLoc {
            segment: 4,
            page: 2,
        };
        assert_eq!(decode_loc(&encode_loc(loc)[..LOC_LEN]), Some(loc));
        assert_eq!(decode_loc_key(&loc_key(loc)), Some(loc));
        assert_eq!(decode_log_page_key(&log_page_key(7, 99)), Some((7, 99)));
        assert_eq!(
            decode_topic_log_key(&topic_log_key(&TopicId([3; 32]), 8)),
            Some(([3; 32], 8))
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_values_never_panics(b in proptest::collection::vec(any::<u8>(), 0..60)) {
            let _ = decode_log_record(&b);
            let _ = decode_page_entry(&b);
            let _ = decode_loc(&b);
            let _ = decode_loc_key(&b);
            let _ = decode_log_page_key(&b);
            let _ = decode_topic_log_key(&b);
        }
    }
}
