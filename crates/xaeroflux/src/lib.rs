//! Xaeroflux: an embedded, append-only event store for applications that
//! work with no server at all.
//!
//! Each author's events in a topic form a signed, append-only log whose
//! Merkle tree follows RFC 9162, so every event has an inclusion proof and
//! every two versions of a log a consistency proof. Open a [`Core`] like a
//! local database:
//!
//! ```
//! use xaeroflux::{Core, Topic, verify_consistency, verify_inclusion};
//!
//! # fn main() -> Result<(), xaeroflux::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::builder()
//!     .with_page_size(16 * 1024)
//!     .with_segment_pages(1024)
//!     .open(dir.path())?; // creates or reopens; makes an identity on first open
//! let first = core.append(core.new_event(b"Hello, Xaeroflux!"))?; // durable on return
//! for event in core.iter_events() {
//!     println!("{}", String::from_utf8_lossy(event?.payload()));
//! }
//! println!("root of my log: {:?}", core.mmr_root());
//!
//! let chat = Topic::new("chat")?;
//! core.append_batch(vec![core.new_event_in(&chat, b"one"), core.new_event_in(&chat, b"two")])?;
//! for ev in core.iter_topic(&chat) {
//!     println!("{}", String::from_utf8_lossy(ev?.payload()));
//! }
//! let log = core.own_log(&chat);
//! let root = core.root(&log)?;
//! let proof = core.prove_inclusion(&log, 0, 2)?;
//! verify_inclusion(&proof.leaf_hash, 0, 2, &proof.path, &root)?;
//! let c = core.prove_consistency(&log, 1, 2)?;
//! verify_consistency(1, 2, &c.old_root, &root, &c.path)?;
//! println!("{}", core.checkpoint(&log)?.note);
//! assert_eq!(first.root, core.mmr_root());
//! core.close()?;
//! # Ok(()) }
//! ```
//!
//! Subscribe to a topic: its history from a `seq`, then each event as it is
//! committed, with no gap and no duplicate, as a blocking iterator or
//! through an [`EventListener`] running on its own worker:
//!
//! ```
//! use std::time::Duration;
//! use xaeroflux::{Core, Event, EventListener, Filter, Since, Topic};
//!
//! # fn main() -> Result<(), xaeroflux::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::builder().open(dir.path())?;
//! let chat = Topic::new("chat")?;
//! core.append(core.new_event_in(&chat, b"first"))?;
//!
//! let mut sub = core.subscribe(Filter::topic(&chat), 0)?; // from seq 0
//! core.append(core.new_event_in(&chat, b"second"))?;
//! assert_eq!(sub.recv_timeout(Duration::from_secs(10))?.unwrap().payload, b"first");
//! assert_eq!(sub.recv_timeout(Duration::from_secs(10))?.unwrap().payload, b"second");
//!
//! let printer = EventListener::new(
//!     "printer",
//!     |ev: Event| println!("{}: {}", ev.seq, String::from_utf8_lossy(&ev.payload)),
//!     1024, // inbox bound per priority class
//!     1,    // one worker: strict order
//! );
//! let _forwarding = core.subscribe(Filter::topic(&chat), Since::Now)?.forward_to(&printer)?;
//! core.append(core.new_event_in(&chat, b"third"))?;
//! assert!(printer.wait_until(|s| s.processed == 1, Duration::from_secs(10)));
//! # Ok(()) }
//! ```
//!
//! With the `serde` feature, the `json` module holds the JSON shapes of receipts,
//! logs, events, proofs and checkpoints that `xf --json` prints.
//!
//! The lower layers stay reachable for tools that need them, as modules:
//! [`store`], [`sync`], [`net`], [`merkle`], [`reactive`].
#![warn(missing_docs)]

mod builder;
mod core;
mod error;
mod events;
#[cfg(feature = "serde")]
pub mod json;
mod netslot;
mod private;
mod private_api;
mod private_blob;
mod reads;
pub mod typed;
mod typed_api;

pub use builder::{CoreBuilder, DEFAULT_TOPIC};
pub use core::Core;
pub use error::{Error, report};
pub use events::Events;
pub use private_api::{Member, Payload, PrivateTopicInfo, PublishedKey};
pub use reads::{ReadEvent, ReadEvents};
pub use rkyv;
pub use typed::{EventRefTyped, EventType, EventTyped, Typed, TypedError};
pub use typed_api::TypedEvents;
pub use xaeroflux_e2e as e2e;
pub use xaeroflux_e2e::{E2eError, MemberKey};

pub use xaeroflux_merkle as merkle;
pub use xaeroflux_merkle::{
    Checkpoint, Hash, MerkleError, NoteVerifier, SignedCheckpoint, verify_consistency,
    verify_inclusion,
};
pub use xaeroflux_net as net;
pub use xaeroflux_net::{
    Backend, Backends, BlobHash, BlobRef, BlobSource, Direction, NetError, NetMode, Peer,
    PullProgress, SYNC_TOPIC, SyncEvent, Traffic,
};
pub use xaeroflux_reactive as reactive;
pub use xaeroflux_reactive::{
    EventListener, Observable, Observer, Overflow, Prioritized, Priority, Subject,
    SubscriptionGuard,
};
pub use xaeroflux_store as store;
pub use xaeroflux_store::{
    BatchReceipt, ConsistencyProof, Durability, Event, EventKind, EventReceipt, EventRef, Filter,
    ForkProof, Forwarding, InclusionProof, InvalidInput, LogHead, LogId, LogInfo, NewEvent,
    PendingAppend, Progress, Receipt, Since, Stats, StoreError, Subscription, SubscriptionCloser,
    SubscriptionStats, Topic, TopicId, VerifyReport,
};
pub use xaeroflux_sync as sync;
pub use xaeroflux_sync::{Outcome, SyncError};
