//! The segment header: the first bytes of a segment file's page 0.
//!
//! ```text
//!  0  magic "XFSEGMNT"      8
//!  8  version (u16)         2
//! 10  reserved              2
//! 12  page size (u32)       4
//! 16  data pages (u32)      4
//! 20  segment number (u32)  4
//! 24  store id              16
//! 40  CRC-32C of 0..40      4
//! ```
//! All integers little-endian.

use super::crc_of;

/// Magic of a segment file.
const SEGMENT_MAGIC: [u8; 8] = *b"XFSEGMNT";
/// Segment format version.
const SEGMENT_VERSION: u16 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const RESERVED_OFFSET: usize = VERSION_OFFSET + 2;
/// Offset of the page size.
pub(crate) const SEGMENT_PAGE_SIZE_OFFSET: usize = RESERVED_OFFSET + 2;
const PAGES_OFFSET: usize = SEGMENT_PAGE_SIZE_OFFSET + 4;
/// Offset of the segment number.
pub(crate) const SEGMENT_NUMBER_OFFSET: usize = PAGES_OFFSET + 4;
/// Offset of the store id.
pub(crate) const SEGMENT_ID_OFFSET: usize = SEGMENT_NUMBER_OFFSET + 4;
const CRC_OFFSET: usize = SEGMENT_ID_OFFSET + 16;
/// Bytes of the segment header used at the start of the segment's page 0.
pub(crate) const SEGMENT_HEADER_LEN: usize = CRC_OFFSET + 4;

type Head = [u8; SEGMENT_HEADER_LEN];

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub page_size: u32,
    pub segment_pages: u32,
    pub segment: u32,
    pub store_id: [u8; 16],
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> Head {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&SEGMENT_MAGIC);
        b[VERSION_OFFSET..RESERVED_OFFSET].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b[SEGMENT_PAGE_SIZE_OFFSET..PAGES_OFFSET].copy_from_slice(&self.page_size.to_le_bytes());
        b[PAGES_OFFSET..SEGMENT_NUMBER_OFFSET].copy_from_slice(&self.segment_pages.to_le_bytes());
        b[SEGMENT_NUMBER_OFFSET..SEGMENT_ID_OFFSET].copy_from_slice(&self.segment.to_le_bytes());
        b[SEGMENT_ID_OFFSET..CRC_OFFSET].copy_from_slice(&self.store_id);
        let c = crc_of(&[&b[..CRC_OFFSET]]);
        b[CRC_OFFSET..].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Reads a header, checking magic, version and CRC; the error names the
    /// offset of what is wrong.
    pub fn read(buf: &[u8]) -> Result<Self, (u64, String)> {
        let b: &Head = buf
            .first_chunk()
            .ok_or((0, "segment file shorter than its header".to_string()))?;
        if b[MAGIC_OFFSET..VERSION_OFFSET] != SEGMENT_MAGIC {
            return Err((MAGIC_OFFSET as u64, "bad segment magic".into()));
        }
        let version = u16::from_le_bytes([b[VERSION_OFFSET], b[VERSION_OFFSET + 1]]);
        if version != SEGMENT_VERSION {
            return Err((
                VERSION_OFFSET as u64,
                format!("unknown segment format version {version}"),
            ));
        }
        let u32_at = |o: usize| xaeroflux_types::bytes::u32_le_at(b, o).unwrap_or(0);
        if u32_at(CRC_OFFSET) != crc_of(&[&b[..CRC_OFFSET]]) {
            return Err((CRC_OFFSET as u64, "segment header checksum mismatch".into()));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&b[SEGMENT_ID_OFFSET..CRC_OFFSET]);
        Ok(Self {
            page_size: u32_at(SEGMENT_PAGE_SIZE_OFFSET),
            segment_pages: u32_at(PAGES_OFFSET),
            segment: u32_at(SEGMENT_NUMBER_OFFSET),
            store_id,
        })
    }
}

/// Checks a segment header against what the store expects.
pub(crate) fn check_segment_header(buf: &[u8], want: &SegmentHeader) -> Result<(), (u64, String)> {
    let h = SegmentHeader::read(buf)?;
    if h.page_size != want.page_size || h.segment_pages != want.segment_pages {
        return Err((
            SEGMENT_PAGE_SIZE_OFFSET as u64,
            "segment geometry differs from the store's".into(),
        ));
    }
    if h.segment != want.segment {
        return Err((
            SEGMENT_NUMBER_OFFSET as u64,
            format!("segment file holds segment {}", h.segment),
        ));
    }
    if h.store_id != want.store_id {
        return Err((
            SEGMENT_ID_OFFSET as u64,
            "segment belongs to another store".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> SegmentHeader {
        SegmentHeader {
            page_size: 4096,
            segment_pages: 8,
            segment: 2,
            store_id: [5; 16],
        }
    }

    #[test]
    fn segment_headers_round_trip_and_every_flip_is_caught() {
        let b = header().encode();
        assert_eq!(SegmentHeader::read(&b).unwrap(), header());
        assert!(check_segment_header(&b, &header()).is_ok());
        for i in 0..SEGMENT_HEADER_LEN {
            let mut c = b;
            c[i] ^= 0x08;
            assert!(SegmentHeader::read(&c).is_err(), "flip at {i}");
        }
        let other = SegmentHeader {
            segment: 3,
            ..header()
        };
        assert!(check_segment_header(&b, &other).is_err());
    }

    proptest! {
        #[test]
        fn reading_arbitrary_headers_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = check_segment_header(&bytes, &header());
        }
    }
}
