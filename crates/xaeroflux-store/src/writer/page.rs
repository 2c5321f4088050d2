//! A log's open page, held in memory by the writer, and the bytes of a
//! page the flusher writes.

use xaeroflux_merkle::{Hash, mth};
use xaeroflux_types::LogId;

use crate::error::{Result, internal};
use crate::format::{
    FLAG_SEALED, PAGE_HEADER_LEN, PAGE_VERSION, PageHeader, RECORD_HEADER_LEN, record_stride,
};
use crate::index::{PageEntry, PageLoc};

/// One page's bytes for the flusher: the header and the records not
/// written yet, which go at `from`.
pub(crate) struct PageWrite {
    pub loc: PageLoc,
    pub header: [u8; PAGE_HEADER_LEN],
    pub from: usize,
    pub records: Vec<u8>,
}

/// A log's open page in memory.
pub(crate) struct OpenBuf {
    pub loc: PageLoc,
    /// Page format: [`PAGE_VERSION`] for a page this build opened; an open
    /// page of an older version keeps its layout until it is sealed.
    pub version: u16,
    pub first_seq: u64,
    /// Timestamp of its first event (0 while it has none).
    pub first_ts: u64,
    pub count: u32,
    pub used: u32,
    pub buf: Vec<u8>,
    pub leaves: Vec<Hash>,
    /// Page offset from which bytes have not been handed to the flusher yet.
    pub write_from: usize,
    pub sealed: bool,
}

impl OpenBuf {
    /// A new, empty page of the current format.
    pub fn new(loc: PageLoc, first_seq: u64, page_size: usize) -> Self {
        Self::with_version(loc, first_seq, page_size, PAGE_VERSION)
    }

    /// An empty page buffer of a given format (an open page found on disk).
    pub fn with_version(loc: PageLoc, first_seq: u64, page_size: usize, version: u16) -> Self {
        Self {
            loc,
            version,
            first_seq,
            first_ts: 0,
            count: 0,
            used: 0,
            buf: vec![0u8; page_size],
            leaves: Vec::new(),
            write_from: PAGE_HEADER_LEN,
            sealed: false,
        }
    }

    /// Offset of the end of the records.
    pub fn end(&self) -> usize {
        PAGE_HEADER_LEN + self.used as usize
    }

    pub fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.end())
    }

    /// Whether a record of `rec_len` bytes (with its padding) fits.
    pub fn fits(&self, rec_len: usize) -> bool {
        record_stride(self.version, rec_len) <= self.room()
    }

    pub fn entry(&self, log_no: u32) -> PageEntry {
        PageEntry {
            log_no,
            first_seq: self.first_seq,
            count: self.count,
            sealed: self.sealed,
        }
    }

    /// The next record's slot, `rec_len` bytes after the last record: its
    /// header and its body.
    pub fn slot(&mut self, rec_len: usize) -> Result<(&mut [u8; RECORD_HEADER_LEN], &mut [u8])> {
        let off = self.end();
        let room = self.room();
        let rec = self.buf.get_mut(off..off + rec_len).ok_or_else(|| {
            internal(format!(
                "a record of {rec_len} bytes on a page with {room} left"
            ))
        })?;
        let (head, body) = rec
            .split_first_chunk_mut::<RECORD_HEADER_LEN>()
            .ok_or_else(|| internal("a record shorter than its header"))?;
        Ok((head, body))
    }

    /// Accounts for the record just placed in the slot (and its padding,
    /// left zero), an event of timestamp `ts`.
    pub fn push(&mut self, leaf: Hash, ts: u64, rec_len: usize) {
        if self.count == 0 {
            self.first_ts = ts;
        }
        self.leaves.push(leaf);
        self.count += 1;
        self.used += record_stride(self.version, rec_len) as u32;
    }

    /// Marks the page sealed; its last bytes and its entry go to the flusher.
    pub fn seal(mut self, log: &LogId, log_no: u32) -> (PageWrite, (PageLoc, PageEntry, u64)) {
        self.sealed = true;
        let w = self.take_write(log);
        (w, (self.loc, self.entry(log_no), self.first_ts))
    }

    /// The bytes still to write: the header and the records not yet handed over.
    pub fn take_write(&mut self, log: &LogId) -> PageWrite {
        let header = PageHeader {
            version: self.version,
            flags: if self.sealed { FLAG_SEALED } else { 0 },
            log: log.to_bytes(),
            first_seq: self.first_seq,
            segment: self.loc.segment,
            page: self.loc.page,
            count: self.count,
            used: self.used,
            page_root: if self.sealed {
                mth(&self.leaves)
            } else {
                [0u8; 32]
            },
        };
        let end = self.end().min(self.buf.len());
        let from = self.write_from.clamp(PAGE_HEADER_LEN, end);
        self.write_from = end;
        PageWrite {
            loc: self.loc,
            header: header.encode(),
            from,
            records: self.buf.get(from..end).unwrap_or_default().to_vec(),
        }
    }
}
