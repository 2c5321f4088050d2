//! Segment files: fixed-size pages, mapped read-only for readers; the
//! flusher writes through its own file handles.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::Mutex;

use memmap2::Mmap;
use xaeroflux_types::fs::write_atomic_with;

use crate::error::{Result, corrupt, internal, io_err};
use crate::format::{SegmentHeader, check_segment_header};
use crate::index::PageLoc;

/// The segment files of one store.
pub(crate) struct Segments {
    dir: PathBuf,
    page_size: usize,
    segment_pages: u32,
    store_id: [u8; 16],
    maps: boxcar::Vec<Mmap>,
    grow: Mutex<()>,
}

impl Segments {
    /// The store id every segment header carries.
    pub fn store_id(&self) -> [u8; 16] {
        self.store_id
    }

    pub fn new(dir: PathBuf, page_size: usize, segment_pages: u32, store_id: [u8; 16]) -> Self {
        Self {
            dir,
            page_size,
            segment_pages,
            store_id,
            maps: boxcar::Vec::new(),
            grow: Mutex::new(()),
        }
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    pub fn segment_pages(&self) -> u32 {
        self.segment_pages
    }

    pub fn path(&self, segment: u32) -> PathBuf {
        self.dir.join(format!("{segment:08}.xfseg"))
    }

    /// Size of every segment file: the header page and the data pages.
    pub fn file_len(&self) -> u64 {
        (self.segment_pages as u64 + 1) * self.page_size as u64
    }

    /// Byte offset of a page in its segment file.
    pub fn page_offset(&self, loc: PageLoc) -> u64 {
        loc.page as u64 * self.page_size as u64
    }

    fn header(&self, segment: u32) -> SegmentHeader {
        SegmentHeader {
            page_size: self.page_size as u32,
            segment_pages: self.segment_pages,
            segment,
            store_id: self.store_id,
        }
    }

    /// The read-only map of a segment, mapping it (and any before it) on first use.
    pub fn map(&self, segment: u32) -> Result<&Mmap> {
        let i = segment as usize;
        if let Some(m) = self.maps.get(i) {
            return Ok(m);
        }
        let _g = self.grow.lock().unwrap_or_else(|p| p.into_inner());
        while self.maps.count() <= i {
            let next = self.maps.count() as u32;
            let m = self.map_new(next)?;
            self.maps.push(m);
        }
        self.maps
            .get(i)
            .ok_or_else(|| internal(format!("segment {segment} is not mapped after mapping it")))
    }

    fn map_new(&self, segment: u32) -> Result<Mmap> {
        let path = self.path(segment);
        let file = File::open(&path).map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len != self.file_len() {
            return Err(corrupt(
                &path,
                len.min(self.file_len()),
                format!("segment file is {len} bytes, expected {}", self.file_len()),
            ));
        }
        // Safety: segment files are only written by this store's flusher,
        // which never rewrites bytes a reader was told about, and never
        // truncates them.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(&path))?;
        check_segment_header(&map, &self.header(segment))
            .map_err(|(off, reason)| corrupt(&path, off, reason))?;
        Ok(map)
    }

    /// The bytes of one page.
    pub fn page(&self, loc: PageLoc) -> Result<&[u8]> {
        if loc.page == 0 || loc.page > self.segment_pages {
            return Err(internal(format!(
                "page {} is outside a segment of {} pages",
                loc.page, self.segment_pages
            )));
        }
        let map = self.map(loc.segment)?;
        let off = self.page_offset(loc) as usize;
        map.get(off..off + self.page_size).ok_or_else(|| {
            corrupt(
                self.path(loc.segment),
                off as u64,
                "page beyond the end of the segment",
            )
        })
    }

    /// Creates a new segment file durably: header, full length, fsync, a
    /// rename into place and an fsync of the directory.
    pub fn create(&self, segment: u32) -> Result<()> {
        let mut head = vec![0u8; self.page_size];
        let h = self.header(segment).encode();
        if let Some(start) = head.get_mut(..h.len()) {
            start.copy_from_slice(&h);
        }
        let len = self.file_len();
        write_atomic_with(&self.path(segment), None, |f| {
            use std::io::Write;
            f.write_all(&head)?;
            f.set_len(len)
        })?;
        Ok(())
    }

    /// Opens an existing segment for writing.
    pub fn open_rw(&self, segment: u32) -> Result<File> {
        let path = self.path(segment);
        // Map first: this checks the header and the length.
        self.map(segment)?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))
    }
}
