//! The XSP session state machine: bytes in, bytes out; store reads through
//! [`SyncStore`], store writes as [`Action`]s whose results come back
//! through [`Session::complete`]. No I/O of its own, and it never waits.

use std::collections::{HashMap, HashSet, VecDeque};

use xaeroflux_merkle::{Hash, NoteVerifier, verify_consistency};
use xaeroflux_types::{ForkSide, ImportPage, LogId, Topic, TopicId};

use crate::codec::Decoder;
use crate::codec::{
    DiffEntry, ErrorCode, MAX_EVENTS, Message, PageRequest, PageResponse, PeakEntry, TopicEntry,
    VERSION, caps,
};
use crate::{PullClaims, StoreFault, SyncError};

/// Which events of a log to read: seqs `from..to`, stopping once
/// `max_bytes` are taken (a page always holds at least one event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRange {
    /// First seq.
    pub from: u64,
    /// End of the range (exclusive).
    pub to: u64,
    /// Bytes after which no more events are taken.
    pub max_bytes: usize,
}

impl EventRange {
    /// Takes the range's events from `events`, `(seq, canonical bytes)` in
    /// seq order starting at or before `from`.
    pub fn take<'a, E>(
        &self,
        events: impl IntoIterator<Item = Result<(u64, &'a [u8]), E>>,
    ) -> Result<Vec<Vec<u8>>, E> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for ev in events {
            let (seq, b) = ev?;
            if seq < self.from {
                continue;
            }
            if seq >= self.to || (bytes >= self.max_bytes && !out.is_empty()) {
                break;
            }
            bytes += b.len() + 4;
            out.push(b.to_vec());
        }
        Ok(out)
    }
}

/// A write a session asks of its store. The session never waits for it:
/// it goes on with its messages, and the driver tells it the result with
/// [`Session::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Verify a page of another author's log and commit it. The result is
    /// the number of events the store did not hold before.
    Import(ImportPage),
    /// Keep fork evidence: `theirs`, a checkpoint by the log's author that
    /// disagrees with what the store holds, with the peer's tree at a size
    /// when it sent it.
    RecordFork {
        /// The log.
        log: LogId,
        /// The peer's checkpoint note.
        theirs: String,
        /// The peer's tree at a size, when it sent it.
        their_side: Option<(u64, ForkSide)>,
    },
}

/// A store write the session asked for, with the token that names it in
/// [`Session::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Names this action when its result comes back.
    pub token: u64,
    /// The write.
    pub op: StoreOp,
}

/// Called once with the result of a [`StoreOp`].
pub type Done = Box<dyn FnOnce(Result<u64, StoreFault>) + Send>;

/// What a session needs from a store: snapshot reads, which never wait on
/// the store's writer, and a way to start writes. `xaeroflux_store::Store`
/// implements it; tests implement it in memory or to inject faults.
pub trait SyncStore {
    /// The store's author key (its node id).
    fn author(&self) -> [u8; 32];
    /// Every topic the store holds a log in, with its name when known.
    fn topics(&self) -> Result<Vec<TopicEntry>, StoreFault>;
    /// The logs of a topic the store can serve, each with its latest
    /// checkpoint (which covers events the store holds).
    fn peaks(&self, topic: &TopicId) -> Result<Vec<PeakEntry>, StoreFault>;
    /// Events held in a log (0 if none).
    fn log_size(&self, log: &LogId) -> Result<u64, StoreFault>;
    /// The log's root at a size it holds.
    fn root_at(&self, log: &LogId, size: u64) -> Result<Hash, StoreFault>;
    /// Canonical encodings of the events of `range` (see [`EventRange`]).
    fn read_events(&self, log: &LogId, range: EventRange) -> Result<Vec<Vec<u8>>, StoreFault>;
    /// RFC 9162 consistency proof between two sizes the store holds.
    fn prove_consistency(&self, log: &LogId, old: u64, new: u64) -> Result<Vec<Hash>, StoreFault>;
    /// Starts a write and calls `done` with its result exactly once, from
    /// any thread. A store with a writer thread of its own returns at once,
    /// so that a driver goes on with its other sessions while the write is
    /// made durable. Writes must be applied in the order they are started.
    fn start(&self, op: StoreOp, done: Done);
    /// The pulls in progress into this store, shared by all its sessions
    /// (see [`PullClaims`]): a store that runs sessions side by side
    /// returns its own, so that a log several peers offer at once is
    /// pulled once. `None` (the default): no coordination.
    fn pull_claims(&self) -> Option<&PullClaims> {
        None
    }
    /// A log's latest checkpoint, as [`SyncStore::peaks`] lists it (`None`
    /// when the store cannot serve the log): what a live session announces
    /// when the driver says the log has grown. The default looks it up in
    /// the topic's peaks; a store with a direct lookup overrides it.
    fn checkpoint_of(&self, log: &LogId) -> Result<Option<PeakEntry>, StoreFault> {
        Ok(self
            .peaks(&log.topic)?
            .into_iter()
            .find(|e| e.author == log.author))
    }
}

/// Bytes of output a session queues before `receive` stops acting on the
/// peer's further messages (they stay buffered, see
/// [`Session::input_paused`]): with one answer at most a page
/// ([`SessionConfig::page_bytes`]) and its proofs, the output not yet taken
/// stays below this plus one answer.
pub const OUTPUT_PAUSE: usize = 4 << 20;

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Topics to sync; empty: every topic either side holds.
    pub topics: Vec<Topic>,
    /// Most events asked for per page.
    pub page_events: u32,
    /// Most bytes of events served per page.
    pub page_bytes: usize,
    /// Page requests kept in flight.
    pub window: usize,
    /// Offer `SUMMARY` (see [`caps::SUMMARY`]): topics with many logs
    /// then list only the logs that differ. Off only to measure against,
    /// or to act as a peer that predates it.
    pub summaries: bool,
    /// Offer live mode ([`caps::LIVE`]): when both sides do, the session
    /// stays open after both `SYNC_DONE`s, each side announces the new
    /// checkpoints the driver tells it of ([`Session::announce`]) with
    /// `CHECKPOINT`, and the other pulls them at once. Off by default: a
    /// session then ends once both sides are done.
    pub live: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            page_events: 4096,
            page_bytes: 1 << 20,
            window: 4,
            summaries: true,
            live: false,
        }
    }
}

impl SessionConfig {
    /// Only these topics.
    pub fn with_topics(mut self, topics: impl IntoIterator<Item = Topic>) -> Self {
        self.topics = topics.into_iter().collect();
        self
    }

    /// Live mode on (see [`SessionConfig::live`]).
    pub fn with_live(mut self) -> Self {
        self.live = true;
        self
    }
}

/// What a session moved, and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Logs this side pulled events of.
    pub logs_in: u64,
    /// Events received, verified and committed.
    pub events_in: u64,
    /// Events that arrived in pages, whether the store held them already
    /// or not: above `events_in`, what crossed the network for nothing.
    pub events_received: u64,
    /// Events this side set out to pull (what its `DIFF` asks for), known
    /// once the peer's `PEAKS` are in: with `events_in`, how far a
    /// catch-up has come.
    pub events_wanted: u64,
    /// Events served to the peer.
    pub events_out: u64,
    /// Pages received and committed.
    pub pages_in: u64,
    /// Pages served.
    pub pages_out: u64,
    /// Bytes received (frames included).
    pub bytes_in: u64,
    /// Bytes sent (frames included).
    pub bytes_out: u64,
    /// Topics both sides agreed on.
    pub topics: u64,
    /// Logs whose peer checkpoint was inconsistent with what this store
    /// holds (not extended from this peer).
    pub forks: Vec<LogId>,
    /// Logs the peer had more of, left to another session of this store
    /// that was pulling them already (see [`PullClaims`]): a driver syncs
    /// with this peer again soon, in case that pull stops short.
    pub deferred: u64,
    /// Live mode: `CHECKPOINT`s this side sent.
    pub checkpoints_out: u64,
    /// Live mode: `CHECKPOINT`s the peer sent.
    pub checkpoints_in: u64,
    /// The session went live (both sides offered live mode and finished
    /// the catch-up).
    pub live: bool,
    /// The error that ended the session, if one did.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hello,
    Peaks,
    Syncing,
    /// Both sides are done and both offered live mode: new checkpoints are
    /// announced and pulled until either side closes.
    Live,
    Done,
    Failed,
}

struct Pull {
    log: LogId,
    next: u64,
    to: u64,
    note: String,
    /// Requests for it not yet answered.
    requested_to: u64,
    moved: bool,
    /// A short page arrived while later requests were in flight: their
    /// answers no longer line up and are dropped until none is left.
    discarding: bool,
    /// The store holds events of this log: the first request also asks for
    /// the server's root at that size, to tell a fork from a lie; nothing
    /// more is requested until it is answered.
    probe: bool,
    /// The checkpoint's root.
    root: Hash,
}

/// One side of an XSP session.
pub struct Session<'s, S: SyncStore + ?Sized> {
    store: &'s S,
    /// Names this session's pull claims.
    id: u64,
    config: SessionConfig,
    decoder: Decoder,
    out: Vec<u8>,
    /// `receive` stopped with whole messages still buffered, because the
    /// output reached [`OUTPUT_PAUSE`].
    paused: bool,
    phase: Phase,
    /// Topics agreed on, and which have their PEAKS from the peer.
    shared: Vec<TopicId>,
    names: HashMap<TopicId, String>,
    peaks_seen: HashSet<TopicId>,
    peer_hello: bool,
    /// This side's PEAKS entries per topic, computed once.
    my_peaks: HashMap<TopicId, Vec<PeakEntry>>,
    /// The peer's digest per topic, from its HELLO.
    peer_digests: HashMap<TopicId, Hash>,
    /// The peer's capability bits, from its HELLO.
    peer_caps: u32,
    /// Topics this side has sent its `PEAKS` for (a topic it summed up in
    /// a `SUMMARY` gets its `PEAKS` once this side knows what differs).
    peaks_sent: HashSet<TopicId>,
    /// Topics the peer summed up: its `PEAKS` for them holds only the
    /// buckets that differ.
    peer_summarized: HashSet<TopicId>,
    /// The checkpoint size this side announced per log: all it serves.
    announced: HashMap<LogId, u64>,
    peer_diff: Option<HashMap<LogId, (u64, u64)>>,
    /// What this side pulls, in order.
    pulls: VecDeque<Pull>,
    /// Outstanding requests: (index into pulls by log, from, to).
    in_flight: VecDeque<(LogId, u64)>,
    /// Store writes asked for and not yet handed to the driver.
    actions: VecDeque<Action>,
    /// Store writes handed out whose result has not come back, by token.
    pending: HashMap<u64, Pending>,
    next_token: u64,
    sent_done: bool,
    peer_done: bool,
    outcome: Outcome,
    /// Live mode: the largest size of each log the peer is known to hold
    /// or be pulling (from its `PEAKS`, `DIFF` and `CHECKPOINT`s), so that
    /// nothing it has is announced back to it.
    peer_sizes: HashMap<LogId, u64>,
    /// Live mode: logs the driver announced before the session went live.
    to_announce: Vec<LogId>,
    /// Live mode: the newest checkpoint the peer announced for a log still
    /// being pulled, pulled once that pull is done.
    later: HashMap<LogId, PeakEntry>,
    /// Live mode: the peer closed the stream; the session ends once the
    /// store writes it started are done, and sends nothing more.
    peer_gone: bool,
}

/// A store write whose result the session waits for.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// A page of `log` that started at `from`.
    Import { log: LogId },
    /// Fork evidence of a log.
    Fork,
}

impl<'s, S: SyncStore + ?Sized> Session<'s, S> {
    /// A session on `store`; its `HELLO` is ready in [`Session::take_output`].
    pub fn new(store: &'s S, config: SessionConfig) -> Result<Self, SyncError> {
        let mut s = Self {
            store,
            id: crate::claims::next_owner(),
            config,
            decoder: Decoder::new(),
            out: Vec::new(),
            paused: false,
            phase: Phase::Hello,
            shared: Vec::new(),
            names: HashMap::new(),
            peaks_seen: HashSet::new(),
            peer_hello: false,
            my_peaks: HashMap::new(),
            peer_digests: HashMap::new(),
            peer_caps: 0,
            peaks_sent: HashSet::new(),
            peer_summarized: HashSet::new(),
            announced: HashMap::new(),
            peer_diff: None,
            pulls: VecDeque::new(),
            in_flight: VecDeque::new(),
            actions: VecDeque::new(),
            pending: HashMap::new(),
            next_token: 0,
            sent_done: false,
            peer_done: false,
            outcome: Outcome::default(),
            peer_sizes: HashMap::new(),
            to_announce: Vec::new(),
            later: HashMap::new(),
            peer_gone: false,
        };
        let all = s.config.topics.is_empty();
        let mut topics = s.my_topics()?;
        for t in &mut topics {
            t.digest = digest(&s.peaks_of(&t.id)?);
        }
        s.send(&Message::Hello {
            version: VERSION,
            node_id: s.store.author(),
            caps: caps::SYNC
                | if s.config.summaries { caps::SUMMARY } else { 0 }
                | if s.config.live { caps::LIVE } else { 0 },
            all_topics: all,
            topics,
        })?;
        Ok(s)
    }

    /// This side's PEAKS entries for a topic (computed once per session).
    fn peaks_of(&mut self, topic: &TopicId) -> Result<Vec<PeakEntry>, SyncError> {
        if let Some(p) = self.my_peaks.get(topic) {
            return Ok(p.clone());
        }
        let p = self.store.peaks(topic)?;
        self.my_peaks.insert(*topic, p.clone());
        Ok(p)
    }

    /// The topics this side lists in its `HELLO`: those configured, or
    /// (wanting every topic) those its store holds.
    fn my_topics(&self) -> Result<Vec<TopicEntry>, SyncError> {
        if self.config.topics.is_empty() {
            return Ok(self.store.topics()?);
        }
        Ok(self
            .config
            .topics
            .iter()
            .map(|t| TopicEntry {
                id: t.id(),
                // A private topic's name never goes on the wire.
                name: if xaeroflux_types::is_private_name(t.name()) {
                    String::new()
                } else {
                    t.name().to_string()
                },
                digest: [0; 32],
            })
            .collect())
    }

    fn send(&mut self, msg: &Message) -> Result<(), SyncError> {
        let before = self.out.len();
        msg.encode(&mut self.out)?;
        self.outcome.bytes_out += (self.out.len() - before) as u64;
        Ok(())
    }

    /// Bytes to send to the peer now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Store writes to start now, in order (see [`SyncStore::start`]).
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.actions.drain(..).collect()
    }

    /// Store writes started and not yet completed.
    pub fn pending_actions(&self) -> usize {
        self.pending.len()
    }

    fn act(&mut self, op: StoreOp, pending: Pending) {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(token, pending);
        self.actions.push_back(Action { token, op });
    }

    /// The result of the action `token`: for an import, the number of
    /// events the store did not hold before. A refusal or failure ends the
    /// session (an `ERROR` for the peer is queued); otherwise the session
    /// goes on, asking for more pages or finishing.
    pub fn complete(
        &mut self,
        token: u64,
        result: Result<u64, StoreFault>,
    ) -> Result<(), SyncError> {
        if self.phase == Phase::Failed {
            return Ok(());
        }
        let Some(what) = self.pending.remove(&token) else {
            return Err(self.fail(SyncError::Internal(format!(
                "a result for store action {token}, which is not pending"
            ))));
        };
        let r = match (what, result) {
            (Pending::Import { log }, Ok(imported)) => {
                self.imported(log, imported);
                self.release_if_pulled(&log);
                self.request_more().and_then(|()| self.maybe_finish())
            }
            // Held events with no checkpoint of our own reached yet (an
            // interrupted pull): the disagreement is noted, not provable.
            (Pending::Fork, Ok(_) | Err(StoreFault::NoCheckpoint(_))) => self.maybe_finish(),
            (_, Err(StoreFault::Rejected(why))) => Err(SyncError::Rejected(why.to_string())),
            (_, Err(e)) => Err(SyncError::Store(e)),
        };
        r.map_err(|e| self.fail(e))
    }

    /// Counts a committed page.
    fn imported(&mut self, log: LogId, imported: u64) {
        self.outcome.events_in += imported;
        self.outcome.pages_in += 1;
        if let Some(p) = self.pulls.iter_mut().find(|p| p.log == log)
            && !p.moved
            && imported > 0
        {
            p.moved = true;
            self.outcome.logs_in += 1;
        }
    }

    /// Ends this session's claim on `log` once all of it is pulled and
    /// committed.
    fn release_if_pulled(&self, log: &LogId) {
        let Some(claims) = self.store.pull_claims() else {
            return;
        };
        if !self.pulling(log) {
            claims.release(self.id, log);
        }
    }

    /// Imports asked for and not yet completed.
    fn pending_imports(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p, Pending::Import { .. }))
            .count()
    }

    /// Whether `receive` left messages unread because the output not yet
    /// taken reached [`OUTPUT_PAUSE`]: once the driver has taken the
    /// output (and its writer has room), it calls `receive(&[])` to go on.
    pub fn input_paused(&self) -> bool {
        // A session that has ended reads nothing more, paused or not.
        self.paused && !self.is_finished()
    }

    /// Whether the peer's `HELLO` has arrived (the handshake is done).
    pub fn peer_said_hello(&self) -> bool {
        self.peer_hello
    }

    /// Whether the session has ended, well or not.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    /// Whether the session is live: both sides offered live mode and both
    /// are done with the catch-up ([`SessionConfig::live`]).
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Whether the session is live with nothing under way: no request out,
    /// no page waiting for the store, no pull left. A driver applies no
    /// idle timeout then (a live session may stay quiet for as long as
    /// nothing new happens), and ends it there when asked to.
    pub fn live_idle(&self) -> bool {
        self.phase == Phase::Live
            && self.in_flight.is_empty()
            && self.pending.is_empty()
            && self.later.is_empty()
            && self.pulls.iter().all(|p| p.next >= p.to)
    }

    /// Live mode: `log` has a new checkpoint in this store (an append to
    /// one of its own logs, or a pull from any peer). Once the session is
    /// live, a `CHECKPOINT` goes to the peer when the log is in a shared
    /// topic and the peer is not known to hold that size already; before,
    /// the log waits until the session goes live. Does nothing in a
    /// session that is not (or will not be) live, or has ended.
    pub fn announce(&mut self, log: LogId) -> Result<(), SyncError> {
        match self.phase {
            Phase::Live if self.peer_gone => Ok(()),
            Phase::Live => self.announce_now(log).map_err(|e| self.fail(e)),
            Phase::Done | Phase::Failed => Ok(()),
            _ if !self.config.live => Ok(()),
            _ => {
                if !self.to_announce.contains(&log) {
                    self.to_announce.push(log);
                }
                Ok(())
            }
        }
    }

    /// Ends a live session on this side (the driver then closes the
    /// stream; the peer's session ends well when it sees the close). Pages
    /// already committed stay; a pull under way stops there, and the next
    /// session resumes it.
    pub fn end_live(&mut self) {
        if self.phase == Phase::Live {
            self.phase = Phase::Done;
            self.release_claims();
        }
    }

    /// What the session has done so far.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Ends the session with `err`: an `ERROR` for the peer is queued (when
    /// the error is not the peer's own), and the error is returned.
    pub fn fail(&mut self, err: SyncError) -> SyncError {
        if self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            self.release_claims();
            self.outcome.error = Some(err.to_string());
            if !matches!(err, SyncError::Peer { .. } | SyncError::Closed) {
                let _ = self.send(&Message::Error {
                    code: err.code(),
                    reason: err.to_string(),
                });
            }
        }
        err
    }

    /// Takes bytes from the peer and acts on every complete message. On an
    /// error the session is over and an `ERROR` is queued for the peer.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), SyncError> {
        if self.phase == Phase::Failed {
            return Err(SyncError::Protocol("the session has failed".into()));
        }
        self.outcome.bytes_in += bytes.len() as u64;
        self.decoder.feed(bytes);
        loop {
            // A peer that sends thousands of requests in one read must not
            // get thousands of answers queued at once.
            if self.out.len() >= OUTPUT_PAUSE {
                self.paused = true;
                return Ok(());
            }
            let msg = match self.decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => {
                    self.paused = false;
                    return Ok(());
                }
                Err(e) => return Err(self.fail(e)),
            };
            if let Err(e) = self.handle(msg) {
                return Err(self.fail(e));
            }
        }
    }

    /// The peer closed the stream: fine once the session is done. A live
    /// session ends then too, once the pages it handed to the store are
    /// committed (their results still count); nothing more is asked for.
    pub fn peer_closed(&mut self) -> Result<(), SyncError> {
        if self.phase == Phase::Live {
            self.peer_gone = true;
            if self.pending.is_empty() {
                self.end_live();
            }
            return Ok(());
        }
        if self.phase == Phase::Done {
            Ok(())
        } else {
            Err(self.fail(SyncError::Closed))
        }
    }

    fn handle(&mut self, msg: Message) -> Result<(), SyncError> {
        if self.phase == Phase::Done {
            return Err(SyncError::Protocol(format!(
                "{} after the session ended",
                msg.name()
            )));
        }
        match msg {
            Message::Hello {
                version,
                caps,
                all_topics,
                topics,
                ..
            } => {
                self.peer_caps = caps;
                self.on_hello(version, all_topics, topics)
            }
            Message::Peaks { topic, logs } => self.on_peaks(topic, logs),
            Message::Summary { topic, buckets } => self.on_summary(topic, buckets),
            Message::Diff { wants } => self.on_diff(wants),
            Message::PageRequest(req) => self.serve(req),
            Message::PageResponse(page) => self.take_page(page),
            Message::SyncDone => {
                if self.peer_diff.is_none() || self.peer_done {
                    return Err(SyncError::Protocol(
                        "SYNC_DONE before DIFF, or twice".into(),
                    ));
                }
                self.peer_done = true;
                self.maybe_finish()
            }
            Message::Checkpoint { log, note } if self.phase == Phase::Live => {
                self.on_checkpoint(log, note)
            }
            Message::Checkpoint { .. } => Err(SyncError::Protocol(
                "CHECKPOINT in a session that is not live (or before both SYNC_DONEs)".into(),
            )),
            Message::Error { code, reason } => Err(SyncError::Peer { code, reason }),
        }
    }

    /// The peer's HELLO: agree on topics, then send this side's PEAKS for
    /// each (empty where both sides' digests match).
    fn on_hello(
        &mut self,
        version: u16,
        all_topics: bool,
        topics: Vec<TopicEntry>,
    ) -> Result<(), SyncError> {
        if self.peer_hello {
            return Err(SyncError::Protocol("a second HELLO".into()));
        }
        if version != VERSION {
            return Err(SyncError::Version(version));
        }
        self.peer_hello = true;
        self.agree_topics(all_topics, topics)?;
        self.phase = Phase::Peaks;
        let summaries = self.config.summaries && self.peer_caps & caps::SUMMARY != 0;
        for topic in self.shared.clone() {
            let logs = self.peaks_of(&topic)?;
            let mine = digest(&logs);
            if mine != [0; 32] && self.peer_digests.get(&topic) == Some(&mine) {
                // Both hold the same heads: nothing to tell.
                self.send_peaks(topic, Vec::new())?;
            } else if summaries && logs.len() >= SUMMARY_MIN_LOGS {
                // Many logs: tell which buckets hold what, then list only
                // the logs of buckets that differ.
                let buckets = bucket_digests(&logs, bucket_count(logs.len()));
                self.send(&Message::Summary { topic, buckets })?;
            } else {
                self.send_peaks(topic, logs)?;
            }
        }
        self.maybe_diff()
    }

    /// Sends this side's `PEAKS` for a topic; what it lists is all this
    /// side serves of it.
    fn send_peaks(&mut self, topic: TopicId, logs: Vec<PeakEntry>) -> Result<(), SyncError> {
        for e in &logs {
            let log = LogId {
                author: e.author,
                topic,
            };
            self.announced.insert(log, e.size);
        }
        self.peaks_sent.insert(topic);
        self.send(&Message::Peaks { topic, logs })
    }

    /// The peer summed up a topic's logs: answer with this side's logs in
    /// the buckets that differ (unless this side listed them all already).
    fn on_summary(&mut self, topic: TopicId, buckets: Vec<[u8; 8]>) -> Result<(), SyncError> {
        if self.phase != Phase::Peaks {
            return Err(SyncError::Protocol(
                "SUMMARY before HELLO or after DIFF".into(),
            ));
        }
        if !self.shared.contains(&topic)
            || self.peaks_seen.contains(&topic)
            || !self.config.summaries
            || !self.peer_summarized.insert(topic)
        {
            return Err(SyncError::Protocol(format!(
                "SUMMARY for topic {} that was not agreed on or offered, after its PEAKS, or twice",
                hex(&topic.0)
            )));
        }
        if self.peaks_sent.contains(&topic) {
            return Ok(());
        }
        let mine = self.peaks_of(&topic)?;
        let ours = bucket_digests(&mine, buckets.len());
        let n = buckets.len();
        let differ: Vec<PeakEntry> = mine
            .into_iter()
            .filter(|e| {
                let b = bucket_of(&e.author, n);
                ours.get(b) != buckets.get(b)
            })
            .collect();
        self.send_peaks(topic, differ)
    }

    /// The peer's logs of one shared topic.
    fn on_peaks(&mut self, topic: TopicId, logs: Vec<PeakEntry>) -> Result<(), SyncError> {
        if self.phase != Phase::Peaks {
            return Err(SyncError::Protocol(
                "PEAKS before HELLO or after DIFF".into(),
            ));
        }
        if !self.shared.contains(&topic) || !self.peaks_seen.insert(topic) {
            return Err(SyncError::Protocol(format!(
                "PEAKS for topic {} that was not agreed on, or twice",
                hex(&topic.0)
            )));
        }
        // An entry equal to this side's own (same checkpoint note, same
        // size) needs nothing: that note was verified when it was stored.
        // Skipping its signature check keeps a session between two peers
        // that differ in one log of many from verifying all of them.
        let mine = self.peaks_of(&topic)?;
        let same: HashMap<&[u8; 32], (&str, u64)> = mine
            .iter()
            .map(|e| (&e.author, (e.note.as_str(), e.size)))
            .collect();
        // This side summed the topic up and the peer listed all its logs
        // instead: answer with what differs from that list.
        let answer = !self.peaks_sent.contains(&topic) && !self.peer_summarized.contains(&topic);
        let mut theirs: HashMap<[u8; 32], (String, u64)> = HashMap::new();
        for entry in logs {
            let log = LogId {
                author: entry.author,
                topic,
            };
            self.peer_knows(log, entry.size);
            if answer {
                theirs.insert(entry.author, (entry.note.clone(), entry.size));
            }
            if same.get(&entry.author) == Some(&(entry.note.as_str(), entry.size)) {
                continue;
            }
            self.consider(topic, entry)?;
        }
        if answer {
            let differ: Vec<PeakEntry> = mine
                .into_iter()
                .filter(|e| {
                    theirs
                        .get(&e.author)
                        .is_none_or(|(note, size)| *note != e.note || *size != e.size)
                })
                .collect();
            self.send_peaks(topic, differ)?;
        }
        self.maybe_diff()
    }

    /// What the peer will pull: all this side may be asked for.
    fn on_diff(&mut self, wants: Vec<DiffEntry>) -> Result<(), SyncError> {
        if self.peer_diff.is_some() || self.peaks_seen.len() != self.shared.len() {
            return Err(SyncError::Protocol(
                "DIFF before the PEAKS, or twice".into(),
            ));
        }
        let mut m = HashMap::with_capacity(wants.len());
        for w in wants {
            self.peer_knows(w.log, w.to);
            m.insert(w.log, (w.from, w.to));
        }
        self.peer_diff = Some(m);
        self.maybe_finish()
    }

    fn agree_topics(&mut self, peer_all: bool, peer: Vec<TopicEntry>) -> Result<(), SyncError> {
        let mine_all = self.config.topics.is_empty();
        let mine = self.my_topics()?;
        for t in &peer {
            self.peer_digests.insert(t.id, t.digest);
        }
        for t in mine.iter().chain(peer.iter()) {
            if !t.name.is_empty() && Topic::id_of(&t.name) == t.id {
                self.names.entry(t.id).or_insert_with(|| t.name.clone());
            }
        }
        let ids = |v: &[TopicEntry]| {
            v.iter()
                .map(|t| t.id)
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (a, b) = (ids(&mine), ids(&peer));
        let shared: std::collections::BTreeSet<TopicId> = match (mine_all, peer_all) {
            (true, true) => a.union(&b).copied().collect(),
            (true, false) => b,
            (false, true) => a,
            (false, false) => a.intersection(&b).copied().collect(),
        };
        self.shared = shared.into_iter().collect();
        self.outcome.topics = self.shared.len() as u64;
        Ok(())
    }

    /// One of the peer's logs: check its checkpoint, and pull what this
    /// store lacks.
    fn consider(&mut self, topic: TopicId, entry: PeakEntry) -> Result<(), SyncError> {
        let log = LogId {
            author: entry.author,
            topic,
        };
        let held = self.store.log_size(&log)?;
        if entry.size <= held && self.holds(&log, &entry)? {
            return Ok(());
        }
        let verifier = NoteVerifier::new(&log.origin(), &log.author)
            .map_err(|e| SyncError::Rejected(format!("log {log}: author key: {e}")))?;
        let cp = verifier.verify_checkpoint(&entry.note).map_err(|e| {
            SyncError::Rejected(format!(
                "log {log}: the checkpoint is not signed by the log's author: {e}"
            ))
        })?;
        if cp.size != entry.size || cp.origin != log.origin() {
            return Err(SyncError::Rejected(format!(
                "log {log}: the checkpoint says size {} for {}, the peer claims {}",
                cp.size, cp.origin, entry.size
            )));
        }
        if cp.size <= held {
            // Nothing to pull; a checkpoint that disagrees with what is held
            // (both signed by the author) is a fork.
            if cp.size > 0 && self.store.root_at(&log, cp.size)? != cp.root {
                self.fork(log, &entry.note, None)?;
            }
            return Ok(());
        }
        if log.author == self.store.author() {
            // Someone holds a longer version of this store's own log.
            self.fork(log, &entry.note, None)?;
            return Ok(());
        }
        if self.pulls.iter().any(|p| p.log == log) {
            return Err(SyncError::Protocol(format!("log {log} listed twice")));
        }
        if let Some(claims) = self.store.pull_claims()
            && !claims.claim(self.id, &log)
        {
            // Another session pulls it now: the pages come once.
            self.outcome.deferred += 1;
            return Ok(());
        }
        self.pulls.push_back(Pull {
            log,
            next: held,
            to: cp.size,
            note: entry.note,
            requested_to: held,
            moved: false,
            discarding: false,
            probe: held > 0,
            root: cp.root,
        });
        Ok(())
    }

    /// Whether the peer's entry names a version of the log this store
    /// already holds (same origin, a size it has, the root it has there).
    /// Such an entry asks for neither a pull nor a fork, so its signature
    /// is not checked: in a mesh most entries a peer lists are older or
    /// equal versions of logs this side has, and verifying each of them in
    /// every session is most of a large mesh's work. Nothing of the entry
    /// is kept.
    fn holds(&self, log: &LogId, entry: &PeakEntry) -> Result<bool, SyncError> {
        let Ok(cp) = xaeroflux_merkle::peek_checkpoint(&entry.note) else {
            return Ok(false); // malformed: the verification below says why
        };
        if cp.size != entry.size || cp.origin != log.origin() {
            return Ok(false);
        }
        if cp.size == 0 {
            return Ok(cp.root == xaeroflux_merkle::EMPTY_ROOT);
        }
        Ok(self.store.root_at(log, cp.size)? == cp.root)
    }

    /// Keeps the fork proof; the log is not extended from this peer.
    fn fork(
        &mut self,
        log: LogId,
        theirs: &str,
        their_side: Option<(u64, ForkSide)>,
    ) -> Result<(), SyncError> {
        self.act(
            StoreOp::RecordFork {
                log,
                theirs: theirs.to_string(),
                their_side,
            },
            Pending::Fork,
        );
        self.outcome.forks.push(log);
        Ok(())
    }

    fn maybe_diff(&mut self) -> Result<(), SyncError> {
        if self.phase != Phase::Peaks
            || !self.peer_hello
            || self.peaks_seen.len() != self.shared.len()
        {
            return Ok(());
        }
        let wants: Vec<DiffEntry> = self
            .pulls
            .iter()
            .map(|p| DiffEntry {
                log: p.log,
                from: p.next,
                to: p.to,
            })
            .collect();
        self.outcome.events_wanted = wants
            .iter()
            .map(|w| w.to.saturating_sub(w.from))
            .fold(0u64, u64::saturating_add);
        self.send(&Message::Diff { wants })?;
        self.phase = Phase::Syncing;
        self.request_more()?;
        self.maybe_finish()
    }

    /// Keeps the request window full.
    fn request_more(&mut self) -> Result<(), SyncError> {
        if self.peer_gone {
            return Ok(());
        }
        let per = self.config.page_events.clamp(1, MAX_EVENTS as u32);
        let window = self.config.window.max(1);
        // Pages received and not yet committed count against the window
        // too, so a network faster than the disk cannot pile them up.
        if self.pending_imports() >= window {
            return Ok(());
        }
        let mut i = 0;
        while self.in_flight.len() < window && i < self.pulls.len() {
            let Some(p) = self.pulls.get_mut(i) else {
                break;
            };
            // Until the probe is answered, one request per log.
            let probing = p.probe && p.requested_to > p.next;
            if p.requested_to >= p.to || probing {
                i += 1;
                continue;
            }
            let want_base = p.probe;
            let from = p.requested_to;
            let n = (p.to - from).min(per as u64);
            p.requested_to = from + n;
            let (log, to) = (p.log, p.to);
            self.in_flight.push_back((log, from));
            self.send(&Message::PageRequest(PageRequest {
                log,
                from,
                to,
                max_events: n as u32,
                want_base,
            }))?;
        }
        Ok(())
    }

    fn serve(&mut self, req: PageRequest) -> Result<(), SyncError> {
        let PageRequest {
            log,
            from,
            to,
            max_events: max,
            want_base,
        } = req;
        let Some(diff) = self.peer_diff.as_ref() else {
            return Err(SyncError::Protocol("PAGE_REQUEST before DIFF".into()));
        };
        if self.phase == Phase::Live {
            // A live pull: anything up to the newest size announced.
            if from > to || self.announced.get(&log).is_none_or(|a| to > *a) {
                return Err(SyncError::Protocol(format!(
                    "PAGE_REQUEST for {log} {from}..{to} beyond what was announced"
                )));
            }
        } else {
            if self.peer_done {
                return Err(SyncError::Protocol("PAGE_REQUEST after SYNC_DONE".into()));
            }
            let announced = self.announced.get(&log) == Some(&to);
            match diff.get(&log) {
                Some(&(lo, hi)) if announced && from >= lo && from <= to && to == hi => {}
                _ => {
                    return Err(SyncError::Protocol(format!(
                        "PAGE_REQUEST for {log} {from}..{to} outside the peer's DIFF or what was announced"
                    )));
                }
            }
        }
        let max = (max as usize).clamp(1, MAX_EVENTS) as u64;
        let end = to.min(from.saturating_add(max));
        let range = EventRange {
            from,
            to: end,
            max_bytes: self.config.page_bytes,
        };
        let events = self.store.read_events(&log, range)?;
        let new_size = from + events.len() as u64;
        let proof = self.store.prove_consistency(&log, new_size, to)?;
        let base = if want_base {
            Some((
                self.store.root_at(&log, from)?,
                self.store.prove_consistency(&log, from, to)?,
            ))
        } else {
            None
        };
        self.outcome.events_out += events.len() as u64;
        self.outcome.pages_out += 1;
        self.send(&Message::PageResponse(PageResponse {
            log,
            from,
            events,
            proof,
            base,
        }))
    }

    fn pull_mut(&mut self, log: &LogId) -> Result<&mut Pull, SyncError> {
        self.pulls
            .iter_mut()
            .find(|p| p.log == *log)
            .ok_or_else(|| SyncError::Protocol(format!("PAGE_RESPONSE for {log}, not pulled")))
    }

    fn take_page(&mut self, page: PageResponse) -> Result<(), SyncError> {
        let PageResponse {
            log,
            from,
            events,
            proof,
            base,
        } = page;
        match self.in_flight.pop_front() {
            Some((l, f)) if l == log && f == from => {}
            _ => {
                return Err(SyncError::Protocol(format!(
                    "PAGE_RESPONSE for {log} at {from} that was not requested"
                )));
            }
        }
        let still_in_flight = self.in_flight.iter().any(|(l, _)| *l == log);
        let p = self.pull_mut(&log)?;
        let probe = p.probe;
        if p.discarding {
            if !still_in_flight {
                p.discarding = false;
                p.requested_to = p.next;
            }
        } else if !(probe && self.forked_at_base(log, from, base)?) {
            self.enqueue_import(log, from, events, proof, still_in_flight)?;
        }
        self.request_more()?;
        self.maybe_finish()
    }

    /// Checks the server's root at `from` that the first request for a log
    /// already held asked for: whether the two author-signed trees
    /// disagree there (a fork: the proof is kept and the log is not
    /// pulled from this peer). A root that does not lead to the server's
    /// checkpoint is a lie.
    fn forked_at_base(
        &mut self,
        log: LogId,
        from: u64,
        base: Option<(Hash, Vec<Hash>)>,
    ) -> Result<bool, SyncError> {
        let Some((root, base_proof)) = base else {
            return Err(SyncError::Rejected(format!(
                "log {log}: the peer did not send its root at {from}"
            )));
        };
        let (to, cp_root, note) = {
            let p = self.pull_mut(&log)?;
            (p.to, p.root, p.note.clone())
        };
        verify_consistency(from, to, &root, &cp_root, &base_proof).map_err(|e| {
            SyncError::Rejected(format!(
                "log {log}: the peer's proof from {from} to its checkpoint: {e}"
            ))
        })?;
        if root == self.store.root_at(&log, from)? {
            self.pull_mut(&log)?.probe = false;
            return Ok(false);
        }
        let side = ForkSide {
            root,
            proof: base_proof,
        };
        self.fork(log, &note, Some((from, side)))?;
        let p = self.pull_mut(&log)?;
        p.next = p.to;
        p.requested_to = p.to;
        Ok(true)
    }

    /// Hands a received page to the store (as an action) and moves the
    /// pull on. The store commits only what it does not hold yet: another
    /// session (with another peer, or a twin with this one) may have
    /// extended the log since the page was asked for.
    fn enqueue_import(
        &mut self,
        log: LogId,
        from: u64,
        events: Vec<Vec<u8>>,
        proof: Vec<Hash>,
        still_in_flight: bool,
    ) -> Result<(), SyncError> {
        let name = self.names.get(&log.topic).cloned();
        let after = self
            .in_flight
            .iter()
            .find(|(l, _)| *l == log)
            .map(|(_, f)| *f);
        let p = self.pull_mut(&log)?;
        let (next, to) = (p.next, p.to);
        if from != next {
            return Err(SyncError::Protocol(format!(
                "PAGE_RESPONSE for {log} at {from}, expected {next}"
            )));
        }
        if events.is_empty() {
            return Err(SyncError::Rejected(format!(
                "log {log}: the peer claimed {to} events but serves none from {from}"
            )));
        }
        let end = from.saturating_add(events.len() as u64);
        if end > to {
            return Err(SyncError::Rejected(format!(
                "log {log}: the page runs past the checkpoint ({end} > {to})"
            )));
        }
        p.next = end;
        if end < after.unwrap_or(p.requested_to) {
            // A short page (the server's byte bound): ask again from here,
            // once the requests already out for this log are answered.
            if still_in_flight {
                p.discarding = true;
            } else {
                p.requested_to = end;
            }
        }
        let page = ImportPage {
            log,
            topic_name: name,
            first_seq: from,
            events,
            note: p.note.clone(),
            proof,
        };
        self.outcome.events_received += page.events.len() as u64;
        self.act(StoreOp::Import(page), Pending::Import { log });
        Ok(())
    }

    fn maybe_finish(&mut self) -> Result<(), SyncError> {
        if self.phase == Phase::Live {
            if self.peer_gone {
                if self.pending.is_empty() {
                    self.end_live();
                }
                return Ok(());
            }
            return self.pull_later();
        }
        if self.phase != Phase::Syncing {
            return Ok(());
        }
        let pulled = self.in_flight.is_empty()
            && self.pending.is_empty()
            && self.pulls.iter().all(|p| p.next >= p.to);
        if pulled && !self.sent_done {
            self.sent_done = true;
            self.send(&Message::SyncDone)?;
        }
        if self.sent_done && self.peer_done {
            self.release_claims();
            if self.live_agreed() {
                self.phase = Phase::Live;
                self.outcome.live = true;
                for log in std::mem::take(&mut self.to_announce) {
                    self.announce_now(log)?;
                }
            } else {
                self.phase = Phase::Done;
                self.to_announce.clear();
            }
        }
        Ok(())
    }

    /// Both sides offered live mode.
    fn live_agreed(&self) -> bool {
        self.config.live && self.peer_caps & caps::LIVE != 0
    }

    /// The peer holds (or is pulling) `log` up to `size`.
    fn peer_knows(&mut self, log: LogId, size: u64) {
        let known = self.peer_sizes.entry(log).or_insert(0);
        *known = (*known).max(size);
    }

    /// Sends `CHECKPOINT` for the log's current checkpoint, unless the
    /// peer has it or it was announced already.
    fn announce_now(&mut self, log: LogId) -> Result<(), SyncError> {
        if !self.shared.contains(&log.topic) {
            return Ok(());
        }
        let Some(entry) = self.store.checkpoint_of(&log)? else {
            return Ok(());
        };
        let known = |m: &HashMap<LogId, u64>| m.get(&log).is_some_and(|s| *s >= entry.size);
        if entry.size == 0 || known(&self.peer_sizes) || known(&self.announced) {
            return Ok(());
        }
        self.announced.insert(log, entry.size);
        self.peer_knows(log, entry.size);
        self.outcome.checkpoints_out += 1;
        self.send(&Message::Checkpoint {
            log,
            note: entry.note,
        })
    }

    /// The peer announced a new checkpoint of a log in a live session:
    /// verified and pulled as an entry of its `PEAKS` would be, or kept
    /// for later while an earlier pull of the log is under way (its pages
    /// are proved to the earlier checkpoint).
    fn on_checkpoint(&mut self, log: LogId, note: String) -> Result<(), SyncError> {
        if !self.shared.contains(&log.topic) {
            return Err(SyncError::Protocol(format!(
                "CHECKPOINT for {log}, whose topic was not agreed on"
            )));
        }
        let size = xaeroflux_merkle::peek_checkpoint(&note)
            .map_err(|e| SyncError::Rejected(format!("log {log}: CHECKPOINT: {e}")))?
            .size;
        self.outcome.checkpoints_in += 1;
        self.peer_knows(log, size);
        let entry = PeakEntry {
            author: log.author,
            size,
            note,
        };
        if self.pulling(&log) {
            if self.later.get(&log).is_none_or(|e| e.size < size) {
                self.later.insert(log, entry);
            }
            return Ok(());
        }
        self.pull_live(log, entry)
    }

    /// Whether a pull of `log` is under way: events left to ask for, a
    /// request out, or a page waiting for the store.
    fn pulling(&self, log: &LogId) -> bool {
        self.pulls.iter().any(|p| p.log == *log && p.next < p.to)
            || self.in_flight.iter().any(|(l, _)| l == log)
            || self
                .pending
                .values()
                .any(|p| matches!(p, Pending::Import { log: l } if l == log))
    }

    /// Starts a live pull of `log` to the checkpoint in `entry` (checked
    /// as in `consider`), replacing the log's finished pull.
    fn pull_live(&mut self, log: LogId, entry: PeakEntry) -> Result<(), SyncError> {
        let moved = self.pulls.iter().any(|p| p.log == log && p.moved);
        self.pulls.retain(|p| p.log != log);
        self.consider(log.topic, entry)?;
        if let Some(p) = self.pulls.iter_mut().find(|p| p.log == log) {
            p.moved = moved;
            self.outcome.events_wanted = self
                .outcome
                .events_wanted
                .saturating_add(p.to.saturating_sub(p.next));
        }
        self.request_more()
    }

    /// Live mode: starts the pulls the peer announced while earlier ones
    /// of the same logs were under way.
    fn pull_later(&mut self) -> Result<(), SyncError> {
        let ready: Vec<LogId> = self
            .later
            .keys()
            .filter(|l| !self.pulling(l))
            .copied()
            .collect();
        for log in ready {
            if let Some(entry) = self.later.remove(&log) {
                self.pull_live(log, entry)?;
            }
        }
        Ok(())
    }

    fn release_claims(&self) {
        if let Some(claims) = self.store.pull_claims() {
            claims.release_all(self.id);
        }
    }
}

impl<S: SyncStore + ?Sized> Drop for Session<'_, S> {
    /// A session dropped half-way (its connection went) gives up its
    /// claims, so another session pulls those logs.
    fn drop(&mut self) {
        self.release_claims();
    }
}

/// Fewest logs of a topic for which a side sends a `SUMMARY` rather than
/// its whole `PEAKS`.
pub const SUMMARY_MIN_LOGS: usize = 8;

/// Buckets for a topic of `logs` logs: about two logs a bucket.
fn bucket_count(logs: usize) -> usize {
    (logs / 2)
        .next_power_of_two()
        .clamp(8, crate::codec::MAX_BUCKETS)
}

/// The bucket of an author among `n` (a power of two up to 65,536): by
/// the first two bytes of its key, which are uniform.
fn bucket_of(author: &[u8; 32], n: usize) -> usize {
    let top = u16::from_be_bytes([author[0], author[1]]) as usize;
    top * n.max(1) / 65_536
}

/// Each bucket's digest: the first 8 bytes of SHA-256 over its entries in
/// author order (as in [`digest`]); zeros for an empty bucket.
fn bucket_digests(entries: &[PeakEntry], n: usize) -> Vec<[u8; 8]> {
    let mut groups: Vec<Vec<&PeakEntry>> = vec![Vec::new(); n];
    for e in entries {
        if let Some(g) = groups.get_mut(bucket_of(&e.author, n)) {
            g.push(e);
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let h = entries_hash(b"xaeroflux xsp bucket v1", g);
            let mut out = [0; 8];
            out.copy_from_slice(h.get(..8).unwrap_or(&[0; 8]));
            out
        })
        .collect()
}

/// SHA-256 over a topic's PEAKS entries in author order (zeros for none).
/// Notes are deterministic (Ed25519), so replicas holding the same heads
/// compute the same digest.
fn digest(entries: &[PeakEntry]) -> Hash {
    entries_hash(b"xaeroflux xsp topic digest v1", entries.iter().collect())
}

/// SHA-256 of `domain` and the entries in author order (author, size,
/// note length, note); zeros when there are none.
fn entries_hash(domain: &[u8], mut entries: Vec<&PeakEntry>) -> Hash {
    if entries.is_empty() {
        return [0; 32];
    }
    entries.sort_by_key(|e| e.author);
    let mut bytes = Vec::new();
    for e in entries {
        bytes.extend_from_slice(&e.author);
        bytes.extend_from_slice(&e.size.to_be_bytes());
        bytes.extend_from_slice(&(e.note.len() as u32).to_be_bytes());
        bytes.extend_from_slice(e.note.as_bytes());
    }
    xaeroflux_merkle::sha256(&[domain, &bytes])
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ErrorCode {
    /// Whether this code says the peer's data did not verify.
    pub fn is_rejection(&self) -> bool {
        matches!(self, ErrorCode::Rejected)
    }
}
