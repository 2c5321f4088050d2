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
//! # fn main() -> Result<(), xaeroflux::StoreError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::builder()
//!     .with_page_size(16 * 1024)
//!     .with_segment_pages(1024)
//!     .open(dir.path())?; // creates or reopens; makes an identity on first open
//! let topic = Topic::new("chat")?;
//! let first = core.append(core.new_event(&topic, b"Hello, Xaeroflux!"))?; // durable on return
//! core.append_batch(vec![core.new_event(&topic, b"two"), core.new_event(&topic, b"three")])?;
//!
//! for ev in core.iter_topic(&topic)? {
//!     println!("{}", String::from_utf8_lossy(ev?.payload()));
//! }
//! let log = first.log;
//! let root = core.mmr_root(&log)?;
//! let proof = core.prove_inclusion(&log, 0, 3)?;
//! verify_inclusion(&first.leaf_hash, 0, 3, &proof.path, &root)?;
//! let c = core.prove_consistency(&log, 1, 3)?;
//! verify_consistency(1, 3, &first.root, &root, &c.path)?;
//! println!("{}", core.checkpoint(&log)?.note);
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
//! # fn main() -> Result<(), xaeroflux::StoreError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::builder().open(dir.path())?;
//! let chat = Topic::new("chat")?;
//! core.append(core.new_event(&chat, b"first"))?;
//!
//! let mut sub = core.subscribe(Filter::topic(&chat), 0)?; // from seq 0
//! core.append(core.new_event(&chat, b"second"))?;
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
//! core.append(core.new_event(&chat, b"third"))?;
//! assert!(printer.wait_until(|s| s.processed == 1, Duration::from_secs(10)));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

use std::ops::Deref;
use std::path::Path;

pub use xaeroflux_merkle as merkle;
pub use xaeroflux_merkle::{
    Checkpoint, Hash, MerkleError, NoteVerifier, SignedCheckpoint, verify_consistency,
    verify_inclusion,
};
pub use xaeroflux_reactive as reactive;
pub use xaeroflux_reactive::{
    EventListener, Observable, Observer, Overflow, Prioritized, Priority, Subject,
    SubscriptionGuard,
};
pub use xaeroflux_store::{
    BatchReceipt, Commit, ConsistencyProof, Durability, Event, EventIter, EventKind, EventReceipt,
    EventRef, Filter, Forwarding, InclusionProof, LogHead, LogId, LogInfo, LogIter, NewEvent,
    PendingAppend, Receipt, Since, Stats, Store, StoreError, StoreOptions, Subscription,
    SubscriptionStats, Topic, TopicId, TopicIter, VerifyReport,
};
pub use xaeroflux_sync as sync;

/// The handle an application holds: the store, and (as they land) its
/// streams and sync backends. It dereferences to [`Store`] for reading,
/// appending and proving.
#[derive(Debug)]
pub struct Core {
    store: Store,
}

/// Configures and opens a [`Core`].
#[derive(Debug, Clone, Default)]
pub struct CoreBuilder {
    options: StoreOptions,
}

impl CoreBuilder {
    /// Page size of a new store (default 16 KiB; a power of two).
    pub fn with_page_size(mut self, bytes: u32) -> Self {
        self.options.page_size = Some(bytes);
        self
    }

    /// Pages per segment file of a new store (default 1024).
    pub fn with_segment_pages(mut self, pages: u32) -> Self {
        self.options.segment_pages = Some(pages);
        self
    }

    /// When appends return: durable (the default) or fast.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    /// Opens for reading only, beside a writer in another process.
    pub fn read_only(mut self) -> Self {
        self.options.read_only = true;
        self
    }

    /// Opens (or creates) the store in `dir`.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Core, StoreError> {
        Ok(Core {
            store: Store::open(dir, self.options)?,
        })
    }
}

impl Core {
    /// A builder with the defaults.
    pub fn builder() -> CoreBuilder {
        CoreBuilder::default()
    }

    /// An `Application` event for the store's own log in `topic`.
    pub fn new_event(&self, topic: &Topic, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::application(topic, payload.as_ref().to_vec())
    }

    /// An `Identity` event.
    pub fn new_identity_event(&self, topic: &Topic, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::identity(topic, payload.as_ref().to_vec())
    }

    /// A `System` event.
    pub fn new_system_event(&self, topic: &Topic, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::system(topic, payload.as_ref().to_vec())
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Commits what is queued, syncs and closes. Dropping a `Core` does the
    /// same, best effort.
    pub fn close(self) -> Result<(), StoreError> {
        self.store.close()
    }
}

impl Deref for Core {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}
