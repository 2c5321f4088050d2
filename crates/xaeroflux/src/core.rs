//! The handle an application holds.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use xaeroflux_merkle::{Hash, SignedCheckpoint};
use xaeroflux_net::{BlobHash, BlobRef, BlobSource, Net, NetError, Peer};

use crate::netslot::NetSlot;
use xaeroflux_store::{
    BatchReceipt, ConsistencyProof, ForkProof, InclusionProof, LogHead, LogId, LogInfo, NewEvent,
    PendingAppend, Progress, Receipt, Stats, Store, StoreOptions, Subscription, Topic, TopicId,
    VerifyReport,
};
use xaeroflux_store::{Filter, Since};
use xaeroflux_sync::{Outcome, SessionConfig};

use crate::{CoreBuilder, Error, Events};

/// The handle an application holds: the store, and its sync backends when
/// they were asked for. Appends, reads, proofs and sync all go through it,
/// and every failure is one [`Error`].
///
/// ```
/// use xaeroflux::{Core, NetMode, Topic};
///
/// # fn main() -> Result<(), xaeroflux::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let core = Core::builder()
///     .with_sync_backends(&["iroh", "iroh-gossip", "iroh-blob"])
///     .with_network(NetMode::local_only()) // tests and LAN: 127.0.0.1, no relays
///     .open(dir.path())?;
/// println!("give peers this ticket: {}", core.node_ticket()?);
/// let chat = Topic::new("chat")?;
/// core.join(&chat, &[] as &[&str])?; // peers as tickets or ID@IP:PORT
/// let (_receipt, blob) = core.append_blob(&chat, &b"a large payload"[..])?;
/// assert_eq!(core.read_blob(&blob.hash)?.as_deref(), Some(&b"a large payload"[..]));
/// // A bad backend name is reported when opening.
/// let other = tempfile::tempdir().unwrap();
/// assert!(Core::builder().with_sync_backends(&["carrier-pigeon"]).open(other.path()).is_err());
/// core.close()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Core {
    pub(crate) store: Arc<Store>,
    net: Option<NetSlot>,
    default_topic: Topic,
    pub(crate) private: crate::private::Private,
}

impl Core {
    pub(crate) fn new(
        store: Arc<Store>,
        net: Option<NetSlot>,
        default_topic: Topic,
        private: crate::private::Private,
    ) -> Self {
        Self {
            store,
            net,
            default_topic,
            private,
        }
    }

    /// A builder with the defaults.
    pub fn builder() -> CoreBuilder {
        CoreBuilder::default()
    }

    /// Rebuilds a damaged index from the segments (which hold everything
    /// appended) and opens the store: the old index is kept aside, and its
    /// path returned. Topic names and other authors' checkpoints come back
    /// from the store's catalog ([`Core::catalog_restored`]).
    pub fn repair(dir: impl AsRef<Path>) -> Result<(Core, Option<PathBuf>), Error> {
        Self::repair_with_progress(dir, &mut |_| {})
    }

    /// [`Core::repair`], calling `progress` after each page replayed.
    pub fn repair_with_progress(
        dir: impl AsRef<Path>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Core, Option<PathBuf>), Error> {
        let (store, moved) = Store::repair_with_progress(dir, StoreOptions::default(), progress)?;
        let default_topic = Topic::new(crate::DEFAULT_TOPIC)?;
        let store = Arc::new(store);
        let private = crate::private::Private::open(&store)?;
        Ok((Core::new(store, None, default_topic, private), moved))
    }

    // ---------------------------------------------------------------- events

    /// The topic [`Core::new_event`] writes to.
    pub fn default_topic(&self) -> &Topic {
        &self.default_topic
    }

    /// An `Application` event for the store's own log in the default topic.
    pub fn new_event(&self, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::application(&self.default_topic, payload.as_ref().to_vec())
    }

    /// An `Application` event for the store's own log in `topic`.
    pub fn new_event_in(&self, topic: &Topic, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::application(topic, payload.as_ref().to_vec())
    }

    /// An `Identity` event (keys, profiles) for the store's own log in `topic`.
    pub fn new_identity_event(&self, topic: &Topic, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::identity(topic, payload.as_ref().to_vec())
    }

    /// A `System` event for the store's own log in `topic`.
    pub fn new_system_event(&self, topic: &Topic, payload: impl AsRef<[u8]>) -> NewEvent {
        NewEvent::system(topic, payload.as_ref().to_vec())
    }

    /// Appends one event; returns once it is durable (or, in the fast
    /// mode, written). Reads started after it returns see the event.
    pub fn append(&self, event: NewEvent) -> Result<Receipt, Error> {
        let event = self.prepare(event)?;
        Ok(self.store.append(event)?)
    }

    /// Hands an event to the writer and returns at once; events submitted
    /// together are group-committed. `wait` on the result for its receipt.
    pub fn submit(&self, event: NewEvent) -> Result<PendingAppend, Error> {
        let event = self.prepare(event)?;
        Ok(self.store.submit(event)?)
    }

    /// Appends many events in one group commit.
    pub fn append_batch(&self, events: Vec<NewEvent>) -> Result<BatchReceipt, Error> {
        // Each private topic is checked once per batch, not per event.
        let mut checked: std::collections::HashMap<TopicId, bool> = Default::default();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let id = e.topic().id();
            match checked.get(&id) {
                Some(&private) => {
                    let sealed = e.is_encrypted() || private;
                    out.push(e.encrypted(sealed));
                }
                None => {
                    let e = self.prepare(e)?;
                    checked.insert(id, self.is_private(&id));
                    out.push(e);
                }
            }
        }
        Ok(self.store.append_batch(out)?)
    }

    /// Makes everything appended so far durable (for the fast mode).
    pub fn sync(&self) -> Result<(), Error> {
        Ok(self.store.sync()?)
    }

    // --------------------------------------------------------------- reading

    /// Every event of the store, page by page in the order written.
    pub fn iter_events(&self) -> Events<'_> {
        Events::all(self.store.iter_events())
    }

    /// One log from `from_seq` on.
    pub fn iter_log(&self, log: &LogId, from_seq: u64) -> Events<'_> {
        Events::log(self.store.iter_log(log, from_seq))
    }

    /// A topic view: every author's log of `topic` merged by (timestamp,
    /// author, seq), in the same order on every replica.
    pub fn iter_topic(&self, topic: &Topic) -> Events<'_> {
        Events::topic(self.store.iter_topic(topic))
    }

    /// The topic view of a topic known by id only.
    pub fn iter_topic_id(&self, topic: &TopicId) -> Events<'_> {
        Events::topic(self.store.iter_topic_id(topic))
    }

    /// The rest of a topic view: each log from the seq `from` gives for it
    /// on (0 for a log not seen yet), merged in the view's order. Keep, per
    /// log, the seq after the last event taken to resume a read where it
    /// stopped, with nothing missed that was replicated in since.
    pub fn iter_topic_from(&self, topic: &TopicId, from: impl Fn(&LogId) -> u64) -> Events<'_> {
        Events::topic(self.store.iter_topic_from(topic, from))
    }

    /// Subscribes to what `filter` selects: the history from `since`, then
    /// each event as it is committed, local or replicated, with no gap and
    /// no duplicate.
    pub fn subscribe(
        &self,
        filter: Filter,
        since: impl Into<Since>,
    ) -> Result<Subscription, Error> {
        Ok(self.store.subscribe(filter, since)?)
    }

    /// Every log the store holds, with its size and root.
    pub fn logs(&self) -> Result<Vec<LogInfo>, Error> {
        Ok(self.store.logs()?)
    }

    /// The logs of one topic (every author's).
    pub fn topic_logs(&self, topic: &TopicId) -> Result<Vec<LogInfo>, Error> {
        Ok(self.store.topic_logs(topic)?)
    }

    /// One log's size and root.
    pub fn log_info(&self, log: &LogId) -> Result<LogInfo, Error> {
        Ok(self.store.log_info(log)?)
    }

    /// Events in a log (0 for a log the store does not hold).
    pub fn log_size(&self, log: &LogId) -> Result<u64, Error> {
        Ok(self.store.log_size(log)?)
    }

    /// The name of a topic id, when the store knows it.
    pub fn topic_name(&self, topic: &TopicId) -> Result<Option<String>, Error> {
        Ok(self.store.topic_name(topic)?)
    }

    // ------------------------------------------------------------- identity

    /// The store's author key.
    pub fn author(&self) -> [u8; 32] {
        self.store.author()
    }

    /// The store's own log in `topic`.
    pub fn own_log(&self, topic: &Topic) -> LogId {
        self.store.own_log(topic)
    }

    /// The store's own log in the default topic.
    pub fn default_log(&self) -> LogId {
        self.store.own_log(&self.default_topic)
    }

    /// The C2SP verifier key of the store's own log in a topic: what anyone
    /// needs to check its checkpoints.
    pub fn verifier_key(&self, topic: &TopicId) -> String {
        self.store.verifier_key(topic)
    }

    // --------------------------------------------------------------- proofs

    /// The root of the store's own log in the default topic, as of the last
    /// commit: what its signed checkpoint commits to, so two replicas (or
    /// an auditor holding the checkpoint) compare it directly. Never fails:
    /// the writer keeps it in memory (a read-only handle reads the index,
    /// falling back to what it saw last). The empty log's root is
    /// `SHA-256("")`.
    pub fn mmr_root(&self) -> Hash {
        self.store.own_head(&self.default_topic.id()).root
    }

    /// The head (size and root) of the store's own log in `topic`.
    pub fn own_head(&self, topic: &Topic) -> LogHead {
        self.store.own_head(&topic.id())
    }

    /// A log's root at its current size.
    pub fn root(&self, log: &LogId) -> Result<Hash, Error> {
        Ok(self.store.mmr_root(log)?)
    }

    /// A log's root at an earlier size.
    pub fn root_at(&self, log: &LogId, size: u64) -> Result<Hash, Error> {
        Ok(self.store.root_at(log, size)?)
    }

    /// An RFC 9162 inclusion proof of event `seq` in the log at `size`.
    pub fn prove_inclusion(
        &self,
        log: &LogId,
        seq: u64,
        size: u64,
    ) -> Result<InclusionProof, Error> {
        Ok(self.store.prove_inclusion(log, seq, size)?)
    }

    /// An RFC 9162 consistency proof between two sizes of a log.
    pub fn prove_consistency(
        &self,
        log: &LogId,
        old: u64,
        new: u64,
    ) -> Result<ConsistencyProof, Error> {
        Ok(self.store.prove_consistency(log, old, new)?)
    }

    /// The latest checkpoint of a log (a C2SP signed note): signed now for
    /// the store's own logs, as received for others'.
    pub fn checkpoint(&self, log: &LogId) -> Result<SignedCheckpoint, Error> {
        Ok(self.store.checkpoint(log)?)
    }

    /// The fork proofs kept: logs whose author signed two heads that
    /// cannot both be true, as peers presented them.
    pub fn forks(&self) -> Result<Vec<ForkProof>, Error> {
        Ok(self.store.forks()?)
    }

    // ---------------------------------------------------------- maintenance

    /// Checks every page, record, root, chunk and stored signature.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        Ok(self.store.verify()?)
    }

    /// [`Core::verify`], calling `progress` after each page checked.
    pub fn verify_with_progress(
        &self,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<VerifyReport, Error> {
        Ok(self.store.verify_with_progress(progress)?)
    }

    /// Sizes of the store.
    pub fn stat(&self) -> Result<Stats, Error> {
        Ok(self.store.stat()?)
    }

    /// Events that recovery found beyond the index when the store opened.
    pub fn recovered_events(&self) -> u64 {
        self.store.recovered_events()
    }

    /// What the open took back from the store's catalog into its index:
    /// topic names and other authors' checkpoints the index had lost.
    pub fn catalog_restored(&self) -> &xaeroflux_store::CatalogRestore {
        self.store.catalog_restored()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Whether the store is open for reading only.
    pub fn is_read_only(&self) -> bool {
        self.store.is_read_only()
    }

    /// Largest payload one event takes (bigger ones belong in the blob store).
    pub fn max_payload_len(&self) -> usize {
        self.store.max_payload_len()
    }

    // ------------------------------------------------------------------ sync

    fn slot(&self) -> Result<&NetSlot, Error> {
        self.net.as_ref().ok_or_else(|| {
            NetError::BackendMissing("open the core with_sync_backends(&[\"iroh\", ...])".into())
                .into()
        })
    }

    /// Runs `f` on the network layer: an error when the core was opened
    /// without sync backends or is paused.
    pub(crate) fn with_net<T>(&self, f: impl FnOnce(&Net) -> Result<T, Error>) -> Result<T, Error> {
        self.slot()?.with(f)
    }

    /// Closes the network layer: no socket, no timer and no thread of it
    /// stays, so a phone can suspend the application. Appends, reads,
    /// proofs and subscriptions go on; [`Core::join`] is remembered for
    /// [`Core::resume`]; what needs the network (tickets, blobs,
    /// [`Core::sync_with`]) is refused with [`NetError::Paused`] until then.
    /// Pausing a paused core does nothing; calls in flight finish first.
    pub fn pause(&self) -> Result<(), Error> {
        self.slot()?.pause();
        Ok(())
    }

    /// Reconnects after [`Core::pause`]: binds again (on the same address
    /// when it is still free, so tickets given out stay good), joins every
    /// topic joined before with its peers, and syncs with them, which
    /// catches up on what was appended on either side meanwhile.
    pub fn resume(&self) -> Result<(), Error> {
        self.slot()?.resume()
    }

    /// Whether the network layer is paused.
    pub fn is_paused(&self) -> bool {
        self.net.as_ref().is_some_and(NetSlot::is_paused)
    }

    /// This node's address as an iroh ticket, for peers to dial.
    pub fn node_ticket(&self) -> Result<String, Error> {
        self.with_net(|n| Ok(n.ticket()))
    }

    /// This node's endpoint id, stable across restarts.
    pub fn endpoint_id(&self) -> Result<String, Error> {
        self.with_net(|n| Ok(n.endpoint_id()))
    }

    /// Joins `topic` with `peers` (iroh tickets, `ID@IP:PORT`, or endpoint
    /// ids): from then on the topic's logs and the peers' converge in the
    /// background. Sync events go to the [`crate::SYNC_TOPIC`] topic as
    /// `System` events.
    pub fn join<S: AsRef<str>>(&self, topic: &Topic, peers: &[S]) -> Result<(), Error> {
        if xaeroflux_e2e::parse_topic_name(topic.name()).is_some() {
            self.private.register(&self.store, topic.name(), true)?;
        }
        let peers = parse_peers(peers)?;
        self.slot()?.join(topic, &peers)
    }

    /// How far the iroh sessions running now have come (a catch-up's
    /// progress: events received of those wanted, bytes).
    pub fn pull_progress(&self) -> Result<crate::PullProgress, Error> {
        self.with_net(|n| Ok(n.pull_progress()))
    }

    /// What the iroh sessions that ended have moved, summed, since the
    /// network layer last started (a pause and resume starts it again).
    pub fn sync_traffic(&self) -> Result<crate::Traffic, Error> {
        self.with_net(|n| Ok(n.traffic()))
    }

    /// Runs one XSP session with `peer` over iroh now, over every joined
    /// topic, and returns what moved.
    pub fn sync_with(&self, peer: &str) -> Result<Outcome, Error> {
        let peer: Peer = peer.parse()?;
        self.with_net(|n| Ok(n.sync_with(&peer)?))
    }

    /// Runs one XSP session over a TCP connection (either end: the side
    /// that dialed and the side that accepted run the same protocol),
    /// restricted to `topics` when any are given; `timeout` bounds how
    /// long the peer may stay silent.
    pub fn sync_over_tcp(
        &self,
        stream: TcpStream,
        topics: &[Topic],
        timeout: Duration,
    ) -> Result<Outcome, Error> {
        self.sync_over_tcp_with_progress(stream, topics, timeout, &mut |_| {})
    }

    /// [`Core::sync_over_tcp`], calling `progress` whenever more has moved
    /// (events received of those wanted, bytes received: what a progress
    /// bar shows).
    pub fn sync_over_tcp_with_progress(
        &self,
        stream: TcpStream,
        topics: &[Topic],
        timeout: Duration,
        progress: &mut dyn FnMut(&Outcome),
    ) -> Result<Outcome, Error> {
        let config = SessionConfig::default().with_topics(topics.iter().cloned());
        let mut opts = xaeroflux_sync::driver::RunOptions::new(timeout);
        opts.progress = Some(progress);
        Ok(xaeroflux_sync::driver::run_tcp_with(
            &*self.store,
            config,
            stream,
            opts,
        )?)
    }

    /// Serves XSP sessions over TCP on `server` until its
    /// [`Stopper`](xaeroflux_sync::serve::Stopper) stops it: a handshake
    /// deadline and caps on handshakes and sessions (in all and per
    /// address) keep silent or greedy peers from holding it
    /// ([`ServeLimits`](xaeroflux_sync::serve::ServeLimits)). `report`
    /// hears of each connection's end, from the sessions' threads.
    pub fn serve_tcp(
        &self,
        server: &xaeroflux_sync::serve::TcpServer,
        report: &(dyn Fn(xaeroflux_sync::serve::ServeEvent) + Sync),
    ) {
        server.run(&*self.store, &|_| SessionConfig::default(), report);
    }

    /// Stores a large payload in the blob store and appends an event that
    /// references it (BLAKE3 hash and size); peers fetch it, verified.
    ///
    /// In a private topic the blob is encrypted first with a key of its
    /// own, which travels in the sealed event that references it; the blob
    /// store (this one, a relay's, a member's) holds only the ciphertext,
    /// whose reference the returned [`BlobRef`] is. Read it back with
    /// [`Core::read_event_blob`].
    pub fn append_blob<'a>(
        &self,
        topic: &Topic,
        source: impl Into<BlobSource<'a>>,
    ) -> Result<(Receipt, BlobRef), Error> {
        let private = self.private_if_any(topic)?;
        let source = source.into();
        self.with_net(|net| match &private {
            Some(t) => self.append_private_blob(net, t, topic, source),
            None => Ok(net.append_blob(topic, source)?),
        })
    }

    /// A blob's bytes once held whole (fetched and verified), else `None`.
    pub fn read_blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>, Error> {
        self.with_net(|n| Ok(n.read_blob(hash)?))
    }

    /// Waits, at most `timeout`, until a blob is held whole.
    pub fn wait_for_blob(&self, hash: &BlobHash, timeout: Duration) -> Result<bool, Error> {
        self.with_net(|n| Ok(n.wait_for_blob(hash, timeout)?))
    }

    /// Stops the sync backends, commits what is queued, syncs and closes
    /// the store. An error says why it could not: the writer had stopped
    /// after an error (which is reported), or something the application
    /// holds still keeps the store open.
    pub fn close(mut self) -> Result<(), Error> {
        if let Some(net) = self.net.take() {
            net.pause();
        }
        let store = self.store.clone();
        drop(self);
        match Arc::try_unwrap(store) {
            Ok(store) => Ok(store.close()?),
            Err(store) => Err(Error::InUse(format!(
                "{} other handles to the store remain; it closes when they are dropped",
                Arc::strong_count(&store) - 1
            ))),
        }
    }
}

fn parse_peers<S: AsRef<str>>(peers: &[S]) -> Result<Vec<Peer>, Error> {
    Ok(peers
        .iter()
        .map(|p| p.as_ref().parse::<Peer>())
        .collect::<Result<Vec<_>, _>>()?)
}

impl Drop for Core {
    fn drop(&mut self) {
        if let Some(net) = self.net.take() {
            net.pause();
        }
    }
}
