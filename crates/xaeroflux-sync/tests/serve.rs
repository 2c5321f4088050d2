// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The TCP server against silent and greedy peers: a handshake deadline,
//! handshakes that a silent peer cannot hold, and session caps in all and
//! per address, each beside a well-behaved peer that still syncs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use socket2::{Domain, Socket, Type};
use xaeroflux_sync::serve::{ServeEvent, ServeLimits, TcpServer};
use xaeroflux_sync::{
    Decoder, ErrorCode, MemStore, Message, Session, SessionConfig, SyncError, driver,
};
use xaeroflux_types::Topic;

/// A bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

/// A TCP connection to `to` from the loopback address 127.0.0.`from`.
fn connect_from(from: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::from(([127, 0, 0, from], 0)).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(s.into())
}

/// Runs `body` beside a server on `store` within `limits`; the server is
/// stopped when `body` returns, and the events it reported are returned.
fn with_server<T>(
    store: &MemStore,
    limits: ServeLimits,
    body: impl FnOnce(SocketAddr, &Receiver<ServeEvent>) -> T,
) -> T {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = TcpServer::new(listener, limits).expect("server");
    let addr = server.local_addr();
    let stopper = server.stopper();
    let (tx, rx) = unbounded();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            server.run(store, &|_| SessionConfig::default(), &|e| {
                let _ = tx.send(e);
            })
        });
        let out = body(addr, &rx);
        stopper.stop();
        t.join().expect("server thread");
        out
    })
}

/// One session of `store` with the server at `addr`, from 127.0.0.`from`.
fn sync_from(store: &MemStore, from: u8, addr: SocketAddr) -> Result<u64, SyncError> {
    let conn = connect_from(from, addr).map_err(SyncError::Io)?;
    driver::run_tcp(
        store,
        SessionConfig::default(),
        conn,
        Duration::from_secs(10),
    )
    .map(|o| o.events_in)
}

/// A peer that sends its HELLO and then nothing: it holds a session.
/// Returns once the server has decided on it (a message after the
/// server's own HELLO has come back).
fn hello_only(from: u8, addr: SocketAddr) -> TcpStream {
    let store = MemStore::with_seed(99);
    store.append(&Topic::new("chat").expect("topic"), b"held");
    let mut session = Session::new(&store, SessionConfig::default()).expect("session");
    let hello = session.take_output();
    let mut conn = connect_from(from, addr).expect("connect");
    conn.write_all(&hello).expect("hello");
    conn.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut decoder = Decoder::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).expect("the server answers");
        assert!(n > 0, "the server closed a held session");
        decoder.feed(buf.get(..n).unwrap_or_default());
        while let Some(m) = decoder.next_message().expect("a message") {
            if !matches!(m, Message::Hello { .. }) {
                assert!(!matches!(m, Message::Error { .. }), "refused: {m:?}");
                return conn;
            }
        }
    }
}

/// The server's store: one author with 50 events in `chat`.
fn served() -> MemStore {
    let store = MemStore::with_seed(1);
    let chat = Topic::new("chat").expect("topic");
    for i in 0..50u32 {
        store.append(&chat, &i.to_le_bytes());
    }
    store
}

/// Waits, at most [`WAIT`], for a reported event that `pick` accepts.
fn wait_for(rx: &Receiver<ServeEvent>, mut pick: impl FnMut(&ServeEvent) -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) if pick(&e) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn a_silent_connection_is_closed_at_the_hello_deadline() {
    let store = served();
    let limits = ServeLimits::default().with_timeouts(Duration::from_millis(300), WAIT);
    with_server(&store, limits, |addr, rx| {
        let mut idle = connect_from(1, addr).expect("connect");
        idle.set_read_timeout(Some(WAIT)).expect("timeout");
        let started = Instant::now();
        // The server's HELLO, then its ERROR, then the end of the stream:
        // long before the 20 s session timeout.
        let mut got = Vec::new();
        idle.read_to_end(&mut got)
            .expect("the server closes the stream");
        assert!(started.elapsed() < WAIT, "closed by the deadline");
        assert!(!got.is_empty(), "the server said HELLO and why it closed");
        assert!(wait_for(rx, |e| matches!(
            e,
            ServeEvent::Session {
                result: Err(SyncError::NoHello(_)),
                ..
            }
        )));
        // A peer that speaks is served as before.
        assert_eq!(
            sync_from(&MemStore::with_seed(2), 1, addr).expect("sync"),
            50
        );
    });
}

#[test]
fn a_legitimate_peer_syncs_while_200_idle_connections_are_held_open() {
    let store = served();
    with_server(&store, ServeLimits::default(), |addr, rx| {
        // 40 idle connections from the legitimate peer's own address, held.
        let mut held: Vec<TcpStream> = (0..40)
            .map(|_| connect_from(1, addr).expect("connect"))
            .collect();
        let done = AtomicBool::new(false);
        let (opened_tx, opened) = unbounded();
        std::thread::scope(|s| {
            // 200 idle connections from eight other addresses, each one
            // reopened as soon as the server closes it, until the
            // legitimate peer is done (bounded by WAIT).
            let flood = s.spawn(|| {
                let mut idle: Vec<(u8, TcpStream)> = (0..200)
                    .map(|i| {
                        let from = 2 + (i % 8) as u8;
                        (from, connect_from(from, addr).expect("connect"))
                    })
                    .collect();
                let _ = opened_tx.send(());
                let started = Instant::now();
                let mut reopened = 0u64;
                let mut buf = [0u8; 4096];
                while !done.load(Ordering::Acquire) && started.elapsed() < WAIT {
                    for (from, conn) in &mut idle {
                        conn.set_nonblocking(true).expect("nonblocking");
                        let closed = match conn.read(&mut buf) {
                            Ok(0) => true,
                            Ok(_) => false,
                            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                        };
                        if closed && let Ok(c) = connect_from(*from, addr) {
                            *conn = c;
                            reopened += 1;
                        }
                    }
                }
                (idle.len(), reopened)
            });
            // The legitimate peer syncs, again and again, beside them.
            opened
                .recv_timeout(WAIT)
                .expect("the idle connections are open");
            for seed in 10..15 {
                let got = sync_from(&MemStore::with_seed(seed), 1, addr);
                assert_eq!(got.expect("a legitimate sync"), 50);
            }
            done.store(true, Ordering::Release);
            let (open, reopened) = flood.join().expect("flood");
            assert_eq!(open, 200);
            assert!(reopened > 0, "the server closed idle connections");
        });
        // The server made room by dropping silent handshakes.
        let mut dropped = 0;
        while let Ok(e) = rx.try_recv() {
            if matches!(e, ServeEvent::Dropped { .. }) {
                dropped += 1;
            }
        }
        assert!(dropped >= 150, "{dropped} silent handshakes dropped");
        held.clear();
    });
}

#[test]
fn sessions_over_the_caps_are_told_busy() {
    let store = served();
    let limits = ServeLimits::default().with_sessions(2, 1);
    with_server(&store, limits, |addr, rx| {
        // A session from 127.0.0.1 that says HELLO and then nothing.
        let _first = hello_only(1, addr);
        // A second from the same address is told busy, with the reason.
        match sync_from(&MemStore::with_seed(3), 1, addr) {
            Err(SyncError::Peer { code, reason }) => {
                assert_eq!(code, ErrorCode::Busy);
                assert!(reason.contains("from 127.0.0.1"), "{reason}");
            }
            other => panic!("expected busy, got {other:?}"),
        }
        // Another address still has room.
        assert_eq!(
            sync_from(&MemStore::with_seed(4), 2, addr).expect("sync"),
            50
        );
        // Two held sessions fill the server for everyone.
        let _second = hello_only(3, addr);
        match sync_from(&MemStore::with_seed(5), 4, addr) {
            Err(SyncError::Peer { code, reason }) => {
                assert_eq!(code, ErrorCode::Busy);
                assert!(reason.contains("2 sessions already running"), "{reason}");
            }
            other => panic!("expected busy, got {other:?}"),
        }
        assert!(wait_for(rx, |e| matches!(
            e,
            ServeEvent::Session {
                result: Err(SyncError::Busy(_)),
                ..
            }
        )));
    });
}
