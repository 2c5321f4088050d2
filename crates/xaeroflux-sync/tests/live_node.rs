// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! `LiveNode`: live sessions kept up over a transport that only moves
//! bytes, the same tests over in-memory pipes and over TCP on 127.0.0.1.
//! Stores converge through a relay, a cut connection is dialed again and
//! caught up with, connections beyond the cap are refused, and a stop ends
//! every thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use xaeroflux_sync::MemStore;
use xaeroflux_sync::live::{
    Listener, LiveConfig, LiveEvent, LiveNode, MemNet, TcpListen, TcpTransport, Transport,
};
use xaeroflux_types::{LogId, Topic};

const WAIT: Duration = Duration::from_secs(20);

fn config() -> LiveConfig {
    LiveConfig {
        retry: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        timeout: Duration::from_secs(10),
        dial_timeout: Duration::from_secs(5),
        ..LiveConfig::default()
    }
}

/// A node on `store`, following the store's changes.
fn node(
    store: &Arc<MemStore>,
    transport: Arc<dyn Transport>,
    listener: Option<Box<dyn Listener>>,
    config: LiveConfig,
) -> LiveNode<MemStore> {
    let changes = store.watch();
    let n = LiveNode::start(store.clone(), transport, listener, config).unwrap();
    n.follow(changes);
    n
}

/// Waits (bounded) until `store` holds `log` at `size`.
fn wait_size(store: &MemStore, changes: &Receiver<LogId>, log: &LogId, size: u64) {
    xaeroflux_testkit::wait_log_size(store, changes, log, size, WAIT).unwrap();
}

/// Waits (bounded) for an event `pick` accepts.
fn wait_event(n: &LiveNode<MemStore>, mut pick: impl FnMut(&LiveEvent) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = n
            .events()
            .recv_timeout(left)
            .expect("the event did not come within the bound");
        if pick(&e) {
            return;
        }
    }
}

/// a and c dial b: what either appends reaches the other through b, and
/// keeps doing so round after round.
fn three_converge(transport: Arc<dyn Transport>, listener: Box<dyn Listener>, b_addr: &str) {
    let chat = Topic::new("chat").unwrap();
    let [a, b, c] = [1, 2, 3].map(|s| Arc::new(MemStore::with_seed(s)));
    let a_log = a.append(&chat, b"a0");
    let c_log = c.append(&chat, b"c0");
    let (a_seen, c_seen) = (a.watch(), c.watch());
    let nb = node(&b, transport.clone(), Some(listener), config());
    let na = node(&a, transport.clone(), None, config());
    let nc = node(&c, transport, None, config());
    na.add_peer(b_addr);
    nc.add_peer(b_addr);
    wait_size(&c, &c_seen, &a_log, 1);
    wait_size(&a, &a_seen, &c_log, 1);
    for round in 1..=10u8 {
        a.append(&chat, &[b'a', round]);
        c.append(&chat, &[b'c', round]);
        wait_size(&c, &c_seen, &a_log, 1 + u64::from(round));
        wait_size(&a, &a_seen, &c_log, 1 + u64::from(round));
    }
    assert_eq!(a.heads(), c.heads());
    assert_eq!(a.heads(), b.heads());
    assert_eq!(nb.connections(), 2);
    na.stop();
    nc.stop();
    nb.stop();
}

#[test]
fn three_stores_converge_live_through_a_relay_in_memory() {
    let net = MemNet::new();
    let listener = net.listen("b");
    three_converge(Arc::new(net), Box::new(listener), "b");
}

#[test]
fn three_stores_converge_live_through_a_relay_over_tcp() {
    let listener = TcpListen::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().to_string();
    three_converge(Arc::new(TcpTransport), Box::new(listener), &addr);
}

#[test]
fn a_cut_connection_is_dialed_again_and_what_was_missed_arrives() {
    let chat = Topic::new("chat").unwrap();
    let net = MemNet::new();
    let (a, b) = (
        Arc::new(MemStore::with_seed(11)),
        Arc::new(MemStore::with_seed(12)),
    );
    let log = a.append(&chat, b"first");
    let b_seen = b.watch();
    let na = node(
        &a,
        Arc::new(net.clone()),
        Some(Box::new(net.listen("a"))),
        config(),
    );
    let nb = node(&b, Arc::new(net.clone()), None, config());
    nb.add_peer("a");
    wait_size(&b, &b_seen, &log, 1);
    for cut in 1..=3u64 {
        assert!(net.cut() >= 1, "a connection was open");
        wait_event(&nb, |e| matches!(e, LiveEvent::Ended { dialed: true, .. }));
        // Appended while b is (or may be) away.
        for i in 0..5u8 {
            a.append(&chat, &[i]);
        }
        wait_size(&b, &b_seen, &log, 1 + 5 * cut);
        wait_event(&nb, |e| {
            matches!(e, LiveEvent::Connected { dialed: true, .. })
        });
    }
    assert_eq!(a.heads(), b.heads());
    nb.stop();
    na.stop();
}

#[test]
fn a_peer_without_live_mode_gets_a_catch_up_every_retry_max() {
    use xaeroflux_sync::{SessionConfig, driver};
    let chat = Topic::new("chat").unwrap();
    let net = MemNet::new();
    let (old, b) = (
        Arc::new(MemStore::with_seed(31)),
        Arc::new(MemStore::with_seed(32)),
    );
    let log = old.append(&chat, b"from a peer without live mode");
    // The peer: a plain (not live) session for each connection.
    let mut listener = net.listen("old");
    let served = old.clone();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let c = listener.accept().unwrap();
            let r = driver::run(&*served, SessionConfig::default(), c.reader, c.writer, WAIT);
            (c.closer)();
            r.unwrap();
        }
    });
    let slow = LiveConfig {
        retry_max: Duration::from_millis(400),
        ..config()
    };
    let b_seen = b.watch();
    let nb = node(&b, Arc::new(net.clone()), None, slow);
    nb.add_peer("old");
    wait_size(&b, &b_seen, &log, 1);
    let mut ended = None;
    wait_event(&nb, |e| match e {
        LiveEvent::Ended { result: Ok(o), .. } => {
            assert!(!o.live && o.events_in == 1, "{o:?}");
            ended = Some(Instant::now());
            true
        }
        _ => false,
    });
    wait_event(&nb, |e| matches!(e, LiveEvent::Connected { .. }));
    let waited = ended.unwrap().elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "dialed again after {waited:?}, not after retry_max"
    );
    server.join().unwrap();
    nb.stop();
}

#[test]
fn a_silent_connection_is_closed_at_the_hello_deadline() {
    let net = MemNet::new();
    let hub = Arc::new(MemStore::with_seed(41));
    let quick = LiveConfig {
        hello_timeout: Duration::from_millis(200),
        ..config()
    };
    let nh = node(
        &hub,
        Arc::new(net.clone()),
        Some(Box::new(net.listen("hub"))),
        quick,
    );
    // Connects and says nothing.
    let mut silent = net.dial("hub", WAIT).unwrap();
    wait_event(
        &nh,
        |e| matches!(e, LiveEvent::Ended { dialed: false, result: Err(why), .. } if why.contains("HELLO")),
    );
    // The node's side closed: its HELLO, then the end of the stream.
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while std::io::Read::read(&mut silent.reader, &mut buf).unwrap() > 0 {}
        let _ = tx.send(());
    });
    rx.recv_timeout(WAIT).expect("the connection was closed");
    nh.stop();
}

#[test]
fn connections_beyond_the_cap_are_refused_and_a_dead_address_is_retried() {
    let net = MemNet::new();
    let hub = Arc::new(MemStore::with_seed(21));
    let capped = LiveConfig {
        max_accepted: 1,
        ..config()
    };
    let nh = node(
        &hub,
        Arc::new(net.clone()),
        Some(Box::new(net.listen("hub"))),
        capped,
    );
    let (x, y) = (
        Arc::new(MemStore::with_seed(22)),
        Arc::new(MemStore::with_seed(23)),
    );
    let nx = node(&x, Arc::new(net.clone()), None, config());
    nx.add_peer("hub");
    wait_event(&nh, |e| {
        matches!(e, LiveEvent::Connected { dialed: false, .. })
    });
    let ny = node(&y, Arc::new(net.clone()), None, config());
    ny.add_peer("hub");
    wait_event(&nh, |e| matches!(e, LiveEvent::Refused { .. }));
    // Nobody listens at "nowhere": the dial fails, and is tried again.
    ny.add_peer("nowhere");
    let mut failures = 0;
    wait_event(&ny, |e| {
        if matches!(e, LiveEvent::DialFailed { peer, .. } if peer == "nowhere") {
            failures += 1;
        }
        failures >= 2
    });
    ny.stop();
    nx.stop();
    nh.stop();
}
