//! The LMDB index: where each log's pages live, the MMR chunks its proofs
//! need, log and topic metadata and checkpoints. Every value carries a
//! CRC-32C, so a flipped byte gives a corruption error naming the offset in
//! `index/data.mdb` rather than a wrong answer.
//!
//! This module opens the environment and checks values; `tables` reads and
//! writes each table; `codec` holds the byte layouts; `check` compares the
//! tables with each other.

mod check;
mod codec;
mod tables;

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use crate::error::{Result, StoreError, UnsupportedVersion, corrupt};
pub(crate) use codec::{LogRecord, OpenPage, PageEntry, PageLoc};
use codec::{decode_loc, sealed};

/// Index format version (meta key `format`): 2 adds the `log_times` table.
pub(crate) const INDEX_VERSION: u32 = 2;
/// The first index format, without `log_times`: a writer adds the table
/// at open (`Store::open`), a reader scans instead.
pub(crate) const INDEX_VERSION_V1: u32 = 1;
/// Hashes in one MMR chunk: 16 inputs and the 15 nodes above them.
pub(crate) const CHUNK_NODES: usize = 31;

/// Longest value the index holds (a checkpoint note and its CRC).
const MAX_VALUE_LEN: usize = xaeroflux_merkle::MAX_NOTE_LEN + 4;
/// Bytes kept allocated past LMDB's last page, so that a damaged page whose
/// offsets point past its end still reads inside the file, not into a fault:
/// a node offset and a key size (16 bits each) reach at most about 128 KiB
/// past a page's start.
const FILE_SLACK: u64 = 256 * 1024;

const META_FORMAT: &[u8] = b"format";
const META_STORE_ID: &[u8] = b"store_id";
const META_GEOMETRY: &[u8] = b"geometry";
const META_NEXT_PAGE: &[u8] = b"next_page";
const META_NEXT_LOG: &[u8] = b"next_log_no";

/// Store id, page size and pages per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexHeader {
    /// Format version found ([`INDEX_VERSION`] for a new index).
    pub version: u32,
    pub store_id: [u8; 16],
    pub page_size: u32,
    pub segment_pages: u32,
}

#[derive(Clone, Copy)]
struct Dbs {
    meta: Database<Bytes, Bytes>,
    logs: Database<Bytes, Bytes>,
    log_ids: Database<Bytes, Bytes>,
    pages: Database<Bytes, Bytes>,
    log_pages: Database<Bytes, Bytes>,
    chunks: Database<Bytes, Bytes>,
    topics: Database<Bytes, Bytes>,
    topic_logs: Database<Bytes, Bytes>,
    checkpoints: Database<Bytes, Bytes>,
    /// Absent from an index of version 1 opened read-only.
    log_times: Option<Database<Bytes, Bytes>>,
}

/// The opened index.
pub(crate) struct Index {
    env: Env<WithoutTls>,
    dir: PathBuf,
    data_file: PathBuf,
    dbs: Dbs,
    map_start: usize,
    map_len: usize,
    /// File length known to be allocated (for `keep_slack`).
    slack_until: std::sync::atomic::AtomicU64,
    /// Entries of `log_times` and `log_pages` read by time lookups, for
    /// tests that check a read by time costs O(log n + k).
    pub(crate) entries_read: std::sync::atomic::AtomicU64,
}

fn le32(b: &[u8]) -> Option<u32> {
    xaeroflux_types::bytes::u32_le_at(b, 0)
}

impl Index {
    /// Opens (creating when `writable`) the index in `dir`.
    pub fn open(dir: &Path, writable: bool, map_size: usize) -> Result<Self> {
        let data_file = dir.join("data.mdb");
        if writable {
            std::fs::create_dir_all(dir).map_err(crate::error::io_err(dir))?;
        } else if !data_file.exists() {
            return Err(crate::error::io_err(&data_file)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no index: is this a Xaeroflux store?",
            )));
        }
        // LMDB trusts its file: check what it would read (the meta page)
        // and, for the writer, what it would write from (the freelist).
        let scope = if writable {
            crate::lmdb_check::Scope::Freelist
        } else {
            crate::lmdb_check::Scope::Meta
        };
        crate::lmdb_check::check(&data_file, scope)?;
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(map_size).max_dbs(16).max_readers(256);
        // Safety: the segments are the source of truth and the writer brings
        // the index up to date from them at open, so the index need not be
        // synced at every commit (DESIGN.md section 3); read-only opens map
        // the file read-only. No other code writes these files.
        let flags = if writable {
            EnvFlags::NO_SYNC
        } else {
            EnvFlags::READ_ONLY
        };
        unsafe { opts.flags(flags) };
        let idx_err = |source| StoreError::Index {
            path: dir.to_path_buf(),
            source,
        };
        let env = unsafe { opts.open(dir) }.map_err(idx_err)?;
        let dbs = if writable {
            create_tables(&env).map_err(idx_err)?
        } else {
            open_tables(&env, &data_file)?
        };
        let info = env.info();
        Ok(Self {
            dir: dir.to_path_buf(),
            data_file,
            map_start: info.map_addr as usize,
            map_len: info.map_size,
            slack_until: std::sync::atomic::AtomicU64::new(0),
            entries_read: std::sync::atomic::AtomicU64::new(0),
            env,
            dbs,
        })
    }

    fn err(&self) -> impl Fn(heed::Error) -> StoreError + '_ {
        move |source| StoreError::Index {
            path: self.dir.clone(),
            source: explain_short_write(&self.dir, source),
        }
    }

    /// A corruption error for a value found at `v` in the map.
    fn bad(&self, v: &[u8], what: &str) -> StoreError {
        let p = v.as_ptr() as usize;
        let offset = if p >= self.map_start && p < self.map_start + self.map_len {
            (p - self.map_start) as u64
        } else {
            0
        };
        corrupt(
            &self.data_file,
            offset,
            format!("bad {what} value in the index"),
        )
    }

    /// Strips and checks a value's CRC. Lengths are checked before any byte
    /// is read: a damaged node could claim a value running past the file.
    fn open_value<'t>(&self, v: &'t [u8], what: &str) -> Result<&'t [u8]> {
        if v.len() > MAX_VALUE_LEN {
            return Err(self.bad(v, what));
        }
        let (body, crc) = v.split_last_chunk::<4>().ok_or_else(|| self.bad(v, what))?;
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return Err(self.bad(v, what));
        }
        Ok(body)
    }

    /// Looks a key up and checks its value: the CRC, then `decode`, whose
    /// `None` is a corruption error naming the value's offset.
    fn get_checked<'t, T>(
        &self,
        db: Database<Bytes, Bytes>,
        txn: &'t RoTxn,
        key: &[u8],
        what: &str,
        decode: impl FnOnce(&'t [u8]) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(v) = db.get(txn, key).map_err(self.err())? else {
            return Ok(None);
        };
        let body = self.open_value(v, what)?;
        decode(body).map(Some).ok_or_else(|| self.bad(v, what))
    }

    pub fn read_txn(&self) -> Result<RoTxn<'_, WithoutTls>> {
        self.env.read_txn().map_err(self.err())
    }

    pub fn write_txn(&self) -> Result<RwTxn<'_>> {
        self.env.write_txn().map_err(self.err())
    }

    pub fn commit(&self, txn: RwTxn<'_>) -> Result<()> {
        txn.commit().map_err(self.err())
    }

    /// Keeps `FILE_SLACK` bytes of file past LMDB's last used page. The
    /// file is only touched when less than three quarters of the slack is
    /// left, so at least 192 KiB always are: more than a damaged 16-bit
    /// offset plus a 16-bit key size can reach past a page.
    pub fn keep_slack(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let used = (self.env.info().last_page_number as u64 + 1) * 4096;
        if used + FILE_SLACK / 4 * 3 <= self.slack_until.load(Ordering::Relaxed) {
            return Ok(());
        }
        let io = || crate::error::io_err(&self.data_file);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.data_file)
            .map_err(io())?;
        let len = f.metadata().map_err(io())?.len();
        let want = used + FILE_SLACK;
        if len < want {
            f.set_len(want).map_err(io())?;
        }
        self.slack_until.store(len.max(want), Ordering::Relaxed);
        Ok(())
    }

    /// An OS error on the index's files, as the index reports its own.
    pub fn io_failure(&self, e: std::io::Error) -> StoreError {
        self.err()(heed::Error::Io(e))
    }

    pub fn force_sync(&self) -> Result<()> {
        self.env.force_sync().map_err(self.err())
    }

    pub fn data_file(&self) -> &Path {
        &self.data_file
    }

    /// Checks the structure of every live LMDB tree (see `lmdb_check`);
    /// the caller holds a read transaction so the pages stay put.
    pub fn check_structure(&self, _pinned: &RoTxn) -> Result<()> {
        crate::lmdb_check::check(&self.data_file, crate::lmdb_check::Scope::All)
    }

    /// Size of the index on disk.
    pub fn disk_size(&self) -> u64 {
        self.env.real_disk_size().unwrap_or(0)
    }

    // ---- meta ----

    fn meta_get<'t>(&self, txn: &'t RoTxn, key: &[u8]) -> Result<Option<&'t [u8]>> {
        self.get_checked(self.dbs.meta, txn, key, "meta", Some)
    }

    fn meta_put(&self, txn: &mut RwTxn, key: &[u8], value: Vec<u8>) -> Result<()> {
        self.dbs
            .meta
            .put(txn, key, &sealed(value))
            .map_err(self.err())
    }

    /// Store id and geometry, or `None` for a new index; a format version
    /// this build does not read is an error.
    pub fn header(&self, txn: &RoTxn) -> Result<Option<IndexHeader>> {
        let Some(f) = self.meta_get(txn, META_FORMAT)? else {
            return Ok(None);
        };
        let version = le32(f)
            .filter(|_| f.len() == 4)
            .ok_or_else(|| self.bad(f, "format"))?;
        if version != INDEX_VERSION && version != INDEX_VERSION_V1 {
            return Err(UnsupportedVersion {
                what: self.data_file.display().to_string(),
                found: version,
                supported: INDEX_VERSION,
            }
            .into());
        }
        let id = self
            .meta_get(txn, META_STORE_ID)?
            .ok_or_else(|| corrupt(&self.data_file, 0, "index lacks the store id"))?;
        let g = self
            .meta_get(txn, META_GEOMETRY)?
            .ok_or_else(|| corrupt(&self.data_file, 0, "index lacks the page geometry"))?;
        let store_id: [u8; 16] = id.try_into().map_err(|_| self.bad(id, "store id"))?;
        let mut c = xaeroflux_types::bytes::Cursor::new(g);
        let (Some(page_size), Some(segment_pages), 0) = (c.u32_le(), c.u32_le(), c.left()) else {
            return Err(self.bad(g, "geometry"));
        };
        Ok(Some(IndexHeader {
            version,
            store_id,
            page_size,
            segment_pages,
        }))
    }

    pub fn put_header(&self, txn: &mut RwTxn, h: &IndexHeader) -> Result<()> {
        self.put_format(txn, INDEX_VERSION)?;
        self.meta_put(txn, META_STORE_ID, h.store_id.to_vec())?;
        let mut g = h.page_size.to_le_bytes().to_vec();
        g.extend_from_slice(&h.segment_pages.to_le_bytes());
        self.meta_put(txn, META_GEOMETRY, g)?;
        self.put_next_page(
            txn,
            PageLoc {
                segment: 0,
                page: 1,
            },
        )?;
        self.put_next_log_no(txn, 0)
    }

    /// Writes the format version (an upgrade writes it last, in the
    /// transaction that completes it).
    pub fn put_format(&self, txn: &mut RwTxn, version: u32) -> Result<()> {
        self.meta_put(txn, META_FORMAT, version.to_le_bytes().to_vec())
    }

    /// The next page to allocate (`(0, 1)` in a new store).
    pub fn next_page(&self, txn: &RoTxn) -> Result<PageLoc> {
        match self.meta_get(txn, META_NEXT_PAGE)? {
            None => Ok(PageLoc {
                segment: 0,
                page: 1,
            }),
            Some(v) => decode_loc(v).ok_or_else(|| self.bad(v, "next page")),
        }
    }

    pub fn put_next_page(&self, txn: &mut RwTxn, loc: PageLoc) -> Result<()> {
        let mut v = loc.segment.to_le_bytes().to_vec();
        v.extend_from_slice(&loc.page.to_le_bytes());
        self.meta_put(txn, META_NEXT_PAGE, v)
    }

    pub fn next_log_no(&self, txn: &RoTxn) -> Result<u32> {
        match self.meta_get(txn, META_NEXT_LOG)? {
            None => Err(corrupt(
                &self.data_file,
                0,
                "index lacks the next log number",
            )),
            Some(v) => le32(v)
                .filter(|_| v.len() == 4)
                .ok_or_else(|| self.bad(v, "next log number")),
        }
    }

    pub fn put_next_log_no(&self, txn: &mut RwTxn, n: u32) -> Result<()> {
        self.meta_put(txn, META_NEXT_LOG, n.to_le_bytes().to_vec())
    }
}

const DB_NAMES: [&str; 9] = [
    "meta",
    "logs",
    "log_ids",
    "pages",
    "log_pages",
    "chunks",
    "topics",
    "topic_logs",
    "checkpoints",
];

/// The tables from a function that finds or makes each by name.
fn tables<E>(mut each: impl FnMut(&str) -> Result<Database<Bytes, Bytes>, E>) -> Result<Dbs, E> {
    let [
        meta,
        logs,
        log_ids,
        pages,
        log_pages,
        chunks,
        topics,
        topic_logs,
        checkpoints,
    ] = DB_NAMES;
    Ok(Dbs {
        meta: each(meta)?,
        logs: each(logs)?,
        log_ids: each(log_ids)?,
        pages: each(pages)?,
        log_pages: each(log_pages)?,
        chunks: each(chunks)?,
        topics: each(topics)?,
        topic_logs: each(topic_logs)?,
        checkpoints: each(checkpoints)?,
        log_times: None,
    })
}

/// Added by index version 2.
const LOG_TIMES: &str = "log_times";

fn create_tables(env: &Env<WithoutTls>) -> heed::Result<Dbs> {
    let mut wtxn = env.write_txn()?;
    let mut dbs = tables(|name| env.create_database::<Bytes, Bytes>(&mut wtxn, Some(name)))?;
    dbs.log_times = Some(env.create_database::<Bytes, Bytes>(&mut wtxn, Some(LOG_TIMES))?);
    wtxn.commit()?;
    Ok(dbs)
}

fn open_tables(env: &Env<WithoutTls>, data_file: &Path) -> Result<Dbs> {
    let dir = data_file.parent().unwrap_or(data_file).to_path_buf();
    let idx_err = |source| StoreError::Index {
        path: dir.clone(),
        source,
    };
    let rtxn = env.read_txn().map_err(idx_err)?;
    let mut dbs = tables(|name| {
        env.open_database::<Bytes, Bytes>(&rtxn, Some(name))
            .map_err(idx_err)?
            .ok_or_else(|| corrupt(data_file, 0, format!("index lacks table {name}")))
    })?;
    dbs.log_times = env
        .open_database::<Bytes, Bytes>(&rtxn, Some(LOG_TIMES))
        .map_err(idx_err)?;
    rtxn.commit().map_err(idx_err)?;
    Ok(dbs)
}

/// LMDB reports a write the disk cut short as a bare EIO. When the disk
/// holding the index is in fact full, say so in the OS's words: that is
/// the cause, and what the user can act on.
fn explain_short_write(dir: &std::path::Path, e: heed::Error) -> heed::Error {
    let eio = match &e {
        heed::Error::Io(io) => io.raw_os_error() == Some(libc::EIO),
        heed::Error::Mdb(m) => m.to_err_code() == libc::EIO,
        _ => false,
    };
    if eio && disk_full(dir) {
        heed::Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("No space left on device (LMDB's write was cut short: {e})"),
        ))
    } else {
        e
    }
}

/// Whether the file system holding `dir` has (almost) no room left.
#[cfg(unix)]
fn disk_full(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain data, for which all zeros is a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `s` is a valid place to write.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut s) };
    rc == 0 && u128::from(s.f_bavail) * u128::from(s.f_frsize) < 1 << 20
}

#[cfg(not(unix))]
fn disk_full(_dir: &std::path::Path) -> bool {
    false
}
