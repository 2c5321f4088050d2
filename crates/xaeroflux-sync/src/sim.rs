//! A deterministic network of [`MemStore`]s running the real [`Session`]
//! code: every byte a session sends is a delivery on a simulated stream
//! with a random latency (streams stay in order; different streams
//! interleave freely), any delivery may cut its connection, and every
//! store write a session asks for completes after a random delay, in the
//! order the store received it (as the real writer does). Everything is
//! drawn from one seed, so a run that fails is replayed exactly by its
//! seed.
//!
//! Callers may start sessions on the links they choose ([`Sim::connect`]),
//! or let the stores run as nodes ([`Sim::start_nodes`]): then each store
//! decides whom to dial and when by the node's own rules
//! ([`crate::schedule`]: a join, announcements heard, neighbours coming
//! up, the period, deferred logs; one dialed session per peer, a redial
//! gap), and announces what it commits by gossip, modelled as flooding
//! over the links with latency and loss. Either way callers take stores
//! offline, split the network and heal it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use xaeroflux_merkle::Hash;
use xaeroflux_types::LogId;

use crate::schedule::{DEFERRED_RETRY_MS, RELAY_DELAY_MS, Scheduler, pull_from, worth_announcing};
use crate::session::{Session, SessionConfig, StoreOp, SyncStore};
use crate::{MemStore, StoreFault, SyncError};

/// A small, fast, seedable generator (xorshift64*), so runs replay.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; zero is moved off).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// How the simulated network behaves. Times are in ticks (say, ms).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed every random choice comes from.
    pub seed: u64,
    /// Latency of one delivery, lowest and highest.
    pub latency: (u64, u64),
    /// Chance that a delivery cuts its connection instead.
    pub cut: f64,
    /// How long a store write takes, lowest and highest.
    pub write_delay: (u64, u64),
    /// Sessions' page sizes and window.
    pub session: SessionConfig,
}

impl SimConfig {
    /// A network with `seed`, 1 to 20 ticks of latency, no cuts, and
    /// writes of 1 to 5 ticks.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            latency: (1, 20),
            cut: 0.0,
            write_delay: (1, 5),
            session: SessionConfig::default(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Sessions started.
    pub sessions: u64,
    /// Sessions that ended well on both sides.
    pub sessions_ok: u64,
    /// Sessions cut or failed.
    pub sessions_failed: u64,
    /// Deliveries made (chunks of bytes).
    pub deliveries: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Bytes each store received.
    pub bytes_in: Vec<u64>,
    /// Events each store imported.
    pub events_in: Vec<u64>,
    /// Store writes applied.
    pub writes: u64,
    /// The simulated time now.
    pub now: u64,
    /// The first failure reasons seen (at most 16), for diagnosis.
    pub failures: Vec<String>,
    /// Nodes only: dials the schedulers started.
    pub dials: u64,
    /// Nodes only: gossip deliveries (announcements), and their bytes.
    pub gossip_messages: u64,
    /// Bytes of those deliveries.
    pub gossip_bytes: u64,
}

/// How stores behave as nodes ([`Sim::start_nodes`]).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Ticks between a node's periodic syncs with every peer it knows.
    pub interval: u64,
    /// Chance that one gossip delivery is lost.
    pub gossip_loss: f64,
    /// Bytes of one announcement on the wire (a real one is about 540).
    pub announce_bytes: u64,
    /// Bytes a neighbour's copy of an announcement already delivered
    /// costs: gossip (iroh-gossip's Plumtree) pushes each message whole
    /// along a tree and sends the other neighbours only its id, so a
    /// duplicate is counted at this size rather than whole.
    pub duplicate_bytes: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            interval: 30_000,
            gossip_loss: 0.0,
            announce_bytes: 540,
            duplicate_bytes: 48,
        }
    }
}

/// The node side of every store, when they run as nodes.
struct Nodes {
    config: NodeConfig,
    /// Peers each node was given (it dials them on joining).
    given: Vec<Vec<usize>>,
    /// Gossip neighbours: the links, both ways.
    neighbours: Vec<Vec<usize>>,
    sched: Vec<Scheduler<usize>>,
    /// Largest size heard announced, per node and log.
    heard: Vec<HashMap<LogId, u64>>,
    /// Announcements each node has seen: (announcer, log, size); a
    /// relayed announcement names no announcer, so every relay of one
    /// head is the same message.
    seen: Vec<HashSet<(Option<usize>, LogId, u64)>>,
}

enum Ev {
    /// Bytes for `side` of a connection.
    Deliver {
        conn: u64,
        side: usize,
        bytes: Vec<u8>,
    },
    /// The other end of a connection closed or broke.
    Closed { conn: u64, side: usize },
    /// A store write finishes.
    Write {
        store: usize,
        conn: u64,
        side: usize,
        token: u64,
        op: StoreOp,
    },
    /// Nodes: a scheduled dial comes due.
    Dial { store: usize, peer: usize },
    /// Nodes: a reason to sync (a deferred log's retry).
    Request { store: usize, peer: usize },
    /// Nodes: `store` announces `log` at `size` if still worth it.
    Relay { store: usize, log: LogId, size: u64 },
    /// Nodes: an announcement reaches `store` from its neighbour `from`.
    Gossip {
        store: usize,
        from: usize,
        announcer: Option<usize>,
        log: LogId,
        size: u64,
    },
    /// Nodes: a node's period comes round.
    Period { store: usize },
    /// Nodes: whether `store` has `log` at `size` by now, else sync with
    /// `peer` (the neighbour that relayed the news) again.
    Recheck {
        store: usize,
        peer: usize,
        log: LogId,
        size: u64,
    },
}

struct Conn<'a> {
    ends: [usize; 2],
    sessions: [Option<Session<'a, MemStore>>; 2],
    /// When the last delivery towards each side lands (streams keep order).
    last: [u64; 2],
    /// Dialed by a node's scheduler; and whether it holds the accepting
    /// node's scheduler for that peer.
    dialed: bool,
    holds_accept: bool,
}

/// The simulated network over a set of stores.
pub struct Sim<'a> {
    stores: &'a [MemStore],
    config: SimConfig,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    conns: BTreeMap<u64, Conn<'a>>,
    next_conn: u64,
    /// When each store's writer is next free.
    busy: Vec<u64>,
    online: Vec<bool>,
    /// Group of each store while the network is split.
    group: Option<Vec<usize>>,
    stats: SimStats,
    nodes: Option<Nodes>,
}

impl<'a> Sim<'a> {
    /// A network over `stores`, all online and reachable.
    pub fn new(stores: &'a [MemStore], config: SimConfig) -> Self {
        let n = stores.len();
        Self {
            stores,
            rng: Rng::new(config.seed),
            config,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            busy: vec![0; n],
            online: vec![true; n],
            group: None,
            stats: SimStats {
                bytes_in: vec![0; n],
                events_in: vec![0; n],
                ..SimStats::default()
            },
            nodes: None,
        }
    }

    /// The random source of this run (for callers' own choices, so that
    /// the whole run replays from one seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// What happened so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Takes a store off the network (its connections are cut) or brings it
    /// back.
    pub fn set_online(&mut self, store: usize, online: bool) {
        let was = self.online.get(store).copied().unwrap_or(false);
        if let Some(o) = self.online.get_mut(store) {
            *o = online;
        }
        if online && !was {
            // Gossip neighbours come up on both sides.
            for n in self.neighbours(store) {
                if self.reachable(store, n) {
                    self.request(store, n);
                    self.request(n, store);
                }
            }
        }
        if !online {
            let cut: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.ends.contains(&store))
                .map(|(id, _)| *id)
                .collect();
            for id in cut {
                self.cut(id);
            }
        }
    }

    /// Splits the network: stores of different groups cannot reach each
    /// other (`group[i]` is store `i`'s group). Connections across are cut.
    pub fn partition(&mut self, group: Vec<usize>) {
        let across: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| group.get(c.ends[0]) != group.get(c.ends[1]))
            .map(|(id, _)| *id)
            .collect();
        self.group = Some(group);
        for id in across {
            self.cut(id);
        }
    }

    /// Joins the network again (neighbours across the split come up).
    pub fn heal(&mut self) {
        let Some(group) = self.group.take() else {
            return;
        };
        for a in 0..self.stores.len() {
            for b in self.neighbours(a) {
                if group.get(a) != group.get(b) && self.reachable(a, b) {
                    self.request(a, b);
                }
            }
        }
    }

    /// Whether `a` can reach `b` now.
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        let up = |i: usize| self.online.get(i).copied().unwrap_or(false);
        let same = match &self.group {
            None => true,
            Some(g) => g.get(a) == g.get(b),
        };
        a != b && up(a) && up(b) && same
    }

    /// Whether a session between `a` and `b` runs now.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.conns
            .values()
            .any(|c| c.ends == [a, b] || c.ends == [b, a])
    }

    /// Starts a session between `a` (dialing) and `b`, unless one runs or
    /// they cannot reach each other. Returns whether it started.
    pub fn connect(&mut self, a: usize, b: usize) -> bool {
        self.open(a, b, false)
    }

    /// Starts a session between `a` (dialing) and `b`; `dialed`: by `a`'s
    /// scheduler, which hears how it ended (and `b`'s, which it holds
    /// while it runs). The connection may end before this returns.
    fn open(&mut self, a: usize, b: usize, dialed: bool) -> bool {
        if !self.reachable(a, b) || self.linked(a, b) {
            return false;
        }
        let (Some(sa), Some(sb)) = (self.stores.get(a), self.stores.get(b)) else {
            return false;
        };
        let (Ok(x), Ok(y)) = (
            Session::new(sa, self.config.session.clone()),
            Session::new(sb, self.config.session.clone()),
        ) else {
            return false;
        };
        let holds_accept = dialed
            && self
                .nodes
                .as_mut()
                .and_then(|n| n.sched.get_mut(b))
                .is_some_and(|s| s.accepted(a));
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                ends: [a, b],
                sessions: [Some(x), Some(y)],
                last: [self.now; 2],
                dialed,
                holds_accept,
            },
        );
        self.stats.sessions += 1;
        self.flush(id, 0);
        self.flush(id, 1);
        true
    }

    /// Lets every store run as a node from now on: `given[i]` are the
    /// peers store `i` joins its topic with (they and it are gossip
    /// neighbours both ways). Each node syncs with its given peers, starts
    /// its period (staggered), and announces the logs it wrote.
    pub fn start_nodes(&mut self, given: Vec<Vec<usize>>, config: NodeConfig) {
        let n = self.stores.len();
        let mut neighbours = vec![Vec::new(); n];
        for (a, peers) in given.iter().enumerate() {
            for &b in peers {
                if b < n && b != a {
                    for (x, y) in [(a, b), (b, a)] {
                        if let Some(l) = neighbours.get_mut(x)
                            && !l.contains(&y)
                        {
                            l.push(y);
                        }
                    }
                }
            }
        }
        let interval = config.interval.max(1);
        self.nodes = Some(Nodes {
            config,
            given: given.clone(),
            neighbours,
            sched: (0..n).map(|_| Scheduler::default()).collect(),
            heard: vec![HashMap::new(); n],
            seen: vec![HashSet::new(); n],
        });
        for (s, peers) in given.iter().enumerate() {
            let at = self.now + self.rng.below(interval);
            self.schedule(at, Ev::Period { store: s });
            for &p in peers {
                self.request(s, p);
            }
            let Some(store) = self.stores.get(s) else {
                continue;
            };
            let me = store.author();
            for (log, (size, _)) in store.heads() {
                if log.author == me {
                    self.announce(s, Some(s), None, log, size);
                }
            }
        }
    }

    fn neighbours(&self, store: usize) -> Vec<usize> {
        self.nodes
            .as_ref()
            .and_then(|n| n.neighbours.get(store).cloned())
            .unwrap_or_default()
    }

    /// Nodes: a reason for `store` to sync with `peer` now.
    fn request(&mut self, store: usize, peer: usize) {
        let now = self.now;
        let Some(at) = self
            .nodes
            .as_mut()
            .and_then(|n| n.sched.get_mut(store))
            .and_then(|s| s.request(peer, now))
        else {
            return;
        };
        self.schedule(at, Ev::Dial { store, peer });
    }

    /// Nodes: a dial comes due.
    fn dial(&mut self, store: usize, peer: usize) {
        let now = self.now;
        let Some(nodes) = self.nodes.as_mut() else {
            return;
        };
        if let Some(s) = nodes.sched.get_mut(store) {
            s.dialing(peer, now);
        }
        self.stats.dials += 1;
        let linked = self.linked(store, peer);
        if linked || !self.open(store, peer, true) {
            // Unreachable: the dial fails. Already linked (the peer dialed
            // first): that session does the work.
            self.dialed_ended(store, peer, linked);
        }
    }

    /// Nodes: the session `store` dialed to `peer` ended.
    fn dialed_ended(&mut self, store: usize, peer: usize, ok: bool) {
        let now = self.now;
        let next = self
            .nodes
            .as_mut()
            .and_then(|n| n.sched.get_mut(store))
            .and_then(|s| s.ended(peer, ok, now));
        if let Some(at) = next {
            self.schedule(at, Ev::Dial { store, peer });
        }
    }

    /// Nodes: `store` tells its neighbours (but `from`) that `announcer`
    /// holds `log` at `size`.
    fn announce(
        &mut self,
        store: usize,
        announcer: Option<usize>,
        from: Option<usize>,
        log: LogId,
        size: u64,
    ) {
        let Some(nodes) = self.nodes.as_mut() else {
            return;
        };
        if let Some(seen) = nodes.seen.get_mut(store) {
            seen.insert((announcer, log, size));
        }
        let loss = nodes.config.gossip_loss;
        for n in self.neighbours(store) {
            if Some(n) == from || !self.reachable(store, n) {
                continue;
            }
            self.stats.gossip_messages += 1;
            if self.rng.chance(loss) {
                continue;
            }
            let (lo, hi) = self.config.latency;
            let at = self.now + self.rng.range(lo, hi);
            self.schedule(
                at,
                Ev::Gossip {
                    store: n,
                    from: store,
                    announcer,
                    log,
                    size,
                },
            );
        }
    }

    /// Nodes: an announcement arrives; pass it on, and pull if it is news.
    fn heard(
        &mut self,
        store: usize,
        from: usize,
        announcer: Option<usize>,
        log: LogId,
        size: u64,
    ) {
        if !self.reachable(from, store) {
            return;
        }
        let Some(nodes) = self.nodes.as_mut() else {
            return;
        };
        let fresh = nodes
            .seen
            .get_mut(store)
            .is_some_and(|s| s.insert((announcer, log, size)));
        self.stats.gossip_bytes += if fresh {
            nodes.config.announce_bytes
        } else {
            nodes.config.duplicate_bytes
        };
        if !fresh {
            return;
        }
        if let Some(h) = nodes.heard.get_mut(store) {
            let e = h.entry(log).or_default();
            *e = (*e).max(size);
        }
        let known: Vec<usize> = nodes
            .given
            .get(store)
            .into_iter()
            .chain(nodes.neighbours.get(store))
            .flatten()
            .copied()
            .collect();
        self.announce(store, announcer, Some(from), log, size);
        let held = self
            .stores
            .get(store)
            .and_then(|s| s.log_size(&log).ok())
            .unwrap_or(0);
        if size > held {
            let target = pull_from(announcer, from, |p| known.contains(p));
            if target != store {
                self.request(store, target);
            }
            if target == from && Some(from) != announcer {
                let at = self.now + DEFERRED_RETRY_MS;
                let peer = from;
                self.schedule(
                    at,
                    Ev::Recheck {
                        store,
                        peer,
                        log,
                        size,
                    },
                );
            }
        }
    }

    /// Nodes: `store` appended to its own `log` (call after
    /// [`MemStore::append`]): it announces the news, as a node does after
    /// a commit.
    pub fn appended(&mut self, store: usize, log: LogId) {
        self.grew(store, log);
    }

    /// Nodes: a commit grew `log` in `store`: announce it if worth it.
    fn grew(&mut self, store: usize, log: LogId) {
        let Some(s) = self.stores.get(store) else {
            return;
        };
        let (own, size) = (log.author == s.author(), s.log_size(&log).unwrap_or(0));
        let heard = self
            .nodes
            .as_ref()
            .and_then(|n| n.heard.get(store))
            .and_then(|h| h.get(&log).copied());
        if self.nodes.is_none() || !worth_announcing(own, size, heard) {
            return;
        }
        if own {
            self.announce(store, Some(store), None, log, size);
        } else {
            let at = self.now + RELAY_DELAY_MS;
            self.schedule(at, Ev::Relay { store, log, size });
        }
    }

    /// Nodes: a node's period: sync with every peer it knows.
    fn period(&mut self, store: usize) {
        let Some(nodes) = self.nodes.as_ref() else {
            return;
        };
        let interval = nodes.config.interval.max(1);
        let mut peers: Vec<usize> = nodes.given.get(store).cloned().unwrap_or_default();
        for n in nodes.neighbours.get(store).into_iter().flatten() {
            if !peers.contains(n) {
                peers.push(*n);
            }
        }
        if self.online.get(store).copied().unwrap_or(false) {
            for p in peers {
                if self.reachable(store, p) {
                    self.request(store, p);
                }
            }
        }
        self.schedule(self.now + interval, Ev::Period { store });
    }

    /// Runs until nothing is left to happen or `until` ticks have passed;
    /// returns whether everything settled.
    pub fn run(&mut self, until: u64) -> bool {
        while let Some(Reverse((t, seq))) = self.queue.pop() {
            if t > until {
                self.queue.push(Reverse((t, seq)));
                self.now = until;
                self.stats.now = until;
                return false;
            }
            self.now = t;
            if let Some(ev) = self.events.remove(&seq) {
                self.handle(ev);
            }
        }
        self.stats.now = self.now;
        self.conns.is_empty()
    }

    /// Whether every store holds every log at the same size and root.
    pub fn converged(&self) -> bool {
        let mut all: BTreeMap<LogId, (u64, Hash)> = BTreeMap::new();
        for s in self.stores {
            for (log, head) in s.heads() {
                let e = all.entry(log).or_insert(head);
                if head.0 > e.0 {
                    *e = head;
                }
            }
        }
        self.stores.iter().all(|s| s.heads() == all)
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        let seq = self.seq;
        self.seq += 1;
        self.events.insert(seq, ev);
        self.queue.push(Reverse((at, seq)));
    }

    fn session(&mut self, conn: u64, side: usize) -> Option<&mut Session<'a, MemStore>> {
        self.conns.get_mut(&conn)?.sessions.get_mut(side)?.as_mut()
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { conn, side, bytes } => {
                let store = self
                    .conns
                    .get(&conn)
                    .and_then(|c| c.ends.get(side).copied());
                let Some(s) = self.session(conn, side) else {
                    return;
                };
                let r = s.receive(&bytes);
                if let Some(st) = store.and_then(|i| self.stats.bytes_in.get_mut(i)) {
                    *st += bytes.len() as u64;
                }
                self.stats.deliveries += 1;
                self.stats.bytes += bytes.len() as u64;
                self.after(conn, side, r);
                // What was left unread once the output is sent.
                while let Some(s) = self.session(conn, side).filter(|s| s.input_paused()) {
                    let r = s.receive(&[]);
                    self.after(conn, side, r);
                }
            }
            Ev::Closed { conn, side } => {
                if let Some(s) = self.session(conn, side) {
                    let r = s.peer_closed();
                    self.after(conn, side, r);
                }
            }
            Ev::Write {
                store,
                conn,
                side,
                token,
                op,
            } => {
                let grown = match &op {
                    StoreOp::Import(page) => Some(page.log),
                    StoreOp::RecordFork { .. } => None,
                };
                let r = match self.stores.get(store) {
                    Some(s) => s.apply(op),
                    None => Err(StoreFault::Failed("no such store".into())),
                };
                self.stats.writes += 1;
                if let (Ok(n), Some(e)) = (&r, self.stats.events_in.get_mut(store)) {
                    *e += n;
                }
                if let (Ok(1..), Some(log)) = (&r, grown) {
                    self.grew(store, log);
                }
                if let Some(s) = self.session(conn, side) {
                    let r = s.complete(token, r);
                    self.after(conn, side, r);
                }
            }
            Ev::Dial { store, peer } => self.dial(store, peer),
            Ev::Request { store, peer } => self.request(store, peer),
            Ev::Gossip {
                store,
                from,
                announcer,
                log,
                size,
            } => self.heard(store, from, announcer, log, size),
            Ev::Period { store } => self.period(store),
            Ev::Relay { store, log, size } => {
                let heard = self
                    .nodes
                    .as_ref()
                    .and_then(|n| n.heard.get(store))
                    .and_then(|h| h.get(&log).copied());
                if worth_announcing(false, size, heard) {
                    self.announce(store, None, None, log, size);
                }
            }
            Ev::Recheck {
                store,
                peer,
                log,
                size,
            } => {
                let held = self
                    .stores
                    .get(store)
                    .and_then(|s| s.log_size(&log).ok())
                    .unwrap_or(0);
                if held < size && self.reachable(store, peer) {
                    self.request(store, peer);
                }
            }
        }
    }

    /// After a session took input: send what it queued, start its writes,
    /// and end the connection once both sides are done.
    fn after(&mut self, conn: u64, side: usize, r: Result<(), SyncError>) {
        if let Err(e) = &r
            && self.stats.failures.len() < 16
        {
            self.stats.failures.push(e.to_string());
        }
        self.flush(conn, side);
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let done = c
            .sessions
            .iter()
            .all(|s| s.as_ref().is_none_or(|s| s.is_finished()));
        if r.is_err() {
            // The failing side closes its end; the peer learns of it.
            self.close_towards(conn, 1 - side);
        }
        if done {
            self.end(conn);
        }
    }

    fn close_towards(&mut self, conn: u64, side: usize) {
        let at = self.arrival(conn, side);
        self.schedule(at, Ev::Closed { conn, side });
    }

    /// When a delivery sent now towards `side` lands.
    fn arrival(&mut self, conn: u64, side: usize) -> u64 {
        let (lo, hi) = self.config.latency;
        let lat = self.rng.range(lo, hi);
        let now = self.now;
        match self.conns.get_mut(&conn).and_then(|c| c.last.get_mut(side)) {
            Some(last) => {
                *last = (*last).max(now + lat);
                *last
            }
            None => now + lat,
        }
    }

    fn flush(&mut self, conn: u64, side: usize) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let store = c.ends.get(side).copied().unwrap_or(0);
        let Some(s) = self.session(conn, side) else {
            return;
        };
        let out = s.take_output();
        let actions = s.take_actions();
        for a in actions {
            let (lo, hi) = self.config.write_delay;
            let delay = self.rng.range(lo, hi);
            let Some(busy) = self.busy.get_mut(store) else {
                continue;
            };
            *busy = (*busy).max(self.now) + delay;
            let at = *busy;
            self.schedule(
                at,
                Ev::Write {
                    store,
                    conn,
                    side,
                    token: a.token,
                    op: a.op,
                },
            );
        }
        if out.is_empty() {
            return;
        }
        if self.rng.chance(self.config.cut) {
            self.cut(conn);
            return;
        }
        let at = self.arrival(conn, 1 - side);
        self.schedule(
            at,
            Ev::Deliver {
                conn,
                side: 1 - side,
                bytes: out,
            },
        );
    }

    /// Cuts a connection: both sides see their stream break.
    fn cut(&mut self, conn: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        for s in c.sessions.iter_mut().flatten() {
            if !s.is_finished() {
                let _ = s.fail(SyncError::Io(std::io::ErrorKind::ConnectionReset.into()));
            }
        }
        self.end(conn);
    }

    fn end(&mut self, conn: u64) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let ok = c
            .sessions
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.outcome().error.is_none()));
        if ok {
            self.stats.sessions_ok += 1;
        } else {
            self.stats.sessions_failed += 1;
        }
        if !c.dialed {
            return;
        }
        let [a, b] = c.ends;
        let deferred = |i: usize| {
            c.sessions
                .get(i)
                .and_then(|s| s.as_ref())
                .is_some_and(|s| s.outcome().deferred > 0)
        };
        let (da, db) = (deferred(0), deferred(1));
        let holds = c.holds_accept;
        drop(c);
        self.dialed_ended(a, b, ok);
        let again = holds
            && self
                .nodes
                .as_mut()
                .and_then(|n| n.sched.get_mut(b))
                .is_some_and(|s| s.accepted_ended(a));
        if again {
            self.request(b, a);
        }
        let retry = self.now + DEFERRED_RETRY_MS;
        if da {
            self.schedule(retry, Ev::Request { store: a, peer: b });
        }
        if db {
            self.schedule(retry, Ev::Request { store: b, peer: a });
        }
    }
}
