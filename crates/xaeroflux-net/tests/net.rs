// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Nodes on loopback, in the local-only mode: nothing here leaves
//! 127.0.0.0/8.

use std::time::{Duration, Instant};

use xaeroflux_net::{Backends, NetMode, Peer, SYNC_TOPIC, SyncEvent};
use xaeroflux_store::{Filter, NewEvent, Since, Topic};

mod common;
use common::{Node, WAIT, same_log, start, wait_until};

/// Sync events recorded so far.
fn sync_events(node: &Node) -> Vec<SyncEvent> {
    let t = Topic::new(SYNC_TOPIC).unwrap();
    match node.store.iter_topic(&t) {
        Ok(it) => it
            .filter_map(|e| e.ok().and_then(|e| SyncEvent::parse(e.payload())))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn two_nodes_converge() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let slow = Duration::from_secs(3600); // only gossip and joins trigger syncs
    let a = start(da.path(), &["iroh", "iroh-gossip"], slow);
    let b = start(db.path(), &["iroh", "iroh-gossip"], slow);
    let chat = Topic::new("chat").unwrap();
    let la = a.append(&chat, 5000, "a");
    let lb = b.append(&chat, 1234, "b");
    a.net.join(&chat, &[]).unwrap();
    let ticket: Peer = a.net.ticket().parse().unwrap();
    b.net.join(&chat, &[ticket]).unwrap();
    wait_until("both logs on both nodes", || {
        same_log(&a.store, &b.store, &la, 5000) && same_log(&a.store, &b.store, &lb, 1234)
    });
    // Each node's checkpoint of the other's log verifies with the
    // author's key, and matches the author's own root.
    let cp = b.store.checkpoint(&la).unwrap();
    assert_eq!(cp.checkpoint.size, 5000);
    assert_eq!(cp.checkpoint.root, a.store.mmr_root(&la).unwrap());
    let v = xaeroflux_merkle::NoteVerifier::new(&la.origin(), &la.author).unwrap();
    v.verify_checkpoint(&cp.note).unwrap();
    // What gossip carries for it stays far below gossip's 4 KiB limit.
    let ann = xaeroflux_net::Announcement {
        announcer: [0; 32],
        log: la,
        note: cp.note.clone(),
    };
    let bytes = ann.encode();
    eprintln!("announcement: {} bytes", bytes.len());
    assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    assert_eq!(
        xaeroflux_net::Announcement::decode(&bytes)
            .unwrap()
            .verify()
            .unwrap(),
        cp.checkpoint
    );
    // Live: one more event on B reaches A through gossip alone.
    b.append(&chat, 1, "b-live");
    wait_until("the live event", || {
        a.store.log_size(&lb).ok() == Some(1235)
    });
    // The sessions were recorded as System events.
    let events = sync_events(&a);
    assert!(
        events.iter().any(|e| matches!(e, SyncEvent::SessionEnded { events_in, error: None, .. } if *events_in > 0)),
        "{events:?}"
    );
    let sync_topic = Topic::new(SYNC_TOPIC).unwrap();
    for e in a.store.iter_topic(&sync_topic).unwrap() {
        assert_eq!(e.unwrap().kind(), xaeroflux_store::EventKind::System);
    }
    a.stop();
    b.stop();
}

#[test]
fn three_in_a_line_without_gossip() {
    // A - B - C: C only knows B, A only knows nobody; C gets A's log
    // through B, from periodic syncs alone.
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let every = Duration::from_millis(200);
    let a = start(dirs[0].path(), &["iroh"], every);
    let b = start(dirs[1].path(), &["iroh"], every);
    let c = start(dirs[2].path(), &["iroh"], every);
    let chat = Topic::new("chat").unwrap();
    let la = a.append(&chat, 3000, "a");
    let lc = c.append(&chat, 10, "c");
    a.net.join(&chat, &[]).unwrap();
    b.net.join(&chat, &[a.net.peer()]).unwrap();
    c.net.join(&chat, &[b.net.peer()]).unwrap();
    wait_until("A's log on C and C's on A", || {
        same_log(&a.store, &c.store, &la, 3000) && same_log(&c.store, &a.store, &lc, 10)
    });
    // A and C never spoke: no session of A names C, none of C names A.
    let (ida, idc) = (a.net.endpoint_id(), c.net.endpoint_id());
    let names = |n: &Node, other: &str| {
        sync_events(n).iter().any(|e| match e {
            SyncEvent::SessionStarted { peer, .. } | SyncEvent::SessionEnded { peer, .. } => {
                peer == other
            }
            _ => false,
        })
    };
    assert!(!names(&a, &idc));
    assert!(!names(&c, &ida));
    assert!(names(&b, &ida) && names(&b, &idc));
    a.stop();
    b.stop();
    c.stop();
}

#[test]
fn live_event_reaches_a_subscriber_two_hops_away() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let slow = Duration::from_secs(3600);
    let all = ["iroh", "iroh-gossip"];
    let a = start(dirs[0].path(), &all, slow);
    let b = start(dirs[1].path(), &all, slow);
    let c = start(dirs[2].path(), &all, slow);
    let chat = Topic::new("chat").unwrap();
    a.net.join(&chat, &[]).unwrap();
    b.net.join(&chat, &[a.net.peer()]).unwrap();
    c.net.join(&chat, &[b.net.peer()]).unwrap();
    let mut sub = c.store.subscribe(Filter::topic(&chat), Since::Now).unwrap();
    // Appended after everyone joined: only gossip can carry it over.
    let started = Instant::now();
    let log = a.append(&chat, 1, "live");
    let ev = sub
        .recv_timeout(WAIT)
        .unwrap()
        .expect("the event reaches C");
    assert_eq!(ev.log, log);
    assert_eq!(ev.payload, b"live 0");
    eprintln!("A -> C in {:?}", started.elapsed());
    drop(sub);
    a.stop();
    b.stop();
    c.stop();
}

#[test]
fn a_stopped_node_catches_up_and_keeps_its_id() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let slow = Duration::from_secs(3600);
    let all = ["iroh", "iroh-gossip"];
    let a = start(da.path(), &all, slow);
    let b = start(db.path(), &all, slow);
    let chat = Topic::new("chat").unwrap();
    let la = a.append(&chat, 100, "a");
    a.net.join(&chat, &[]).unwrap();
    b.net.join(&chat, &[a.net.peer()]).unwrap();
    wait_until("first sync", || same_log(&a.store, &b.store, &la, 100));
    let id_b = b.net.endpoint_id();
    b.stop();
    a.append(&chat, 2000, "while B was away");
    let b = start(db.path(), &all, slow);
    assert_eq!(
        b.net.endpoint_id(),
        id_b,
        "the endpoint id survives a restart"
    );
    b.net.join(&chat, &[a.net.peer()]).unwrap();
    wait_until("catch-up", || same_log(&a.store, &b.store, &la, 2100));
    a.stop();
    b.stop();
}

#[test]
fn a_50_mib_blob_reaches_another_node_verified() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let slow = Duration::from_secs(3600);
    let all = ["iroh", "iroh-gossip", "iroh-blob"];
    let a = start(da.path(), &all, slow);
    let b = start(db.path(), &all, slow);
    let chat = Topic::new("files").unwrap();
    let mut content = vec![0u8; 50 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in content.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    // The plain append says where large payloads go.
    let err = a
        .store
        .append(NewEvent::application(&chat, content.clone()))
        .unwrap_err();
    assert!(err.to_string().contains("append_blob"), "{err}");
    let (receipt, blob) = a.net.append_blob(&chat, &content).unwrap();
    assert_eq!(blob.size, content.len() as u64);
    assert_eq!(blob.hash, xaeroflux_net::BlobHash::of(&content));
    a.net.join(&chat, &[]).unwrap();
    b.net.join(&chat, &[a.net.peer()]).unwrap();
    wait_until("the event", || {
        b.store.log_size(&receipt.log).ok() == Some(1)
    });
    assert!(b.net.wait_for_blob(&blob.hash, WAIT).unwrap());
    let got = b.net.read_blob(&blob.hash).unwrap().unwrap();
    assert!(got == content, "the blob differs");
    assert!(
        sync_events(&b)
            .iter()
            .any(|e| matches!(e, SyncEvent::BlobFetched { hash, .. } if *hash == blob.hash))
    );
    // A file works as a source too.
    let path = da.path().join("small.bin");
    std::fs::write(&path, b"from a file").unwrap();
    let (_, small) = a.net.append_blob(&chat, &path).unwrap();
    assert_eq!(
        a.net.read_blob(&small.hash).unwrap().unwrap(),
        b"from a file"
    );
    assert!(b.net.wait_for_blob(&small.hash, WAIT).unwrap());
    a.stop();
    b.stop();
}

#[test]
fn backends_are_checked() {
    let err = Backends::parse(&["iroh", "carrier-pigeon"])
        .unwrap_err()
        .to_string();
    for name in ["carrier-pigeon", "iroh", "iroh-gossip", "iroh-blob"] {
        assert!(err.contains(name), "{err}");
    }
    assert!(Backends::parse(&["iroh-gossip"]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), &["iroh"], Duration::from_secs(3600));
    assert!(
        n.net
            .append_blob(&Topic::new("x").unwrap(), &b"x"[..])
            .is_err()
    );
    assert!(n.net.join(&Topic::new(SYNC_TOPIC).unwrap(), &[]).is_err());
    n.stop();
}

#[test]
fn peers_parse_from_tickets_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), &["iroh"], Duration::from_secs(3600));
    let t: Peer = n.net.ticket().parse().unwrap();
    assert_eq!(t.id(), n.net.endpoint_id());
    assert!(t.addrs().iter().all(|a| a.ip().is_loopback()));
    let p: Peer = n.net.peer().to_string().parse().unwrap();
    assert_eq!(p, n.net.peer());
    assert!("nonsense".parse::<Peer>().is_err());
    assert!(
        format!("{}@nowhere", n.net.endpoint_id())
            .parse::<Peer>()
            .is_err()
    );
    n.stop();
}

#[test]
fn other_alpns_and_garbage_are_refused_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(
        dir.path(),
        &["iroh", "iroh-gossip"],
        Duration::from_secs(3600),
    );
    let chat = Topic::new("chat").unwrap();
    let la = a.append(&chat, 10, "a");
    a.net.join(&chat, &[]).unwrap();
    let before = a.store.topic_logs(&chat.id()).unwrap();
    let me = a.net.peer();
    let addr = iroh::EndpointAddr::new(me.id().parse().unwrap()).with_ip_addr(me.addrs()[0]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ep = xaeroflux_net::endpoint_builder(&NetMode::local_only())
            .unwrap()
            .bind()
            .await
            .unwrap();
        let bounded = Duration::from_secs(30);
        // Another ALPN: the handshake fails.
        let r = tokio::time::timeout(bounded, ep.connect(addr.clone(), b"something/else/1"))
            .await
            .expect("bounded");
        assert!(r.is_err());
        // Garbage, then a frame claiming 4 GiB: each answered and ended.
        for junk in [vec![0xde_u8; 4096], vec![0xff, 0xff, 0xff, 0xff, 0x01]] {
            let conn = ep
                .connect(addr.clone(), xaeroflux_net::XSP_ALPN)
                .await
                .unwrap();
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&junk).await.unwrap();
            send.finish().unwrap();
            let got = tokio::time::timeout(bounded, recv.read_to_end(1 << 20))
                .await
                .expect("the node ends the stream");
            if let Ok(bytes) = got {
                // Its HELLO, then an ERROR frame (tag 8) saying why.
                assert!(bytes.len() >= 5, "{bytes:?}");
            }
            conn.close(0u32.into(), b"bye");
        }
        ep.close().await;
    });
    assert_eq!(
        a.store.topic_logs(&chat.id()).unwrap(),
        before,
        "the topic is unchanged"
    );
    wait_until("the refusals recorded", || {
        sync_events(&a)
            .iter()
            .filter(|e| matches!(e, SyncEvent::SessionEnded { error: Some(_), .. }))
            .count()
            >= 2
    });
    // And the node still serves a well-behaved peer.
    let dir_b = tempfile::tempdir().unwrap();
    let b = start(dir_b.path(), &["iroh"], Duration::from_secs(3600));
    b.net.join(&chat, &[]).unwrap();
    let out = b.net.sync_with(&a.net.peer()).unwrap();
    assert_eq!(out.events_in, 10);
    assert!(same_log(&a.store, &b.store, &la, 10));
    a.stop();
    b.stop();
}
