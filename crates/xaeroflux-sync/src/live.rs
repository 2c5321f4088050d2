//! Live sessions kept up over any stream transport: a [`LiveNode`] accepts
//! connections from a [`Listener`], dials the peers it is given through a
//! [`Transport`], and runs one live XSP session on each (see
//! [`SessionConfig::live`]): a catch-up first, then every new checkpoint
//! of the store announced as it happens and pulled by the other side at
//! once. A dialed session that ends is dialed again after a backoff, so a
//! peer that went away is caught up with when it is back.
//!
//! This is how stores sync where there is no gossip: over onion services
//! (the `tor` backend implements [`Transport`] and [`Listener`] with
//! Arti), over plain TCP ([`TcpTransport`], [`TcpListen`]), and in tests
//! over in-memory pipes ([`MemNet`]). The transport only moves bytes: what
//! a peer sends is verified by the session as over any other stream.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use xaeroflux_sync::MemStore;
//! use xaeroflux_sync::live::{LiveConfig, LiveNode, MemNet};
//! use xaeroflux_types::Topic;
//!
//! let net = MemNet::new();
//! let (a, b) = (Arc::new(MemStore::with_seed(1)), Arc::new(MemStore::with_seed(2)));
//! let chat = Topic::new("chat")?;
//! let listener = Box::new(net.listen("a"));
//! let node_a = LiveNode::start(a.clone(), Arc::new(net.clone()), Some(listener), LiveConfig::default())?;
//! node_a.follow(a.watch()); // each change of a's store is announced
//! let node_b = LiveNode::start(b.clone(), Arc::new(net.clone()), None, LiveConfig::default())?;
//! node_b.follow(b.watch());
//! node_b.add_peer("a");
//! let b_changes = b.watch();
//! // Appended after the session is up: announced, then pulled.
//! let log = a.append(&chat, b"hello");
//! while b.root(&log) != a.root(&log) {
//!     b_changes.recv_timeout(Duration::from_secs(10))?;
//! }
//! node_b.stop();
//! node_a.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use xaeroflux_types::LogId;

use crate::driver::{RunOptions, run_with};
use crate::pipe::{PipeCloser, PipeReader, PipeWriter, closable_pipe};
use crate::session::{Outcome, SessionConfig, SyncStore};

/// Ends a connection from outside: both directions close, so that a
/// reader blocked on it returns. Calling it again does nothing.
pub type Closer = Box<dyn Fn() + Send + Sync>;

/// One open connection of a transport.
pub struct Conn {
    /// What the peer sends.
    pub reader: Box<dyn Read + Send>,
    /// What goes to the peer.
    pub writer: Box<dyn Write + Send>,
    /// Closes the connection (see [`Closer`]).
    pub closer: Closer,
    /// Who is at the other end, for reports: an address.
    pub peer: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("peer", &self.peer).finish()
    }
}

/// Opens connections to peers by address.
pub trait Transport: Send + Sync + 'static {
    /// Connects to `addr`, giving up after `timeout`.
    fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Conn>;
}

/// Takes connections peers open.
pub trait Listener: Send + 'static {
    /// Waits for the next connection; an error once closed.
    fn accept(&mut self) -> io::Result<Conn>;
    /// Makes a waiting (or later) `accept` return an error.
    fn closer(&self) -> Closer;
}

/// How a [`LiveNode`] runs its sessions.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Each session's settings (live mode is turned on).
    pub session: SessionConfig,
    /// How long a session may go without news while something is under
    /// way: 30 s.
    pub timeout: Duration,
    /// How long a peer has, from the start, for its `HELLO`: 10 s (a round
    /// trip over an onion circuit takes about a second), so that silent
    /// connections do not hold the accepted sessions' places for long.
    pub hello_timeout: Duration,
    /// How long a dial may take: 30 s (an onion service takes seconds).
    pub dial_timeout: Duration,
    /// The wait before dialing a peer again after its live session ended
    /// (the peer or the network went), and the first wait after a failed
    /// dial or session: 1 s; each failure in a row doubles it.
    pub retry: Duration,
    /// The longest wait between dials, and the wait after a session that
    /// ended well without going live (a peer without live mode gets a
    /// catch-up this often): 60 s.
    pub retry_max: Duration,
    /// Sessions accepted from peers at once: 32; more are closed at once.
    pub max_accepted: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            session: SessionConfig::default(),
            timeout: Duration::from_secs(30),
            hello_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(30),
            retry: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_accepted: 32,
        }
    }
}

/// What a [`LiveNode`] reports ([`LiveNode::events`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveEvent {
    /// A connection is up and its session started.
    Connected {
        /// The peer's address.
        peer: String,
        /// This side dialed it (else the peer did).
        dialed: bool,
    },
    /// A dial failed; it is tried again after the backoff.
    DialFailed {
        /// The address dialed.
        peer: String,
        /// Why.
        error: String,
    },
    /// A session ended: what it moved, or why it failed.
    Ended {
        /// The peer's address.
        peer: String,
        /// This side dialed it.
        dialed: bool,
        /// What moved, or the error.
        result: Result<Outcome, String>,
    },
    /// A connection accepted beyond [`LiveConfig::max_accepted`] was
    /// closed.
    Refused {
        /// The peer's address.
        peer: String,
    },
}

/// What the node's threads share.
struct Shared<S: ?Sized> {
    store: Arc<S>,
    transport: Arc<dyn Transport>,
    config: LiveConfig,
    stopping: AtomicBool,
    /// Dropped on stop: wakes every thread waiting on it.
    stop_tx: Mutex<Option<Sender<()>>>,
    stop_rx: Receiver<()>,
    /// The live sessions' feeds of changed logs.
    feeds: Mutex<Vec<Sender<LogId>>>,
    /// Open connections, to close them on stop.
    conns: Mutex<HashMap<u64, Closer>>,
    next_conn: AtomicU64,
    accepted: AtomicUsize,
    events: Sender<LiveEvent>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Reports kept for [`LiveNode::events`] at most; newer ones are dropped
/// while a caller does not read them.
const EVENTS_KEPT: usize = 1024;

impl<S: ?Sized> Shared<S> {
    fn report(&self, e: LiveEvent) {
        let _ = self.events.try_send(e);
    }

    /// Hands a changed log to every live session's feed.
    fn changed(&self, log: LogId) {
        lock(&self.feeds).retain(|f| f.send(log).is_ok());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Live sessions with peers over a [`Transport`], kept up until
/// [`LiveNode::stop`]. Threads: one per listener, one per dialed peer, and
/// two per connection (its session and its reader).
pub struct LiveNode<S: SyncStore + Send + Sync + ?Sized + 'static> {
    shared: Arc<Shared<S>>,
    listener_closer: Option<Closer>,
    events: Receiver<LiveEvent>,
}

impl<S: SyncStore + Send + Sync + ?Sized + 'static> std::fmt::Debug for LiveNode<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveNode")
            .field("connections", &lock(&self.shared.conns).len())
            .finish()
    }
}

impl<S: SyncStore + Send + Sync + ?Sized + 'static> LiveNode<S> {
    /// Starts the node: accepting from `listener` when given. Peers are
    /// added with [`LiveNode::add_peer`]; the store's changes come in
    /// through [`LiveNode::changed`] or [`LiveNode::follow`].
    pub fn start(
        store: Arc<S>,
        transport: Arc<dyn Transport>,
        listener: Option<Box<dyn Listener>>,
        config: LiveConfig,
    ) -> io::Result<Self> {
        let (stop_tx, stop_rx) = unbounded();
        let (events_tx, events) = crossbeam_channel::bounded(EVENTS_KEPT);
        let shared = Arc::new(Shared {
            store,
            transport,
            config,
            stopping: AtomicBool::new(false),
            stop_tx: Mutex::new(Some(stop_tx)),
            stop_rx,
            feeds: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            accepted: AtomicUsize::new(0),
            events: events_tx,
            threads: Mutex::new(Vec::new()),
        });
        let listener_closer = match listener {
            Some(mut l) => {
                let closer = l.closer();
                let sh = shared.clone();
                spawn(&shared, "xsp-live-accept", move || {
                    accept_loop(&sh, &mut *l)
                })?;
                Some(closer)
            }
            None => None,
        };
        Ok(LiveNode {
            shared,
            listener_closer,
            events,
        })
    }

    /// Keeps a live session with the peer at `addr`: dials it now, and
    /// again after each session ends, until the node stops.
    pub fn add_peer(&self, addr: &str) {
        let sh = self.shared.clone();
        let addr = addr.to_string();
        if let Err(e) = spawn(&self.shared, "xsp-live-dial", move || dial_loop(&sh, &addr)) {
            self.shared.report(LiveEvent::DialFailed {
                peer: String::new(),
                error: format!("no thread for the dialer: {e}"),
            });
        }
    }

    /// `log` has a new checkpoint in the store: every live session
    /// announces it to its peer (unless the peer has it).
    pub fn changed(&self, log: LogId) {
        self.shared.changed(log);
    }

    /// Calls [`LiveNode::changed`] for every log `changes` reports, until
    /// it closes or the node stops (a thread of its own).
    pub fn follow(&self, changes: Receiver<LogId>) {
        let sh = self.shared.clone();
        let _ = spawn(&self.shared, "xsp-live-follow", move || {
            loop {
                select! {
                    recv(changes) -> m => match m {
                        Ok(log) => sh.changed(log),
                        Err(_) => return,
                    },
                    recv(sh.stop_rx) -> _ => return,
                }
            }
        });
    }

    /// What the node reports: connections, sessions ended, dials failed
    /// (up to 1,024 not yet read; later ones are dropped until these are).
    pub fn events(&self) -> &Receiver<LiveEvent> {
        &self.events
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Stops accepting and dialing, ends every session (closing its
    /// connection) and waits for the node's threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let sh = &self.shared;
        sh.stopping.store(true, Ordering::Release);
        lock(&sh.stop_tx).take();
        if let Some(close) = self.listener_closer.take() {
            close();
        }
        lock(&sh.feeds).clear();
        for close in lock(&sh.conns).values() {
            close();
        }
        // Threads may start others while stopping (an accept in flight);
        // those see `stopping` and end at once.
        loop {
            let batch: Vec<JoinHandle<()>> = lock(&sh.threads).drain(..).collect();
            if batch.is_empty() {
                break;
            }
            for t in batch {
                let _ = t.join();
            }
        }
    }
}

impl<S: SyncStore + Send + Sync + ?Sized + 'static> Drop for LiveNode<S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn<S: ?Sized>(
    shared: &Shared<S>,
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    let t = std::thread::Builder::new().name(name.into()).spawn(f)?;
    lock(&shared.threads).push(t);
    Ok(())
}

fn accept_loop<S: SyncStore + Send + Sync + ?Sized + 'static>(
    sh: &Arc<Shared<S>>,
    listener: &mut dyn Listener,
) {
    while !sh.stopping.load(Ordering::Acquire) {
        let conn = match listener.accept() {
            Ok(c) => c,
            Err(_) if sh.stopping.load(Ordering::Acquire) => return,
            // A failed accept (a connection reset before it was taken):
            // the next one.
            Err(_) => continue,
        };
        if sh.stopping.load(Ordering::Acquire) {
            (conn.closer)();
            return;
        }
        if sh.accepted.fetch_add(1, Ordering::AcqRel) >= sh.config.max_accepted {
            sh.accepted.fetch_sub(1, Ordering::AcqRel);
            (conn.closer)();
            sh.report(LiveEvent::Refused { peer: conn.peer });
            continue;
        }
        let s = sh.clone();
        let spawned = spawn(sh, "xsp-live-session", move || {
            run_conn(&s, conn, false);
            s.accepted.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            sh.accepted.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn dial_loop<S: SyncStore + Send + Sync + ?Sized + 'static>(sh: &Arc<Shared<S>>, addr: &str) {
    let mut wait = sh.config.retry;
    while !sh.stopping.load(Ordering::Acquire) {
        match sh.transport.dial(addr, sh.config.dial_timeout) {
            Ok(conn) => {
                wait = match run_conn(sh, conn, true) {
                    // A live session that ended: the peer went, or the
                    // network did; back soon.
                    Some(true) => sh.config.retry,
                    // A peer without live mode: a catch-up now and then.
                    Some(false) => sh.config.retry_max,
                    None => (wait * 2).min(sh.config.retry_max),
                };
            }
            Err(e) => {
                sh.report(LiveEvent::DialFailed {
                    peer: addr.to_string(),
                    error: e.to_string(),
                });
                wait = (wait * 2).min(sh.config.retry_max);
            }
        }
        // The backoff, cut short by a stop.
        select! {
            recv(sh.stop_rx) -> _ => return,
            default(wait) => {}
        }
    }
}

/// Runs one live session on `conn` to its end: `None` if it failed, else
/// whether it went live.
fn run_conn<S: SyncStore + Send + Sync + ?Sized + 'static>(
    sh: &Arc<Shared<S>>,
    conn: Conn,
    dialed: bool,
) -> Option<bool> {
    let Conn {
        reader,
        writer,
        closer,
        peer,
    } = conn;
    let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
    let (feed_tx, feed) = unbounded();
    {
        // Registered under the same lock a stop takes, so a stop either
        // sees this connection or this side sees the stop.
        let mut conns = lock(&sh.conns);
        if sh.stopping.load(Ordering::Acquire) {
            closer();
            return None;
        }
        lock(&sh.feeds).push(feed_tx);
        conns.insert(id, closer);
    }
    sh.report(LiveEvent::Connected {
        peer: peer.clone(),
        dialed,
    });
    let mut opts = RunOptions::new(sh.config.timeout);
    opts.hello_timeout = sh.config.hello_timeout;
    opts.live = Some(feed);
    let result = run_with(&*sh.store, sh.config.session.clone(), reader, writer, opts);
    // The reader thread ends once the connection is closed.
    if let Some(close) = lock(&sh.conns).remove(&id) {
        close();
    }
    let went_live = result.as_ref().ok().map(|o| o.live);
    sh.report(LiveEvent::Ended {
        peer,
        dialed,
        result: result.map_err(|e| e.to_string()),
    });
    went_live
}

// ------------------------------------------------------------------ TCP

/// [`Transport`] over TCP: addresses are `host:port`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTransport;

/// A TCP stream as a [`Conn`]: no Nagle delay, and a write that makes no
/// progress for `write_timeout` fails (a peer that stops reading cannot
/// hold a session for ever).
pub fn tcp_conn(stream: TcpStream, write_timeout: Duration) -> io::Result<Conn> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(write_timeout.max(Duration::from_millis(1))))?;
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let reader = stream.try_clone()?;
    let shut = stream.try_clone()?;
    Ok(Conn {
        reader: Box::new(reader),
        writer: Box::new(stream),
        closer: Box::new(move || {
            let _ = shut.shutdown(Shutdown::Both);
        }),
        peer,
    })
}

impl Transport for TcpTransport {
    fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Conn> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, format!("no address in {addr}"));
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => return tcp_conn(s, timeout),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// [`Listener`] over TCP.
#[derive(Debug)]
pub struct TcpListen {
    listener: TcpListener,
    addr: SocketAddr,
    closed: Arc<AtomicBool>,
    write_timeout: Duration,
}

impl TcpListen {
    /// Listens on `addr` (port 0: any free port, see
    /// [`TcpListen::local_addr`]).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(TcpListen {
            listener,
            addr,
            closed: Arc::new(AtomicBool::new(false)),
            write_timeout: Duration::from_secs(30),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Listener for TcpListen {
    fn accept(&mut self) -> io::Result<Conn> {
        let (stream, _) = self.listener.accept()?;
        if self.closed.load(Ordering::Acquire) {
            let _ = stream.shutdown(Shutdown::Both);
            return Err(io::ErrorKind::NotConnected.into());
        }
        tcp_conn(stream, self.write_timeout)
    }

    fn closer(&self) -> Closer {
        let (closed, addr) = (self.closed.clone(), self.addr);
        Box::new(move || {
            if !closed.swap(true, Ordering::AcqRel) {
                // Wakes a waiting accept, which then sees `closed`.
                let wake = if addr.ip().is_unspecified() {
                    SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
                } else {
                    addr
                };
                let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
            }
        })
    }
}

// ------------------------------------------------------------ in memory

/// An in-memory network of named listeners joined by pipes: a
/// [`Transport`] and its [`Listener`]s for tests. [`MemNet::cut`] closes
/// every connection open, as a network outage would.
#[derive(Clone, Default)]
pub struct MemNet {
    inner: Arc<MemInner>,
}

#[derive(Default)]
struct MemInner {
    listeners: Mutex<HashMap<String, Sender<Conn>>>,
    open: Mutex<Vec<std::sync::Weak<PipeCloser>>>,
}

impl std::fmt::Debug for MemNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemNet").finish_non_exhaustive()
    }
}

/// A listener of a [`MemNet`].
#[derive(Debug)]
pub struct MemListener {
    rx: Receiver<Conn>,
    close_tx: Arc<Mutex<Option<Sender<()>>>>,
    closed: Receiver<()>,
}

impl MemNet {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens at `name` (replacing a listener of that name).
    pub fn listen(&self, name: &str) -> MemListener {
        let (tx, rx) = unbounded();
        lock(&self.inner.listeners).insert(name.to_string(), tx);
        let (close_tx, closed) = unbounded();
        MemListener {
            rx,
            close_tx: Arc::new(Mutex::new(Some(close_tx))),
            closed,
        }
    }

    /// Closes every connection open now.
    pub fn cut(&self) -> usize {
        let open: Vec<_> = lock(&self.inner.open).drain(..).collect();
        let mut n = 0;
        for c in open.iter().filter_map(std::sync::Weak::upgrade) {
            c.close();
            n += 1;
        }
        n
    }
}

fn mem_conn(
    (reader, writer): (PipeReader, PipeWriter),
    closer: Arc<PipeCloser>,
    peer: &str,
) -> Conn {
    Conn {
        reader: Box::new(reader),
        writer: Box::new(writer),
        closer: Box::new(move || closer.close()),
        peer: peer.to_string(),
    }
}

impl Transport for MemNet {
    fn dial(&self, addr: &str, _timeout: Duration) -> io::Result<Conn> {
        let listener = lock(&self.inner.listeners)
            .get(addr)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::ConnectionRefused, addr.to_string()))?;
        let (mine, theirs, closer) = closable_pipe();
        let closer = Arc::new(closer);
        {
            let mut open = lock(&self.inner.open);
            open.retain(|w| w.strong_count() > 0);
            open.push(Arc::downgrade(&closer));
        }
        listener
            .send(mem_conn(theirs, closer.clone(), "dialer"))
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, addr.to_string()))?;
        Ok(mem_conn(mine, closer, addr))
    }
}

impl Listener for MemListener {
    fn accept(&mut self) -> io::Result<Conn> {
        select! {
            recv(self.rx) -> c => c.map_err(|_| io::ErrorKind::NotConnected.into()),
            recv(self.closed) -> _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn closer(&self) -> Closer {
        let close = self.close_tx.clone();
        Box::new(move || {
            lock(&close).take();
        })
    }
}
