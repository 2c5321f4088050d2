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
#![warn(missing_docs)]

mod error;
mod event;
mod fork;
mod format;
mod index;
mod lmdb_check;
mod reader;
mod segments;
mod shared;
mod store;
mod subscribe;
mod tree;
mod writer;

pub use error::{Result, StoreError};
pub use event::{
    EVENT_HEADER_LEN, EVENT_VERSION, Event, EventHeader, EventKind, EventRef, FLAG_ENCRYPTED,
    LogId, MAX_TOPIC_LEN, NewEvent, TOPIC_DOMAIN, Topic, TopicId, decode_event, encode_event,
};
pub use fork::{FORK_MAGIC, ForkProof, ForkSide};
pub use store::{
    BatchReceipt, ConsistencyProof, DEFAULT_PAGE_SIZE, DEFAULT_SEGMENT_PAGES, Durability,
    EventIter, EventReceipt, ImportPage, InclusionProof, LogHead, LogInfo, LogIter, PendingAppend,
    Receipt, Stats, Store, StoreOptions, TopicIter, VerifyReport,
};
pub use subscribe::{Commit, Filter, Forwarding, Since, Subscription, SubscriptionStats};
pub use xaeroflux_merkle as merkle;
pub use xaeroflux_reactive as reactive;
