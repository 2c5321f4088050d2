//! Byte layouts of the store's files: segment headers, page headers, event
//! records and the identity file. `docs/storage-format.md` describes them.

/// Magic of a page header.
pub(crate) const PAGE_MAGIC: [u8; 4] = *b"XFPG";
/// Page format version.
pub(crate) const PAGE_VERSION: u16 = 1;
/// Bytes of the page header; records follow.
pub(crate) const PAGE_HEADER_LEN: usize = 136;
/// Bytes before each record's canonical event: length and CRC-32C.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Page flag: sealed (full; count, used and page root are final).
pub(crate) const FLAG_SEALED: u16 = 1;

/// Magic of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"XFSEGMNT";
/// Segment format version.
pub(crate) const SEGMENT_VERSION: u16 = 1;
/// Bytes of the segment header used at the start of the segment's page 0.
pub(crate) const SEGMENT_HEADER_LEN: usize = 44;

/// Magic of the identity file.
pub(crate) const IDENTITY_MAGIC: [u8; 4] = *b"XFID";
/// Identity file version.
pub(crate) const IDENTITY_VERSION: u16 = 1;
/// Size of the identity file.
pub(crate) const IDENTITY_LEN: usize = 76;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// A decoded page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageHeader {
    pub flags: u16,
    pub log: [u8; 64],
    pub first_seq: u64,
    pub segment: u32,
    pub page: u32,
    pub count: u32,
    pub used: u32,
    pub page_root: [u8; 32],
}

/// CRC of the fields fixed at page creation: magic, version, log, first seq, location.
fn id_crc(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[0..6]), &b[8..88])
}

/// CRC of the whole header of a sealed page (bytes 0..100 and 104..136).
fn seal_crc(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[0..100]), &b[104..136])
}

impl PageHeader {
    pub fn sealed(&self) -> bool {
        self.flags & FLAG_SEALED != 0
    }

    /// Writes the header into the first `PAGE_HEADER_LEN` bytes of `buf`.
    pub fn write(&self, buf: &mut [u8]) {
        let b = &mut buf[..PAGE_HEADER_LEN];
        b[0..4].copy_from_slice(&PAGE_MAGIC);
        b[4..6].copy_from_slice(&PAGE_VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..72].copy_from_slice(&self.log);
        b[72..80].copy_from_slice(&self.first_seq.to_le_bytes());
        b[80..84].copy_from_slice(&self.segment.to_le_bytes());
        b[84..88].copy_from_slice(&self.page.to_le_bytes());
        let c = id_crc(b);
        b[88..92].copy_from_slice(&c.to_le_bytes());
        b[92..96].copy_from_slice(&self.count.to_le_bytes());
        b[96..100].copy_from_slice(&self.used.to_le_bytes());
        b[104..136].copy_from_slice(&self.page_root);
        let s = if self.sealed() { seal_crc(b) } else { 0 };
        b[100..104].copy_from_slice(&s.to_le_bytes());
    }

    /// Reads a header; checks magic, version and the identity CRC. The
    /// mutable fields of an open page are returned as found.
    pub fn read(buf: &[u8]) -> Result<Self, &'static str> {
        let b = buf
            .get(..PAGE_HEADER_LEN)
            .ok_or("page shorter than its header")?;
        if b[0..4] != PAGE_MAGIC {
            return Err("bad page magic");
        }
        if u16_at(b, 4) != PAGE_VERSION {
            return Err("unknown page format version");
        }
        if u32_at(b, 88) != id_crc(b) {
            return Err("page header checksum mismatch");
        }
        let mut log = [0u8; 64];
        log.copy_from_slice(&b[8..72]);
        let mut page_root = [0u8; 32];
        page_root.copy_from_slice(&b[104..136]);
        Ok(Self {
            flags: u16_at(b, 6),
            log,
            first_seq: u64_at(b, 72),
            segment: u32_at(b, 80),
            page: u32_at(b, 84),
            count: u32_at(b, 92),
            used: u32_at(b, 96),
            page_root,
        })
    }

    /// Whether a sealed header's whole-header checksum holds.
    pub fn seal_checksum_ok(buf: &[u8]) -> bool {
        buf.len() >= PAGE_HEADER_LEN && u32_at(buf, 100) == seal_crc(buf)
    }
}

/// A record's CRC: CRC-32C of its bytes, started from the value of its
/// length (so the length is covered too, in one pass).
fn record_crc(len: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(len, bytes)
}

/// Writes one record (length, CRC, canonical bytes) at the start of `out`.
pub(crate) fn write_record_header(out: &mut [u8], bytes_written_after: &[u8]) {
    let len = bytes_written_after.len() as u32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&record_crc(len, bytes_written_after).to_le_bytes());
}

/// Reads the record at offset `off` of a page: its canonical bytes and the
/// offset of the next record.
pub(crate) fn read_record(page: &[u8], off: usize) -> Result<(&[u8], usize), &'static str> {
    let head = page
        .get(off..off + RECORD_HEADER_LEN)
        .ok_or("record header beyond the page")?;
    let len = u32_at(head, 0);
    let crc = u32_at(head, 4);
    let start = off + RECORD_HEADER_LEN;
    let end = start
        .checked_add(len as usize)
        .filter(|e| *e <= page.len())
        .ok_or("record runs past the end of the page")?;
    let bytes = &page[start..end];
    if record_crc(len, bytes) != crc {
        return Err("record checksum mismatch");
    }
    Ok((bytes, end))
}

/// Writes a segment header into `buf`.
pub(crate) fn write_segment_header(
    buf: &mut [u8],
    page_size: u32,
    segment_pages: u32,
    segment: u32,
    store_id: &[u8; 16],
) {
    let b = &mut buf[..SEGMENT_HEADER_LEN];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&[0, 0]);
    b[12..16].copy_from_slice(&page_size.to_le_bytes());
    b[16..20].copy_from_slice(&segment_pages.to_le_bytes());
    b[20..24].copy_from_slice(&segment.to_le_bytes());
    b[24..40].copy_from_slice(store_id);
    let c = crc32c::crc32c(&b[0..40]);
    b[40..44].copy_from_slice(&c.to_le_bytes());
}

/// What a segment header says: page size, data pages per segment, segment
/// number and store id.
pub(crate) type SegmentHeader = (u32, u32, u32, [u8; 16]);

/// Reads a segment header, checking magic, version and CRC.
pub(crate) fn read_segment_header(buf: &[u8]) -> Result<SegmentHeader, (u64, String)> {
    let b = buf
        .get(..SEGMENT_HEADER_LEN)
        .ok_or((0, "segment file shorter than its header".to_string()))?;
    if b[0..8] != SEGMENT_MAGIC {
        return Err((0, "bad segment magic".into()));
    }
    if u16_at(b, 8) != SEGMENT_VERSION {
        return Err((
            8,
            format!("unknown segment format version {}", u16_at(b, 8)),
        ));
    }
    if u32_at(b, 40) != crc32c::crc32c(&b[0..40]) {
        return Err((40, "segment header checksum mismatch".into()));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[24..40]);
    Ok((u32_at(b, 12), u32_at(b, 16), u32_at(b, 20), id))
}

/// Checks a segment header against what the store expects.
pub(crate) fn check_segment_header(
    buf: &[u8],
    page_size: u32,
    segment_pages: u32,
    segment: u32,
    store_id: &[u8; 16],
) -> Result<(), (u64, String)> {
    let (ps, sp, seg, id) = read_segment_header(buf)?;
    if ps != page_size || sp != segment_pages {
        return Err((12, "segment geometry differs from the store's".into()));
    }
    if seg != segment {
        return Err((20, format!("segment file holds segment {seg}")));
    }
    if &id != store_id {
        return Err((24, "segment belongs to another store".into()));
    }
    Ok(())
}

/// Encodes the identity file.
pub(crate) fn encode_identity(secret: &[u8; 32], public: &[u8; 32]) -> [u8; IDENTITY_LEN] {
    let mut b = [0u8; IDENTITY_LEN];
    b[0..4].copy_from_slice(&IDENTITY_MAGIC);
    b[4..6].copy_from_slice(&IDENTITY_VERSION.to_le_bytes());
    b[8..40].copy_from_slice(secret);
    b[40..72].copy_from_slice(public);
    let c = crc32c::crc32c(&b[0..72]);
    b[72..76].copy_from_slice(&c.to_le_bytes());
    b
}

/// Decodes the identity file: `(secret, public)`, or the offset and reason
/// of what is wrong.
pub(crate) fn decode_identity(b: &[u8]) -> Result<([u8; 32], [u8; 32]), (u64, String)> {
    if b.len() != IDENTITY_LEN {
        return Err((
            b.len() as u64,
            format!("identity file is {} bytes, not {IDENTITY_LEN}", b.len()),
        ));
    }
    if b[0..4] != IDENTITY_MAGIC {
        return Err((0, "bad identity magic".into()));
    }
    if u16_at(b, 4) != IDENTITY_VERSION {
        return Err((
            4,
            format!("unknown identity format version {}", u16_at(b, 4)),
        ));
    }
    if u32_at(b, 72) != crc32c::crc32c(&b[0..72]) {
        return Err((72, "identity checksum mismatch".into()));
    }
    let mut secret = [0u8; 32];
    let mut public = [0u8; 32];
    secret.copy_from_slice(&b[8..40]);
    public.copy_from_slice(&b[40..72]);
    Ok((secret, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> PageHeader {
        PageHeader {
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
    fn page_header_round_trips_open_and_sealed() {
        let mut buf = vec![0u8; PAGE_HEADER_LEN];
        let mut h = header();
        h.write(&mut buf);
        assert_eq!(PageHeader::read(&buf).unwrap(), h);
        h.flags = FLAG_SEALED;
        h.page_root = [9; 32];
        h.write(&mut buf);
        assert_eq!(PageHeader::read(&buf).unwrap(), h);
        assert!(PageHeader::seal_checksum_ok(&buf));
        buf[93] ^= 1; // the count of a sealed page is covered
        assert!(!PageHeader::seal_checksum_ok(&buf));
    }

    #[test]
    fn records_round_trip_and_detect_flips() {
        let mut page = vec![0u8; 64];
        let body = b"hello world";
        page[RECORD_HEADER_LEN..RECORD_HEADER_LEN + body.len()].copy_from_slice(body);
        let (h, rest) = page.split_at_mut(RECORD_HEADER_LEN);
        write_record_header(h, &rest[..body.len()]);
        let (got, next) = read_record(&page, 0).unwrap();
        assert_eq!(got, body);
        assert_eq!(next, RECORD_HEADER_LEN + body.len());
        page[10] ^= 0x40;
        assert!(read_record(&page, 0).is_err());
    }

    #[test]
    fn identity_round_trips() {
        let b = encode_identity(&[1; 32], &[2; 32]);
        assert_eq!(decode_identity(&b).unwrap(), ([1; 32], [2; 32]));
        for i in 0..IDENTITY_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(decode_identity(&c).is_err(), "flip at {i}");
        }
        assert!(decode_identity(&b[..70]).is_err());
    }

    proptest! {
        #[test]
        fn page_header_flips_are_detected(i in 0usize..PAGE_HEADER_LEN, bit in 0u8..8) {
            let mut buf = vec![0u8; PAGE_HEADER_LEN];
            let mut h = header();
            h.flags = FLAG_SEALED;
            h.write(&mut buf);
            buf[i] ^= 1 << bit;
            let still = PageHeader::read(&buf).is_ok() && PageHeader::seal_checksum_ok(&buf);
            prop_assert!(!still || i == 6 || i == 7, "flip at {} undetected", i);
        }

        #[test]
        fn reading_arbitrary_pages_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), off in 0usize..300) {
            let _ = PageHeader::read(&bytes);
            let _ = read_record(&bytes, off);
            let _ = check_segment_header(&bytes, 1, 1, 0, &[0; 16]);
            let _ = decode_identity(&bytes);
        }
    }
}
