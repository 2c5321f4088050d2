//! The catalog: topic names and other authors' checkpoints, kept in the
//! store's own append-only file (`catalog.xfcat`, laid out in
//! `format::catalog`) as well as in the index, so that a rebuilt index
//! (after `Store::repair`, or a power loss that cost the index its last
//! transactions) gets them back.
//!
//! The flusher appends a record for every topic name and received
//! checkpoint a job stores, before the job's index commit, and syncs the
//! file with the segments. A writer's open reads the file once: a torn
//! last record is cut off, and what the index lacks (a topic name, or a
//! checkpoint newer than the index's that the log reaches and whose
//! signature and root hold) is put back. A new file, one that lost a torn
//! tail, and one grown to more than twice what is live are then written
//! again from the index, so the catalog holds all the index does.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xaeroflux_merkle::NoteVerifier;
use xaeroflux_types::fs::write_atomic;
use xaeroflux_types::{LogId, Topic, UnsupportedVersion};

use crate::error::{Result, StoreError, corrupt, io_err};
use crate::format::catalog::{
    CATALOG_HEADER_LEN, CATALOG_VERSION, CatalogEntry, Damage, HeaderError, Scan, decode_header,
    encode_entry, encode_header, scan,
};
use crate::index::Index;

/// The catalog's file name in the store directory.
pub(crate) const CATALOG_FILE: &str = "catalog.xfcat";
/// Largest catalog read into memory; past this it is damage, not data (a
/// live catalog is a topic name and a checkpoint per log, compacted).
const MAX_CATALOG_BYTES: u64 = 1 << 30;
/// The catalog is not compacted below this size.
const COMPACT_MIN: u64 = 1 << 20;

/// The open catalog of a writer.
pub(crate) struct Catalog {
    path: PathBuf,
    file: File,
    /// Bytes of the file (where the next record goes).
    len: u64,
    /// Bytes after the last compaction (or open): what was live then.
    live: u64,
    unsynced: bool,
}

/// What reading a catalog file found: its records, how far they are
/// whole, and why reading stopped early.
pub(crate) struct Read {
    pub scan: Scan,
}

/// A catalog opened by a writer.
pub(crate) struct Opened {
    pub catalog: Catalog,
    /// Its whole records (or those salvaged from a damaged file).
    pub entries: Vec<CatalogEntry>,
    /// The file was created now, or lost a torn tail: whatever the index
    /// holds belongs in it, so it is to be written again from the index.
    pub fresh: bool,
    /// Where a damaged catalog went.
    pub set_aside: Option<PathBuf>,
}

/// The catalog's path in the store directory `dir`.
pub(crate) fn catalog_path(dir: &Path) -> PathBuf {
    dir.join(CATALOG_FILE)
}

/// Reads the catalog of the store `store_id` in `dir`, if there is one.
pub(crate) fn read(dir: &Path, store_id: &[u8; 16]) -> Result<Option<Read>> {
    let path = catalog_path(dir);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let file_len = f.metadata().map_err(io_err(&path))?.len();
    if file_len > MAX_CATALOG_BYTES {
        return Err(corrupt(
            &path,
            MAX_CATALOG_BYTES,
            format!("catalog of {file_len} bytes is larger than any the store writes"),
        ));
    }
    let mut bytes = Vec::with_capacity(file_len as usize);
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(io_err(&path))?;
    match decode_header(&bytes) {
        Ok(id) if id == *store_id => {}
        Ok(_) => return Err(corrupt(&path, 12, "catalog of another store")),
        Err(HeaderError::Bad(off, why)) => return Err(corrupt(&path, off, why)),
        Err(HeaderError::Version(v)) => {
            return Err(StoreError::UnsupportedVersion(UnsupportedVersion {
                what: path.display().to_string(),
                found: v as u32,
                supported: CATALOG_VERSION as u32,
            }));
        }
    }
    Ok(Some(Read { scan: scan(&bytes) }))
}

impl Catalog {
    /// Opens (creating it when missing) the catalog for appending: a torn
    /// last record is cut off. A damaged record before the end, or a
    /// damaged header, is a corruption error unless `salvage` (a repair):
    /// then the damaged file is moved to `catalog.damaged-<unix seconds>`
    /// and the whole records before the damage are kept.
    pub fn open(dir: &Path, store_id: &[u8; 16], salvage: bool) -> Result<Opened> {
        let path = catalog_path(dir);
        let found = match read(dir, store_id) {
            Err(StoreError::Corrupt(_)) if salvage => Err(Vec::new()),
            Err(e) => return Err(e),
            Ok(None) => Ok(None),
            Ok(Some(r)) => match r.scan.damage {
                Some(Damage::Corrupt { .. }) if salvage => {
                    Err(r.scan.entries.into_iter().map(|(_, e)| e).collect())
                }
                Some(Damage::Corrupt { offset, reason }) => {
                    return Err(corrupt(
                        &path,
                        offset,
                        format!("{reason} (xf repair rebuilds the catalog)"),
                    ));
                }
                _ => Ok(Some((
                    r.scan.entries.into_iter().map(|(_, e)| e).collect(),
                    r.scan.valid_end,
                ))),
            },
        };
        let mut set_aside = None;
        let (entries, len, fresh) = match found {
            Ok(Some((entries, len))) => (entries, len, false),
            Ok(None) => {
                write_atomic(&path, &encode_header(store_id), None)?;
                (Vec::new(), CATALOG_HEADER_LEN as u64, true)
            }
            Err(salvaged) => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let aside = dir.join(format!("catalog.damaged-{secs}"));
                std::fs::rename(&path, &aside).map_err(io_err(&aside))?;
                set_aside = Some(aside);
                write_atomic(&path, &encode_header(store_id), None)?;
                (salvaged, CATALOG_HEADER_LEN as u64, true)
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let on_disk = file.metadata().map_err(io_err(&path))?.len();
        let torn = on_disk != len;
        if torn {
            // The torn tail goes, so the next record follows a whole one.
            file.set_len(len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        Ok(Opened {
            catalog: Self {
                path,
                file,
                len,
                live: len,
                unsynced: false,
            },
            entries,
            fresh: fresh || torn,
            set_aside,
        })
    }

    /// Appends records (encoded by [`encode_records`]).
    pub fn append(&mut self, records: &[u8]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(records, self.len)
            .map_err(io_err(&self.path))?;
        self.len += records.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// Syncs what was appended since the last sync.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file.sync_data().map_err(io_err(&self.path))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Whether the file has grown past twice what was live at the last
    /// compaction.
    pub fn wants_compaction(&self) -> bool {
        self.len > COMPACT_MIN && self.len > 2 * self.live
    }

    /// Rewrites the file from what the index holds (its topic names and
    /// other authors' checkpoints), atomically.
    pub fn compact(&mut self, index: &Index, store_id: &[u8; 16], own: &[u8; 32]) -> Result<()> {
        let mut bytes = encode_header(store_id).to_vec();
        {
            let txn = index.read_txn()?;
            for (topic, name) in index.topic_names(&txn)? {
                encode_entry(&CatalogEntry::TopicName { topic, name }, &mut bytes);
            }
            for (log_no, note) in index.checkpoints(&txn)? {
                let log = index.log_id(&txn, log_no)?;
                if log.author == *own {
                    continue;
                }
                let v = NoteVerifier::new(&log.origin(), &log.author)?;
                // The index's checkpoints were checked when they were kept.
                if let Ok(cp) = v.verify_checkpoint(&note) {
                    let e = CatalogEntry::Checkpoint {
                        log,
                        size: cp.size,
                        note,
                    };
                    encode_entry(&e, &mut bytes);
                }
            }
        }
        write_atomic(&self.path, &bytes, None)?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        self.len = bytes.len() as u64;
        self.live = self.len;
        self.unsynced = false;
        Ok(())
    }
}

/// The records of a job's topic names and other authors' checkpoints.
pub(crate) fn encode_records<'a>(
    names: impl Iterator<Item = (&'a xaeroflux_types::TopicId, &'a str)>,
    checkpoints: impl Iterator<Item = (&'a LogId, u64, &'a str)>,
    own: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::new();
    for (topic, name) in names {
        let e = CatalogEntry::TopicName {
            topic: *topic,
            name: name.to_string(),
        };
        encode_entry(&e, &mut out);
    }
    for (log, size, note) in checkpoints.filter(|(l, _, _)| l.author != *own) {
        let e = CatalogEntry::Checkpoint {
            log: *log,
            size,
            note: note.to_string(),
        };
        encode_entry(&e, &mut out);
    }
    out
}

/// What [`restore`] put back into the index.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restored {
    pub topic_names: u64,
    pub checkpoints: u64,
}

/// Puts back into the index what it lacks of the catalog's `entries`: a
/// topic name whose topic has none (and that names that topic), and for
/// each log the catalog's newest checkpoint when it is newer than the
/// index's, the log reaches its size, and its signature and root hold.
/// `root_at` gives a log's root at a size from the index.
pub(crate) fn restore(
    index: &Index,
    entries: Vec<CatalogEntry>,
    root_at: impl Fn(&LogId, u64) -> Result<xaeroflux_merkle::Hash>,
) -> Result<Restored> {
    use std::collections::HashMap;
    let mut names = HashMap::new();
    let mut newest: HashMap<LogId, (u64, String)> = HashMap::new();
    for e in entries {
        match e {
            CatalogEntry::TopicName { topic, name } => {
                if Topic::id_of(&name) == topic {
                    names.entry(topic).or_insert(name);
                }
            }
            CatalogEntry::Checkpoint { log, size, note } => {
                let keep = newest.get(&log).is_none_or(|(s, _)| *s < size);
                if keep {
                    newest.insert(log, (size, note));
                }
            }
        }
    }
    let mut out = Restored::default();
    let mut put_names = Vec::new();
    let mut put_cps = Vec::new();
    {
        let txn = index.read_txn()?;
        for (topic, name) in names {
            if index.topic_name(&txn, &topic)?.is_none() {
                put_names.push((topic, name));
            }
        }
        for (log, (size, note)) in newest {
            let Some(rec) = index.log_record(&txn, &log)? else {
                continue;
            };
            if rec.size < size {
                continue;
            }
            let v = NoteVerifier::new(&log.origin(), &log.author)?;
            if let Some(kept) = index.checkpoint(&txn, rec.log_no)?
                && v.verify_checkpoint(&kept).is_ok_and(|k| k.size >= size)
            {
                continue;
            }
            let Ok(cp) = v.verify_checkpoint(&note) else {
                continue;
            };
            if cp.size != size || root_at(&log, size)? != cp.root {
                continue;
            }
            put_cps.push((rec.log_no, note));
        }
    }
    if put_names.is_empty() && put_cps.is_empty() {
        return Ok(out);
    }
    let mut txn = index.write_txn()?;
    for (topic, name) in &put_names {
        index.put_topic_name(&mut txn, topic, name)?;
    }
    for (log_no, note) in &put_cps {
        index.put_checkpoint(&mut txn, *log_no, note)?;
    }
    index.commit(txn)?;
    index.force_sync()?;
    out.topic_names = put_names.len() as u64;
    out.checkpoints = put_cps.len() as u64;
    Ok(out)
}
