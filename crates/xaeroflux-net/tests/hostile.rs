// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Hostile peers over iroh, on loopback in the local-only mode: silent
//! sessions, a peer over its share, sessions that hold their places, and a
//! peer that asks for pages without reading them. Each is bounded, and a
//! well-behaved peer still syncs beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, ConnectionError, RecvStream, SendStream};
use iroh::{Endpoint, EndpointAddr};
use xaeroflux_net::{NetMode, XSP_ALPN};
use xaeroflux_store::{LogId, NewEvent, Store, StoreOptions, Topic};
use xaeroflux_sync::codec::{DiffEntry, PageRequest, TopicEntry, VERSION, caps};
use xaeroflux_sync::{Decoder, ErrorCode, Message};

/// Longest any step here may take.
const BOUND: Duration = Duration::from_secs(40);

mod common;
use common::Node;

fn start(dir: &std::path::Path, session_timeout: Duration) -> Node {
    start_with(dir, &["iroh"], session_timeout)
}

fn start_with(dir: &std::path::Path, backends: &[&str], session_timeout: Duration) -> Node {
    let mut config = common::config(backends, Duration::from_secs(3600));
    config.session_timeout = session_timeout;
    common::start_with(dir, StoreOptions::default(), config)
}

trait Addr {
    fn addr(&self) -> EndpointAddr;
}

impl Addr for Node {
    fn addr(&self) -> EndpointAddr {
        let me = self.net.peer();
        EndpointAddr::new(me.id().parse().unwrap()).with_ip_addr(me.addrs()[0])
    }
}

/// A node serving `n` events of `len` bytes in "chat"; returns it and its log.
fn served(dir: &std::path::Path, n: usize, len: usize, session_timeout: Duration) -> (Node, LogId) {
    let a = start(dir, session_timeout);
    let chat = Topic::new("chat").unwrap();
    let mut log = None;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let evs = chunk
            .iter()
            .map(|i| NewEvent::application(&chat, vec![*i as u8; len]))
            .collect();
        log = Some(a.store.append_batch(evs).unwrap().events[0].log);
    }
    a.net.join(&chat, &[]).unwrap();
    (a, log.unwrap())
}

/// A well-behaved peer pulls everything from `a`.
fn sync_from(a: &Node) -> Result<u64, String> {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), Duration::from_secs(30));
    b.net.join(&Topic::new("chat").unwrap(), &[]).unwrap();
    let r = b
        .net
        .sync_with(&a.net.peer())
        .map(|o| o.events_in)
        .map_err(|e| e.to_string());
    b.stop();
    r
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh endpoint: a new identity.
async fn identity() -> Endpoint {
    xaeroflux_net::endpoint_builder(&NetMode::local_only())
        .unwrap()
        .bind()
        .await
        .unwrap()
}

type Streams = Option<(SendStream, RecvStream)>;

/// Opens a session stream and sends `first` on it: the connection, and
/// its streams unless the node closed it first (a refusal can come before
/// the stream is open).
async fn open(ep: &Endpoint, to: &EndpointAddr, first: &[u8]) -> (Connection, Streams) {
    let conn = tokio::time::timeout(BOUND, ep.connect(to.clone(), XSP_ALPN))
        .await
        .expect("bounded")
        .unwrap();
    let streams = match conn.open_bi().await {
        Ok((mut send, recv)) => send.write_all(first).await.ok().map(|()| (send, recv)),
        Err(_) => None,
    };
    (conn, streams)
}

/// The application close code the connection ends with, within `within`.
async fn close_code(conn: &Connection, within: Duration) -> Option<u64> {
    match tokio::time::timeout(within, conn.closed()).await {
        Ok(ConnectionError::ApplicationClosed(c)) => Some(c.error_code.into_inner()),
        _ => None,
    }
}

fn hello() -> Vec<u8> {
    let chat = Topic::new("chat").unwrap();
    let mut out = Vec::new();
    Message::Hello {
        version: VERSION,
        node_id: [7; 32],
        caps: caps::SYNC,
        all_topics: false,
        topics: vec![TopicEntry {
            id: chat.id(),
            name: "chat".into(),
            digest: [0; 32],
        }],
    }
    .encode(&mut out)
    .unwrap();
    out
}

/// Reads the node's messages until `pick` finds one, within `BOUND`.
async fn read_until(recv: &mut RecvStream, mut pick: impl FnMut(&Message) -> bool) -> Message {
    let mut d = Decoder::new();
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let chunk = tokio::time::timeout_at(deadline, recv.read_chunk(64 * 1024))
            .await
            .expect("the node answers in time")
            .unwrap()
            .expect("the stream ended before the message came");
        d.feed(&chunk);
        while let Some(m) = d.next_message().unwrap() {
            if pick(&m) {
                return m;
            }
        }
    }
}

#[test]
fn a_peer_gets_four_sessions_at_most_and_a_silent_one_ends_at_the_hello_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = served(dir.path(), 10, 10, Duration::from_secs(30));
    let to = a.addr();
    runtime().block_on(async {
        let ep = identity().await;
        // One byte of a frame's length: the sessions never get a HELLO.
        let mut conns = Vec::new();
        for _ in 0..8 {
            conns.push(open(&ep, &to, &[0]).await);
        }
        let started = Instant::now();
        let mut refused = 0;
        let mut held = Vec::new();
        for (conn, streams) in conns {
            match close_code(&conn, Duration::from_secs(2)).await {
                Some(3) => refused += 1,
                _ => held.push((conn, streams.expect("an admitted session has its stream"))),
            }
        }
        assert_eq!(refused, 4, "a peer over its share is refused (busy)");
        assert_eq!(held.len(), 4);
        for (_conn, (_send, mut recv)) in held {
            let m = read_until(&mut recv, |m| matches!(m, Message::Error { .. })).await;
            let Message::Error { code, reason } = m else {
                unreachable!()
            };
            assert_eq!(code, ErrorCode::Timeout, "{reason}");
            assert!(reason.contains("HELLO"), "{reason}");
        }
        // The hello deadline is 5 s, not the 30 s session timeout.
        assert!(started.elapsed() < Duration::from_secs(20));
        ep.close().await;
    });
    a.stop();
}

#[test]
fn silent_sessions_make_room_for_a_peer_that_says_hello() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = served(dir.path(), 10, 10, Duration::from_secs(30));
    let to = a.addr();
    let rt = runtime();
    // Six identities, four silent sessions each: 24 for 16 places.
    let (eps, conns) = rt.block_on(async {
        let mut eps = Vec::new();
        let mut conns = Vec::new();
        for _ in 0..6 {
            let ep = identity().await;
            for _ in 0..4 {
                conns.push(open(&ep, &to, &[0]).await);
            }
            eps.push(ep);
        }
        (eps, conns)
    });
    // A well-behaved peer takes the place of the oldest silent session.
    assert_eq!(sync_from(&a), Ok(10));
    rt.block_on(async {
        let mut evicted = 0;
        for (conn, _) in &conns {
            if close_code(conn, Duration::from_secs(10)).await == Some(4) {
                evicted += 1;
            }
        }
        // All 24 arrived well within the 5 s hello deadline on loopback:
        // the last 8 each made room, and so did the well-behaved peer.
        assert!(evicted >= 8, "{evicted} evicted");
        for ep in eps {
            ep.close().await;
        }
    });
    a.stop();
}

#[test]
fn sessions_that_said_hello_hold_their_places_until_they_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = served(dir.path(), 10, 10, Duration::from_secs(3));
    let to = a.addr();
    let rt = runtime();
    let held = rt.block_on(async {
        let mut held = Vec::new();
        let mut eps = Vec::new();
        for _ in 0..4 {
            let ep = identity().await;
            for _ in 0..4 {
                let (conn, streams) = open(&ep, &to, &hello()).await;
                let (send, mut recv) = streams.expect("a session within the caps opens");
                // The node's PEAKS: our HELLO was taken.
                read_until(&mut recv, |m| matches!(m, Message::Peaks { .. })).await;
                held.push((conn, send, recv));
            }
            eps.push(ep);
        }
        // Every place is held by a session that said HELLO: a newcomer is
        // refused.
        let ep = identity().await;
        let (conn, _) = open(&ep, &to, &hello()).await;
        assert_eq!(close_code(&conn, Duration::from_secs(2)).await, Some(3));
        ep.close().await;
        (held, eps)
    });
    // Once they have been silent for the session timeout (3 s here), they
    // are ended and the well-behaved peer gets in.
    let deadline = Instant::now() + BOUND;
    loop {
        match sync_from(&a) {
            Ok(n) => {
                assert_eq!(n, 10);
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "never got in: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    drop(held);
    a.stop();
}

#[test]
fn a_peer_that_asks_for_pages_and_never_reads_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    // 5,000 events of 200 bytes: each answer is about 1 MB.
    let (a, log) = served(dir.path(), 5000, 200, Duration::from_secs(3));
    let to = a.addr();
    let rt = runtime();
    let (ep, conn, writer) = rt.block_on(async {
        let chat = Topic::new("chat").unwrap();
        let mut first = hello();
        Message::Peaks {
            topic: chat.id(),
            logs: Vec::new(),
        }
        .encode(&mut first)
        .unwrap();
        Message::Diff {
            wants: vec![DiffEntry {
                log,
                from: 0,
                to: 5000,
            }],
        }
        .encode(&mut first)
        .unwrap();
        let ep = identity().await;
        let (conn, streams) = open(&ep, &to, &first).await;
        let (mut send, recv) = streams.expect("the session opens");
        // 20,000 requests (about 20 GB of answers), never read.
        let mut flood = Vec::new();
        let req = Message::PageRequest(PageRequest {
            log,
            from: 0,
            to: 5000,
            max_events: 4096,
            want_base: false,
        });
        for _ in 0..20_000 {
            req.encode(&mut flood).unwrap();
        }
        let writer = tokio::spawn(async move {
            let _keep = recv;
            let _ = send.write_all(&flood).await;
            send
        });
        (ep, conn, writer)
    });
    // Beside it, a well-behaved peer syncs.
    assert_eq!(sync_from(&a), Ok(5000));
    rt.block_on(async {
        // The node stops reading the flood while its answers wait, and
        // ends the session once they have gone unread for the session
        // timeout: the connection closes.
        let closed = tokio::time::timeout(BOUND, conn.closed()).await;
        assert!(closed.is_ok(), "the flooding session was never ended");
        writer.abort();
        ep.close().await;
    });
    // And the node still serves.
    assert_eq!(sync_from(&a), Ok(5000));
    a.stop();
}

/// Counts the sessions dialed to it, and refuses them.
#[derive(Debug, Clone)]
struct CountDials(Arc<std::sync::atomic::AtomicUsize>);

impl iroh::protocol::ProtocolHandler for CountDials {
    async fn accept(&self, conn: Connection) -> Result<(), iroh::protocol::AcceptError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        conn.close(0u32.into(), b"nothing here");
        Ok(())
    }
}

#[test]
fn a_flood_of_announcements_costs_a_few_dials_a_second() {
    use std::sync::atomic::Ordering;
    use xaeroflux_net::{Announcement, Peer};
    let (dm, da) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The flooder's own log: each append gives a larger signed checkpoint
    // to announce (the flooder serves none of it).
    let chat = Topic::new("chat").unwrap();
    let m = Store::open(
        dm.path(),
        StoreOptions {
            durability: xaeroflux_store::Durability::Fast,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let rt = runtime();
    let a = start_with(da.path(), &["iroh", "iroh-gossip"], Duration::from_secs(30));
    let (a_addr, a_id) = (a.addr(), a.addr().id);
    let dials = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (ep, gossip, router) = rt.block_on(async {
        let lookup = iroh::address_lookup::memory::MemoryLookup::new();
        lookup.add_endpoint_info(a_addr);
        let ep = xaeroflux_net::endpoint_builder(&NetMode::local_only())
            .unwrap()
            .address_lookup(lookup)
            .bind()
            .await
            .unwrap();
        let gossip = iroh_gossip::Gossip::builder().spawn(ep.clone());
        let router = iroh::protocol::Router::builder(ep.clone())
            .accept(iroh_gossip::ALPN, gossip.clone())
            .accept(XSP_ALPN, CountDials(dials.clone()))
            .spawn();
        (ep, gossip, router)
    });
    let flooder: Peer = format!("{}@{}", ep.id(), ep.addr().ip_addrs().next().unwrap())
        .parse()
        .unwrap();
    a.net.join(&chat, &[flooder]).unwrap();
    let (flood_for, sent) = rt.block_on(async {
        let topic_id = iroh_gossip::TopicId::from_bytes(xaeroflux_store::merkle::sha256(&[
            b"xaeroflux/gossip/v1\0",
            &chat.id().0,
        ]));
        let sub = tokio::time::timeout(BOUND, gossip.subscribe_and_join(topic_id, vec![a_id]))
            .await
            .expect("joined in time")
            .unwrap();
        let (sender, _receiver) = sub.split();
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(3) {
            let r = m
                .append(NewEvent::application(&chat, b"never served".to_vec()))
                .unwrap();
            let ann = Announcement {
                announcer: *ep.id().as_bytes(),
                log: r.log,
                note: m.checkpoint(&r.log).unwrap().note,
            };
            sender.broadcast(ann.encode().into()).await.unwrap();
            sent += 1;
        }
        (started.elapsed(), sent)
    });
    let n = dials.load(Ordering::Relaxed);
    eprintln!("{sent} announcements in {flood_for:?}: {n} dials");
    assert!(sent > 200, "only {sent} announcements sent");
    assert!(n >= 1, "the announcements were never acted on");
    // One dial per 200 ms at most, plus the join's.
    let most = (flood_for.as_millis() / 200) as usize + 3;
    assert!(
        n <= most,
        "{n} dials for {sent} announcements (at most {most})"
    );
    // The node still serves a well-behaved peer.
    a.append(&chat, 10, "event");
    assert_eq!(sync_from(&a).map(|n| n >= 10), Ok(true));
    rt.block_on(async {
        let _ = router.shutdown().await;
        ep.close().await;
    });
    a.stop();
    m.close().unwrap();
}

#[test]
fn pull_progress_follows_a_catch_up_and_is_empty_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = served(dir.path(), 50_000, 100, Duration::from_secs(30));
    let db = tempfile::tempdir().unwrap();
    let b = start(db.path(), Duration::from_secs(30));
    b.net.join(&Topic::new("chat").unwrap(), &[]).unwrap();
    let peer = a.net.peer();
    let seen = std::thread::scope(|s| {
        let pulling = s.spawn(|| b.net.sync_with(&peer).unwrap().events_in);
        let mut seen = Vec::new();
        while !pulling.is_finished() {
            let p = b.net.pull_progress();
            if p.events_wanted > 0 {
                seen.push(p);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pulling.join().unwrap(), 50_000);
        seen
    });
    assert!(!seen.is_empty(), "the catch-up was never seen");
    for p in &seen {
        assert_eq!(p.events_wanted, 50_000, "{p:?}");
        assert!(p.events_in <= p.events_wanted && p.sessions >= 1, "{p:?}");
    }
    assert!(seen.windows(2).all(|w| w[0].events_in <= w[1].events_in));
    assert_eq!(b.net.pull_progress(), Default::default());
    b.stop();
    a.stop();
}
