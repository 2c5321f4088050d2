//! Opening a store: its lock, identity and geometry, the index, recovery,
//! and the writer's threads; and rebuilding a damaged index.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::bounded;
use ed25519_dalek::SigningKey;
use xaeroflux_reactive::{Observable, Overflow, Subject};
use xaeroflux_types::fs::{sync_dir, write_atomic};

use super::{Store, WriterHandle};
use crate::catalog::{Catalog, restore};
use crate::error::{Result, StoreError, corrupt, io_err};
use crate::format::{
    IDENTITY_LEN, SEGMENT_HEADER_LEN, SEGMENT_NUMBER_OFFSET, SEGMENT_PAGE_SIZE_OFFSET,
    SegmentHeader, decode_identity, encode_identity,
};
use crate::index::{Index, IndexHeader};
use crate::options::{DEFAULT_PAGE_SIZE, DEFAULT_SEGMENT_PAGES, StoreOptions, check_geometry};
use crate::segments::Segments;
use crate::shared::Shared;
use crate::subscribe::Commit;
use crate::writer::Writer;

/// Requests that may wait for the writer before `append` blocks.
const WRITER_QUEUE: usize = 4096;
/// Commit notices waiting for the dispatch thread, per priority class.
const COMMIT_QUEUE: usize = 16 * 1024;
const LOCK_FILE: &str = "LOCK";
const IDENTITY_FILE: &str = "identity.key";
const SEGMENT_ZERO: &str = "segments/00000000.xfseg";

fn random<const N: usize>(what: &Path) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| io_err(what)(std::io::Error::other(e.to_string())))?;
    Ok(b)
}

/// The geometry and store id in the first segment's header, when there is
/// one.
fn read_segment_zero(dir: &Path) -> Result<Option<IndexHeader>> {
    let path = dir.join(SEGMENT_ZERO);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    f.read_exact(&mut head)
        .map_err(|_| corrupt(&path, 0, "segment file shorter than its header"))?;
    let h = SegmentHeader::read(&head).map_err(|(o, r)| corrupt(&path, o, r))?;
    if h.segment != 0 {
        return Err(corrupt(
            &path,
            SEGMENT_NUMBER_OFFSET as u64,
            format!("the first segment file holds segment {}", h.segment),
        ));
    }
    check_geometry(h.page_size, h.segment_pages).map_err(|_| {
        corrupt(
            &path,
            SEGMENT_PAGE_SIZE_OFFSET as u64,
            "impossible page geometry",
        )
    })?;
    Ok(Some(IndexHeader {
        version: crate::index::INDEX_VERSION,
        store_id: h.store_id,
        page_size: h.page_size,
        segment_pages: h.segment_pages,
    }))
}

/// Takes the store's write lock, writing this process's id into it.
fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "another handle".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
    }
    f.set_len(0).map_err(io_err(&path))?;
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "?".into());
    writeln!(f, "process {} ({exe})", std::process::id()).map_err(io_err(&path))?;
    Ok(f)
}

/// The store's signing key, made (and kept, mode 0600) on first open.
fn load_or_create_identity(dir: &Path, create: bool) -> Result<SigningKey> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let (secret, public) =
                decode_identity(&bytes).map_err(|(o, r)| corrupt(&path, o, r))?;
            let key = SigningKey::from_bytes(&secret);
            if key.verifying_key().to_bytes() != public {
                return Err(corrupt(
                    &path,
                    crate::format::IDENTITY_PUBLIC_OFFSET as u64,
                    "public key does not match the secret key",
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let secret = random::<32>(&path)?;
            let key = SigningKey::from_bytes(&secret);
            let bytes: [u8; IDENTITY_LEN] =
                encode_identity(&secret, &key.verifying_key().to_bytes());
            write_atomic(&path, &bytes, Some(0o600))?;
            Ok(key)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

impl Store {
    /// Opens the store in `dir`, creating it (and its identity) when it does
    /// not exist and `options.read_only` is false.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Self::open_inner(dir.as_ref(), options, None, &mut |_| {})
    }

    /// Rebuilds the index from the segments, which hold everything that
    /// was appended: the current index (damaged, or from another time) is
    /// moved aside to `index.damaged-<unix seconds>` and a new one is built
    /// by replaying every page. Topic names and other authors' checkpoints
    /// come back from the catalog (`catalog.xfcat`; see
    /// [`Store::catalog_restored`]); a damaged catalog is moved aside and
    /// what precedes the damage kept. The store's own checkpoints are
    /// signed again on demand. Returns the opened store and where the old
    /// index went.
    pub fn repair(dir: impl AsRef<Path>, options: StoreOptions) -> Result<(Self, Option<PathBuf>)> {
        Self::repair_with_progress(dir, options, &mut |_| {})
    }

    /// [`Store::repair`], calling `progress` after each page replayed.
    pub fn repair_with_progress(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        progress: &mut dyn FnMut(crate::receipts::Progress),
    ) -> Result<(Self, Option<PathBuf>)> {
        let dir = dir.as_ref();
        if options.read_only {
            return Err(StoreError::ReadOnly);
        }
        if !dir.join(SEGMENT_ZERO).exists() {
            return Err(StoreError::InvalidArgument(format!(
                "{} holds no segments to rebuild from",
                dir.display()
            )));
        }
        let lock = take_lock(dir)?;
        let index_dir = dir.join("index");
        let moved = if index_dir.exists() {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let aside = dir.join(format!("index.damaged-{secs}"));
            std::fs::rename(&index_dir, &aside).map_err(io_err(&aside))?;
            sync_dir(dir)?;
            Some(aside)
        } else {
            None
        };
        Ok((Self::open_inner(dir, options, Some(lock), progress)?, moved))
    }

    fn open_inner(
        dir: &Path,
        options: StoreOptions,
        held_lock: Option<File>,
        progress: &mut dyn FnMut(crate::receipts::Progress),
    ) -> Result<Self> {
        let writable = !options.read_only;
        // A repair holds the lock already; it salvages a damaged catalog.
        let repairing = held_lock.is_some();
        if writable {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        } else if !dir.is_dir() {
            return Err(io_err(dir)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no store in this directory",
            )));
        }
        let lock = match (writable, held_lock) {
            (true, Some(l)) => Some(l),
            (true, None) => Some(take_lock(dir)?),
            (false, _) => None,
        };
        let key = load_or_create_identity(dir, writable)?;
        let index = open_index(dir, writable, options.index_map_size)?;
        let header = geometry(dir, &index, &options)?;
        let seg_dir = dir.join("segments");
        if writable {
            std::fs::create_dir_all(&seg_dir).map_err(io_err(&seg_dir))?;
        }
        let segments = Segments::new(
            seg_dir,
            header.page_size as usize,
            header.segment_pages,
            header.store_id,
        );
        let shared = Arc::new(Shared {
            node_memo: Default::default(),
            dir: dir.to_path_buf(),
            index,
            segments,
            author: key.verifying_key().to_bytes(),
            key,
            own_heads: Default::default(),
            stopped: Default::default(),
            sealers: Default::default(),
            pull_claims: Default::default(),
            index_gate: Default::default(),
            #[cfg(feature = "failpoints")]
            fails: crate::failpoints::Checks::new(options.failpoints.clone()),
            #[cfg(not(feature = "failpoints"))]
            fails: Default::default(),
        });
        let mut store = Self {
            shared,
            writer: None,
            commits: None,
            _lock: lock,
            read_only: !writable,
            recovered: 0,
            restored: Default::default(),
        };
        store.load_own_heads()?;
        if writable {
            if header.version == crate::index::INDEX_VERSION_V1 {
                add_page_times(&store.shared)?;
            }
            store.start_writer(&options, repairing, progress)?;
        }
        Ok(store)
    }

    /// Recovers what the index lacks, then starts the writer and flusher
    /// and the commit announcements.
    fn start_writer(
        &mut self,
        options: &StoreOptions,
        repairing: bool,
        progress: &mut dyn FnMut(crate::receipts::Progress),
    ) -> Result<()> {
        let (notify, observable): (Subject<Commit>, Observable<Commit>) =
            Subject::<Commit>::builder()
                .name("commits")
                .capacity(COMMIT_QUEUE)
                .overflow(Overflow::DropNewest)
                .try_build()
                .map_err(StoreError::Thread)?;
        let mut w = Writer::new(
            self.shared.clone(),
            options.durability,
            options.writer_log_cache,
            Some(notify),
            options.clock.clone(),
        )?;
        self.recovered = w.recover(progress)?;
        w.set_catalog(self.open_catalog(repairing)?);
        let (tx, rx) = bounded(WRITER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("xaeroflux-writer".into())
            .spawn(move || w.run(rx))
            .map_err(StoreError::Thread)?;
        self.commits = Some(observable);
        self.writer = Some(WriterHandle { tx, thread });
        Ok(())
    }
}

impl Store {
    /// Opens the catalog and puts back into the index what it lacks of it
    /// (after recovery, so the logs' sizes are known); a new catalog, one
    /// cut at a torn tail, or one grown past twice what is live, is written
    /// again from the index.
    fn open_catalog(&mut self, repairing: bool) -> Result<Catalog> {
        let shared = self.shared.clone();
        let store_id = shared.segments.store_id();
        let opened = Catalog::open(&shared.dir, &store_id, repairing)?;
        let r = restore(&shared.index, opened.entries, |log, size| {
            self.root_at(log, size)
        })?;
        let mut catalog = opened.catalog;
        if opened.fresh || catalog.wants_compaction() {
            catalog.compact(&shared.index, &store_id, &shared.author)?;
        }
        self.restored = crate::receipts::CatalogRestore {
            topic_names: r.topic_names,
            checkpoints: r.checkpoints,
            set_aside: opened.set_aside,
        };
        Ok(catalog)
    }
}

/// Upgrades an index of version 1 to version 2: the `log_times` entry of
/// every page, from its first event, and the new version, in one
/// transaction (an upgrade cut short leaves version 1, and runs again).
fn add_page_times(shared: &Shared) -> Result<()> {
    use crate::reader::{Expect, open_page};
    let index = &shared.index;
    let mut times = Vec::new();
    {
        let txn = index.read_txn()?;
        for (loc, e) in index.pages(&txn)? {
            if e.count == 0 {
                continue;
            }
            let log = index.log_id(&txn, e.log_no)?.to_bytes();
            let want = Expect {
                log: &log,
                first_seq: e.first_seq,
                count: e.count,
                sealed: e.sealed,
            };
            let page = open_page(&shared.segments, loc, want)?;
            if let Some(ev) = page.events(&shared.segments).next() {
                times.push((e.log_no, ev?.timestamp_ms(), e.first_seq));
            }
        }
    }
    let mut txn = index.write_txn()?;
    for (log_no, ts, first) in times {
        index.put_page_time(&mut txn, log_no, ts, first)?;
    }
    index.put_format(&mut txn, crate::index::INDEX_VERSION)?;
    index.commit(txn)?;
    index.force_sync()
}

fn open_index(dir: &Path, writable: bool, map_size: usize) -> Result<Index> {
    Index::open(&dir.join("index"), writable, map_size).map_err(|e| match e {
        StoreError::Index {
            source: heed::Error::EnvAlreadyOpened,
            ..
        } => StoreError::Locked {
            path: dir.to_path_buf(),
            holder: "another handle in this process".into(),
        },
        e => e,
    })
}

/// The store's id and geometry: from the index, or for a new index from
/// the segments (a lost or set-aside index, rebuilt by recovery) or the
/// options (a new store).
fn geometry(dir: &Path, index: &Index, options: &StoreOptions) -> Result<IndexHeader> {
    let found = {
        let txn = index.read_txn()?;
        index.header(&txn)?
    };
    let differs = |h: &IndexHeader| {
        options.page_size.is_some_and(|w| w != h.page_size)
            || options.segment_pages.is_some_and(|w| w != h.segment_pages)
    };
    if let Some(h) = found {
        if differs(&h) {
            return Err(StoreError::InvalidArgument(format!(
                "the store was created with {}-byte pages, {} per segment",
                h.page_size, h.segment_pages
            )));
        }
        check_geometry(h.page_size, h.segment_pages)
            .map_err(|_| corrupt(index.data_file(), 0, "impossible page geometry"))?;
        return Ok(h);
    }
    if options.read_only {
        return Err(corrupt(
            index.data_file(),
            0,
            "the index has no header: not a Xaeroflux store",
        ));
    }
    let h = match read_segment_zero(dir)? {
        Some(h) if differs(&h) => {
            return Err(StoreError::InvalidArgument(format!(
                "the store's segments have {}-byte pages, {} per segment",
                h.page_size, h.segment_pages
            )));
        }
        Some(h) => h,
        None => IndexHeader {
            version: crate::index::INDEX_VERSION,
            store_id: random::<16>(dir)?,
            page_size: options.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            segment_pages: options.segment_pages.unwrap_or(DEFAULT_SEGMENT_PAGES),
        },
    };
    check_geometry(h.page_size, h.segment_pages)?;
    let mut txn = index.write_txn()?;
    index.put_header(&mut txn, &h)?;
    index.commit(txn)?;
    index.force_sync()?;
    Ok(h)
}
