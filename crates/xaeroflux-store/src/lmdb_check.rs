//! A structural check of LMDB's file, read independently of LMDB.
//!
//! LMDB trusts its pages. Reading a damaged page gives wrong answers (which
//! the index's value CRCs catch), but its writer copies and edits pages using
//! their offsets and sizes, and allocates from the freelist by its counts, so
//! a damaged page on a path it writes, or a damaged freelist, corrupts the
//! process's heap, and a damaged node flag can send its reads to a null
//! sub-cursor. Every open therefore checks the trees it reads first (the
//! main tree and the `meta` table, a few pages), the writer also checks the
//! freelist tree before it opens the index (cheap: the freelist is small),
//! and `verify` checks every live tree. Free pages (not reachable from the newest meta page) are never
//! read by LMDB when reused, so damage there is harmless and ignored.
//!
//! Layout (LMDB 0.9, 64-bit): a page starts with a 16-byte header: page
//! number (u64), pad (u16), flags (u16), then lower and upper bounds (u16
//! each; for overflow pages a u32 page count). Branch and leaf pages hold an
//! array of u16 node offsets from byte 16 to `lower`; nodes live between
//! `upper` and the end of the page. A node is `lo, hi, flags, ksize` (u16
//! each), then the key, then (leaf) the data. Branch children are
//! `lo | hi << 16 | flags << 32`; leaf data size is `lo | hi << 16`.

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Result, StoreError, corrupt};

const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const P_LEAF2: u16 = 0x20;
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
const F_DUPDATA: u16 = 0x04;
const MAGIC: u32 = 0xBEEF_C0DE;
const P_INVALID: u64 = u64::MAX;

// A page header.
const PGNO_OFFSET: usize = 0;
const FLAGS_OFFSET: usize = PGNO_OFFSET + 8 + 2;
const LOWER_OFFSET: usize = FLAGS_OFFSET + 2;
/// Overflow pages keep their page count where others keep `lower`.
const OVERFLOW_PAGES_OFFSET: usize = LOWER_OFFSET;
const UPPER_OFFSET: usize = LOWER_OFFSET + 2;
const PAGE_HEADER: usize = UPPER_OFFSET + 2;

// A node: data size (lo, hi) or child page (lo, hi, flags), flags, key size, key.
const NODE_LO: usize = 0;
const NODE_HI: usize = NODE_LO + 2;
const NODE_FLAGS: usize = NODE_HI + 2;
const NODE_KSIZE: usize = NODE_FLAGS + 2;
const NODE_KEY: usize = NODE_KSIZE + 2;

// A database record: pad (the page size, in the freelist's), flags, depth,
// page counts, entries, root.
const DB_DEPTH: usize = 6;
const DB_ROOT: usize = 40;
const DB_RECORD: usize = 48;

// A meta page, after its page header: magic, version, address, map size,
// the freelist's and main database's records, last page, transaction id.
const META_MAGIC: usize = 0;
const META_FREE_DB: usize = 24;
const META_MAIN_DB: usize = META_FREE_DB + DB_RECORD;
const META_LAST_PAGE: usize = META_MAIN_DB + DB_RECORD;
const META_TXNID: usize = META_LAST_PAGE + 8;
const META_LEN: usize = META_TXNID + 8;
/// Deepest tree accepted (LMDB's own cursor stack holds 32).
const MAX_DEPTH: u32 = 32;

/// Which trees to check.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// What every open reads through LMDB before anything else: the
    /// newest meta page (its last page must lie inside the file: LMDB maps
    /// the file and would fault reading past its end), the main tree (the
    /// named tables' records, read to open each table) and the `meta`
    /// table (format and geometry). A few pages.
    Meta,
    /// [`Scope::Meta`] and the freelist: what the writer needs before it
    /// opens.
    Freelist,
    /// Every live tree and the freelist.
    All,
}

use xaeroflux_types::bytes::{u16_le_at as le16, u32_le_at as le32, u64_le_at as le64};

/// Called with each leaf record: the walker, page, node flags, key and data.
type OnLeaf<'a, 'f> = dyn FnMut(&mut Walker<'a>, u64, u16, &'a [u8], &'a [u8]) -> Result<()> + 'f;

struct Walker<'a> {
    file: &'a Path,
    data: &'a [u8],
    psize: usize,
    last: u64,
    seen: HashSet<u64>,
    /// Whether keys of the tree being walked sort bytewise (the freelist's
    /// integer keys do not).
    bytewise: bool,
}

/// A meta page: page size, last used page, transaction id, and the
/// freelist's and main database's records.
type Meta = (u64, u64, u64, [u8; DB_RECORD], [u8; DB_RECORD]);

/// A database record: depth and root page.
struct Db {
    depth: u16,
    root: u64,
}

fn db_record(b: &[u8]) -> Option<Db> {
    if b.len() < DB_RECORD {
        return None;
    }
    Some(Db {
        depth: le16(b, DB_DEPTH)?,
        root: le64(b, DB_ROOT)?,
    })
}

impl<'a> Walker<'a> {
    fn bad(&self, page: u64, offset: usize, what: &str) -> StoreError {
        corrupt(
            self.file,
            page.saturating_mul(self.psize as u64)
                .saturating_add(offset as u64),
            format!("LMDB page {page}: {what}"),
        )
    }

    fn page(&self, pgno: u64) -> Result<&'a [u8]> {
        if pgno < 2 || pgno > self.last {
            return Err(self.bad(pgno, 0, "page number outside the used file"));
        }
        let start = pgno as usize * self.psize;
        self.data
            .get(start..start + self.psize)
            .ok_or_else(|| self.bad(pgno, 0, "page beyond the end of the file"))
    }

    /// Checks a branch or leaf page's header and node offsets; returns its
    /// flags and node offsets.
    fn nodes(&self, pgno: u64, p: &[u8]) -> Result<(u16, Vec<usize>)> {
        let bad = |o, w| self.bad(pgno, o, w);
        if le64(p, PGNO_OFFSET) != Some(pgno) {
            return Err(bad(PGNO_OFFSET, "page header names another page"));
        }
        let flags = le16(p, FLAGS_OFFSET).ok_or_else(|| bad(FLAGS_OFFSET, "short page"))?;
        if flags & (P_BRANCH | P_LEAF) == 0 || flags & (P_OVERFLOW | P_LEAF2) != 0 {
            return Err(bad(FLAGS_OFFSET, "not a branch or leaf page"));
        }
        let lower = le16(p, LOWER_OFFSET).ok_or_else(|| bad(LOWER_OFFSET, "short page"))? as usize;
        let upper = le16(p, UPPER_OFFSET).ok_or_else(|| bad(UPPER_OFFSET, "short page"))? as usize;
        if lower < PAGE_HEADER || lower > upper || upper > self.psize || !lower.is_multiple_of(2) {
            return Err(bad(LOWER_OFFSET, "page bounds are inconsistent"));
        }
        let mut ptrs = Vec::with_capacity((lower - PAGE_HEADER) / 2);
        for i in 0..(lower - PAGE_HEADER) / 2 {
            let at = PAGE_HEADER + 2 * i;
            let ptr = le16(p, at).ok_or_else(|| bad(at, "short page"))? as usize;
            if ptr < upper || ptr + NODE_KEY > self.psize {
                return Err(bad(at, "node offset outside the page's node area"));
            }
            let ksize = le16(p, ptr + NODE_KSIZE).ok_or_else(|| bad(ptr, "short node"))? as usize;
            if ptr + NODE_KEY + ksize > self.psize {
                return Err(bad(ptr + NODE_KSIZE, "key runs past the page"));
            }
            ptrs.push(ptr);
        }
        Ok((flags, ptrs))
    }

    /// Walks a tree; `on_leaf(page, node flags, key, data)` sees each leaf record.
    fn walk(&mut self, db: &Db, on_leaf: &mut OnLeaf<'a, '_>) -> Result<()> {
        if db.root == P_INVALID {
            return Ok(());
        }
        if db.depth as u32 > MAX_DEPTH || db.depth == 0 {
            return Err(self.bad(db.root, 0, "impossible tree depth"));
        }
        self.walk_page(db.root, db.depth as u32, on_leaf)
    }

    fn walk_page(
        &mut self,
        pgno: u64,
        levels_left: u32,
        on_leaf: &mut OnLeaf<'a, '_>,
    ) -> Result<()> {
        if !self.seen.insert(pgno) {
            return Err(self.bad(pgno, 0, "page reached twice (a cycle or a shared page)"));
        }
        let p = self.page(pgno)?;
        let (flags, ptrs) = self.nodes(pgno, p)?;
        let is_leaf = flags & P_LEAF != 0;
        if is_leaf != (levels_left == 1) {
            return Err(self.bad(
                pgno,
                FLAGS_OFFSET,
                "page kind does not match its depth in the tree",
            ));
        }
        let mut prev: Option<&[u8]> = None;
        for (i, ptr) in ptrs.iter().copied().enumerate() {
            let lo = le16(p, ptr + NODE_LO).unwrap_or(0) as u64;
            let hi = le16(p, ptr + NODE_HI).unwrap_or(0) as u64;
            let nflags = le16(p, ptr + NODE_FLAGS).unwrap_or(0);
            let ksize = le16(p, ptr + NODE_KSIZE).unwrap_or(0) as usize;
            let key = p
                .get(ptr + NODE_KEY..ptr + NODE_KEY + ksize)
                .ok_or_else(|| self.bad(pgno, ptr, "key runs past the page"))?;
            // Keys in order (a branch's first key is empty by design).
            if self.bytewise
                && (is_leaf || i > 0)
                && let Some(prev) = prev
                && prev >= key
            {
                return Err(self.bad(pgno, ptr, "keys out of order"));
            }
            if is_leaf || i > 0 {
                prev = Some(key);
            }
            if is_leaf {
                let dsize = (lo | hi << 16) as usize;
                let data_at = ptr + NODE_KEY + ksize;
                let data: &'a [u8] = if nflags & F_BIGDATA != 0 {
                    let ov =
                        le64(p, data_at).ok_or_else(|| self.bad(pgno, data_at, "short node"))?;
                    if data_at + 8 > self.psize {
                        return Err(self.bad(
                            pgno,
                            data_at,
                            "overflow page number runs past the page",
                        ));
                    }
                    self.overflow(ov, dsize)?
                } else {
                    p.get(data_at..data_at + dsize)
                        .filter(|_| data_at + dsize <= self.psize)
                        .ok_or_else(|| self.bad(pgno, ptr, "data runs past the page"))?
                };
                if nflags & F_DUPDATA != 0 {
                    return Err(self.bad(
                        pgno,
                        ptr + NODE_FLAGS,
                        "duplicate-key data, which this index never writes",
                    ));
                }
                on_leaf(self, pgno, nflags, key, data)?;
            } else {
                let child = lo | hi << 16 | (nflags as u64) << 32;
                self.walk_page(child, levels_left - 1, on_leaf)?;
            }
        }
        Ok(())
    }

    /// The data of a value kept on overflow pages.
    fn overflow(&mut self, pgno: u64, dsize: usize) -> Result<&'a [u8]> {
        let p = self.page(pgno)?;
        if le64(p, PGNO_OFFSET) != Some(pgno)
            || le16(p, FLAGS_OFFSET).is_none_or(|f| f & P_OVERFLOW == 0)
        {
            return Err(self.bad(pgno, 0, "not an overflow page"));
        }
        let pages = le32(p, OVERFLOW_PAGES_OFFSET).unwrap_or(0) as u64;
        let end = pgno.checked_add(pages).filter(|e| *e <= self.last + 1);
        if pages == 0 || end.is_none() || PAGE_HEADER + dsize > pages as usize * self.psize {
            return Err(self.bad(pgno, OVERFLOW_PAGES_OFFSET, "overflow run is inconsistent"));
        }
        for q in pgno..pgno + pages {
            if !self.seen.insert(q) {
                return Err(self.bad(q, 0, "overflow page reached twice"));
            }
        }
        let start = pgno as usize * self.psize + PAGE_HEADER;
        self.data
            .get(start..start + dsize)
            .ok_or_else(|| self.bad(pgno, PAGE_HEADER, "overflow data beyond the file"))
    }
}

/// The newest valid meta page of the two: page size, last used page,
/// transaction id, and the freelist's and main database's records.
fn newest_meta(data: &[u8]) -> Option<Meta> {
    let meta = |base: usize| -> Option<Meta> {
        let m = data.get(base + PAGE_HEADER..base + PAGE_HEADER + META_LEN)?;
        if le32(m, META_MAGIC)? != MAGIC {
            return None;
        }
        // The freelist record's pad field holds the page size.
        let psize = le32(m, META_FREE_DB)? as u64;
        let free: [u8; DB_RECORD] = m.get(META_FREE_DB..META_MAIN_DB)?.try_into().ok()?;
        let main: [u8; DB_RECORD] = m.get(META_MAIN_DB..META_LAST_PAGE)?.try_into().ok()?;
        Some((
            psize,
            le64(m, META_LAST_PAGE)?,
            le64(m, META_TXNID)?,
            free,
            main,
        ))
    };
    let first = meta(0);
    let psize0 = first.as_ref().map(|m| m.0).unwrap_or(4096) as usize;
    let second = if (512..=65536).contains(&psize0) {
        meta(psize0)
    } else {
        None
    };
    match (first, second) {
        (Some(a), Some(b)) => Some(if b.2 > a.2 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Checks `data.mdb`: its newest meta page, then the trees in `scope`.
pub(crate) fn check(path: &Path, scope: Scope) -> Result<()> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(crate::error::io_err(path)(e)),
    };
    let len = file.metadata().map_err(crate::error::io_err(path))?.len();
    if len == 0 {
        return Ok(());
    }
    // Safety: a private read-only map; the caller holds the writer lock or
    // an LMDB read transaction, so the pages it reads are not rewritten.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(crate::error::io_err(path))?;
    let data: &[u8] = &map;
    let Some((psize, last, txnid, free, main)) = newest_meta(data) else {
        return Err(corrupt(path, 0, "no valid LMDB meta page"));
    };
    if !psize.is_power_of_two() || !(512..=65536).contains(&psize) {
        return Err(corrupt(
            path,
            (PAGE_HEADER + META_FREE_DB) as u64,
            format!("impossible LMDB page size {psize}"),
        ));
    }
    if (last + 1).checked_mul(psize).is_none_or(|need| need > len) {
        return Err(corrupt(
            path,
            len,
            format!("index file is {len} bytes but its meta page uses page {last}"),
        ));
    }
    let walker = || Walker {
        file: path,
        data,
        psize: psize as usize,
        last,
        seen: HashSet::new(),
        bytewise: false,
    };
    let bad_meta = |what: &str| corrupt(path, 0, format!("LMDB meta page: {what}"));
    let free = db_record(&free).ok_or_else(|| bad_meta("short freelist record"))?;
    let main = db_record(&main).ok_or_else(|| bad_meta("short main record"))?;
    check_open_trees(&mut walker(), &main)?;
    if scope == Scope::Meta {
        return Ok(());
    }
    let mut w = walker();
    check_freelist(&mut w, &free, txnid)?;
    if scope == Scope::All {
        check_trees(&mut w, &main)?;
    }
    Ok(())
}

/// The freelist: records of page numbers, each an IDL [count, pgno...].
/// Its keys are the transactions that freed the pages: ascending, and none
/// after the meta page's own (LMDB's writer asserts on both).
fn check_freelist(w: &mut Walker<'_>, free: &Db, txnid: u64) -> Result<()> {
    let mut prev_key = 0u64;
    w.walk(free, &mut |w, pgno, _, key, idl| {
        if key.len() != 8 {
            return Err(w.bad(pgno, 0, "freelist key is not a transaction id"));
        }
        let k = le64(key, 0).unwrap_or(0);
        if k == 0 || k > txnid || k <= prev_key {
            return Err(w.bad(
                pgno,
                0,
                "freelist key is not a transaction id before the meta page's, in order",
            ));
        }
        prev_key = k;
        if idl.len() < 8 || idl.len() % 8 != 0 || le64(idl, 0) != Some(idl.len() as u64 / 8 - 1) {
            return Err(w.bad(pgno, 0, "freelist record count does not match its size"));
        }
        let mut prev = u64::MAX;
        for i in 1..idl.len() / 8 {
            let p = le64(idl, i * 8).unwrap_or(0);
            if p < 2 || p > w.last || p >= prev {
                return Err(w.bad(pgno, 0, "freelist record lists an impossible page"));
            }
            prev = p;
        }
        Ok(())
    })
}

/// The named table every open reads first (format and geometry).
const OPEN_TABLE: &[u8] = b"meta";

/// The main tree and the `meta` table: a damaged node there (a flag that
/// sends LMDB to a sub-cursor these tables do not have, say) would crash
/// the first read of any open.
fn check_open_trees(w: &mut Walker<'_>, main: &Db) -> Result<()> {
    w.bytewise = true;
    let mut meta = None;
    w.walk(main, &mut |w, pgno, flags, key, data| {
        if flags & F_SUBDATA != 0 && key == OPEN_TABLE {
            meta = Some(db_record(data).ok_or_else(|| w.bad(pgno, 0, "short database record"))?);
        }
        Ok(())
    })?;
    match meta {
        Some(db) => w.walk(&db, &mut |_, _, _, _, _| Ok(())),
        None => Ok(()),
    }
}

/// The main tree and every named database in it.
fn check_trees(w: &mut Walker<'_>, main: &Db) -> Result<()> {
    w.bytewise = true;
    let mut subs = Vec::new();
    w.walk(main, &mut |w, pgno, flags, _key, data| {
        if flags & F_SUBDATA != 0 {
            subs.push(db_record(data).ok_or_else(|| w.bad(pgno, 0, "short database record"))?);
        }
        Ok(())
    })?;
    for db in subs {
        w.walk(&db, &mut |_, _, _, _, _| Ok(()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{CHUNK_NODES, Index};

    fn index_with_history(dir: &Path) {
        let ix = Index::open(dir, true, 1 << 30).unwrap();
        // Many small commits leave a freelist with records.
        for round in 0..40u64 {
            let mut txn = ix.write_txn().unwrap();
            for i in 0..20u64 {
                ix.put_chunk(
                    &mut txn,
                    (i % 3) as u32,
                    0,
                    round * 20 + i,
                    &[[round as u8; 32]; CHUNK_NODES],
                )
                .unwrap();
            }
            ix.commit(txn).unwrap();
        }
        ix.force_sync().unwrap();
    }

    #[test]
    fn a_damaged_freelist_is_found_before_the_writer_opens() {
        let dir = tempfile::tempdir().unwrap();
        index_with_history(dir.path());
        let path = dir.path().join("data.mdb");
        let mut b = std::fs::read(&path).unwrap();
        // The newest meta page's freelist root, then its first record's count.
        let meta_at = |base: usize| {
            let txn = u64::from_le_bytes(b[base + 144..base + 152].try_into().unwrap());
            let root = u64::from_le_bytes(
                b[base + 16 + 24 + 40..base + 16 + 24 + 48]
                    .try_into()
                    .unwrap(),
            );
            (txn, root)
        };
        let (t0, r0) = meta_at(0);
        let (t1, r1) = meta_at(4096);
        let root = if t1 > t0 { r1 } else { r0 } as usize;
        assert_ne!(root as u64, P_INVALID, "the test wants a freelist");
        let base = root * 4096;
        let ptr = u16::from_le_bytes([b[base + 16], b[base + 17]]) as usize;
        let ksize = u16::from_le_bytes([b[base + ptr + 6], b[base + ptr + 7]]) as usize;
        let count_at = base + ptr + 8 + ksize;
        let sound = b.clone();
        b[count_at + 3] ^= 0x7f; // a count of millions
        std::fs::write(&path, &b).unwrap();
        check(&path, Scope::Meta).unwrap();
        assert!(matches!(
            check(&path, Scope::Freelist),
            Err(StoreError::Corrupt(_))
        ));
        // A freelist key (the transaction that freed the pages) from the
        // future: LMDB's writer asserts and aborts on it.
        let mut b = sound;
        assert_eq!(ksize, 8);
        b[base + ptr + 8 + 6] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(
            check(&path, Scope::Freelist),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_damaged_node_flag_in_the_tables_every_open_reads_is_found_first() {
        let dir = tempfile::tempdir().unwrap();
        index_with_history(dir.path());
        {
            // The header every open reads.
            let ix = Index::open(dir.path(), true, 1 << 30).unwrap();
            let mut txn = ix.write_txn().unwrap();
            let header = crate::index::IndexHeader {
                version: crate::index::INDEX_VERSION,
                store_id: [7; 16],
                page_size: 16384,
                segment_pages: 1024,
            };
            ix.put_header(&mut txn, &header).unwrap();
            ix.commit(txn).unwrap();
            ix.force_sync().unwrap();
        }
        let path = dir.path().join("data.mdb");
        check(&path, Scope::Meta).unwrap();
        let sound = std::fs::read(&path).unwrap();
        let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        // The newest meta page's main tree root (one leaf page here).
        let newest = if u64_at(&sound, 4096 + 144) > u64_at(&sound, 144) {
            4096
        } else {
            0
        };
        let main_root = u64_at(&sound, newest + 16 + 72 + 40) as usize * 4096;
        // The node of a page whose key is `key`, if any.
        let node = |page: usize, key: &[u8]| {
            (0..(u16_at(&sound, page + 12) - 16) / 2)
                .map(|i| page + u16_at(&sound, page + 16 + 2 * i))
                .find(|&n| &sound[n + 8..n + 8 + u16_at(&sound, n + 6)] == key)
        };
        let meta_node = node(main_root, b"meta").expect("the main tree lists the meta table");
        let meta_root = u64_at(&sound, meta_node + 8 + 4 + 40) as usize * 4096;
        let format_node = node(meta_root, b"format").expect("the meta table holds its format");
        // Set the duplicate-data flag of each: LMDB, with no sub-cursor for
        // these tables, would follow a null pointer on the first read.
        for at in [meta_node, format_node] {
            let mut b = sound.clone();
            b[at + 4] |= F_DUPDATA as u8;
            std::fs::write(&path, &b).unwrap();
            assert!(
                matches!(check(&path, Scope::Meta), Err(StoreError::Corrupt(_))),
                "a flipped flag at {at} went unnoticed"
            );
        }
        std::fs::write(&path, &sound).unwrap();
        check(&path, Scope::Meta).unwrap();
    }

    #[test]
    fn truncation_is_caught_from_the_meta_page() {
        let dir = tempfile::tempdir().unwrap();
        index_with_history(dir.path());
        let path = dir.path().join("data.mdb");
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 2 / 4096 * 4096).unwrap();
        assert!(matches!(
            check(&path, Scope::Meta),
            Err(StoreError::Corrupt(_))
        ));
        f.set_len(100).unwrap();
        assert!(check(&path, Scope::Meta).is_err());
    }

    #[test]
    fn a_sound_index_passes_and_damage_on_live_pages_is_found() {
        let dir = tempfile::tempdir().unwrap();
        index_with_history(dir.path());
        let path = dir.path().join("data.mdb");
        check(&path, Scope::All).unwrap();
        check(&path, Scope::Freelist).unwrap();
        // Damage each live page's node-offset array in turn: every one is caught.
        let bytes = std::fs::read(&path).unwrap();
        let mut live = 0;
        for pg in 2..bytes.len() / 4096 {
            let mut b = bytes.clone();
            let base = pg * 4096;
            let flags = u16::from_le_bytes([b[base + 10], b[base + 11]]);
            let lower = u16::from_le_bytes([b[base + 12], b[base + 13]]);
            if flags & (P_BRANCH | P_LEAF) == 0 || lower <= 16 {
                continue;
            }
            b[base + 17] ^= 0x40; // the high byte of the first node offset
            std::fs::write(&path, &b).unwrap();
            if check(&path, Scope::All).is_err() {
                live += 1;
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        assert!(
            live >= 3,
            "damage on live pages went unnoticed ({live} caught)"
        );
        check(&path, Scope::All).unwrap();
    }
}
