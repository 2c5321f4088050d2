//! Storage for Xaeroflux: each author's events in a topic form an
//! append-only log, stored in fixed-size pages of memory-mapped segment
//! files, indexed in LMDB, with an RFC 9162 Merkle tree kept incrementally so
//! every event has an inclusion proof and every two sizes of a log a
//! consistency proof.
//!
//! ```
//! use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};
//!
//! # fn main() -> Result<(), xaeroflux_store::StoreError> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreOptions::default())?;
//! let chat = Topic::new("chat")?;
//! let r = store.append(NewEvent::application(&chat, b"hello".to_vec()))?;
//! assert_eq!((r.seq, r.size), (0, 1));
//! let proof = store.prove_inclusion(&r.log, 0, 1)?;
//! proof.verify()?;
//! for ev in store.iter_log(&r.log, 0)? {
//!     assert_eq!(ev?.payload(), b"hello");
//! }
//! store.close()?;
//! # Ok(()) }
//! ```
//!
//! Where things live (see `docs/architecture.md`): `store` is the handle
//! (opening, writes, reads, proofs, verify, replication); `writer` the
//! write path (group commits, the flusher, recovery); `index` the LMDB
//! tables; `format` the byte layouts of the segment files; `reader` the
//! checked page reads; `tree` the MMR chunks; `subscribe` live
//! subscriptions; `fork` fork proof files.

mod catalog;
mod error;
pub mod failpoints;
mod fork;
mod format;
mod index;
mod lmdb_check;
mod options;
mod reader;
mod receipts;
mod seal;
mod segments;
mod shared;
mod store;
mod subscribe;
mod tree;
mod writer;

pub use error::{Result, StoreError};
pub use fork::{FORK_MAGIC, ForkProof, ForkSide};
pub use options::{Clock, DEFAULT_PAGE_SIZE, DEFAULT_SEGMENT_PAGES, Durability, StoreOptions};
pub use receipts::{
    BatchReceipt, CatalogRestore, ConsistencyProof, EventReceipt, InclusionProof, LogHead, LogInfo,
    Progress, Receipt, Stats, VerifyReport,
};
pub use seal::{SealPlace, Sealer};
pub use store::{EventIter, ImportDone, LogIter, PendingAppend, Replication, Store, TopicIter};
pub use subscribe::{
    Commit, Filter, Forwarding, Since, Subscription, SubscriptionCloser, SubscriptionStats,
};
pub use xaeroflux_merkle as merkle;
pub use xaeroflux_reactive as reactive;
pub use xaeroflux_types::{
    Corruption, EVENT_HEADER_LEN, EVENT_VERSION, Event, EventHeader, EventKind, EventRef,
    FLAG_ENCRYPTED, ImportPage, InvalidInput, IoError, LogId, MAX_TOPIC_LEN, NewEvent, Rejection,
    TOPIC_DOMAIN, Topic, TopicId, UnsupportedVersion, decode_event, encode_event, is_private_name,
};
