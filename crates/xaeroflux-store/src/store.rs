//! The store: opening, appending, reading, proving and verifying.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};
use ed25519_dalek::SigningKey;
use heed::RoTxn;
use xaeroflux_merkle::{
    Checkpoint, Frontier, Hash, NoteVerifier, SignedCheckpoint, consistency_proof, inclusion_path,
    mth, root_at, sign_checkpoint, verifier_key_string, verify_consistency, verify_inclusion,
};

use crate::error::{Result, StoreError, corrupt, io_err};
use crate::event::{EventRef, LogId, NewEvent, Topic, TopicId};
use crate::fork::{ForkProof, ForkSide};
use crate::format::{IDENTITY_LEN, decode_identity, encode_identity};
use crate::index::{Index, LogRecord, PageEntry, PageLoc};
use crate::reader::{PageEvents, open_page};
use crate::segments::{Segments, sync_dir};
use crate::shared::Shared;
use crate::subscribe::{Commit, Filter, Since, Subscription};
use crate::tree::{ChunkAssembler, IndexNodes};
use crate::writer::VerifiedPage;
use crate::writer::{Committed, Request, Writer};
use xaeroflux_reactive::{Observable, Overflow, Subject};

/// Default page size: 16 KiB.
pub const DEFAULT_PAGE_SIZE: u32 = 16 * 1024;
/// Default pages per segment: 1024 (16 MiB segments).
pub const DEFAULT_SEGMENT_PAGES: u32 = 1024;
/// Requests that may wait for the writer before `append` blocks.
const WRITER_QUEUE: usize = 4096;

/// When an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once the event is on stable storage (one data sync per group commit).
    #[default]
    Durable,
    /// Once the event is written and indexed; the writer syncs after 2 ms
    /// without new work and at least once a second, so a power loss may
    /// take the last moments' events (a process crash does not).
    Fast,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Page size for a new store (a power of two, 1 KiB to 16 MiB). An
    /// existing store keeps its own; asking for another is an error.
    pub page_size: Option<u32>,
    /// Pages per segment for a new store.
    pub segment_pages: Option<u32>,
    /// When appends return.
    pub durability: Durability,
    /// Open for reading only: no writer, no lock, works beside a writer process.
    pub read_only: bool,
    /// Largest size the index may grow to (virtual address space, not disk).
    pub index_map_size: usize,
    /// Logs whose state (open page, tree frontier) the writer keeps in
    /// memory between commits; others reload from the index when appended
    /// to. About one page of memory each.
    pub writer_log_cache: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            page_size: None,
            segment_pages: None,
            durability: Durability::Durable,
            read_only: false,
            index_map_size: if cfg!(target_pointer_width = "64") {
                64 << 30
            } else {
                1 << 30
            },
            writer_log_cache: 1024,
        }
    }
}

/// What an append of one event returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The log the event went to.
    pub log: LogId,
    /// Its position.
    pub seq: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// Size of the log after it.
    pub size: u64,
    /// Root of the log at that size.
    pub root: Hash,
}

/// One event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReceipt {
    /// The log.
    pub log: LogId,
    /// Position.
    pub seq: u64,
    /// Leaf hash.
    pub leaf_hash: Hash,
}

/// A log's head after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// The log.
    pub log: LogId,
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// What `append_batch` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReceipt {
    /// Each event, in the order given.
    pub events: Vec<EventReceipt>,
    /// Each log the batch touched, after the batch.
    pub heads: Vec<LogHead>,
}

/// An append handed to the writer, not yet known to be committed.
#[must_use = "an append is only known to be durable once waited for"]
pub struct PendingAppend {
    rx: Receiver<Result<Committed>>,
}

impl PendingAppend {
    /// Waits until the event is committed (durable, in the durable mode).
    pub fn wait(self) -> Result<Receipt> {
        let c = self
            .rx
            .recv()
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))??;
        receipt_of(c)
    }
}

fn receipt_of(c: Committed) -> Result<Receipt> {
    let (log, seq, leaf_hash) = *c
        .events
        .first()
        .ok_or_else(|| StoreError::InvalidArgument("empty append".into()))?;
    let (_, size, root) = *c
        .heads
        .first()
        .ok_or_else(|| StoreError::InvalidArgument("empty append".into()))?;
    Ok(Receipt {
        log,
        seq,
        leaf_hash,
        size,
        root,
    })
}

/// What the store knows of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// The log.
    pub log: LogId,
    /// The topic name, when known.
    pub topic_name: Option<String>,
    /// Number of events.
    pub size: u64,
    /// Root at that size.
    pub root: Hash,
}

/// An inclusion proof with what it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The log.
    pub log: LogId,
    /// Leaf index (the event's seq).
    pub index: u64,
    /// Tree size the proof is for.
    pub size: u64,
    /// The event's leaf hash.
    pub leaf_hash: Hash,
    /// Root at `size`.
    pub root: Hash,
    /// RFC 9162 audit path.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the proof with the pure verifier.
    pub fn verify(&self) -> Result<()> {
        Ok(verify_inclusion(
            &self.leaf_hash,
            self.index,
            self.size,
            &self.path,
            &self.root,
        )?)
    }
}

/// A consistency proof with what it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The log.
    pub log: LogId,
    /// Older size.
    pub old_size: u64,
    /// Newer size.
    pub new_size: u64,
    /// Root at the older size.
    pub old_root: Hash,
    /// Root at the newer size.
    pub new_root: Hash,
    /// RFC 9162 consistency proof.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks the proof with the pure verifier.
    pub fn verify(&self) -> Result<()> {
        Ok(verify_consistency(
            self.old_size,
            self.new_size,
            &self.old_root,
            &self.new_root,
            &self.path,
        )?)
    }
}

/// What `verify` checked and found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Logs checked.
    pub logs: u64,
    /// Events read and hashed.
    pub events: u64,
    /// Pages whose headers and records were checked.
    pub pages: u64,
    /// Sealed pages whose page-tree root was recomputed.
    pub sealed_pages: u64,
    /// Index chunks compared with the recomputed tree.
    pub chunks: u64,
    /// Log roots recomputed from the events and compared with the index.
    pub roots: u64,
    /// Stored checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// What is wrong; empty when all is well.
    pub problems: Vec<StoreError>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Sizes of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Logs.
    pub logs: u64,
    /// Events in all logs.
    pub events: u64,
    /// Segment files.
    pub segments: u64,
    /// Pages in use.
    pub pages: u64,
    /// Of which sealed.
    pub sealed_pages: u64,
    /// Bytes of segment files on disk.
    pub segment_bytes: u64,
    /// Bytes of the index on disk.
    pub index_bytes: u64,
    /// Page size.
    pub page_size: u32,
    /// Pages per segment.
    pub segment_pages: u32,
}

struct WriterHandle {
    tx: Sender<Request>,
    thread: JoinHandle<()>,
}

/// A run of another author's events received from a peer, with what proves
/// them: the signed checkpoint they lead to and the consistency proof from
/// the log's size after them to that checkpoint. See [`Store::import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPage {
    /// The log.
    pub log: LogId,
    /// The topic's name, kept if it hashes to the log's topic id.
    pub topic_name: Option<String>,
    /// Seq of the first event: the log's size as held.
    pub first_seq: u64,
    /// The events' canonical encodings, in order.
    pub events: Vec<Vec<u8>>,
    /// The checkpoint (a signed note by the log's author).
    pub note: String,
    /// RFC 9162 consistency proof from `first_seq + events.len()` to the
    /// checkpoint's size.
    pub proof: Vec<Hash>,
}

/// An open store.
pub struct Store {
    shared: Arc<Shared>,
    writer: Option<WriterHandle>,
    /// Commits announced by the flusher (writable stores).
    commits: Option<Observable<Commit>>,
    _lock: Option<File>,
    read_only: bool,
    recovered: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .field("read_only", &self.read_only)
            .finish()
    }
}

const LOCK_FILE: &str = "LOCK";
/// Commit notices waiting for the dispatch thread, per priority class.
const COMMIT_QUEUE: usize = 16 * 1024;
const SEGMENT_ZERO: &str = "segments/00000000.xfseg";

/// Page size, pages per segment and store id from the first segment's
/// header, when there is one.
fn read_segment_zero(dir: &Path) -> Result<Option<(u32, u32, [u8; 16])>> {
    let path = dir.join(SEGMENT_ZERO);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut head = [0u8; crate::format::SEGMENT_HEADER_LEN];
    f.read_exact(&mut head)
        .map_err(|_| corrupt(&path, 0, "segment file shorter than its header"))?;
    let (ps, sp, seg, id) =
        crate::format::read_segment_header(&head).map_err(|(o, r)| corrupt(&path, o, r))?;
    if seg != 0 {
        return Err(corrupt(
            &path,
            20,
            format!("the first segment file holds segment {seg}"),
        ));
    }
    check_geometry(ps, sp).map_err(|_| corrupt(&path, 12, "impossible page geometry"))?;
    Ok(Some((ps, sp, id)))
}
const IDENTITY_FILE: &str = "identity.key";

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
                    40,
                    "public key does not match the secret key",
                ));
            }
            if bytes.len() != IDENTITY_LEN {
                return Err(corrupt(
                    &path,
                    bytes.len() as u64,
                    "identity file has the wrong size",
                ));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| StoreError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let key = SigningKey::from_bytes(&secret);
            let bytes = encode_identity(&secret, &key.verifying_key().to_bytes());
            let tmp = dir.join("identity.key.tmp");
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            sync_dir(dir)?;
            Ok(key)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn check_geometry(page_size: u32, segment_pages: u32) -> Result<()> {
    if !page_size.is_power_of_two() || !(1024..=16 << 20).contains(&page_size) {
        return Err(StoreError::InvalidArgument(format!(
            "page size {page_size} must be a power of two from 1 KiB to 16 MiB"
        )));
    }
    if !(1..=1 << 20).contains(&segment_pages) {
        return Err(StoreError::InvalidArgument(format!(
            "segment pages {segment_pages} must be from 1 to 1048576"
        )));
    }
    Ok(())
}

impl Store {
    /// Opens the store in `dir`, creating it (and its identity) when it does
    /// not exist and `options.read_only` is false.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Self::open_inner(dir.as_ref(), options, None)
    }

    /// Rebuilds the index from the segments, which hold everything that
    /// was appended: the current index (damaged, or from another time) is
    /// moved aside to `index.damaged-<unix seconds>` and a new one is built
    /// by replaying every page. Topic names and other authors' checkpoints
    /// live only in the index and are not recovered (the store's own
    /// checkpoints are signed again on demand). Returns the opened store.
    pub fn repair(dir: impl AsRef<Path>, options: StoreOptions) -> Result<(Self, Option<PathBuf>)> {
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
        Ok((Self::open_inner(dir, options, Some(lock))?, moved))
    }

    fn open_inner(dir: &Path, options: StoreOptions, held_lock: Option<File>) -> Result<Self> {
        let dir = dir.to_path_buf();
        let writable = !options.read_only;
        if writable {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        } else if !dir.is_dir() {
            return Err(StoreError::Io {
                path: dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no store in this directory",
                ),
            });
        }
        let lock = match (writable, held_lock) {
            (true, Some(l)) => Some(l),
            (true, None) => Some(take_lock(&dir)?),
            (false, _) => None,
        };
        let key = load_or_create_identity(&dir, writable)?;
        let index_dir = dir.join("index");
        let index =
            Index::open(&index_dir, writable, options.index_map_size).map_err(|e| match e {
                StoreError::Index {
                    source: heed::Error::EnvAlreadyOpened,
                    ..
                } => StoreError::Locked {
                    path: dir.clone(),
                    holder: "another handle in this process".into(),
                },
                e => e,
            })?;
        let header = {
            let txn = index.read_txn()?;
            index.header(&txn)?
        };
        let (store_id, page_size, segment_pages) = match header {
            Some((_, id, ps, sp)) => {
                if let Some(want) = options.page_size.filter(|w| *w != ps) {
                    return Err(StoreError::InvalidArgument(format!(
                        "the store was created with {ps}-byte pages, not {want}"
                    )));
                }
                if let Some(want) = options.segment_pages.filter(|w| *w != sp) {
                    return Err(StoreError::InvalidArgument(format!(
                        "the store was created with {sp} pages per segment, not {want}"
                    )));
                }
                check_geometry(ps, sp)
                    .map_err(|_| corrupt(index.data_file(), 0, "impossible page geometry"))?;
                (id, ps, sp)
            }
            None if writable => {
                // A new index: for a new store, or beside existing segments
                // (a lost or set-aside index), whose id and geometry it adopts;
                // recovery then replays every page.
                let (ps, sp, id) = match read_segment_zero(&dir)? {
                    Some((ps, sp, id)) => {
                        let differs = options.page_size.is_some_and(|w| w != ps)
                            || options.segment_pages.is_some_and(|w| w != sp);
                        if differs {
                            return Err(StoreError::InvalidArgument(format!(
                                "the store's segments have {ps}-byte pages, {sp} per segment"
                            )));
                        }
                        (ps, sp, id)
                    }
                    None => {
                        let mut id = [0u8; 16];
                        getrandom::fill(&mut id).map_err(|e| StoreError::Io {
                            path: dir.clone(),
                            source: std::io::Error::other(e.to_string()),
                        })?;
                        let ps = options.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
                        let sp = options.segment_pages.unwrap_or(DEFAULT_SEGMENT_PAGES);
                        (ps, sp, id)
                    }
                };
                check_geometry(ps, sp)?;
                let mut txn = index.write_txn()?;
                index.put_header(&mut txn, &id, ps, sp)?;
                index.commit(txn)?;
                index.force_sync()?;
                (id, ps, sp)
            }
            None => {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    "the index has no header: not a Xaeroflux store",
                ));
            }
        };
        let seg_dir = dir.join("segments");
        if writable {
            std::fs::create_dir_all(&seg_dir).map_err(io_err(&seg_dir))?;
        }
        let segments = Segments::new(seg_dir, page_size as usize, segment_pages, store_id);
        let author = key.verifying_key().to_bytes();
        let shared = Arc::new(Shared {
            node_memo: Default::default(),
            dir: dir.clone(),
            index,
            segments,
            key,
            author,
        });
        let mut recovered = 0;
        let mut commits = None;
        let writer = if writable {
            let (notify, observable) = Subject::<Commit>::builder()
                .name("commits")
                .capacity(COMMIT_QUEUE)
                .overflow(Overflow::DropNewest)
                .try_build()
                .map_err(io_err(&dir))?;
            commits = Some(observable);
            let mut w = Writer::new(
                shared.clone(),
                options.durability,
                options.writer_log_cache,
                Some(notify),
            )?;
            recovered = w.recover()?;
            let (tx, rx) = bounded(WRITER_QUEUE);
            let thread = std::thread::Builder::new()
                .name("xaeroflux-writer".into())
                .spawn(move || w.run(rx))
                .map_err(io_err(&dir))?;
            Some(WriterHandle { tx, thread })
        } else {
            None
        };
        Ok(Self {
            shared,
            writer,
            commits,
            _lock: lock,
            read_only: !writable,
            recovered,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The store's author key (its identity's public key).
    pub fn author(&self) -> [u8; 32] {
        self.shared.author
    }

    /// The store's own log in a topic.
    pub fn own_log(&self, topic: &Topic) -> LogId {
        LogId {
            author: self.shared.author,
            topic: topic.id(),
        }
    }

    /// The C2SP verifier key for the checkpoints of the store's own log in a topic.
    pub fn verifier_key(&self, topic: &TopicId) -> String {
        let log = LogId {
            author: self.shared.author,
            topic: *topic,
        };
        verifier_key_string(&log.origin(), &self.shared.author)
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Events that recovery found on disk beyond the index at open.
    pub fn recovered_events(&self) -> u64 {
        self.recovered
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.shared.segments.page_size()
    }

    /// Largest payload a plain append takes.
    pub fn max_payload_len(&self) -> usize {
        self.shared.max_event_len() - crate::event::EVENT_HEADER_LEN
    }

    fn sender(&self) -> Result<&Sender<Request>> {
        match &self.writer {
            Some(w) => Ok(&w.tx),
            None => Err(StoreError::ReadOnly),
        }
    }

    fn send_append(&self, events: Vec<NewEvent>) -> Result<Receiver<Result<Committed>>> {
        self.shared.check_events(&events)?;
        let (reply, rx) = bounded(1);
        self.sender()?
            .send(Request::Append { events, reply })
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))?;
        Ok(rx)
    }

    /// Appends one event to the store's own log in its topic; returns once
    /// it is durable (or, in the fast mode, written and indexed).
    pub fn append(&self, event: NewEvent) -> Result<Receipt> {
        self.submit(event)?.wait()
    }

    /// Hands an event to the writer and returns at once; `wait` on the
    /// result tells when it is committed. Events submitted together are
    /// group-committed.
    pub fn submit(&self, event: NewEvent) -> Result<PendingAppend> {
        Ok(PendingAppend {
            rx: self.send_append(vec![event])?,
        })
    }

    /// Appends many events in one group commit.
    pub fn append_batch(&self, events: Vec<NewEvent>) -> Result<BatchReceipt> {
        if events.is_empty() {
            return Ok(BatchReceipt {
                events: Vec::new(),
                heads: Vec::new(),
            });
        }
        let rx = self.send_append(events)?;
        let c = rx
            .recv()
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))??;
        Ok(BatchReceipt {
            events: c
                .events
                .into_iter()
                .map(|(log, seq, leaf_hash)| EventReceipt {
                    log,
                    seq,
                    leaf_hash,
                })
                .collect(),
            heads: c
                .heads
                .into_iter()
                .map(|(log, size, root)| LogHead { log, size, root })
                .collect(),
        })
    }

    /// Appends a page of another author's log, received from a peer, once it
    /// is verified: the checkpoint is signed by the log's author for this
    /// log; the events start at or before the log's current size with
    /// consecutive seqs and fit a page; and the consistency proof holds
    /// from the tree with these events to the checkpoint's root. Events
    /// the log already holds (another session imported them first) are
    /// skipped: the rest must extend the held tree to the signed root.
    /// Otherwise it returns
    /// [`StoreError::Rejected`] and nothing changes. The checkpoint is kept
    /// (the newest per log) once the log reaches its size, and subscribers
    /// see the events like local ones.
    pub fn import(&self, page: ImportPage) -> Result<LogHead> {
        self.import_page(page).map(|(head, _)| head)
    }

    /// [`Store::import`], also returning how many events were new.
    pub fn import_page(&self, page: ImportPage) -> Result<(LogHead, u64)> {
        let reject = |why: String| StoreError::Rejected(format!("log {}: {why}", page.log));
        let verifier = NoteVerifier::new(&page.log.origin(), &page.log.author)
            .map_err(|e| reject(format!("author key: {e}")))?;
        let checkpoint = verifier
            .verify_checkpoint(&page.note)
            .map_err(|e| reject(format!("checkpoint: {e}")))?;
        if checkpoint.origin != page.log.origin() {
            return Err(reject("the checkpoint names another log".into()));
        }
        let (reply, rx) = bounded(1);
        let log = page.log;
        self.sender()?
            .send(Request::Import {
                page: VerifiedPage {
                    log,
                    topic_name: page.topic_name,
                    first_seq: page.first_seq,
                    events: page.events,
                    checkpoint,
                    note: page.note,
                    proof: page.proof,
                },
                reply,
            })
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))?;
        let c = rx
            .recv()
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))??;
        let (log, size, root) = c
            .heads
            .first()
            .copied()
            .ok_or_else(|| StoreError::UnknownLog(log.to_string()))?;
        Ok((LogHead { log, size, root }, c.events.len() as u64))
    }

    /// Keeps a fork proof for `log`: `theirs`, a checkpoint a peer
    /// presented, signed by the log's author, that disagrees with what this
    /// store holds. `their_side`, when the peer gave it, is its tree at
    /// size `at` (its root and the proof from there to `theirs`); without
    /// it `at` is the size of `theirs` when that is not longer than ours.
    /// Refused unless `theirs` verifies under the author's key and what is
    /// kept proves the fork (except for a longer head of the store's own
    /// log, kept as two heads). Returns the proof and whether it was new.
    pub fn record_fork(
        &self,
        log: &LogId,
        theirs: &str,
        their_side: Option<(u64, ForkSide)>,
    ) -> Result<(ForkProof, bool)> {
        let v = NoteVerifier::new(&log.origin(), &log.author)?;
        let their_cp = v
            .verify_checkpoint(theirs)
            .map_err(|e| StoreError::Rejected(format!("log {log}: their checkpoint: {e}")))?;
        let ours = self.checkpoint(log)?;
        let (at, their_side) = match their_side {
            Some((at, side)) => (at, Some(side)),
            None if their_cp.size <= ours.checkpoint.size => (
                their_cp.size,
                Some(ForkSide {
                    root: their_cp.root,
                    proof: Vec::new(),
                }),
            ),
            None => (ours.checkpoint.size, None),
        };
        if at > ours.checkpoint.size {
            return Err(StoreError::Rejected(format!(
                "log {log}: no fork evidence at size {at}, past ours"
            )));
        }
        let our_side = ForkSide {
            root: self.root_at(log, at)?,
            proof: self.prove_consistency(log, at, ours.checkpoint.size)?.path,
        };
        let proof = ForkProof {
            log: *log,
            ours: ours.note,
            theirs: theirs.to_string(),
            at,
            our_side,
            their_side,
        };
        let proven = proof.verify()?;
        if !proven && (proof.their_side.is_some() || log.author != self.shared.author) {
            return Err(StoreError::Rejected(format!(
                "log {log}: their checkpoint does not prove a fork"
            )));
        }
        let new = crate::fork::save(&self.shared.dir, &proof)?;
        Ok((proof, new))
    }

    /// The fork proofs this store keeps.
    pub fn forks(&self) -> Result<Vec<ForkProof>> {
        crate::fork::load_all(&self.shared.dir)
    }

    /// Makes everything appended so far durable (useful in the fast mode).
    pub fn sync(&self) -> Result<()> {
        let (reply, rx) = bounded(1);
        self.sender()?
            .send(Request::Sync { reply })
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))?;
        rx.recv()
            .map_err(|_| StoreError::WriterStopped("the writer thread has gone".into()))?
    }

    /// Stops the writer after it has committed everything queued, and syncs.
    pub fn close(mut self) -> Result<()> {
        self.stop_writer()
    }

    fn stop_writer(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            drop(w.tx);
            w.thread
                .join()
                .map_err(|_| StoreError::WriterStopped("the writer thread panicked".into()))?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- reading

    fn txn(&self) -> Result<RoTxn<'_, heed::WithoutTls>> {
        self.shared.index.read_txn()
    }

    fn record(&self, txn: &RoTxn, log: &LogId) -> Result<LogRecord> {
        self.shared
            .index
            .log_record(txn, log)?
            .ok_or_else(|| StoreError::UnknownLog(log.to_string()))
    }

    fn nodes<'a>(
        &'a self,
        txn: &'a RoTxn<'a>,
        log: &LogId,
        rec: &LogRecord,
        size: u64,
    ) -> IndexNodes<'a> {
        IndexNodes::new(
            &self.shared.index,
            txn,
            &self.shared.segments,
            rec.log_no,
            log.to_bytes(),
            rec.size,
            size,
        )
        .with_memo(&self.shared.node_memo)
    }

    /// Every log the store holds, with its size and root.
    pub fn logs(&self) -> Result<Vec<LogInfo>> {
        let txn = self.txn()?;
        let mut out = Vec::new();
        for (log, rec) in self.shared.index.logs(&txn)? {
            let root = root_at(&self.nodes(&txn, &log, &rec, rec.size), rec.size)?;
            out.push(LogInfo {
                log,
                topic_name: self.shared.index.topic_name(&txn, &log.topic)?,
                size: rec.size,
                root,
            });
        }
        Ok(out)
    }

    /// The logs of one topic (every author's), with their sizes and roots.
    pub fn topic_logs(&self, topic: &TopicId) -> Result<Vec<LogInfo>> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let name = index.topic_name(&txn, topic)?;
        let mut out = Vec::new();
        for log_no in index.topic_logs(&txn, topic)? {
            let log = index.log_id(&txn, log_no)?;
            let rec = self.record(&txn, &log)?;
            out.push(LogInfo {
                log,
                topic_name: name.clone(),
                size: rec.size,
                root: root_at(&self.nodes(&txn, &log, &rec, rec.size), rec.size)?,
            });
        }
        Ok(out)
    }

    /// One log's size and root.
    pub fn log_info(&self, log: &LogId) -> Result<LogInfo> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        Ok(LogInfo {
            log: *log,
            topic_name: self.shared.index.topic_name(&txn, &log.topic)?,
            size: rec.size,
            root: root_at(&self.nodes(&txn, log, &rec, rec.size), rec.size)?,
        })
    }

    /// Number of events in a log (0 for a log the store does not hold).
    pub fn log_size(&self, log: &LogId) -> Result<u64> {
        let txn = self.txn()?;
        Ok(self
            .shared
            .index
            .log_record(&txn, log)?
            .map_or(0, |r| r.size))
    }

    /// The root of a log at its current size.
    pub fn mmr_root(&self, log: &LogId) -> Result<Hash> {
        Ok(self.log_info(log)?.root)
    }

    /// The root of a log at an earlier size.
    pub fn root_at(&self, log: &LogId, size: u64) -> Result<Hash> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.check_size(log, &rec, size)?;
        root_at(&self.nodes(&txn, log, &rec, size), size)
    }

    fn check_size(&self, log: &LogId, rec: &LogRecord, size: u64) -> Result<()> {
        if size > rec.size {
            return Err(StoreError::SizeOutOfRange {
                log: log.to_string(),
                requested: size,
                size: rec.size,
            });
        }
        Ok(())
    }

    /// An RFC 9162 inclusion proof of event `seq` in the log at `size`.
    pub fn prove_inclusion(&self, log: &LogId, seq: u64, size: u64) -> Result<InclusionProof> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.check_size(log, &rec, size)?;
        if seq >= size {
            return Err(StoreError::SeqOutOfRange {
                log: log.to_string(),
                seq,
                size,
            });
        }
        let nodes = self.nodes(&txn, log, &rec, size);
        use xaeroflux_merkle::NodeSource;
        Ok(InclusionProof {
            log: *log,
            index: seq,
            size,
            leaf_hash: nodes.node(0, seq)?,
            root: root_at(&nodes, size)?,
            path: inclusion_path(&nodes, seq, size)?,
        })
    }

    /// An RFC 9162 consistency proof between two sizes of a log.
    pub fn prove_consistency(
        &self,
        log: &LogId,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        self.check_size(log, &rec, new_size)?;
        if old_size > new_size {
            return Err(StoreError::InvalidArgument(format!(
                "old size {old_size} is larger than new size {new_size}"
            )));
        }
        let nodes = self.nodes(&txn, log, &rec, new_size);
        Ok(ConsistencyProof {
            log: *log,
            old_size,
            new_size,
            old_root: root_at(&nodes, old_size)?,
            new_root: root_at(&nodes, new_size)?,
            path: consistency_proof(&nodes, old_size, new_size)?,
        })
    }

    /// The latest checkpoint of a log: signed now for the store's own logs
    /// (and kept in the index), the stored one for others'.
    pub fn checkpoint(&self, log: &LogId) -> Result<SignedCheckpoint> {
        let (rec, stored) = {
            let txn = self.txn()?;
            let rec = self.record(&txn, log)?;
            (rec, self.shared.index.checkpoint(&txn, rec.log_no)?)
        };
        if log.author != self.shared.author {
            let note = stored.ok_or_else(|| StoreError::NoCheckpoint(log.to_string()))?;
            let v = NoteVerifier::new(&log.origin(), &log.author)?;
            let checkpoint = v.verify_checkpoint(&note)?;
            return Ok(SignedCheckpoint { checkpoint, note });
        }
        let root = self.root_at(log, rec.size)?;
        let cp = Checkpoint {
            origin: log.origin(),
            size: rec.size,
            root,
        };
        let signed = sign_checkpoint(&cp, &self.shared.key);
        if stored.as_deref() != Some(signed.note.as_str())
            && let Some(tx) = self.writer.as_ref().map(|w| &w.tx)
        {
            let (reply, rx) = bounded(1);
            if tx
                .send(Request::PutCheckpoint {
                    log: *log,
                    size: rec.size,
                    note: signed.note.clone(),
                    reply,
                })
                .is_ok()
            {
                rx.recv().map_err(|_| {
                    StoreError::WriterStopped("the writer thread has gone".into())
                })??;
            }
        }
        Ok(signed)
    }

    /// Iterates every event of the store, page by page in the order pages
    /// were written; the views borrow the mapped segments (no copy).
    pub fn iter_events(&self) -> Result<EventIter<'_>> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let mut logs: HashMap<u32, [u8; 64]> = HashMap::new();
        for (id, rec) in index.logs(&txn)? {
            logs.insert(rec.log_no, id.to_bytes());
        }
        let mut pages = Vec::new();
        for (loc, e) in index.pages(&txn)? {
            let log = *logs.get(&e.log_no).ok_or_else(|| {
                corrupt(
                    index.data_file(),
                    0,
                    format!("page {loc:?} names unknown log {}", e.log_no),
                )
            })?;
            pages.push((loc, e, log));
        }
        Ok(EventIter(PageWalk::new(&self.shared.segments, pages, 0)))
    }

    /// Iterates one log from `from_seq` on, as of now.
    pub fn iter_log(&self, log: &LogId, from_seq: u64) -> Result<LogIter<'_>> {
        self.iter_log_range(log, from_seq, u64::MAX)
    }

    /// Iterates one log from `from_seq` on, looking up only the pages that
    /// hold events before `end` (the last may hold a few more): for reading
    /// a slice of a long log without listing all its later pages.
    pub fn iter_log_range(&self, log: &LogId, from_seq: u64, end: u64) -> Result<LogIter<'_>> {
        let txn = self.txn()?;
        let rec = self.record(&txn, log)?;
        log_iter_in(&self.shared, &txn, log, &rec, from_seq, end)
    }

    fn log_iter(
        &self,
        txn: &RoTxn,
        log: &LogId,
        rec: &LogRecord,
        from_seq: u64,
    ) -> Result<LogIter<'_>> {
        log_iter_in(&self.shared, txn, log, rec, from_seq, rec.size)
    }

    /// Subscribes to the events `filter` selects: each log's history from
    /// `since`, then its events as they are committed (local appends and,
    /// once sync lands, replicated ones), with no gap and no duplicate. On a
    /// read-only store the writer is in another process: the subscription
    /// looks for its commits every 50 ms.
    ///
    /// ```
    /// # use xaeroflux_store::{Filter, NewEvent, Store, StoreOptions, Topic};
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path(), StoreOptions::default())?;
    /// let chat = Topic::new("chat")?;
    /// store.append(NewEvent::application(&chat, b"before".to_vec()))?;
    /// let mut sub = store.subscribe(Filter::topic(&chat), 0)?;
    /// store.append(NewEvent::application(&chat, b"after".to_vec()))?;
    /// let a = sub.recv_timeout(Duration::from_secs(10))?.unwrap();
    /// let b = sub.recv_timeout(Duration::from_secs(10))?.unwrap();
    /// assert_eq!((a.seq, &a.payload[..]), (0, &b"before"[..]));
    /// assert_eq!((b.seq, &b.payload[..]), (1, &b"after"[..]));
    /// # Ok::<(), xaeroflux_store::StoreError>(())
    /// ```
    pub fn subscribe(&self, filter: Filter, since: impl Into<Since>) -> Result<Subscription> {
        Subscription::new(
            self.shared.clone(),
            self.commits.as_ref(),
            filter,
            since.into(),
        )
    }

    /// The raw commit announcements: one [`Commit`] (log, new size) per log
    /// per group commit, for building custom views. `None` on a read-only
    /// store. Most applications want [`Store::subscribe`].
    pub fn commits(&self) -> Option<Observable<Commit>> {
        self.commits.clone()
    }

    /// Iterates the topic view: every log of the topic merged by
    /// (timestamp, author, seq), the same order on every replica.
    pub fn iter_topic(&self, topic: &Topic) -> Result<TopicIter<'_>> {
        self.iter_topic_id(&topic.id())
    }

    /// The topic view by topic id.
    pub fn iter_topic_id(&self, topic: &TopicId) -> Result<TopicIter<'_>> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let mut iters = Vec::new();
        for log_no in index.topic_logs(&txn, topic)? {
            let log = index.log_id(&txn, log_no)?;
            let rec = self.record(&txn, &log)?;
            iters.push(self.log_iter(&txn, &log, &rec, 0)?);
        }
        TopicIter::new(iters)
    }

    /// The topic name of a topic id, when the store knows it.
    pub fn topic_name(&self, topic: &TopicId) -> Result<Option<String>> {
        let txn = self.txn()?;
        self.shared.index.topic_name(&txn, topic)
    }

    /// Sizes of the store.
    pub fn stat(&self) -> Result<Stats> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let mut s = Stats {
            page_size: self.shared.segments.page_size() as u32,
            segment_pages: self.shared.segments.segment_pages(),
            index_bytes: index.disk_size(),
            ..Stats::default()
        };
        for (_, rec) in index.logs(&txn)? {
            s.logs += 1;
            s.events += rec.size;
        }
        for (_, e) in index.pages(&txn)? {
            s.pages += 1;
            s.sealed_pages += e.sealed as u64;
        }
        let next = index.next_page(&txn)?;
        let segs = &self.shared.segments;
        for seg in 0..=next.segment {
            if let Ok(m) = std::fs::metadata(segs.path(seg)) {
                s.segments += 1;
                s.segment_bytes += m.len();
            }
        }
        Ok(s)
    }

    /// Checks everything: every page header and checksum, every record, the
    /// page-tree root of every sealed page, every index chunk against the
    /// tree recomputed from the events, every log root, and the signature
    /// and root of every stored checkpoint.
    pub fn verify(&self) -> Result<VerifyReport> {
        let txn = self.txn()?;
        let mut report = VerifyReport::default();
        if let Err(e) = self.shared.index.check_structure(&txn) {
            // LMDB would read the damaged pages as they are: stop here.
            report.problems.push(e);
            return Ok(report);
        }
        let logs = self.shared.index.logs(&txn)?;
        if let Err(e) = self.shared.index.check_cross_tables(&txn, &logs) {
            report.problems.push(e);
        }
        for (log, rec) in logs {
            report.logs += 1;
            if let Err(e) = self.verify_log(&txn, &log, &rec, &mut report) {
                report.problems.push(e);
            }
        }
        Ok(report)
    }

    fn verify_log(
        &self,
        txn: &RoTxn,
        log: &LogId,
        rec: &LogRecord,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let index = &self.shared.index;
        let segs = &self.shared.segments;
        let mut frontier = Frontier::new();
        let mut chunks = ChunkAssembler::default();
        let mut done = Vec::new();
        let mut expect = 0u64;
        let log_bytes = log.to_bytes();
        for (first, loc) in index.log_pages(txn, rec.log_no, 0, u64::MAX)? {
            let e: PageEntry = index.page_entry(txn, loc)?;
            if first != expect || e.first_seq != first || e.log_no != rec.log_no {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    format!("log {log}: page table has a gap at seq {expect}"),
                ));
            }
            let page = open_page(segs, loc, &log_bytes, first, e.count, e.sealed)?;
            report.pages += 1;
            let mut leaves = Vec::with_capacity(e.count as usize);
            for ev in page.events(segs) {
                let leaf = ev?.leaf_hash();
                leaves.push(leaf);
                frontier.push_with(leaf, |l, i, h| chunks.on_node(l, i, h, &mut done));
                report.events += 1;
            }
            if e.sealed {
                if mth(&leaves) != page.header.page_root {
                    return Err(corrupt(
                        segs.path(loc.segment),
                        segs.page_offset(loc) + 104,
                        "page-tree root does not match the page's events",
                    ));
                }
                report.sealed_pages += 1;
            }
            for c in done.drain(..) {
                let stored = index.chunk(txn, rec.log_no, c.tier, c.chunk)?;
                let same = stored
                    .is_some_and(|s| s.chunks_exact(32).zip(c.nodes.iter()).all(|(a, b)| a == b));
                if !same {
                    return Err(corrupt(
                        index.data_file(),
                        0,
                        format!(
                            "log {log}: index chunk {} of tier {} differs from the events",
                            c.chunk, c.tier
                        ),
                    ));
                }
                report.chunks += 1;
            }
            expect = first + e.count as u64;
        }
        if expect != rec.size {
            return Err(corrupt(
                index.data_file(),
                0,
                format!(
                    "log {log}: pages hold {expect} events, the index says {}",
                    rec.size
                ),
            ));
        }
        let nodes = self.nodes(txn, log, rec, rec.size);
        if root_at(&nodes, rec.size)? != frontier.root() {
            return Err(corrupt(
                index.data_file(),
                0,
                format!("log {log}: index root differs from the events"),
            ));
        }
        report.roots += 1;
        if let Some(note) = index.checkpoint(txn, rec.log_no)? {
            let v = NoteVerifier::new(&log.origin(), &log.author)?;
            let cp = v.verify_checkpoint(&note).map_err(|e| {
                corrupt(
                    index.data_file(),
                    0,
                    format!("log {log}: stored checkpoint: {e}"),
                )
            })?;
            if cp.size > rec.size || root_at(&nodes, cp.size)? != cp.root {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    format!(
                        "log {log}: stored checkpoint at size {} does not match the log",
                        cp.size
                    ),
                ));
            }
            report.checkpoints += 1;
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.stop_writer();
    }
}

/// Walks pages in order and yields their events from `skip_to` on; the
/// first damaged page or record ends the walk with its error.
struct PageWalk<'a> {
    segments: &'a Segments,
    pages: std::vec::IntoIter<(PageLoc, PageEntry, [u8; 64])>,
    current: Option<PageEvents<'a>>,
    skip_to: u64,
}

impl<'a> PageWalk<'a> {
    fn new(
        segments: &'a Segments,
        pages: Vec<(PageLoc, PageEntry, [u8; 64])>,
        skip_to: u64,
    ) -> Self {
        Self {
            segments,
            pages: pages.into_iter(),
            current: None,
            skip_to,
        }
    }

    fn stop(&mut self, err: StoreError) -> Option<Result<EventRef<'a>>> {
        self.pages = Vec::new().into_iter();
        self.current = None;
        Some(Err(err))
    }
}

impl<'a> Iterator for PageWalk<'a> {
    type Item = Result<EventRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(cur) = self.current.as_mut() {
                match cur.next() {
                    Some(Ok(ev)) if ev.seq() < self.skip_to => continue,
                    Some(Err(e)) => return self.stop(e),
                    Some(ok) => return Some(ok),
                    None => self.current = None,
                }
            }
            let (loc, e, log) = self.pages.next()?;
            match open_page(self.segments, loc, &log, e.first_seq, e.count, e.sealed) {
                Ok(p) => self.current = Some(p.events(self.segments)),
                Err(err) => return self.stop(err),
            }
        }
    }
}

/// Iterates one log from `from_seq` on, over the pages that hold events
/// before `end` (at most the size in `rec`; the last page may run past it).
pub(crate) fn log_iter_in<'a>(
    shared: &'a Shared,
    txn: &RoTxn,
    log: &LogId,
    rec: &LogRecord,
    from_seq: u64,
    end: u64,
) -> Result<LogIter<'a>> {
    let index = &shared.index;
    let end = end.min(rec.size);
    let mut pages = Vec::new();
    if from_seq < end {
        let start = index
            .page_of(txn, rec.log_no, from_seq)?
            .map_or(0, |(f, _)| f);
        for (first, loc) in index.log_pages(txn, rec.log_no, start, end)? {
            if first >= end {
                break;
            }
            let e = index.page_entry(txn, loc)?;
            if e.log_no != rec.log_no || e.first_seq != first || first + e.count as u64 > rec.size {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    "page table disagrees with the log table",
                ));
            }
            pages.push((loc, e, log.to_bytes()));
        }
    }
    Ok(LogIter(PageWalk::new(&shared.segments, pages, from_seq)))
}

/// Iterator over every event of the store.
pub struct EventIter<'a>(PageWalk<'a>);

impl<'a> Iterator for EventIter<'a> {
    type Item = Result<EventRef<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// Iterator over one log.
pub struct LogIter<'a>(PageWalk<'a>);

impl<'a> Iterator for LogIter<'a> {
    type Item = Result<EventRef<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// Iterator over a topic view.
pub struct TopicIter<'a> {
    iters: Vec<LogIter<'a>>,
    heads: BinaryHeap<Reverse<ViewKey>>,
    peeked: Vec<Option<EventRef<'a>>>,
    failed: Option<StoreError>,
}

impl<'a> TopicIter<'a> {
    fn new(mut iters: Vec<LogIter<'a>>) -> Result<Self> {
        let mut heads = BinaryHeap::new();
        let mut peeked = Vec::with_capacity(iters.len());
        for (i, it) in iters.iter_mut().enumerate() {
            match it.next() {
                Some(Ok(ev)) => {
                    heads.push(Reverse(key(&ev, i)));
                    peeked.push(Some(ev));
                }
                Some(Err(e)) => return Err(e),
                None => peeked.push(None),
            }
        }
        Ok(Self {
            iters,
            heads,
            peeked,
            failed: None,
        })
    }
}

/// Topic-view order: timestamp, author, seq (and which log, to find it again).
type ViewKey = (u64, [u8; 32], u64, usize);

fn key(ev: &EventRef<'_>, i: usize) -> ViewKey {
    let mut author = [0u8; 32];
    author.copy_from_slice(ev.author());
    (ev.timestamp_ms(), author, ev.seq(), i)
}

impl<'a> Iterator for TopicIter<'a> {
    type Item = Result<EventRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            self.heads.clear();
            return Some(Err(e));
        }
        let Reverse((_, _, _, i)) = self.heads.pop()?;
        let out = self.peeked.get_mut(i)?.take()?;
        match self.iters.get_mut(i)?.next() {
            Some(Ok(ev)) => {
                self.heads.push(Reverse(key(&ev, i)));
                self.peeked[i] = Some(ev);
            }
            Some(Err(e)) => self.failed = Some(e),
            None => {}
        }
        Some(Ok(out))
    }
}
