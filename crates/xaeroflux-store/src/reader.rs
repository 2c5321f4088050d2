//! Checked, zero-copy reads of pages and events from the mapped segments.

use heed::RoTxn;
use xaeroflux_merkle::Hash;
use xaeroflux_types::{EventRef, LOG_ID_LEN};

use crate::error::{Result, StoreError, corrupt};
use crate::format::{
    COUNT_OFFSET, FIRST_SEQ_OFFSET, LOG_OFFSET, PAGE_HEADER_LEN, PAGE_ROOT_OFFSET, PageHeader,
    SEAL_CRC_OFFSET, read_record,
};
use crate::index::{Index, PageLoc};
use crate::segments::Segments;

/// A page whose header has been checked against the index.
pub(crate) struct PageView<'a> {
    pub data: &'a [u8],
    pub log: &'a [u8; LOG_ID_LEN],
    pub header: PageHeader,
    pub loc: PageLoc,
    pub first_seq: u64,
    pub count: u32,
    seg_offset: u64,
}

/// What the index says a page is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'l> {
    pub log: &'l [u8; LOG_ID_LEN],
    pub first_seq: u64,
    pub count: u32,
    pub sealed: bool,
}

/// Reads a page and checks it is the page the index says: magic, version,
/// header checksums, log, first seq and location.
pub(crate) fn open_page<'a>(
    segments: &'a Segments,
    loc: PageLoc,
    want: Expect<'_>,
) -> Result<PageView<'a>> {
    let data = segments.page(loc)?;
    let seg_offset = segments.page_offset(loc);
    let file = || segments.path(loc.segment);
    let header = PageHeader::read(data).map_err(|(at, r)| corrupt(file(), seg_offset + at, r))?;
    if &header.log != want.log {
        return Err(corrupt(
            file(),
            seg_offset + LOG_OFFSET as u64,
            "page belongs to another log",
        ));
    }
    if header.first_seq != want.first_seq
        || header.segment != loc.segment
        || header.page != loc.page
    {
        return Err(corrupt(
            file(),
            seg_offset + FIRST_SEQ_OFFSET as u64,
            "page header does not match the index",
        ));
    }
    if want.sealed {
        if !header.sealed() || !PageHeader::seal_checksum_ok(data) {
            return Err(corrupt(
                file(),
                seg_offset + SEAL_CRC_OFFSET as u64,
                "sealed page header checksum mismatch",
            ));
        }
        if header.count != want.count {
            return Err(corrupt(
                file(),
                seg_offset + COUNT_OFFSET as u64,
                "sealed page count does not match the index",
            ));
        }
    }
    let log: &'a [u8; LOG_ID_LEN] = data
        .get(LOG_OFFSET..)
        .and_then(|d| d.first_chunk())
        .ok_or_else(|| corrupt(file(), seg_offset + LOG_OFFSET as u64, "page too short"))?;
    Ok(PageView {
        data,
        log,
        header,
        loc,
        first_seq: want.first_seq,
        count: want.count,
        seg_offset,
    })
}

impl<'a> PageView<'a> {
    /// The page's events, checked one by one (record checksum, encoding, seq).
    pub fn events(&self, segments: &'a Segments) -> PageEvents<'a> {
        PageEvents {
            version: self.header.version,
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

    /// Where the page-tree root lies in the segment file.
    pub fn root_offset(&self) -> u64 {
        self.seg_offset + PAGE_ROOT_OFFSET as u64
    }
}

/// Iterator over the events of one page.
pub(crate) struct PageEvents<'a> {
    version: u16,
    data: &'a [u8],
    log: &'a [u8; LOG_ID_LEN],
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

    fn fail(&self, reason: impl Into<String>) -> StoreError {
        corrupt(
            self.segments.path(self.segment),
            self.file_offset + self.off as u64,
            reason,
        )
    }

    fn read_next(&mut self) -> Result<EventRef<'a>> {
        let (bytes, end) =
            read_record(self.data, self.off, self.version).map_err(|r| self.fail(r))?;
        let ev = EventRef::new(self.log, bytes).map_err(|r| self.fail(r.to_string()))?;
        if ev.seq() != self.first_seq + self.next as u64 {
            return Err(self.fail("event out of sequence"));
        }
        self.off = end;
        self.next += 1;
        Ok(ev)
    }
}

impl<'a> Iterator for PageEvents<'a> {
    type Item = Result<EventRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let r = self.read_next();
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
    log: &[u8; LOG_ID_LEN],
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
    let (count, sealed) = page_count(index, txn, loc, log_no, first, log_size)?;
    let want = Expect {
        log,
        first_seq: first,
        count,
        sealed,
    };
    let page = open_page(segments, loc, want)?;
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
    log_size: u64,
) -> Result<(u32, bool)> {
    let e = index.page_entry(txn, loc)?;
    if e.log_no != log_no || e.first_seq != first || first + e.count as u64 > log_size {
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
    log: &[u8; LOG_ID_LEN],
    log_size: u64,
    seq: u64,
) -> Result<Hash> {
    Ok(read_event(index, txn, segments, log_no, log, log_size, seq)?.leaf_hash())
}
