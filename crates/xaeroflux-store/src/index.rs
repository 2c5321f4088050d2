//! The LMDB index: where each log's pages live, the MMR chunks its proofs
//! need, log and topic metadata and checkpoints. Every value carries a
//! CRC-32C, so a flipped byte gives a corruption error naming the offset in
//! `index/data.mdb` rather than a wrong answer.

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};
use xaeroflux_merkle::Hash;

use crate::error::{Result, StoreError, corrupt};
use crate::event::{LogId, TopicId};

/// Index format version (meta key `format`).
pub(crate) const INDEX_VERSION: u32 = 1;
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

/// Format version, store id, page size and pages per segment.
pub(crate) type IndexHeader = (u32, [u8; 16], u32, u32);

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
}

fn sealed(mut v: Vec<u8>) -> Vec<u8> {
    let c = crc32c::crc32c(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn loc_key(loc: PageLoc) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&loc.segment.to_be_bytes());
    k[4..].copy_from_slice(&loc.page.to_be_bytes());
    k
}

fn log_page_key(log_no: u32, first_seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&log_no.to_be_bytes());
    k[4..].copy_from_slice(&first_seq.to_be_bytes());
    k
}

fn chunk_key(log_no: u32, tier: u8, chunk: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..4].copy_from_slice(&log_no.to_be_bytes());
    k[4] = tier;
    k[5..].copy_from_slice(&chunk.to_be_bytes());
    k
}

fn topic_log_key(topic: &TopicId, log_no: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&topic.0);
    k[32..].copy_from_slice(&log_no.to_be_bytes());
    k
}

fn encode_log_record(r: &LogRecord) -> Vec<u8> {
    let mut v = Vec::with_capacity(49);
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
            v.extend_from_slice(&[0u8; 24]);
        }
    }
    sealed(v)
}

fn decode_log_record(b: &[u8]) -> Option<LogRecord> {
    if b.len() != 45 {
        return None;
    }
    let open = match b[20] {
        0 => None,
        1 => Some(OpenPage {
            loc: PageLoc {
                segment: le32(&b[21..]),
                page: le32(&b[25..]),
            },
            first_seq: le64(&b[29..]),
            count: le32(&b[37..]),
            used: le32(&b[41..]),
        }),
        _ => return None,
    };
    Some(LogRecord {
        log_no: le32(&b[0..]),
        size: le64(&b[4..]),
        last_ts: le64(&b[12..]),
        open,
    })
}

fn encode_page_entry(e: &PageEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(21);
    v.extend_from_slice(&e.log_no.to_le_bytes());
    v.extend_from_slice(&e.first_seq.to_le_bytes());
    v.extend_from_slice(&e.count.to_le_bytes());
    v.push(e.sealed as u8);
    sealed(v)
}

fn decode_page_entry(b: &[u8]) -> Option<PageEntry> {
    if b.len() != 17 || b[16] > 1 {
        return None;
    }
    Some(PageEntry {
        log_no: le32(&b[0..]),
        first_seq: le64(&b[4..]),
        count: le32(&b[12..]),
        sealed: b[16] == 1,
    })
}

fn encode_loc(loc: PageLoc) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&loc.segment.to_le_bytes());
    v.extend_from_slice(&loc.page.to_le_bytes());
    sealed(v)
}

fn decode_loc(b: &[u8]) -> Option<PageLoc> {
    (b.len() == 8).then(|| PageLoc {
        segment: le32(&b[0..]),
        page: le32(&b[4..]),
    })
}

impl Index {
    /// Opens (creating when `writable`) the index in `dir`.
    pub fn open(dir: &Path, writable: bool, map_size: usize) -> Result<Self> {
        let idx_err = |source| StoreError::Index {
            path: dir.to_path_buf(),
            source,
        };
        if writable {
            std::fs::create_dir_all(dir).map_err(crate::error::io_err(dir))?;
        } else if !dir.join("data.mdb").exists() {
            return Err(StoreError::Io {
                path: dir.join("data.mdb"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no index: is this a Xaeroflux store?",
                ),
            });
        }
        // LMDB trusts its file: check what it would read (the meta page)
        // and, for the writer, what it would write from (the freelist).
        let scope = if writable {
            crate::lmdb_check::Scope::Freelist
        } else {
            crate::lmdb_check::Scope::Meta
        };
        crate::lmdb_check::check(&dir.join("data.mdb"), scope)?;
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
        let env = unsafe { opts.open(dir) }.map_err(idx_err)?;
        let dbs = if writable {
            let mut wtxn = env.write_txn().map_err(idx_err)?;
            let mut make = |name: &str| env.create_database::<Bytes, Bytes>(&mut wtxn, Some(name));
            let dbs = Dbs {
                meta: make(DB_NAMES[0]).map_err(idx_err)?,
                logs: make(DB_NAMES[1]).map_err(idx_err)?,
                log_ids: make(DB_NAMES[2]).map_err(idx_err)?,
                pages: make(DB_NAMES[3]).map_err(idx_err)?,
                log_pages: make(DB_NAMES[4]).map_err(idx_err)?,
                chunks: make(DB_NAMES[5]).map_err(idx_err)?,
                topics: make(DB_NAMES[6]).map_err(idx_err)?,
                topic_logs: make(DB_NAMES[7]).map_err(idx_err)?,
                checkpoints: make(DB_NAMES[8]).map_err(idx_err)?,
            };
            wtxn.commit().map_err(idx_err)?;
            dbs
        } else {
            let rtxn = env.read_txn().map_err(idx_err)?;
            let open = |name: &str| -> Result<Database<Bytes, Bytes>> {
                env.open_database::<Bytes, Bytes>(&rtxn, Some(name))
                    .map_err(idx_err)?
                    .ok_or_else(|| {
                        corrupt(dir.join("data.mdb"), 0, format!("index lacks table {name}"))
                    })
            };
            let dbs = Dbs {
                meta: open(DB_NAMES[0])?,
                logs: open(DB_NAMES[1])?,
                log_ids: open(DB_NAMES[2])?,
                pages: open(DB_NAMES[3])?,
                log_pages: open(DB_NAMES[4])?,
                chunks: open(DB_NAMES[5])?,
                topics: open(DB_NAMES[6])?,
                topic_logs: open(DB_NAMES[7])?,
                checkpoints: open(DB_NAMES[8])?,
            };
            rtxn.commit().map_err(idx_err)?;
            dbs
        };
        let info = env.info();
        Ok(Self {
            dir: dir.to_path_buf(),
            data_file: dir.join("data.mdb"),
            map_start: info.map_addr as usize,
            map_len: info.map_size,
            slack_until: std::sync::atomic::AtomicU64::new(0),
            env,
            dbs,
        })
    }

    fn err(&self) -> impl Fn(heed::Error) -> StoreError + '_ {
        move |source| StoreError::Index {
            path: self.dir.clone(),
            source,
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
        if v.len() < 4 || v.len() > MAX_VALUE_LEN {
            return Err(self.bad(v, what));
        }
        let (body, crc) = v.split_at(v.len() - 4);
        if crc32c::crc32c(body) != le32(crc) {
            return Err(self.bad(v, what));
        }
        Ok(body)
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
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.data_file)
            .map_err(crate::error::io_err(&self.data_file))?;
        let len = f
            .metadata()
            .map_err(crate::error::io_err(&self.data_file))?
            .len();
        let want = used + FILE_SLACK;
        if len < want {
            f.set_len(want)
                .map_err(crate::error::io_err(&self.data_file))?;
        }
        self.slack_until.store(len.max(want), Ordering::Relaxed);
        Ok(())
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

    fn meta_get<'t>(&self, txn: &'t RoTxn, key: &[u8]) -> Result<Option<&'t [u8]>> {
        self.get_checked(self.dbs.meta, txn, key, "meta", Some)
    }

    fn meta_put(&self, txn: &mut RwTxn, key: &[u8], value: Vec<u8>) -> Result<()> {
        self.dbs
            .meta
            .put(txn, key, &sealed(value))
            .map_err(self.err())
    }

    /// Format version, store id and geometry, or `None` for a new index.
    pub fn header(&self, txn: &RoTxn) -> Result<Option<IndexHeader>> {
        let Some(f) = self.meta_get(txn, META_FORMAT)? else {
            return Ok(None);
        };
        if f.len() != 4 {
            return Err(self.bad(f, "format"));
        }
        let version = le32(f);
        if version != INDEX_VERSION {
            return Err(StoreError::UnsupportedVersion {
                file: self.data_file.clone(),
                found: version,
                supported: INDEX_VERSION,
            });
        }
        let id = self
            .meta_get(txn, META_STORE_ID)?
            .ok_or_else(|| corrupt(&self.data_file, 0, "index lacks the store id"))?;
        let g = self
            .meta_get(txn, META_GEOMETRY)?
            .ok_or_else(|| corrupt(&self.data_file, 0, "index lacks the page geometry"))?;
        if id.len() != 16 {
            return Err(self.bad(id, "store id"));
        }
        if g.len() != 8 {
            return Err(self.bad(g, "geometry"));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(id);
        Ok(Some((version, store_id, le32(g), le32(&g[4..]))))
    }

    pub fn put_header(
        &self,
        txn: &mut RwTxn,
        store_id: &[u8; 16],
        page_size: u32,
        segment_pages: u32,
    ) -> Result<()> {
        self.meta_put(txn, META_FORMAT, INDEX_VERSION.to_le_bytes().to_vec())?;
        self.meta_put(txn, META_STORE_ID, store_id.to_vec())?;
        let mut g = page_size.to_le_bytes().to_vec();
        g.extend_from_slice(&segment_pages.to_le_bytes());
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
            Some(v) if v.len() == 4 => Ok(le32(v)),
            Some(v) => Err(self.bad(v, "next log number")),
        }
    }

    pub fn put_next_log_no(&self, txn: &mut RwTxn, n: u32) -> Result<()> {
        self.meta_put(txn, META_NEXT_LOG, n.to_le_bytes().to_vec())
    }

    // ---- logs ----

    pub fn log_record(&self, txn: &RoTxn, log: &LogId) -> Result<Option<LogRecord>> {
        self.get_checked(
            self.dbs.logs,
            txn,
            &log.to_bytes(),
            "log record",
            decode_log_record,
        )
    }

    pub fn put_log_record(&self, txn: &mut RwTxn, log: &LogId, r: &LogRecord) -> Result<()> {
        self.dbs
            .logs
            .put(txn, &log.to_bytes(), &encode_log_record(r))
            .map_err(self.err())?;
        let mut v = log.to_bytes().to_vec();
        v = sealed(std::mem::take(&mut v));
        self.dbs
            .log_ids
            .put(txn, &r.log_no.to_be_bytes(), &v)
            .map_err(self.err())?;
        self.dbs
            .topic_logs
            .put(txn, &topic_log_key(&log.topic, r.log_no), &[])
            .map_err(self.err())
    }

    pub fn log_id(&self, txn: &RoTxn, log_no: u32) -> Result<LogId> {
        self.get_checked(
            self.dbs.log_ids,
            txn,
            &log_no.to_be_bytes(),
            "log id",
            |b| b.try_into().ok().map(LogId::from_bytes),
        )?
        .ok_or_else(|| {
            corrupt(
                &self.data_file,
                0,
                format!("log number {log_no} has no log id"),
            )
        })
    }

    /// Every log with its record, in log-id order.
    pub fn logs(&self, txn: &RoTxn) -> Result<Vec<(LogId, LogRecord)>> {
        let mut out = Vec::new();
        for item in self.dbs.logs.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let key: &[u8; 64] = k.try_into().map_err(|_| self.bad(k, "log key"))?;
            let body = self.open_value(v, "log record")?;
            let r = decode_log_record(body).ok_or_else(|| self.bad(v, "log record"))?;
            out.push((LogId::from_bytes(key), r));
        }
        Ok(out)
    }

    // ---- pages ----

    pub fn put_page(&self, txn: &mut RwTxn, loc: PageLoc, e: &PageEntry) -> Result<()> {
        self.dbs
            .pages
            .put(txn, &loc_key(loc), &encode_page_entry(e))
            .map_err(self.err())?;
        self.dbs
            .log_pages
            .put(txn, &log_page_key(e.log_no, e.first_seq), &encode_loc(loc))
            .map_err(self.err())
    }

    /// Every page in allocation order.
    pub fn pages(&self, txn: &RoTxn) -> Result<Vec<(PageLoc, PageEntry)>> {
        let mut out = Vec::new();
        for item in self.dbs.pages.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            if k.len() != 8 {
                return Err(self.bad(k, "page key"));
            }
            let body = self.open_value(v, "page entry")?;
            let e = decode_page_entry(body).ok_or_else(|| self.bad(v, "page entry"))?;
            out.push((
                PageLoc {
                    segment: be32(k),
                    page: be32(&k[4..]),
                },
                e,
            ));
        }
        Ok(out)
    }

    /// The entry of one page.
    pub fn page_entry(&self, txn: &RoTxn, loc: PageLoc) -> Result<PageEntry> {
        self.get_checked(
            self.dbs.pages,
            txn,
            &loc_key(loc),
            "page entry",
            decode_page_entry,
        )?
        .ok_or_else(|| {
            corrupt(
                &self.data_file,
                0,
                format!("page {loc:?} is not in the page table"),
            )
        })
    }

    /// The page of a log that holds `seq` (the page with the greatest first
    /// seq not above it).
    pub fn page_of(&self, txn: &RoTxn, log_no: u32, seq: u64) -> Result<Option<(u64, PageLoc)>> {
        let key = log_page_key(log_no, seq);
        let Some((k, v)) = self
            .dbs
            .log_pages
            .get_lower_than_or_equal_to(txn, &key)
            .map_err(self.err())?
        else {
            return Ok(None);
        };
        if k.len() != 12 || be32(k) != log_no {
            return Ok(None);
        }
        let body = self.open_value(v, "page location")?;
        let loc = decode_loc(body).ok_or_else(|| self.bad(v, "page location"))?;
        Ok(Some((be64(&k[4..]), loc)))
    }

    /// The pages of a log whose first seq is at least `from_first`, in order.
    pub fn log_pages(
        &self,
        txn: &RoTxn,
        log_no: u32,
        from_first: u64,
        until: u64,
    ) -> Result<Vec<(u64, PageLoc)>> {
        let start = log_page_key(log_no, from_first);
        let end = log_page_key(log_no, u64::MAX);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Included(&end[..]),
        );
        let mut out = Vec::new();
        for item in self.dbs.log_pages.range(txn, &range).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            if k.len() != 12 {
                return Err(self.bad(k, "log page key"));
            }
            let first = be64(&k[4..]);
            if first >= until {
                break;
            }
            let body = self.open_value(v, "page location")?;
            let loc = decode_loc(body).ok_or_else(|| self.bad(v, "page location"))?;
            out.push((first, loc));
        }
        Ok(out)
    }

    // ---- chunks ----

    pub fn chunk<'t>(
        &self,
        txn: &'t RoTxn,
        log_no: u32,
        tier: u8,
        chunk: u64,
    ) -> Result<Option<&'t [u8]>> {
        let key = chunk_key(log_no, tier, chunk);
        self.get_checked(self.dbs.chunks, txn, &key, "MMR chunk", |b| {
            (b.len() == CHUNK_NODES * 32).then_some(b)
        })
    }

    pub fn put_chunk(
        &self,
        txn: &mut RwTxn,
        log_no: u32,
        tier: u8,
        chunk: u64,
        nodes: &[Hash; CHUNK_NODES],
    ) -> Result<()> {
        let mut v = Vec::with_capacity(CHUNK_NODES * 32 + 4);
        for n in nodes {
            v.extend_from_slice(n);
        }
        self.dbs
            .chunks
            .put(txn, &chunk_key(log_no, tier, chunk), &sealed(v))
            .map_err(self.err())
    }

    // ---- topics ----

    pub fn put_topic_name(&self, txn: &mut RwTxn, topic: &TopicId, name: &str) -> Result<()> {
        self.dbs
            .topics
            .put(txn, &topic.0, &sealed(name.as_bytes().to_vec()))
            .map_err(self.err())
    }

    pub fn topic_name(&self, txn: &RoTxn, topic: &TopicId) -> Result<Option<String>> {
        self.get_checked(self.dbs.topics, txn, &topic.0, "topic name", |b| {
            String::from_utf8(b.to_vec()).ok()
        })
    }

    /// Log numbers of every log in a topic.
    pub fn topic_logs(&self, txn: &RoTxn, topic: &TopicId) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for item in self
            .dbs
            .topic_logs
            .prefix_iter(txn, &topic.0)
            .map_err(self.err())?
        {
            let (k, _) = item.map_err(self.err())?;
            if k.len() != 36 {
                return Err(self.bad(k, "topic log key"));
            }
            out.push(be32(&k[32..]));
        }
        Ok(out)
    }

    /// Checks the tables whose keys carry meaning no value CRC covers: every
    /// topic name hashes to its key, every topic-log and checkpoint entry
    /// names a log that exists under that topic and number, and every log
    /// has its number and topic entries.
    pub fn check_cross_tables(&self, txn: &RoTxn, logs: &[(LogId, LogRecord)]) -> Result<()> {
        let by_no: std::collections::HashMap<u32, &LogId> =
            logs.iter().map(|(id, r)| (r.log_no, id)).collect();
        for item in self.dbs.topics.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let body = self.open_value(v, "topic name")?;
            let name = std::str::from_utf8(body).map_err(|_| self.bad(v, "topic name"))?;
            if crate::event::Topic::id_of(name).0[..] != *k {
                return Err(self.bad(k, "topic key (does not match its name)"));
            }
        }
        let mut topic_entries = 0usize;
        for item in self.dbs.topic_logs.iter(txn).map_err(self.err())? {
            let (k, _) = item.map_err(self.err())?;
            let ok = k.len() == 36
                && by_no
                    .get(&be32(&k[32..]))
                    .is_some_and(|id| id.topic.0[..] == k[..32]);
            if !ok {
                return Err(self.bad(k, "topic-log key"));
            }
            topic_entries += 1;
        }
        if topic_entries != logs.len() {
            return Err(corrupt(
                &self.data_file,
                0,
                "topic table does not list every log once",
            ));
        }
        for (id, r) in logs {
            if self.log_id(txn, r.log_no)? != *id {
                return Err(corrupt(
                    &self.data_file,
                    0,
                    format!("log number {} names another log", r.log_no),
                ));
            }
        }
        for item in self.dbs.checkpoints.iter(txn).map_err(self.err())? {
            let (k, _) = item.map_err(self.err())?;
            if k.len() != 4 || !by_no.contains_key(&be32(k)) {
                return Err(self.bad(k, "checkpoint key"));
            }
        }
        Ok(())
    }

    // ---- checkpoints ----

    pub fn put_checkpoint(&self, txn: &mut RwTxn, log_no: u32, note: &str) -> Result<()> {
        self.dbs
            .checkpoints
            .put(
                txn,
                &log_no.to_be_bytes(),
                &sealed(note.as_bytes().to_vec()),
            )
            .map_err(self.err())
    }

    pub fn checkpoint(&self, txn: &RoTxn, log_no: u32) -> Result<Option<String>> {
        self.get_checked(
            self.dbs.checkpoints,
            txn,
            &log_no.to_be_bytes(),
            "checkpoint",
            |b| String::from_utf8(b.to_vec()).ok(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
