//! A TCP server for XSP that silent or greedy peers cannot take over.
//!
//! A connection is a *handshake* until the peer's `HELLO` has arrived, and
//! a *session* after. The two are bounded apart:
//!
//! - a handshake has [`ServeLimits::hello_timeout`] (5 s) to complete, and
//!   at most [`ServeLimits::handshakes`] wait at once, at most
//!   [`ServeLimits::handshakes_per_addr`] from one address. When a new
//!   connection finds no room, the oldest handshake of its own address is
//!   closed, or, when its address is within its share, the oldest
//!   handshake of the address that holds the most; a handshake whose
//!   peer has sent bytes not yet read goes last. A silent peer never
//!   keeps a slot from a peer that speaks: a legitimate peer's `HELLO`
//!   arrives within a round trip, long before it would be pushed out.
//! - a session is admitted when its `HELLO` arrives, if fewer than
//!   [`ServeLimits::sessions`] run and fewer than
//!   [`ServeLimits::sessions_per_addr`] come from its address; otherwise
//!   it is ended with `ERROR` busy, which the peer reports.
//!
//! Every connection costs two threads (the session and its reader), so
//! the threads are bounded by `sessions + handshakes`; connections beyond
//! that are closed at once (while evicted handshakes finish closing).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::SyncError;
use crate::driver::{RunOptions, run_tcp_with};
use crate::session::{Outcome, SessionConfig, SyncStore};

/// The bounds a [`TcpServer`] keeps. Build it from [`ServeLimits::default`]
/// and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeLimits {
    /// Sessions (past `HELLO`) running at once: 32.
    pub sessions: usize,
    /// Sessions from one IP address at once: 8.
    pub sessions_per_addr: usize,
    /// Connections waiting for their `HELLO` at once: 64.
    pub handshakes: usize,
    /// Connections from one IP address waiting for their `HELLO`: 8.
    pub handshakes_per_addr: usize,
    /// How long a connection has to complete its `HELLO`: 5 s.
    pub hello_timeout: Duration,
    /// How long a session may go without news from the peer: 30 s.
    pub timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            sessions: 32,
            sessions_per_addr: 8,
            handshakes: 64,
            handshakes_per_addr: 8,
            hello_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

impl ServeLimits {
    /// Sessions at once, in all and from one address (each at least 1).
    pub fn with_sessions(mut self, total: usize, per_addr: usize) -> Self {
        self.sessions = total.max(1);
        self.sessions_per_addr = per_addr.max(1);
        self
    }

    /// Handshakes waiting at once, in all and from one address (each at
    /// least 1).
    pub fn with_handshakes(mut self, total: usize, per_addr: usize) -> Self {
        self.handshakes = total.max(1);
        self.handshakes_per_addr = per_addr.max(1);
        self
    }

    /// The handshake deadline and the session's silence timeout.
    pub fn with_timeouts(mut self, hello: Duration, session: Duration) -> Self {
        self.hello_timeout = hello;
        self.timeout = session;
        self
    }
}

/// What a [`TcpServer`] reports, one event per connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeEvent {
    /// A session ended, well or not (a handshake that timed out ends with
    /// [`SyncError::NoHello`], one refused for the caps with
    /// [`SyncError::Busy`]).
    Session {
        /// The peer.
        peer: SocketAddr,
        /// What moved, or why it failed.
        result: Result<Outcome, SyncError>,
    },
    /// A connection that had not said `HELLO` was closed to make room for
    /// a newer one.
    Dropped {
        /// The peer.
        peer: SocketAddr,
    },
    /// A connection was closed at once: too many are still open.
    Refused {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Accepting a connection failed (for example, out of file
    /// descriptors); the server goes on.
    AcceptFailed(std::io::Error),
}

/// One connection waiting for its `HELLO`.
struct Waiting {
    id: u64,
    ip: IpAddr,
    /// A handle to close it by (none in unit tests).
    stream: Option<TcpStream>,
    evicted: Arc<AtomicBool>,
}

impl Waiting {
    /// Whether the peer has sent bytes its session has not read yet: its
    /// `HELLO` is on its way in, so it is not silent and is not pushed
    /// out (under a flood of connections from its own address, the
    /// session's thread may take a moment to read it).
    fn spoke(&self) -> bool {
        #[cfg(unix)]
        if let Some(s) = &self.stream {
            use std::os::fd::AsRawFd;
            let mut b = [0u8; 1];
            // SAFETY: recv writes at most one byte into `b`, which is valid
            // for it; MSG_PEEK leaves the byte for the session to read and
            // MSG_DONTWAIT never blocks.
            let n = unsafe {
                libc::recv(
                    s.as_raw_fd(),
                    b.as_mut_ptr().cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            return n > 0;
        }
        false
    }

    /// Closes it: its session sees the end of the stream at once.
    fn evict(self) {
        self.evicted.store(true, Ordering::Release);
        if let Some(s) = self.stream {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[derive(Default)]
struct GateState {
    /// Oldest first.
    waiting: VecDeque<Waiting>,
    sessions: HashMap<IpAddr, usize>,
    total: usize,
}

/// The admission rules, apart from the sockets.
struct Gate {
    limits: ServeLimits,
    state: Mutex<GateState>,
}

impl Gate {
    fn new(limits: ServeLimits) -> Self {
        Gate {
            limits,
            state: Mutex::new(GateState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The state stays consistent between statements; a panic elsewhere
        // must not stop the server.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection waits for its `HELLO`; returns the handshakes it
    /// pushes out (to be closed).
    fn arrive(&self, w: Waiting) -> Vec<Waiting> {
        let mut st = self.lock();
        let mut out = Vec::new();
        let mine = st.waiting.iter().filter(|o| o.ip == w.ip).count();
        let victim = if mine >= self.limits.handshakes_per_addr {
            Some(w.ip)
        } else if st.waiting.len() >= self.limits.handshakes {
            // The address holding the most loses its oldest; among equals,
            // the one whose oldest came first.
            let mut counts: HashMap<IpAddr, usize> = HashMap::new();
            for o in &st.waiting {
                *counts.entry(o.ip).or_default() += 1;
            }
            let mut best: Option<(IpAddr, usize)> = None;
            for o in &st.waiting {
                let n = counts.get(&o.ip).copied().unwrap_or(0);
                if best.is_none_or(|(_, b)| n > b) {
                    best = Some((o.ip, n));
                }
            }
            best.map(|(ip, _)| ip)
        } else {
            None
        };
        // The address's oldest handshake that has not spoken; the oldest
        // at all when every one has.
        let of = |o: &Waiting| Some(o.ip) == victim;
        let pick = st
            .waiting
            .iter()
            .position(|o| of(o) && !o.spoke())
            .or_else(|| st.waiting.iter().position(of));
        if let Some(i) = pick
            && let Some(old) = st.waiting.remove(i)
        {
            out.push(old);
        }
        st.waiting.push_back(w);
        out
    }

    /// The connection's `HELLO` arrived: a session, if there is room.
    fn admit(&self, id: u64, ip: IpAddr) -> Result<(), String> {
        let mut st = self.lock();
        match st.waiting.iter().position(|o| o.id == id) {
            Some(i) => {
                st.waiting.remove(i);
            }
            None => return Err("the connection was closed to make room".into()),
        }
        if st.total >= self.limits.sessions {
            return Err(format!(
                "{} sessions already running, try again later",
                st.total
            ));
        }
        let from = st.sessions.get(&ip).copied().unwrap_or(0);
        if from >= self.limits.sessions_per_addr {
            return Err(format!(
                "{from} sessions from {ip} already running, try again later"
            ));
        }
        st.total += 1;
        *st.sessions.entry(ip).or_default() += 1;
        Ok(())
    }

    /// The connection ended.
    fn leave(&self, id: u64, ip: IpAddr, admitted: bool) {
        let mut st = self.lock();
        if let Some(i) = st.waiting.iter().position(|o| o.id == id) {
            st.waiting.remove(i);
        }
        if admitted {
            st.total = st.total.saturating_sub(1);
            if let Some(n) = st.sessions.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.sessions.remove(&ip);
                }
            }
        }
    }

    /// Closes every waiting handshake (the server stops).
    fn close_waiting(&self) {
        let waiting: Vec<Waiting> = self.lock().waiting.drain(..).collect();
        for w in waiting {
            w.evict();
        }
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.waiting.len(), st.total)
    }
}

/// Stops a [`TcpServer`] from another thread: no new connection is
/// accepted, waiting handshakes are closed, and [`TcpServer::run`] returns
/// once the running sessions have ended.
#[derive(Debug, Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl Stopper {
    /// Asks the server to stop (and wakes its accept loop).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Serves XSP sessions on a TCP listener within [`ServeLimits`].
///
/// ```no_run
/// use std::net::TcpListener;
/// use xaeroflux_sync::serve::{ServeEvent, ServeLimits, TcpServer};
/// use xaeroflux_sync::{MemStore, SessionConfig};
///
/// let store = MemStore::with_seed(1);
/// let server = TcpServer::new(TcpListener::bind("127.0.0.1:7070")?, ServeLimits::default())?;
/// server.run(&store, &|_| SessionConfig::default(), &|e: ServeEvent| eprintln!("{e:?}"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    limits: ServeLimits,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl TcpServer {
    /// A server on `listener`.
    pub fn new(listener: TcpListener, limits: ServeLimits) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(TcpServer {
            listener,
            limits,
            stop: Arc::new(AtomicBool::new(false)),
            addr,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its bounds.
    pub fn limits(&self) -> &ServeLimits {
        &self.limits
    }

    /// A handle that stops it.
    pub fn stopper(&self) -> Stopper {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Stopper {
            stop: self.stop.clone(),
            addr,
        }
    }

    /// Accepts and runs sessions until [`Stopper::stop`]; `config` gives
    /// each session its configuration, `report` hears of every
    /// connection's end. Both are called from the sessions' threads.
    pub fn run<S: SyncStore + Sync + ?Sized>(
        &self,
        store: &S,
        config: &(dyn Fn(SocketAddr) -> SessionConfig + Sync),
        report: &(dyn Fn(ServeEvent) + Sync),
    ) {
        let gate = Gate::new(self.limits.clone());
        let live = AtomicUsize::new(0);
        let max_live = self.limits.sessions + self.limits.handshakes;
        std::thread::scope(|s| {
            let (gate, live) = (&gate, &live);
            let mut next_id = 0u64;
            for conn in self.listener.incoming() {
                if self.stop.load(Ordering::Acquire) {
                    break;
                }
                let stream = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        report(ServeEvent::AcceptFailed(e));
                        // Out of descriptors fails at once, again and
                        // again: give the sessions a moment to end.
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let Ok(peer) = stream.peer_addr() else {
                    continue;
                };
                if live.load(Ordering::Acquire) >= max_live {
                    report(ServeEvent::Refused {
                        peer,
                        reason: format!("{max_live} connections still open"),
                    });
                    continue;
                }
                let handle = match stream.try_clone() {
                    Ok(h) => h,
                    Err(e) => {
                        report(ServeEvent::Refused {
                            peer,
                            reason: format!("cannot keep the connection: {e}"),
                        });
                        continue;
                    }
                };
                next_id += 1;
                let (id, ip) = (next_id, peer.ip());
                let evicted = Arc::new(AtomicBool::new(false));
                for old in gate.arrive(Waiting {
                    id,
                    ip,
                    stream: Some(handle),
                    evicted: evicted.clone(),
                }) {
                    old.evict();
                }
                live.fetch_add(1, Ordering::AcqRel);
                let limits = &self.limits;
                let spawned = std::thread::Builder::new()
                    .name("xsp-serve".into())
                    .spawn_scoped(s, move || {
                        let admitted = Cell::new(false);
                        let mut admit = || {
                            let r = gate.admit(id, ip);
                            admitted.set(r.is_ok());
                            r
                        };
                        let opts = RunOptions {
                            timeout: limits.timeout,
                            hello_timeout: limits.hello_timeout,
                            admit: Some(&mut admit),
                            progress: None,
                            live: None,
                        };
                        let result = run_tcp_with(store, config(peer), stream, opts);
                        gate.leave(id, ip, admitted.get());
                        live.fetch_sub(1, Ordering::AcqRel);
                        if evicted.load(Ordering::Acquire) && !admitted.get() {
                            report(ServeEvent::Dropped { peer });
                        } else {
                            report(ServeEvent::Session { peer, result });
                        }
                    });
                if let Err(e) = spawned {
                    gate.leave(id, ip, false);
                    live.fetch_sub(1, Ordering::AcqRel);
                    report(ServeEvent::Refused {
                        peer,
                        reason: format!("no thread for the session: {e}"),
                    });
                }
            }
            gate.close_waiting();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    fn waiting(id: u64, from: u8) -> Waiting {
        Waiting {
            id,
            ip: ip(from),
            stream: None,
            evicted: Arc::new(AtomicBool::new(false)),
        }
    }

    fn ids(v: Vec<Waiting>) -> Vec<u64> {
        v.into_iter().map(|w| w.id).collect()
    }

    #[test]
    fn an_address_over_its_share_loses_its_own_oldest() {
        let gate = Gate::new(ServeLimits::default().with_handshakes(10, 3));
        assert!(gate.arrive(waiting(1, 9)).is_empty());
        for id in 2..=4 {
            assert!(gate.arrive(waiting(id, 2)).is_empty());
        }
        // 127.0.0.2 holds 3: its oldest goes, not 127.0.0.9's.
        assert_eq!(ids(gate.arrive(waiting(5, 2))), vec![2]);
        assert_eq!(ids(gate.arrive(waiting(6, 2))), vec![3]);
        assert_eq!(gate.counts(), (4, 0));
        assert!(gate.admit(1, ip(9)).is_ok(), "the first comer was kept");
        assert!(
            gate.admit(2, ip(2)).is_err(),
            "an evicted one is not admitted"
        );
    }

    #[test]
    fn when_full_the_address_holding_most_makes_room() {
        let gate = Gate::new(ServeLimits::default().with_handshakes(4, 4));
        // 1 from .5, then 3 from .6: full.
        assert!(gate.arrive(waiting(1, 5)).is_empty());
        for id in 2..=4 {
            assert!(gate.arrive(waiting(id, 6)).is_empty());
        }
        // A newcomer from .7 pushes out .6's oldest, never .5's only one.
        assert_eq!(ids(gate.arrive(waiting(5, 7))), vec![2]);
        assert_eq!(ids(gate.arrive(waiting(6, 8))), vec![3]);
        // Now .5, .6, .7, .8 hold one each: the oldest of them goes (.5).
        assert_eq!(ids(gate.arrive(waiting(7, 9))), vec![1]);
        assert_eq!(gate.counts().0, 4);
    }

    #[test]
    fn sessions_are_capped_in_all_and_per_address() {
        let gate = Gate::new(
            ServeLimits::default()
                .with_sessions(3, 2)
                .with_handshakes(10, 10),
        );
        for id in 1..=5 {
            let from = if id <= 3 { 2 } else { 3 };
            assert!(gate.arrive(waiting(id, from)).is_empty());
        }
        assert!(gate.admit(1, ip(2)).is_ok());
        assert!(gate.admit(2, ip(2)).is_ok());
        let e = gate.admit(3, ip(2)).unwrap_err();
        assert!(e.contains("from 127.0.0.2"), "{e}");
        assert!(gate.admit(4, ip(3)).is_ok());
        let e = gate.admit(5, ip(3)).unwrap_err();
        assert!(e.contains("3 sessions already running"), "{e}");
        assert_eq!(gate.counts(), (0, 3));
        // Ending sessions frees their room.
        gate.leave(1, ip(2), true);
        gate.leave(3, ip(2), false);
        assert_eq!(gate.counts(), (0, 2));
        assert!(gate.arrive(waiting(6, 2)).is_empty());
        assert!(gate.admit(6, ip(2)).is_ok());
        assert_eq!(gate.counts(), (0, 3));
    }

    #[test]
    fn a_handshake_that_ends_frees_its_place() {
        let gate = Gate::new(ServeLimits::default().with_handshakes(2, 2));
        assert!(gate.arrive(waiting(1, 2)).is_empty());
        assert!(gate.arrive(waiting(2, 2)).is_empty());
        gate.leave(1, ip(2), false);
        assert!(gate.arrive(waiting(3, 2)).is_empty());
        assert_eq!(gate.counts(), (2, 0));
    }
}
