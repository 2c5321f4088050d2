//! The async side: the iroh endpoint and router, gossip, blobs, and the
//! tasks that decide whom to sync with and when. Everything here runs on
//! the one current-thread tokio runtime; anything that waits on the store
//! goes to the worker thread.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode, address_lookup::memory::MemoryLookup};
use iroh_gossip::Gossip;
use iroh_gossip::api::{Event as GossipEvent, GossipSender};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use xaeroflux_merkle::sha256;
use xaeroflux_store::{Store, Topic, TopicId};
use xaeroflux_sync::{Outcome, SyncError};

use crate::error::{NetError, iroh_err};
use crate::events::{Direction, SyncEvent};
use crate::wire::{Announcement, BlobHash, BlobRef};
use crate::worker::{Job, JobSender, SESSION_CREDIT, SESSION_OUT_LIMIT};
use crate::{NetConfig, NetMode, XSP_ALPN};

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 256 * 1024;
/// How long a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the end of a session waits for the peer's acknowledgements.
const LINGER: Duration = Duration::from_secs(5);
/// Sessions accepted from peers that may run at once; more are refused
/// (connection closed with code 3) until one ends.
const MAX_ACCEPTED: usize = 16;
/// Peers remembered as blob providers.
const PROVIDERS: usize = 16;
/// How often the fetcher looks for missing blobs that are due; a blob no
/// peer could serve waits twice as long after each failed round, up to
/// `BLOB_RETRY_MAX`.
const BLOB_RETRY: Duration = Duration::from_secs(1);
const BLOB_RETRY_MAX: Duration = Duration::from_secs(60);

#[derive(Default)]
struct PeerSync {
    running: bool,
    again: bool,
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
    /// Accepted sessions that may run at once.
    accepting: Arc<Semaphore>,
    pub stopping: Notify,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.endpoint.id())
            .finish()
    }
}

/// Accepts XSP connections.
#[derive(Debug, Clone)]
struct XspHandler(Arc<Node>);

impl ProtocolHandler for XspHandler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let node = self.0.clone();
        let peer = conn.remote_id();
        if node.lock().topics.is_empty() {
            conn.close(VarInt::from_u32(2), b"no topics joined");
            return Ok(());
        }
        let Ok(_slot) = node.accepting.clone().try_acquire_owned() else {
            conn.close(VarInt::from_u32(3), b"busy");
            return Ok(());
        };
        let streams = tokio::time::timeout(DIAL_TIMEOUT, conn.accept_bi()).await;
        let Ok(Ok((send, recv))) = streams else {
            conn.close(VarInt::from_u32(1), b"no stream");
            return Ok(());
        };
        // While this session runs, a sync with the same peer that comes
        // due waits for it instead of pulling the same pages twice.
        let owned = node.begin_accept(peer);
        // Its outcome is recorded by `session`; nothing more to do here.
        let _ = node.session(peer, send, recv, Direction::Accepted).await;
        node.end_accept(peer, owned);
        // The dialer closes once it has everything; wait for that, bounded.
        let _ = tokio::time::timeout(LINGER, conn.closed()).await;
        Ok(())
    }
}

pub(crate) fn gossip_topic(topic: &TopicId) -> iroh_gossip::TopicId {
    iroh_gossip::TopicId::from_bytes(sha256(&[b"xaeroflux/gossip/v1\0", &topic.0]))
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
        let builder = match &config.mode {
            NetMode::Default => Endpoint::builder(presets::N0),
            NetMode::LocalOnly { listen } => Endpoint::builder(presets::Minimal)
                .relay_mode(RelayMode::Disabled)
                .clear_address_lookup()
                .clear_ip_transports()
                .bind_addr(*listen)
                .map_err(iroh_err)?
                .portmapper_config(iroh::endpoint::PortmapperConfig::Disabled)
                .net_report_config(iroh::NetReportConfig::minimal()),
        };
        let endpoint = builder
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
            Some(
                iroh_blobs::store::fs::FsStore::load(&dir)
                    .await
                    .map_err(iroh_err)?,
            )
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
            accepting: Arc::new(Semaphore::new(MAX_ACCEPTED)),
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

    fn begin_accept(&self, peer: EndpointId) -> bool {
        let mut st = self.lock();
        let p = st.peers.entry(peer).or_default();
        if p.running {
            false
        } else {
            p.running = true;
            true
        }
    }

    fn end_accept(self: &Arc<Self>, peer: EndpointId, owned: bool) {
        if !owned {
            return;
        }
        let again = {
            let mut st = self.lock();
            let p = st.peers.entry(peer).or_default();
            p.running = false;
            std::mem::take(&mut p.again)
        };
        if again {
            self.request_sync(peer);
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

    /// Joins a topic: remembers the peers' addresses, joins its gossip
    /// swarm, and syncs with the peers.
    pub async fn join(
        self: &Arc<Self>,
        topic: Topic,
        peers: Vec<EndpointAddr>,
    ) -> Result<(), NetError> {
        let id = topic.id();
        let mut ids = Vec::new();
        for p in peers {
            if p.id == self.endpoint.id() {
                continue;
            }
            ids.push(p.id);
            if !p.is_empty() {
                self.lookup.add_endpoint_info(p);
            }
        }
        let fresh = {
            let mut st = self.lock();
            match st.topics.get_mut(&id) {
                Some(j) => {
                    for i in &ids {
                        if !j.given.contains(i) {
                            j.given.push(*i);
                        }
                    }
                    false
                }
                None => {
                    st.topics.insert(
                        id,
                        Joined {
                            topic: topic.clone(),
                            given: ids.clone(),
                            neighbors: HashSet::new(),
                            sender: None,
                        },
                    );
                    true
                }
            }
        };
        if fresh {
            let _ = self.jobs.send(Job::Join(id));
            if let Some(g) = &self.gossip {
                let sub = g
                    .subscribe(gossip_topic(&id), ids.clone())
                    .await
                    .map_err(iroh_err)?;
                let (sender, receiver) = sub.split();
                if let Some(j) = self.lock().topics.get_mut(&id) {
                    j.sender = Some(sender);
                }
                let node = self.clone();
                tokio::spawn(async move { node.gossip_loop(id, receiver).await });
            }
        } else {
            let sender = self.lock().topics.get(&id).and_then(|j| j.sender.clone());
            if let Some(sender) = sender {
                let _ = sender.join_peers(ids.clone()).await;
            }
        }
        for peer in ids {
            self.request_sync(peer);
        }
        Ok(())
    }

    async fn gossip_loop(
        self: Arc<Self>,
        topic: TopicId,
        mut rx: iroh_gossip::api::GossipReceiver,
    ) {
        use n0_future::StreamExt;
        loop {
            let ev = tokio::select! {
                ev = rx.next() => ev,
                _ = self.stopping.notified() => return,
            };
            let Some(ev) = ev else { return };
            match ev {
                Ok(GossipEvent::NeighborUp(peer)) => {
                    if let Some(j) = self.lock().topics.get_mut(&topic) {
                        j.neighbors.insert(peer);
                    }
                    self.record(vec![SyncEvent::PeerUp {
                        peer: peer.to_string(),
                    }]);
                    self.request_sync(peer);
                }
                Ok(GossipEvent::NeighborDown(peer)) => {
                    if let Some(j) = self.lock().topics.get_mut(&topic) {
                        j.neighbors.remove(&peer);
                    }
                    self.record(vec![SyncEvent::PeerDown {
                        peer: peer.to_string(),
                    }]);
                }
                Ok(GossipEvent::Received(msg)) => {
                    self.heard(topic, &msg.content, msg.delivered_from);
                }
                Ok(GossipEvent::Lagged) => {
                    // Missed announcements: catch up with every neighbour.
                    let peers: Vec<EndpointId> = self
                        .lock()
                        .topics
                        .get(&topic)
                        .map(|j| j.neighbors.iter().copied().collect())
                        .unwrap_or_default();
                    for p in peers {
                        self.request_sync(p);
                    }
                }
                Err(e) => {
                    self.record(vec![SyncEvent::Error {
                        peer: None,
                        message: format!("gossip: {e}"),
                    }]);
                    return;
                }
            }
        }
    }

    /// An announcement arrived: pull if it is news.
    fn heard(self: &Arc<Self>, topic: TopicId, bytes: &[u8], from: EndpointId) {
        let Ok(ann) = Announcement::decode(bytes) else {
            return;
        };
        if ann.log.topic != topic {
            return;
        }
        let Ok(cp) = ann.verify() else {
            return;
        };
        let held = self.store.log_size(&ann.log).unwrap_or(0);
        if cp.size <= held {
            return;
        }
        // Pull from the announcer when it is a peer of ours on this topic;
        // otherwise from the neighbour that passed the news on.
        let announcer = EndpointId::from_bytes(&ann.announcer).ok();
        let target = {
            let st = self.lock();
            match (announcer, st.topics.get(&topic)) {
                (Some(a), Some(j)) if j.neighbors.contains(&a) || j.given.contains(&a) => a,
                _ => from,
            }
        };
        if target != self.endpoint.id() {
            self.request_sync(target);
        }
    }

    /// Gossips an announcement on its topic.
    pub async fn announce(&self, ann: Announcement) {
        let sender = self
            .lock()
            .topics
            .get(&ann.log.topic)
            .and_then(|j| j.sender.clone());
        if let Some(s) = sender {
            let _ = s.broadcast(ann.encode().into()).await;
        }
    }

    /// Syncs with `peer` soon: at once when no session with it runs, else
    /// once more after the running one.
    pub fn request_sync(self: &Arc<Self>, peer: EndpointId) {
        {
            let mut st = self.lock();
            let p = st.peers.entry(peer).or_default();
            if p.running {
                p.again = true;
                return;
            }
            p.running = true;
        }
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                let r = node.dial(peer).await;
                let (events, again) = {
                    let mut st = node.lock();
                    let p = st.peers.entry(peer).or_default();
                    let was_up = std::mem::replace(&mut p.up, r.is_ok());
                    // Once more only after a session that worked: a peer
                    // that cannot be reached waits for the next trigger.
                    let again = r.is_ok() && p.again;
                    p.again = false;
                    p.running = again;
                    let mut events = Vec::new();
                    // Without gossip, reachability is what says a peer is
                    // up or down; with it, gossip's neighbour events do.
                    let track = node.gossip.is_none();
                    match &r {
                        Ok(_) if track && !was_up => events.push(SyncEvent::PeerUp {
                            peer: peer.to_string(),
                        }),
                        Err(e) => {
                            if track && was_up {
                                events.push(SyncEvent::PeerDown {
                                    peer: peer.to_string(),
                                });
                            }
                            // Session failures are in their SessionEnded.
                            if let NetError::Iroh(_) = e {
                                events.push(SyncEvent::Error {
                                    peer: Some(peer.to_string()),
                                    message: e.to_string(),
                                });
                            }
                        }
                        _ => {}
                    }
                    (events, again)
                };
                if !events.is_empty() {
                    node.record(events);
                }
                if !again {
                    break;
                }
            }
        });
    }

    /// Dials `peer` and runs one session.
    async fn dial(self: &Arc<Self>, peer: EndpointId) -> Result<Outcome, NetError> {
        let conn = tokio::time::timeout(DIAL_TIMEOUT, self.endpoint.connect(peer, XSP_ALPN))
            .await
            .map_err(|_| NetError::Iroh(format!("dialing {peer} timed out")))?
            .map_err(iroh_err)?;
        let (send, recv) = conn.open_bi().await.map_err(iroh_err)?;
        let r = self.session(peer, send, recv, Direction::Dialed).await;
        conn.close(VarInt::from_u32(0), b"done");
        r
    }

    /// Runs one XSP session over a stream pair: the worker runs the state
    /// machine, this task moves its bytes.
    async fn session(
        self: &Arc<Self>,
        peer: EndpointId,
        mut send: SendStream,
        mut recv: RecvStream,
        direction: Direction,
    ) -> Result<Outcome, NetError> {
        let started = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let topics: Vec<Topic> = self
            .lock()
            .topics
            .values()
            .map(|j| j.topic.clone())
            .collect();
        let credit = Arc::new(Semaphore::new(SESSION_CREDIT));
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (done_tx, done_rx) = oneshot::channel();
        self.jobs
            .send(Job::Open {
                id,
                config: self.config.session.clone().with_topics(topics),
                out: out_tx,
                done: done_tx,
                credit: credit.clone(),
                queued: queued.clone(),
                timeout: self.config.session_timeout,
            })
            .map_err(|_| NetError::Closed)?;
        let jobs = self.jobs.clone();
        let reader_credit = credit.clone();
        let (reader_queued, reader_drained) = (queued.clone(), drained.clone());
        let mut reader = tokio::spawn(async move {
            loop {
                while reader_queued.load(Ordering::Acquire) > SESSION_OUT_LIMIT {
                    reader_drained.notified().await;
                }
                match reader_credit.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                }
                match recv.read_chunk(READ_CHUNK).await {
                    Ok(Some(bytes)) => {
                        if jobs
                            .send(Job::Data {
                                id,
                                bytes: bytes.to_vec(),
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = jobs.send(Job::Eof { id });
                        return;
                    }
                    Err(e) => {
                        let _ = jobs.send(Job::Broken {
                            id,
                            error: std::io::Error::other(e),
                        });
                        return;
                    }
                }
            }
        });
        let mut broken = false;
        while let Some(buf) = out_rx.recv().await {
            // Once the stream is broken, what the worker still sends is
            // dropped until it ends the session.
            let r = if broken {
                Ok(())
            } else {
                send.write_all(&buf).await
            };
            queued.fetch_sub(buf.len(), Ordering::AcqRel);
            drained.notify_one();
            if let Err(e) = r {
                broken = true;
                let _ = self.jobs.send(Job::Broken {
                    id,
                    error: std::io::Error::other(e),
                });
            }
        }
        let result = done_rx
            .await
            .unwrap_or_else(|_| Err(SyncError::Protocol("the sync worker has stopped".into())));
        let _ = send.finish();
        // Let the peer acknowledge what we sent, bounded.
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        credit.close();
        if tokio::time::timeout(Duration::from_millis(100), &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
        let (moved, error) = match &result {
            Ok(o) => (o.clone(), None),
            Err(e) => (Outcome::default(), Some(e.to_string())),
        };
        if moved.events_in > 0 {
            self.note_provider(peer);
        }
        let ended = SyncEvent::SessionEnded {
            peer: peer.to_string(),
            direction,
            events_in: moved.events_in,
            events_out: moved.events_out,
            bytes_in: moved.bytes_in,
            bytes_out: moved.bytes_out,
            millis: started.elapsed().as_millis() as u64,
            error,
        };
        if !ended.ended_quietly() {
            self.record(vec![
                SyncEvent::SessionStarted {
                    peer: peer.to_string(),
                    direction,
                },
                ended,
            ]);
        }
        Ok(result?)
    }

    /// Every `sync_interval`, syncs with each peer of each joined topic.
    pub async fn periodic(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.sync_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stopping.notified() => return,
            }
            let peers: HashSet<EndpointId> = self
                .lock()
                .topics
                .values()
                .flat_map(|j| j.given.iter().chain(j.neighbors.iter()).copied())
                .collect();
            for p in peers {
                self.request_sync(p);
            }
        }
    }

    /// Sends announcements made by the worker.
    pub async fn announcer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Announcement>) {
        loop {
            let ann = tokio::select! {
                a = rx.recv() => a,
                _ = self.stopping.notified() => return,
            };
            let Some(ann) = ann else { return };
            self.announce(ann).await;
        }
    }

    /// Fetches blobs that replicated events reference.
    pub async fn blob_fetcher(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<BlobRef>) {
        let Some(blobs) = self.blobs.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(BLOB_RETRY);
        loop {
            tokio::select! {
                r = rx.recv() => {
                    let Some(r) = r else { return };
                    if blobs.has(r.hash.to_iroh()).await.unwrap_or(false) {
                        continue;
                    }
                    self.lock()
                        .missing
                        .entry(r.hash)
                        .or_insert((r, Instant::now(), 0));
                }
                _ = tick.tick() => {}
                _ = self.stopping.notified() => return,
            }
            let due: Vec<BlobRef> = {
                let mut st = self.lock();
                let now = Instant::now();
                let fetching = st.fetching.clone();
                let mut due = Vec::new();
                for (h, (r, next, _)) in st.missing.iter() {
                    if !fetching.contains(h) && *next <= now {
                        due.push(*r);
                    }
                }
                for r in &due {
                    st.fetching.insert(r.hash);
                }
                due
            };
            for r in due {
                let node = self.clone();
                let blobs = blobs.clone();
                tokio::spawn(async move {
                    let got = node.fetch_blob(&blobs, r).await;
                    let mut st = node.lock();
                    st.fetching.remove(&r.hash);
                    if got {
                        st.missing.remove(&r.hash);
                    } else if let Some((_, next, fails)) = st.missing.get_mut(&r.hash) {
                        *fails += 1;
                        let wait = BLOB_RETRY
                            .saturating_mul(1 << (*fails).min(6))
                            .min(BLOB_RETRY_MAX);
                        *next = Instant::now() + wait;
                    }
                });
            }
        }
    }

    async fn fetch_blob(&self, blobs: &iroh_blobs::store::fs::FsStore, r: BlobRef) -> bool {
        let candidates: Vec<EndpointId> = {
            let st = self.lock();
            let mut c: Vec<EndpointId> = st.providers.iter().copied().collect();
            for j in st.topics.values() {
                for p in j.neighbors.iter().chain(j.given.iter()) {
                    if !c.contains(p) {
                        c.push(*p);
                    }
                }
            }
            c
        };
        for peer in candidates {
            let conn = match tokio::time::timeout(
                DIAL_TIMEOUT,
                self.endpoint.connect(peer, iroh_blobs::ALPN),
            )
            .await
            {
                Ok(Ok(c)) => c,
                _ => continue,
            };
            let got = blobs
                .remote()
                .fetch(conn.clone(), r.hash.to_iroh())
                .complete()
                .await;
            conn.close(VarInt::from_u32(0), b"done");
            if got.is_err() {
                continue;
            }
            // The transfer is verified against the hash as it streams; the
            // blob counts once it is whole and of the size the event says.
            match blobs.status(r.hash.to_iroh()).await {
                Ok(iroh_blobs::api::proto::BlobStatus::Complete { size }) if size == r.size => {
                    self.record(vec![SyncEvent::BlobFetched {
                        hash: r.hash,
                        size: r.size,
                        peer: peer.to_string(),
                    }]);
                    return true;
                }
                _ => continue,
            }
        }
        false
    }
}

impl Node {
    /// Dials `addr` now for one session.
    pub async fn sync_now(self: &Arc<Self>, addr: EndpointAddr) -> Result<Outcome, NetError> {
        if !addr.is_empty() {
            self.lookup.add_endpoint_info(addr.clone());
        }
        self.dial(addr.id).await
    }

    /// Serves appends handed over by other processes (see [`crate::handoff`]).
    #[cfg(unix)]
    pub async fn handoff_loop(self: Arc<Self>, listener: tokio::net::UnixListener) {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = self.stopping.notified() => return,
            };
            let Ok((mut stream, _)) = conn else { continue };
            let node = self.clone();
            tokio::spawn(async move {
                loop {
                    let reply = match crate::handoff::read_request(&mut stream).await {
                        Ok(None) => return,
                        Ok(Some(events)) => {
                            let (tx, rx) = oneshot::channel();
                            if node.jobs.send(Job::Append { events, reply: tx }).is_err() {
                                Err("the node is shutting down".to_string())
                            } else {
                                match rx.await {
                                    Ok(r) => r.map_err(|e| e.to_string()),
                                    Err(_) => Err("the node is shutting down".to_string()),
                                }
                            }
                        }
                        Err(msg) => {
                            let _ = crate::handoff::write_reply(&mut stream, Err(msg)).await;
                            return;
                        }
                    };
                    if crate::handoff::write_reply(&mut stream, reply)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    }
}
