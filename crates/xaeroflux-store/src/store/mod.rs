//! The store: one directory of segments, an index and an identity, and the
//! handle applications and the sync layer use.
//!
//! - `open`: opening, creating and repairing (locks, identity, geometry);
//! - `write`: appends and their receipts, sync and close;
//! - `read`: iteration over events, logs and topic views, subscriptions;
//! - `prove`: roots, proofs and checkpoints;
//! - `verify`: the whole-store check and sizes;
//! - `replication`: what replication does to a store (imports, forks), on
//!   the [`Replication`] trait, out of applications' way;
//! - `sync_store`: the store as an XSP [`xaeroflux_sync::SyncStore`].

mod open;
mod prove;
mod range;
mod read;
mod replication;
mod sync_store;
mod verify;
mod write;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use heed::RoTxn;
use xaeroflux_merkle::verifier_key_string;
use xaeroflux_reactive::Observable;
use xaeroflux_types::{EVENT_HEADER_LEN, LogId, Topic, TopicId};

use crate::error::{Result, StoreError};
use crate::index::LogRecord;
use crate::shared::Shared;
use crate::subscribe::Commit;
use crate::tree::IndexNodes;
use crate::writer::Request;

pub(crate) use read::log_iter_in;
pub use read::{EventIter, LogIter, TopicIter};
pub use replication::{ImportDone, Replication};
pub use write::PendingAppend;

struct WriterHandle {
    tx: Sender<Request>,
    thread: JoinHandle<()>,
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
    restored: crate::receipts::CatalogRestore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Store {
    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Passes, or fails as a test armed `point` to (see
    /// [`crate::failpoints`]): for the layers above the store that write
    /// files of their own beside it (the blob store). Always passes in a
    /// build without the `failpoints` feature.
    pub fn failpoint(&self, point: crate::failpoints::Point) -> std::io::Result<()> {
        self.shared.fails.check(point)
    }

    /// The store's author key (its identity's public key).
    pub fn author(&self) -> [u8; 32] {
        self.shared.author
    }

    /// Signs `message` with the store's author key as a statement of kind
    /// `domain` (`xaeroflux_merkle::sign_statement`): the author vouching
    /// for something other than a checkpoint, such as the onion service
    /// that reaches it. Anyone checks it with
    /// `xaeroflux_merkle::verify_statement` and [`Store::author`].
    pub fn sign_statement(&self, domain: &str, message: &[u8]) -> [u8; 64] {
        xaeroflux_merkle::sign_statement(&self.shared.key, domain, message)
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

    /// What the writer's open took back from the catalog into the index
    /// (topic names, other authors' checkpoints).
    pub fn catalog_restored(&self) -> &crate::receipts::CatalogRestore {
        &self.restored
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.shared.segments.page_size()
    }

    /// Largest payload a plain append takes.
    pub fn max_payload_len(&self) -> usize {
        self.shared.max_event_len() - EVENT_HEADER_LEN
    }

    fn sender(&self) -> Result<&Sender<Request>> {
        match &self.writer {
            Some(w) => Ok(&w.tx),
            None if self.read_only => Err(StoreError::ReadOnly),
            None => Err(StoreError::Closed),
        }
    }

    /// Hands a request to the writer thread.
    fn request(&self, r: Request) -> Result<()> {
        self.sender()?.send(r).map_err(|_| StoreError::Closed)
    }

    fn txn(&self) -> Result<RoTxn<'_, heed::WithoutTls>> {
        self.shared.index_gate.wait();
        self.shared.index.read_txn()
    }

    fn record(&self, txn: &RoTxn, log: &LogId) -> Result<LogRecord> {
        self.shared
            .index
            .log_record(txn, log)?
            .ok_or_else(|| StoreError::UnknownLog(log.to_string()))
    }

    /// The log's tree at `size` (at most its size), read from the index and
    /// the pages.
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
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.stop_writer();
    }
}
