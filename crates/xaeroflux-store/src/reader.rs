//! Checked, zero-copy reads of pages and events from the mapped segments.

use heed::RoTxn;
use xaeroflux_merkle::Hash;

use crate::error::{Result, StoreError, corrupt};
use crate::event::{EventRef, decode_event};
use crate::format::{PAGE_HEADER_LEN, PageHeader, read_record};
use crate::index::{Index, PageLoc};
use crate::segments::Segments;

/// A page whose header has been checked against the index.
pub(crate) struct PageView<'a> {
    pub data: &'a [u8],
    pub log: &'a [u8; 64],
    pub header: PageHeader,
    pub loc: PageLoc,
    pub first_seq: u64,
    pub count: u32,
    seg_offset: u64,
}

/// Reads a page and checks it is the page the index says: magic, version,
/// header checksums, log, first seq and location.
pub(crate) fn open_page<'a>(
    segments: &'a Segments,
    loc: PageLoc,
    log: &[u8; 64],
    first_seq: u64,
    count: u32,
    sealed: bool,
) -> Result<PageView<'a>> {
    let data = segments.page(loc)?;
    let seg_offset = segments.page_offset(loc);
    let file = || segments.path(loc.segment);
    let header = PageHeader::read(data).map_err(|r| corrupt(file(), seg_offset, r))?;
    if &header.log != log {
        return Err(corrupt(
            file(),
            seg_offset + 8,
            "page belongs to another log",
        ));
    }
    if header.first_seq != first_seq || header.segment != loc.segment || header.page != loc.page {
        return Err(corrupt(
            file(),
            seg_offset + 72,
            "page header does not match the index",
        ));
    }
    if sealed {
        if !header.sealed() || !PageHeader::seal_checksum_ok(data) {
            return Err(corrupt(
                file(),
                seg_offset + 100,
                "sealed page header checksum mismatch",
            ));
        }
        if header.count != count {
            return Err(corrupt(
                file(),
                seg_offset + 92,
                "sealed page count does not match the index",
            ));
        }
    }
    let log_ref: &'a [u8; 64] = data[8..72]
        .try_into()
        .map_err(|_| corrupt(file(), seg_offset + 8, "page too short"))?;
    Ok(PageView {
        data,
        log: log_ref,
        header,
        loc,
        first_seq,
        count,
        seg_offset,
    })
}

impl<'a> PageView<'a> {
    /// The page's events, checked one by one (record checksum, encoding, seq).
    pub fn events(&self, segments: &'a Segments) -> PageEvents<'a> {
        PageEvents {
            data: self.data,
            log: self.log,
            off: PAGE_HEADER_LEN,
            next: 0,
            count: self.count,
            first_seq: self.first_seq,
            file_offset: self.seg_offset,
            segment: self.loc.segment,
            segments,
        }
    }
}

/// Iterator over the events of one page.
pub(crate) struct PageEvents<'a> {
    data: &'a [u8],
    log: &'a [u8; 64],
    off: usize,
    next: u32,
    count: u32,
    first_seq: u64,
    file_offset: u64,
    segment: u32,
    segments: &'a Segments,
}

impl<'a> PageEvents<'a> {
    /// Skips `n` events (still checking their records).
    pub fn skip_events(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            if self.next().transpose()?.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn fail(&self, reason: &str) -> StoreError {
        corrupt(
            self.segments.path(self.segment),
            self.file_offset + self.off as u64,
            reason.to_string(),
        )
    }
}

impl<'a> Iterator for PageEvents<'a> {
    type Item = Result<EventRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let r = (|| {
            let (bytes, end) = read_record(self.data, self.off).map_err(|r| self.fail(r))?;
            let header = decode_event(bytes).map_err(|r| self.fail(r))?;
            if header.seq() != self.first_seq + self.next as u64 {
                return Err(self.fail("event out of sequence"));
            }
            self.off = end;
            self.next += 1;
            Ok(EventRef::new(self.log, header, bytes))
        })();
        if r.is_err() {
            self.next = self.count; // stop after the first error
        }
        Some(r)
    }
}

/// Reads the event at `seq` of a log of `log_size` events, through the index.
pub(crate) fn read_event<'a>(
    index: &Index,
    txn: &RoTxn,
    segments: &'a Segments,
    log_no: u32,
    log: &[u8; 64],
    log_size: u64,
    seq: u64,
) -> Result<EventRef<'a>> {
    let (first, loc) = index.page_of(txn, log_no, seq)?.ok_or_else(|| {
        corrupt(
            index.data_file(),
            0,
            format!("no page holds seq {seq} of log {log_no}"),
        )
    })?;
    let entry_count = page_count(index, txn, loc, log_no, first, log_size)?;
    let page = open_page(segments, loc, log, first, entry_count.0, entry_count.1)?;
    let mut evs = page.events(segments);
    evs.skip_events(seq - first)?;
    match evs.next() {
        Some(r) => r,
        None => Err(corrupt(
            segments.path(loc.segment),
            segments.page_offset(loc),
            format!("page does not hold seq {seq}"),
        )),
    }
}

/// The count and sealed flag of a page, from the page table, checked
/// against the log's size (not a smaller tree size a proof is read at: the
/// page holding an older tree's last leaf may hold later events too).
pub(crate) fn page_count(
    index: &Index,
    txn: &RoTxn,
    loc: PageLoc,
    log_no: u32,
    first: u64,
    size: u64,
) -> Result<(u32, bool)> {
    let e = index.page_entry(txn, loc)?;
    if e.log_no != log_no || e.first_seq != first || first + e.count as u64 > size {
        return Err(corrupt(
            index.data_file(),
            0,
            "page table disagrees with the log table",
        ));
    }
    Ok((e.count, e.sealed))
}

/// Leaf hash of the event at `seq` of a log of `log_size` events.
pub(crate) fn leaf_at(
    index: &Index,
    txn: &RoTxn,
    segments: &Segments,
    log_no: u32,
    log: &[u8; 64],
    log_size: u64,
    seq: u64,
) -> Result<Hash> {
    Ok(read_event(index, txn, segments, log_no, log, log_size, seq)?.leaf_hash())
}
