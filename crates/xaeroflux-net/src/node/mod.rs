//! The async side: the iroh endpoint and router, gossip, blobs, and the
//! tasks that decide whom to sync with and when. Everything here runs on
//! the one current-thread tokio runtime; anything that waits on the store
//! goes to the worker thread.
//!
//! - `accept`: sessions peers open;
//! - `session`: dialing, and moving one session's bytes;
//! - `schedule`: whom to sync with, when, and at most one session per peer;
//! - `gossip`: joining topics, announcements in and out;
//! - `blobs`: fetching referenced blobs, with backoff;
//! - `handoff`: appends from other processes over `node.sock`.

mod accept;
mod blobs;
mod blobstore;
mod gossip;
#[cfg(unix)]
mod handoff;
mod schedule;
mod session;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode, address_lookup::memory::MemoryLookup};
use iroh_gossip::Gossip;
use iroh_gossip::api::GossipSender;
use tokio::sync::Notify;
use xaeroflux_merkle::sha256;
use xaeroflux_store::{Store, Topic, TopicId};
use xaeroflux_sync::Outcome;

use crate::error::{NetError, iroh_err};
use crate::events::SyncEvent;
use crate::wire::{BlobHash, BlobRef};
use crate::worker::{Job, JobSender};
use crate::{NetConfig, NetMode, XSP_ALPN};
use accept::XspHandler;

/// How long a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the end of a session waits for the peer's acknowledgements.
const LINGER: Duration = Duration::from_secs(5);
/// Sessions accepted from peers that may run at once. When all are taken,
/// a new one takes the place of the oldest that has not sent its HELLO
/// (closed with code 4); when every one has, the new one is refused
/// (closed with code 3) until one ends.
const MAX_ACCEPTED: usize = 16;
/// Sessions accepted from one peer (endpoint id) at once; more are refused.
const MAX_ACCEPTED_PER_PEER: usize = 4;
/// How long a peer has to send its HELLO, from the start of a session.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Peers remembered as blob providers.
const PROVIDERS: usize = 16;

/// What the node tracks of a peer besides its dialing (`State::sched`).
#[derive(Default)]
struct PeerSync {
    up: bool,
}

struct Joined {
    topic: Topic,
    given: Vec<EndpointId>,
    neighbors: HashSet<EndpointId>,
    sender: Option<GossipSender>,
}

#[derive(Default)]
struct State {
    topics: HashMap<TopicId, Joined>,
    peers: HashMap<EndpointId, PeerSync>,
    /// The largest size heard announced per log (others' announcements
    /// of it are not repeated).
    heard: HashMap<xaeroflux_store::LogId, u64>,
    /// Whom to dial and when (the rules the simulator runs too).
    sched: xaeroflux_sync::schedule::Scheduler<EndpointId>,
    /// Blobs referenced by held events and not held: when to ask next,
    /// and how many asks failed.
    missing: HashMap<BlobHash, (BlobRef, Instant, u32)>,
    fetching: HashSet<BlobHash>,
    /// Peers that recently sent events, most recent first.
    providers: VecDeque<EndpointId>,
}

/// The running node.
pub(crate) struct Node {
    pub endpoint: Endpoint,
    router: Mutex<Option<Router>>,
    gossip: Option<Gossip>,
    pub blobs: Option<iroh_blobs::store::fs::FsStore>,
    lookup: MemoryLookup,
    pub store: Arc<Store>,
    pub jobs: JobSender,
    config: NetConfig,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Sessions accepted and running (at most [`MAX_ACCEPTED`]).
    accepted: Mutex<Vec<accept::Accepted>>,
    /// What every session that ended has moved, summed.
    pub traffic: Mutex<crate::Traffic>,
    /// The origin of the scheduler's milliseconds.
    epoch: Instant,
    pub stopping: Notify,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.endpoint.id())
            .finish()
    }
}

pub(crate) fn gossip_topic(topic: &TopicId) -> iroh_gossip::TopicId {
    iroh_gossip::TopicId::from_bytes(sha256(&[b"xaeroflux/gossip/v1\0", &topic.0]))
}

/// The endpoint builder for a network mode, without a key: what every
/// node uses, and what tests and benchmarks use for their own endpoints
/// beside nodes (so a local-only endpoint is set up in one place).
/// Local-only binds only `listen`, with relays, address lookup, port
/// mapping and net-report probes off.
pub fn endpoint_builder(mode: &NetMode) -> Result<iroh::endpoint::Builder, NetError> {
    Ok(match mode {
        NetMode::Default => Endpoint::builder(presets::N0),
        NetMode::LocalOnly { listen } => Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .clear_ip_transports()
            .bind_addr(*listen)
            .map_err(iroh_err)?
            .portmapper_config(iroh::endpoint::PortmapperConfig::Disabled)
            .net_report_config(iroh::NetReportConfig::minimal()),
    })
}

impl Node {
    /// Binds the endpoint and starts the protocols. Runs on the runtime.
    pub async fn start(
        store: Arc<Store>,
        config: NetConfig,
        secret: iroh::SecretKey,
        jobs: JobSender,
    ) -> Result<Arc<Node>, NetError> {
        let lookup = MemoryLookup::new();
        let endpoint = endpoint_builder(&config.mode)?
            .secret_key(secret)
            .address_lookup(lookup.clone())
            .bind()
            .await
            .map_err(iroh_err)?;
        let gossip = config
            .backends
            .gossip
            .then(|| Gossip::builder().spawn(endpoint.clone()));
        let blobs = if config.backends.blob {
            let dir = store.dir().join("blobs");
            Some(blobstore::load(dir).await?)
        } else {
            None
        };
        let node = Arc::new(Node {
            endpoint: endpoint.clone(),
            router: Mutex::new(None),
            gossip: gossip.clone(),
            blobs: blobs.clone(),
            lookup,
            store,
            jobs,
            config,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            accepted: Mutex::new(Vec::new()),
            traffic: Mutex::new(crate::Traffic::default()),
            epoch: Instant::now(),
            stopping: Notify::new(),
        });
        let mut router = Router::builder(endpoint).accept(XSP_ALPN, XspHandler(node.clone()));
        if let Some(g) = gossip {
            router = router.accept(iroh_gossip::ALPN, g);
        }
        if let Some(b) = &blobs {
            router = router.accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(b, None));
        }
        *node.router.lock().unwrap_or_else(|e| e.into_inner()) = Some(router.spawn());
        Ok(node)
    }

    /// Milliseconds since the node started: the scheduler's clock.
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops accepting, closes the endpoint.
    pub async fn shutdown(&self) {
        self.stopping.notify_waiters();
        let router = self.router.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = router {
            let _ = tokio::time::timeout(LINGER, r.shutdown()).await;
        }
        if let Some(g) = &self.gossip {
            let _ = g.shutdown().await;
        }
        self.endpoint.close().await;
        if let Some(b) = &self.blobs {
            let _ = b.shutdown().await;
        }
    }

    fn record(&self, events: Vec<SyncEvent>) {
        let _ = self.jobs.send(Job::Record(events));
    }

    fn note_provider(&self, peer: EndpointId) {
        let mut st = self.lock();
        st.providers.retain(|p| *p != peer);
        st.providers.push_front(peer);
        st.providers.truncate(PROVIDERS);
        // A peer that just sent events may hold the blobs they reference:
        // ask again now rather than after the backoff.
        let now = Instant::now();
        for (_, next, _) in st.missing.values_mut() {
            *next = now;
        }
    }

    /// Dials `addr` now for one session.
    pub async fn sync_now(self: &Arc<Self>, addr: EndpointAddr) -> Result<Outcome, NetError> {
        if !addr.is_empty() {
            self.lookup.add_endpoint_info(addr.clone());
        }
        self.dial(addr.id).await
    }
}
