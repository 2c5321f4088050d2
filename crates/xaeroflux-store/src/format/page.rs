//! The page header: the first 136 bytes of every data page.
//!
//! ```text
//!  0  magic "XFPG"          4
//!  4  version (u16)         2
//!  6  flags (u16)           2   bit 0: sealed
//!  8  log id                64  author || topic id
//! 72  first seq (u64)       8
//! 80  segment (u32)         4
//! 84  page (u32)            4
//! 88  id CRC (u32)          4   over bytes 0..6 and 8..88: fixed at creation
//! 92  count (u32)           4
//! 96  used (u32)            4   record bytes after the header
//! 100 seal CRC (u32)        4   over bytes 0..100 and 104..136, once sealed
//! 104 page-tree root        32  once sealed
//! ```
//! All integers little-endian.

use xaeroflux_types::LOG_ID_LEN;

use super::crc_of;

/// Magic of a page header.
pub(crate) const PAGE_MAGIC: [u8; 4] = *b"XFPG";
/// Page format version written by this build: records padded to 8 bytes, so
/// every payload starts 8-aligned in the mapping.
pub(crate) const PAGE_VERSION: u16 = 2;
/// The first page format: records back to back, no padding. Still read, and
/// still appended to while such a page is a log's open page.
pub(crate) const PAGE_VERSION_V1: u16 = 1;
/// Alignment of records (and so of payloads) on a page of version 2.
pub(crate) const RECORD_ALIGN: usize = 8;

/// Bytes a record of `rec_len` bytes takes on a page of `version`.
pub(crate) fn record_stride(version: u16, rec_len: usize) -> usize {
    if version >= PAGE_VERSION {
        rec_len.next_multiple_of(RECORD_ALIGN)
    } else {
        rec_len
    }
}
/// Page flag: sealed (full; count, used and page root are final).
pub(crate) const FLAG_SEALED: u16 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 4;
const FLAGS_OFFSET: usize = VERSION_OFFSET + 2;
/// Offset of the log id.
pub(crate) const LOG_OFFSET: usize = FLAGS_OFFSET + 2;
/// Offset of the first seq.
pub(crate) const FIRST_SEQ_OFFSET: usize = LOG_OFFSET + LOG_ID_LEN;
const SEGMENT_OFFSET: usize = FIRST_SEQ_OFFSET + 8;
const PAGE_OFFSET: usize = SEGMENT_OFFSET + 4;
const ID_CRC_OFFSET: usize = PAGE_OFFSET + 4;
/// Offset of the event count.
pub(crate) const COUNT_OFFSET: usize = ID_CRC_OFFSET + 4;
/// Offset of the bytes used.
pub(crate) const USED_OFFSET: usize = COUNT_OFFSET + 4;
/// Offset of the seal CRC.
pub(crate) const SEAL_CRC_OFFSET: usize = USED_OFFSET + 4;
/// Offset of the page-tree root.
pub(crate) const PAGE_ROOT_OFFSET: usize = SEAL_CRC_OFFSET + 4;
/// Bytes of the page header; records follow.
pub(crate) const PAGE_HEADER_LEN: usize = PAGE_ROOT_OFFSET + 32;

type Head = [u8; PAGE_HEADER_LEN];

/// A decoded page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageHeader {
    /// Format version: [`PAGE_VERSION`] or [`PAGE_VERSION_V1`].
    pub version: u16,
    pub flags: u16,
    pub log: [u8; LOG_ID_LEN],
    pub first_seq: u64,
    pub segment: u32,
    pub page: u32,
    pub count: u32,
    pub used: u32,
    pub page_root: [u8; 32],
}

/// Why a page header was refused, and the offset in the page it concerns.
pub(crate) type HeaderError = (u64, &'static str);

fn id_crc(b: &Head) -> u32 {
    crc_of(&[&b[..FLAGS_OFFSET], &b[LOG_OFFSET..ID_CRC_OFFSET]])
}

fn seal_crc(b: &Head) -> u32 {
    crc_of(&[&b[..SEAL_CRC_OFFSET], &b[PAGE_ROOT_OFFSET..]])
}

fn get<const N: usize>(b: &Head, at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

fn put(b: &mut Head, at: usize, bytes: &[u8]) {
    if let Some(d) = b.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

impl PageHeader {
    pub fn sealed(&self) -> bool {
        self.flags & FLAG_SEALED != 0
    }

    /// The header's bytes (with both CRCs; the seal CRC only once sealed).
    pub fn encode(&self) -> Head {
        let mut b = [0u8; PAGE_HEADER_LEN];
        put(&mut b, MAGIC_OFFSET, &PAGE_MAGIC);
        put(&mut b, VERSION_OFFSET, &self.version.to_le_bytes());
        put(&mut b, FLAGS_OFFSET, &self.flags.to_le_bytes());
        put(&mut b, LOG_OFFSET, &self.log);
        put(&mut b, FIRST_SEQ_OFFSET, &self.first_seq.to_le_bytes());
        put(&mut b, SEGMENT_OFFSET, &self.segment.to_le_bytes());
        put(&mut b, PAGE_OFFSET, &self.page.to_le_bytes());
        let c = id_crc(&b);
        put(&mut b, ID_CRC_OFFSET, &c.to_le_bytes());
        put(&mut b, COUNT_OFFSET, &self.count.to_le_bytes());
        put(&mut b, USED_OFFSET, &self.used.to_le_bytes());
        put(&mut b, PAGE_ROOT_OFFSET, &self.page_root);
        let s = if self.sealed() { seal_crc(&b) } else { 0 };
        put(&mut b, SEAL_CRC_OFFSET, &s.to_le_bytes());
        b
    }

    /// Reads a header from the start of a page; checks magic, version and
    /// the id CRC. The mutable fields of an open page are returned as found.
    pub fn read(page: &[u8]) -> Result<Self, HeaderError> {
        let b: &Head = page
            .first_chunk()
            .ok_or((0, "page shorter than its header"))?;
        if get::<4>(b, MAGIC_OFFSET) != PAGE_MAGIC {
            return Err((MAGIC_OFFSET as u64, "bad page magic"));
        }
        let version = u16::from_le_bytes(get(b, VERSION_OFFSET));
        if version != PAGE_VERSION && version != PAGE_VERSION_V1 {
            return Err((VERSION_OFFSET as u64, "unknown page format version"));
        }
        if u32::from_le_bytes(get(b, ID_CRC_OFFSET)) != id_crc(b) {
            return Err((ID_CRC_OFFSET as u64, "page header checksum mismatch"));
        }
        Ok(Self {
            version,
            flags: u16::from_le_bytes(get(b, FLAGS_OFFSET)),
            log: get(b, LOG_OFFSET),
            first_seq: u64::from_le_bytes(get(b, FIRST_SEQ_OFFSET)),
            segment: u32::from_le_bytes(get(b, SEGMENT_OFFSET)),
            page: u32::from_le_bytes(get(b, PAGE_OFFSET)),
            count: u32::from_le_bytes(get(b, COUNT_OFFSET)),
            used: u32::from_le_bytes(get(b, USED_OFFSET)),
            page_root: get(b, PAGE_ROOT_OFFSET),
        })
    }

    /// Whether a sealed header's whole-header checksum holds.
    pub fn seal_checksum_ok(page: &[u8]) -> bool {
        page.first_chunk::<PAGE_HEADER_LEN>()
            .is_some_and(|b| u32::from_le_bytes(get(b, SEAL_CRC_OFFSET)) == seal_crc(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> PageHeader {
        PageHeader {
            version: PAGE_VERSION,
            flags: 0,
            log: [7; 64],
            first_seq: 99,
            segment: 3,
            page: 17,
            count: 5,
            used: 400,
            page_root: [0; 32],
        }
    }

    #[test]
    fn the_layout_is_136_bytes() {
        assert_eq!(PAGE_HEADER_LEN, 136);
        assert_eq!(
            (ID_CRC_OFFSET, SEAL_CRC_OFFSET, PAGE_ROOT_OFFSET),
            (88, 100, 104)
        );
    }

    #[test]
    fn both_page_versions_are_read_and_others_refused() {
        let mut h = header();
        h.version = PAGE_VERSION_V1;
        assert_eq!(PageHeader::read(&h.encode()).unwrap().version, 1);
        h.version = 3;
        let err = PageHeader::read(&h.encode()).unwrap_err();
        assert_eq!(err, (VERSION_OFFSET as u64, "unknown page format version"));
        assert_eq!(record_stride(PAGE_VERSION_V1, 41), 41);
        assert_eq!(record_stride(PAGE_VERSION, 41), 48);
        assert_eq!(record_stride(PAGE_VERSION, 48), 48);
    }

    #[test]
    fn page_header_round_trips_open_and_sealed() {
        let mut h = header();
        let buf = h.encode();
        assert_eq!(PageHeader::read(&buf).unwrap(), h);
        h.flags = FLAG_SEALED;
        h.page_root = [9; 32];
        let mut buf = h.encode();
        assert_eq!(PageHeader::read(&buf).unwrap(), h);
        assert!(PageHeader::seal_checksum_ok(&buf));
        buf[COUNT_OFFSET + 1] ^= 1; // the count of a sealed page is covered
        assert!(!PageHeader::seal_checksum_ok(&buf));
        assert!(PageHeader::read(&buf[..100]).is_err());
    }

    proptest! {
        #[test]
        fn page_header_flips_are_detected(i in 0usize..PAGE_HEADER_LEN, bit in 0u8..8) {
            let mut h = header();
            h.flags = FLAG_SEALED;
            let mut buf = h.encode();
            buf[i] ^= 1 << bit;
            let still = PageHeader::read(&buf).is_ok() && PageHeader::seal_checksum_ok(&buf);
            // The flags are covered by the seal CRC only; a cleared sealed
            // bit reads as an open page, which the index then disagrees with.
            prop_assert!(!still || i == FLAGS_OFFSET || i == FLAGS_OFFSET + 1, "flip at {} undetected", i);
        }

        #[test]
        fn reading_arbitrary_headers_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = PageHeader::read(&bytes);
            let _ = PageHeader::seal_checksum_ok(&bytes);
        }
    }
}
