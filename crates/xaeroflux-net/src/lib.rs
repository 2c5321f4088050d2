//! Xaeroflux over iroh: XSP sessions between nodes dialed by public key,
//! gossip announcements of new checkpoints, and blobs for large payloads,
//! behind a synchronous API.
//!
//! A [`Net`] runs beside a [`Store`]: an iroh endpoint whose id is kept in
//! the store directory (so it survives restarts) accepts XSP on the ALPN
//! [`XSP_ALPN`]; [`Net::join`] joins a topic's gossip swarm, announces each
//! new checkpoint of the topic's logs there, and pulls what it hears of
//! with XSP. Every page is verified before it is stored. One small tokio
//! runtime and one blocking worker thread live inside; no `async` shows.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use xaeroflux_net::{Backends, Net, NetConfig, NetMode};
//! use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! // Local-only: 127.0.0.1, no relays, no address lookup, no port mapping.
//! let config = || NetConfig::new(Backends::parse(&["iroh", "iroh-gossip"]).unwrap())
//!     .with_mode(NetMode::local_only());
//! let a = Arc::new(Store::open(da.path(), StoreOptions::default())?);
//! let b = Arc::new(Store::open(db.path(), StoreOptions::default())?);
//! let chat = Topic::new("chat")?;
//! let r = a.append(NewEvent::application(&chat, b"hello".to_vec()))?;
//!
//! let net_a = Net::start(a.clone(), config())?;
//! let net_b = Net::start(b.clone(), config())?;
//! net_a.join(&chat, &[])?;
//! net_b.join(&chat, &[net_a.ticket().parse()?])?; // or "ID@127.0.0.1:PORT"
//!
//! // B pulls A's log as soon as it joins; wait for it, bounded.
//! let mut sub = b.subscribe(xaeroflux_store::Filter::log(r.log), 0)?;
//! let ev = sub.recv_timeout(Duration::from_secs(30))?.expect("replicated");
//! assert_eq!(ev.payload, b"hello");
//! # drop(sub);
//! net_b.shutdown();
//! net_a.shutdown();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod events;
pub mod handoff;
mod key;
mod node;
mod wire;
mod worker;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::{EndpointAddr, EndpointId};
use iroh_tickets::endpoint::EndpointTicket;
use tokio::sync::{mpsc, oneshot};
use xaeroflux_reactive::SubscriptionGuard;
use xaeroflux_store::{NewEvent, Receipt, Replication, Store, Topic};
use xaeroflux_sync::{Outcome, SessionConfig};

pub use error::NetError;
pub use events::{Direction, SYNC_EVENT_TAG, SYNC_TOPIC, SyncEvent};
pub use key::key_path;
pub use wire::{
    ANNOUNCE_MAGIC, ANNOUNCE_VERSION, Announcement, BLOB_MAGIC, BLOB_VERSION, BlobHash, BlobRef,
    MAX_ANNOUNCE,
};

use node::Node;
pub use node::endpoint_builder;
use worker::Job;

/// The ALPN XSP sessions are accepted on.
pub const XSP_ALPN: &[u8] = b"xaeroflux/xsp/1";

/// The sync backends a store can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An iroh endpoint accepting XSP sessions.
    Iroh,
    /// Gossip announcements of new checkpoints (needs `iroh`).
    IrohGossip,
    /// Large payloads as iroh blobs (needs `iroh`).
    IrohBlob,
}

impl Backend {
    /// The names [`Backends::parse`] accepts.
    pub const NAMES: [&'static str; 3] = ["iroh", "iroh-gossip", "iroh-blob"];

    /// The backend of a name.
    pub fn parse(name: &str) -> Result<Backend, NetError> {
        match name {
            "iroh" => Ok(Backend::Iroh),
            "iroh-gossip" => Ok(Backend::IrohGossip),
            "iroh-blob" => Ok(Backend::IrohBlob),
            _ => Err(NetError::UnknownBackend { name: name.into() }),
        }
    }
}

/// Which backends run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backends {
    /// The iroh endpoint and XSP.
    pub iroh: bool,
    /// Gossip announcements.
    pub gossip: bool,
    /// Blobs.
    pub blob: bool,
}

impl Backends {
    /// From backend names; an unknown name is an error that lists the
    /// valid ones, and `iroh-gossip` or `iroh-blob` without `iroh` is an
    /// error too.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Backends, NetError> {
        let mut b = Backends::default();
        for n in names {
            match Backend::parse(n.as_ref())? {
                Backend::Iroh => b.iroh = true,
                Backend::IrohGossip => b.gossip = true,
                Backend::IrohBlob => b.blob = true,
            }
        }
        Self::check(b)
    }

    /// Checks that the backends can run together: `iroh-gossip` and
    /// `iroh-blob` run on the `iroh` endpoint.
    pub fn check(b: Backends) -> Result<Backends, NetError> {
        if (b.gossip || b.blob) && !b.iroh {
            return Err(NetError::BackendMissing(
                "iroh-gossip and iroh-blob run on the iroh endpoint: add \"iroh\"".into(),
            ));
        }
        Ok(b)
    }

    /// Whether anything runs.
    pub fn any(&self) -> bool {
        self.iroh
    }
}

/// How the endpoint meets the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// As iroh recommends for real use: n0's relays and address lookup,
    /// port mapping, every interface.
    Default,
    /// Only `listen` (127.0.0.1 by default), with relays, address lookup
    /// and port mapping off: for tests and LAN use. Peers are given as
    /// tickets or `ID@IP:PORT`.
    LocalOnly {
        /// Where to bind.
        listen: SocketAddr,
    },
}

impl NetMode {
    /// Local-only on 127.0.0.1, any port.
    pub fn local_only() -> NetMode {
        NetMode::LocalOnly {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

/// How a [`Net`] runs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The backends.
    pub backends: Backends,
    /// Network mode.
    pub mode: NetMode,
    /// How often to sync with every known peer of every joined topic, on
    /// top of what gossip triggers (default 30 s).
    pub sync_interval: Duration,
    /// How long a peer may stay silent in a session (default 30 s).
    pub session_timeout: Duration,
    /// Page sizes and window of sessions (topics are set per session).
    pub session: SessionConfig,
}

impl NetConfig {
    /// The defaults, with these backends.
    pub fn new(backends: Backends) -> NetConfig {
        NetConfig {
            backends,
            mode: NetMode::Default,
            sync_interval: Duration::from_secs(30),
            session_timeout: Duration::from_secs(30),
            session: SessionConfig::default(),
        }
    }

    /// Sets the network mode.
    pub fn with_mode(mut self, mode: NetMode) -> NetConfig {
        self.mode = mode;
        self
    }

    /// Sets the periodic sync interval.
    pub fn with_sync_interval(mut self, every: Duration) -> NetConfig {
        self.sync_interval = every;
        self
    }
}

/// What the sessions running now have moved, summed ([`Net::pull_progress`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// Sessions running.
    pub sessions: usize,
    /// Events they set out to pull (known once each has the peer's PEAKS).
    pub events_wanted: u64,
    /// Events they received, verified and committed.
    pub events_in: u64,
    /// Bytes they received.
    pub bytes_in: u64,
}

/// What every session that ended has moved since the network layer
/// started ([`Net::traffic`]): all sessions, those that moved nothing
/// included (their handshakes are the mesh's overhead). A failed session
/// is counted, but what it moved before it failed is not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Sessions ended, dialed or accepted.
    pub sessions: u64,
    /// Of those, sessions that failed.
    pub sessions_failed: u64,
    /// Events received, verified and committed.
    pub events_in: u64,
    /// Events that arrived in pages, held already or not (above
    /// `events_in`: pulled for nothing).
    pub events_received: u64,
    /// Events served.
    pub events_out: u64,
    /// Bytes received (XSP frames).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

/// A peer: an endpoint id, with the addresses to reach it if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer(EndpointAddr);

impl Peer {
    /// The peer's endpoint id (64 hex digits).
    pub fn id(&self) -> String {
        self.0.id.to_string()
    }

    /// Its direct addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.0.ip_addrs().copied().collect()
    }
}

impl FromStr for Peer {
    type Err = NetError;

    /// An iroh endpoint ticket, `ID@IP:PORT`, or a bare endpoint id.
    fn from_str(s: &str) -> Result<Peer, NetError> {
        let s = s.trim();
        let bad = |reason: String| NetError::InvalidPeer {
            input: s.into(),
            reason,
        };
        if let Some((id, addr)) = s.split_once('@') {
            let id = EndpointId::from_str(id).map_err(|e| bad(format!("endpoint id: {e}")))?;
            let addr = SocketAddr::from_str(addr).map_err(|e| bad(format!("address: {e}")))?;
            return Ok(Peer(EndpointAddr::new(id).with_ip_addr(addr)));
        }
        if let Ok(t) = EndpointTicket::from_str(s) {
            return Ok(Peer(t.endpoint_addr().clone()));
        }
        EndpointId::from_str(s)
            .map(|id| Peer(EndpointAddr::new(id)))
            .map_err(|e| bad(format!("neither a ticket nor an endpoint id: {e}")))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.ip_addrs().next() {
            Some(a) => write!(f, "{}@{a}", self.0.id),
            None => write!(f, "{}", self.0.id),
        }
    }
}

/// Content for [`Net::append_blob`].
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file, imported by the blob store.
    Path(&'a Path),
}

impl<'a> From<&'a [u8]> for BlobSource<'a> {
    fn from(b: &'a [u8]) -> Self {
        BlobSource::Bytes(b)
    }
}

impl<'a> From<&'a Vec<u8>> for BlobSource<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        BlobSource::Bytes(b)
    }
}

impl<'a> From<&'a Path> for BlobSource<'a> {
    fn from(p: &'a Path) -> Self {
        BlobSource::Path(p)
    }
}

impl<'a> From<&'a PathBuf> for BlobSource<'a> {
    fn from(p: &'a PathBuf) -> Self {
        BlobSource::Path(p)
    }
}

/// The one current-thread tokio runtime, on a thread of its own (`xf-net`)
/// that runs until told to stop.
fn start_runtime() -> Result<
    (
        tokio::runtime::Handle,
        oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    ),
    NetError,
> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(error::start_err("the network runtime"))?;
    let handle = rt.handle().clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let runtime = std::thread::Builder::new()
        .name("xf-net".into())
        .spawn(move || {
            rt.block_on(async {
                let _ = stop_rx.await;
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        })
        .map_err(error::start_err("the network runtime thread"))?;
    Ok((handle, stop_tx, runtime))
}

/// The network layer of one store: its endpoint, gossip and blobs.
pub struct Net {
    node: Arc<Node>,
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<std::thread::JoinHandle<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
    commits: Option<SubscriptionGuard>,
    socket: Option<PathBuf>,
    board: worker::Board,
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("endpoint", &self.node.endpoint.id().to_string())
            .finish()
    }
}

impl Net {
    /// Starts the backends in `config` for `store` (which must be
    /// writable): binds the endpoint with the key kept in the store
    /// directory, starts gossip and the blob store as asked, and listens
    /// for appends from other processes on the store's `node.sock`.
    pub fn start(store: Arc<Store>, config: NetConfig) -> Result<Net, NetError> {
        if !config.backends.iroh {
            return Err(NetError::BackendMissing("no backend to start".into()));
        }
        let commits = store.commits().ok_or_else(|| {
            NetError::BackendMissing("sync needs a writable store, not a read-only one".into())
        })?;
        let secret = key::load_or_create(store.dir())?;
        let me = *secret.public().as_bytes();
        let (handle, stop, runtime) = start_runtime()?;
        let (jobs, jobs_rx) = crossbeam_channel::unbounded();
        let (ann_tx, ann_rx) = mpsc::unbounded_channel();
        let (blob_tx, blob_rx) = mpsc::unbounded_channel();
        let board = worker::Board::default();
        let outputs = worker::Outputs {
            board: board.clone(),
            announce: ann_tx,
            blobs: config.backends.blob.then_some(blob_tx),
            me,
            jobs: jobs.clone(),
        };
        let worker = worker::spawn(store.clone(), jobs_rx, outputs)
            .map_err(error::start_err("the sync worker thread"))?;
        let started = handle.block_on(Node::start(store.clone(), config, secret, jobs.clone()));
        let mut net = Net {
            node: match started {
                Ok(n) => n,
                Err(e) => {
                    let _ = jobs.send(Job::Shutdown);
                    let _ = worker.join();
                    let _ = stop.send(());
                    let _ = runtime.join();
                    return Err(e);
                }
            },
            handle: handle.clone(),
            stop: Some(stop),
            runtime: Some(runtime),
            worker: Some(worker),
            commits: None,
            socket: None,
            board,
        };
        let node = net.node.clone();
        handle.spawn(node.clone().periodic());
        handle.spawn(node.clone().announcer(ann_rx));
        handle.spawn(node.clone().blob_fetcher(blob_rx));
        net.commits = Some(commits.subscribe_fn(move |c| {
            let _ = jobs.send(Job::Commit(c));
        }));
        #[cfg(unix)]
        net.listen_for_handoffs(store.dir());
        Ok(net)
    }

    /// Serves `node.sock` for other processes' appends. Sync works without
    /// it: when the OS refuses the socket (a path too long for one, say),
    /// that is recorded as a sync error and other processes cannot hand
    /// appends over.
    #[cfg(unix)]
    fn listen_for_handoffs(&mut self, dir: &Path) {
        let path = handoff::socket_path(dir);
        let _ = std::fs::remove_file(&path);
        let listener = {
            let _guard = self.handle.enter();
            tokio::net::UnixListener::bind(&path)
        };
        match listener {
            Ok(listener) => {
                self.socket = Some(path);
                self.handle.spawn(self.node.clone().handoff_loop(listener));
            }
            Err(e) => {
                let _ = self.node.jobs.send(Job::Record(vec![SyncEvent::Error {
                    peer: None,
                    message: format!("hand-over socket {}: {e}", path.display()),
                }]));
            }
        }
    }

    /// This node's endpoint id (64 hex digits), stable across restarts.
    pub fn endpoint_id(&self) -> String {
        self.node.endpoint.id().to_string()
    }

    /// This node's address as an iroh endpoint ticket, for peers to dial.
    pub fn ticket(&self) -> String {
        EndpointTicket::new(self.addr()).to_string()
    }

    /// What the sessions that ended have moved, summed.
    pub fn traffic(&self) -> Traffic {
        *self.node.traffic.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How far the sessions running now have come: a catch-up's progress.
    pub fn pull_progress(&self) -> PullProgress {
        let b = self.board.lock().unwrap_or_else(|p| p.into_inner());
        let mut p = PullProgress {
            sessions: b.len(),
            ..PullProgress::default()
        };
        for [wanted, got, bytes] in b.values() {
            p.events_wanted += wanted;
            p.events_in += got;
            p.bytes_in += bytes;
        }
        p
    }

    /// This node as `ID@IP:PORT` (its first direct address).
    pub fn peer(&self) -> Peer {
        Peer(self.addr())
    }

    fn addr(&self) -> EndpointAddr {
        let mut addr = self.node.endpoint.addr();
        if addr.ip_addrs().next().is_none() {
            for s in self.node.endpoint.bound_sockets() {
                addr = addr.with_ip_addr(s);
            }
        }
        addr
    }

    /// Joins `topic`: remembers `peers`, joins the topic's gossip swarm
    /// (with `iroh-gossip`), syncs with the peers now and every
    /// `sync_interval`, and announces each new checkpoint of the topic's
    /// logs. Joining again adds peers.
    pub fn join(&self, topic: &Topic, peers: &[Peer]) -> Result<(), NetError> {
        if topic.name() == SYNC_TOPIC {
            return Err(NetError::InvalidTopic(format!(
                "{SYNC_TOPIC} holds this node's sync events and is never shared"
            )));
        }
        let node = self.node.clone();
        let topic = topic.clone();
        let peers = peers.iter().map(|p| p.0.clone()).collect();
        self.handle
            .block_on(async move { node.join(topic, peers).await })
    }

    /// Runs one XSP session with `peer` now, over every joined topic, and
    /// returns what moved.
    pub fn sync_with(&self, peer: &Peer) -> Result<Outcome, NetError> {
        let node = self.node.clone();
        let addr = peer.0.clone();
        self.handle
            .block_on(async move { node.sync_now(addr).await })
    }

    /// Stores `source` in the blob store (in the store directory, under
    /// `blobs/`) and appends an event to the store's own log in `topic`
    /// that references it by BLAKE3 hash and size. Peers that replicate
    /// the event fetch the blob, verified.
    pub fn append_blob<'a>(
        &self,
        topic: &Topic,
        source: impl Into<BlobSource<'a>>,
    ) -> Result<(Receipt, BlobRef), NetError> {
        let r = self.add_blob(source)?;
        let receipt = self
            .node
            .store
            .append(NewEvent::application(topic, r.encode()))?;
        Ok((receipt, r))
    }

    /// Stores `source` in the blob store and returns its reference,
    /// appending nothing: for callers that reference it themselves (a
    /// private topic's encrypted blobs).
    pub fn add_blob<'a>(&self, source: impl Into<BlobSource<'a>>) -> Result<BlobRef, NetError> {
        let blobs = self.blobs()?;
        let store = &self.node.store;
        store
            .failpoint(xaeroflux_store::failpoints::Point::BlobWrite)
            .map_err(error::io_err(store.dir().join("blobs")))?;
        let source = source.into();
        let hash = self.handle.block_on(async move {
            let tag = match source {
                BlobSource::Bytes(b) => blobs.add_slice(b).with_tag().await,
                BlobSource::Path(p) => {
                    let p = std::fs::canonicalize(p).map_err(error::io_err(p))?;
                    blobs.add_path(p).with_tag().await
                }
            };
            tag.map(|t| t.hash).map_err(error::iroh_err)
        })?;
        let hash = BlobHash(*hash.as_bytes());
        let size = self
            .blob_size(&hash)?
            .ok_or(NetError::BlobMissing(hash.to_string()))?;
        Ok(BlobRef { hash, size })
    }

    fn blobs(&self) -> Result<iroh_blobs::store::fs::FsStore, NetError> {
        self.node
            .blobs
            .clone()
            .ok_or_else(|| NetError::BackendMissing("blobs need the iroh-blob backend".into()))
    }

    /// The size of a blob held whole, or `None`.
    pub fn blob_size(&self, hash: &BlobHash) -> Result<Option<u64>, NetError> {
        let blobs = self.blobs()?;
        let h = hash.to_iroh();
        let status = self
            .handle
            .block_on(async move { blobs.status(h).await })
            .map_err(error::iroh_err)?;
        Ok(match status {
            iroh_blobs::api::proto::BlobStatus::Complete { size } => Some(size),
            _ => None,
        })
    }

    /// A blob's bytes once it is held whole, `None` before. The bytes were
    /// verified against the hash when they arrived.
    pub fn read_blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>, NetError> {
        if self.blob_size(hash)?.is_none() {
            return Ok(None);
        }
        let blobs = self.blobs()?;
        let h = hash.to_iroh();
        let bytes = self
            .handle
            .block_on(async move { blobs.get_bytes(h).await })
            .map_err(error::iroh_err)?;
        Ok(Some(bytes.to_vec()))
    }

    /// Waits until a blob is held whole, at most `timeout`; whether it is.
    pub fn wait_for_blob(&self, hash: &BlobHash, timeout: Duration) -> Result<bool, NetError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.blob_size(hash)?.is_some() {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    /// Stops: leaves gossip, closes the endpoint, ends the worker and the
    /// runtime. Dropping a `Net` does the same.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        drop(self.commits.take());
        let node = self.node.clone();
        let _ = self.handle.block_on(async move {
            tokio::time::timeout(Duration::from_secs(10), node.shutdown()).await
        });
        let _ = self.node.jobs.send(Job::Shutdown);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        let _ = stop.send(());
        if let Some(r) = self.runtime.take() {
            let _ = r.join();
        }
        if let Some(p) = self.socket.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop_all();
    }
}
