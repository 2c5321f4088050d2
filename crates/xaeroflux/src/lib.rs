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
//! # fn main() -> Result<(), xaeroflux::Error> {
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
use std::sync::Arc;
use std::time::Duration;

use xaeroflux_net::Net;

pub use xaeroflux_merkle as merkle;
pub use xaeroflux_merkle::{
    Checkpoint, Hash, MerkleError, NoteVerifier, SignedCheckpoint, verify_consistency,
    verify_inclusion,
};
pub use xaeroflux_net as net;
pub use xaeroflux_net::{
    Backends, BlobHash, BlobRef, BlobSource, Direction, NetConfig, NetError, NetMode, Peer,
    SYNC_TOPIC, SyncEvent,
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

/// Any error of the crates `Core` wires together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network layer refused or failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A sync session failed.
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    /// A proof or checkpoint did not verify.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// The handle an application holds: the store, and its sync backends when
/// they were asked for. It dereferences to [`Store`] for reading,
/// appending and proving.
///
/// ```
/// use xaeroflux::{Core, NetMode, Topic};
///
/// # fn main() -> Result<(), xaeroflux::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let core = Core::builder()
///     .with_sync_backends(&["iroh", "iroh-gossip", "iroh-blob"])?
///     .with_network(NetMode::local_only()) // tests and LAN: 127.0.0.1, no relays
///     .open(dir.path())?;
/// println!("give peers this ticket: {}", core.node_ticket()?);
/// let chat = Topic::new("chat")?;
/// core.join(&chat, &[] as &[&str])?; // peers as tickets or ID@IP:PORT
/// let (_receipt, blob) = core.append_blob(&chat, &b"a large payload"[..])?;
/// assert_eq!(core.read_blob(&blob.hash)?.as_deref(), Some(&b"a large payload"[..]));
/// assert!(Core::builder().with_sync_backends(&["carrier-pigeon"]).is_err());
/// core.close()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Core {
    store: Arc<Store>,
    net: Option<Net>,
}

/// Configures and opens a [`Core`].
#[derive(Debug, Clone, Default)]
pub struct CoreBuilder {
    options: StoreOptions,
    backends: Backends,
    mode: Option<NetMode>,
    sync_interval: Option<Duration>,
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

    /// Runs these sync backends: `"iroh"` (an endpoint accepting XSP),
    /// `"iroh-gossip"` (announcements of new checkpoints) and `"iroh-blob"`
    /// (large payloads). Any other name is an error that lists the valid
    /// ones.
    pub fn with_sync_backends<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, Error> {
        self.backends = Backends::parse(names)?;
        Ok(self)
    }

    /// How the endpoint meets the network (default: [`NetMode::Default`],
    /// relays and address lookup as iroh recommends).
    pub fn with_network(mut self, mode: NetMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// How often to sync with known peers besides what gossip triggers
    /// (default 30 s).
    pub fn with_sync_interval(mut self, every: Duration) -> Self {
        self.sync_interval = Some(every);
        self
    }

    /// Opens (or creates) the store in `dir`, and starts the sync backends.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Core, Error> {
        let store = Arc::new(Store::open(dir, self.options)?);
        let net = if self.backends.any() {
            let mut config = NetConfig::new(self.backends);
            if let Some(m) = self.mode {
                config = config.with_mode(m);
            }
            if let Some(i) = self.sync_interval {
                config = config.with_sync_interval(i);
            }
            Some(Net::start(store.clone(), config)?)
        } else {
            None
        };
        Ok(Core { store, net })
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

    /// The network layer, when a sync backend runs.
    pub fn net(&self) -> Option<&Net> {
        self.net.as_ref()
    }

    fn need_net(&self) -> Result<&Net, Error> {
        self.net.as_ref().ok_or_else(|| {
            NetError::BackendMissing("open the core with_sync_backends(&[\"iroh\", ...])".into())
                .into()
        })
    }

    /// This node's address as an iroh ticket, for peers to dial.
    pub fn node_ticket(&self) -> Result<String, Error> {
        Ok(self.need_net()?.ticket())
    }

    /// This node's endpoint id, stable across restarts.
    pub fn endpoint_id(&self) -> Result<String, Error> {
        Ok(self.need_net()?.endpoint_id())
    }

    /// Joins `topic` with `peers` (iroh tickets, `ID@IP:PORT`, or endpoint
    /// ids): from then on the topic's logs and the peers' converge in the
    /// background. Sync events go to the [`SYNC_TOPIC`] topic as `System`
    /// events.
    pub fn join<S: AsRef<str>>(&self, topic: &Topic, peers: &[S]) -> Result<(), Error> {
        let peers = peers
            .iter()
            .map(|p| p.as_ref().parse::<Peer>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.need_net()?.join(topic, &peers)?)
    }

    /// Stores a large payload in the blob store and appends an event that
    /// references it (BLAKE3 hash and size); peers fetch it, verified.
    pub fn append_blob<'a>(
        &self,
        topic: &Topic,
        source: impl Into<BlobSource<'a>>,
    ) -> Result<(Receipt, BlobRef), Error> {
        Ok(self.need_net()?.append_blob(topic, source)?)
    }

    /// A blob's bytes once held whole (fetched and verified), else `None`.
    pub fn read_blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.need_net()?.read_blob(hash)?)
    }

    /// Waits, at most `timeout`, until a blob is held whole.
    pub fn wait_for_blob(&self, hash: &BlobHash, timeout: Duration) -> Result<bool, Error> {
        Ok(self.need_net()?.wait_for_blob(hash, timeout)?)
    }

    /// Stops the sync backends, commits what is queued, syncs and closes.
    /// Dropping a `Core` does the same, best effort.
    pub fn close(mut self) -> Result<(), Error> {
        if let Some(net) = self.net.take() {
            net.shutdown();
        }
        let store = self.store.clone();
        drop(self);
        match Arc::try_unwrap(store) {
            Ok(store) => Ok(store.close()?),
            // Someone still holds the store (a clone of the Arc handed
            // out by the application); it closes when they let go.
            Err(_) => Ok(()),
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(net) = self.net.take() {
            net.shutdown();
        }
    }
}

impl Deref for Core {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}
