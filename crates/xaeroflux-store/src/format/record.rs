//! An event record on a page: its length and CRC, then the event's
//! canonical encoding.
//!
//! ```text
//! 0  length n (u32 LE)     4
//! 4  CRC-32C (u32 LE)      4   over the n bytes, started from n
//! 8  canonical event       n
//! ```

use xaeroflux_types::bytes::u32_le_at;

const LEN_OFFSET: usize = 0;
const CRC_OFFSET: usize = LEN_OFFSET + 4;
/// Bytes before each record's canonical event: length and CRC-32C.
pub(crate) const RECORD_HEADER_LEN: usize = CRC_OFFSET + 4;

/// A record's CRC: CRC-32C of its bytes, started from the value of its
/// length (so the length is covered too, in one pass).
fn record_crc(len: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(len, bytes)
}

/// Writes a record's header (length and CRC of `body`) into `head`.
pub(crate) fn write_record_header(head: &mut [u8; RECORD_HEADER_LEN], body: &[u8]) {
    let len = body.len() as u32;
    head[LEN_OFFSET..CRC_OFFSET].copy_from_slice(&len.to_le_bytes());
    head[CRC_OFFSET..].copy_from_slice(&record_crc(len, body).to_le_bytes());
}

/// Reads the record at offset `off` of a page of format `version`: its
/// canonical bytes and the offset of the next record (past the padding on a
/// page of version 2).
pub(crate) fn read_record(
    page: &[u8],
    off: usize,
    version: u16,
) -> Result<(&[u8], usize), &'static str> {
    let len = u32_le_at(page, off + LEN_OFFSET).ok_or("record header beyond the page")?;
    let crc = u32_le_at(page, off + CRC_OFFSET).ok_or("record header beyond the page")?;
    let start = off + RECORD_HEADER_LEN;
    let end = start
        .checked_add(len as usize)
        .ok_or("record runs past the end of the page")?;
    let bytes = page
        .get(start..end)
        .ok_or("record runs past the end of the page")?;
    if record_crc(len, bytes) != crc {
        return Err("record checksum mismatch");
    }
    let next = off + super::record_stride(version, end - off);
    Ok((bytes, next.min(page.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_round_trip_and_detect_flips() {
        let mut page = vec![0u8; 64];
        let body = b"hello world";
        page[RECORD_HEADER_LEN..RECORD_HEADER_LEN + body.len()].copy_from_slice(body);
        let mut head = [0u8; RECORD_HEADER_LEN];
        write_record_header(&mut head, body);
        page[..RECORD_HEADER_LEN].copy_from_slice(&head);
        let (got, next) = read_record(&page, 0, 1).unwrap();
        assert_eq!(got, body);
        assert_eq!(next, RECORD_HEADER_LEN + body.len());
        // Version 2 pads the 19-byte record to 24: the next one is aligned.
        let (got, next) = read_record(&page, 0, 2).unwrap();
        assert_eq!((got, next), (&body[..], 24));
        for i in 0..RECORD_HEADER_LEN + body.len() {
            let mut bad = page.clone();
            bad[i] ^= 0x40;
            assert!(read_record(&bad, 0, 2).is_err(), "flip at {i}");
        }
    }

    proptest! {
        #[test]
        fn reading_arbitrary_pages_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), off in 0usize..400, v in 0u16..4) {
            if let Ok((_, next)) = read_record(&bytes, off, v) {
                prop_assert!(next <= bytes.len());
            }
        }
    }
}
