// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Blobs of a private topic over iroh on loopback: encrypted before they
//! reach any blob store, carried by a relay that holds no key, read by a
//! member that never meets the author.

use std::path::Path;
use std::time::{Duration, Instant};

use xaeroflux::{Core, NetMode, Payload, Topic};
use xaeroflux_testkit::files_hold;

const WAIT: Duration = Duration::from_secs(60);

fn node(dir: &Path) -> Core {
    Core::builder()
        .with_sync_backends(&["iroh", "iroh-gossip", "iroh-blob"])
        .with_network(NetMode::local_only())
        .with_sync_interval(Duration::from_millis(300))
        .open(dir)
        .unwrap()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The blob-referencing application events of `topic` as `core` reads
/// them: (the blob's bytes if readable now, whether it was encrypted).
fn blobs(core: &Core, topic: &Topic) -> Vec<(Option<Vec<u8>>, bool)> {
    core.read_topic(topic)
        .map(|r| r.unwrap())
        .filter(|r| r.event.kind() == xaeroflux::EventKind::Application)
        .map(|r| {
            let hidden = matches!(r.payload, Payload::Encrypted { .. });
            (core.read_event_blob(&r).unwrap(), hidden)
        })
        .collect()
}

#[test]
fn a_private_blob_crosses_a_blind_relay_and_only_members_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, relay, b) = (
        node(&dir.path().join("a")),
        node(&dir.path().join("relay")),
        node(&dir.path().join("b")),
    );
    let created = a.create_private_topic(Some("photos")).unwrap();
    let t = created.topic.clone();
    a.add_member(&t, &b.member_key().unwrap()).unwrap();
    relay.private_topic(&created.name).unwrap();
    b.private_topic(&created.name).unwrap();

    // 1 MiB with a marker all through it, and a small file.
    let marker = b"BLOB-MARKER-5cf1e0";
    let content: Vec<u8> = marker.iter().copied().cycle().take(1 << 20).collect();
    let (_, big) = a.append_blob(&t, &content[..]).unwrap();
    let file = dir.path().join("note.txt");
    std::fs::write(&file, b"FILE-MARKER-77aa91 in a small file").unwrap();
    let (_, small) = a.append_blob(&t, file.as_path()).unwrap();
    // What the blob store holds is the ciphertext: longer, not the content.
    assert_eq!(big.size, xaeroflux::e2e::sealed_blob_len(1 << 20));
    assert_ne!(big.hash, xaeroflux::BlobHash::of(&content));

    a.join(&t, &[] as &[&str]).unwrap();
    relay.join(&t, &[a.node_ticket().unwrap()]).unwrap();
    b.join(&t, &[relay.node_ticket().unwrap()]).unwrap();
    wait_until("the relay holds both blobs", || {
        relay.wait_for_blob(&big.hash, Duration::ZERO).unwrap()
            && relay.wait_for_blob(&small.hash, Duration::ZERO).unwrap()
    });
    assert!(b.wait_for_blob(&big.hash, WAIT).unwrap());
    assert!(b.wait_for_blob(&small.hash, WAIT).unwrap());
    wait_until("b reads both blobs", || {
        blobs(&b, &t).iter().filter(|(x, _)| x.is_some()).count() == 2
    });

    let read = blobs(&b, &t);
    assert_eq!(read.len(), 2);
    assert!(
        read[0].0.as_deref() == Some(&content[..]),
        "the big blob differs"
    );
    assert_eq!(
        read[1].0.as_deref(),
        Some(&b"FILE-MARKER-77aa91 in a small file"[..])
    );
    let r = b
        .read_topic(&t)
        .map(|r| r.unwrap())
        .find(|r| r.event.kind() == xaeroflux::EventKind::Application)
        .unwrap();
    assert_eq!(b.event_blob(&r), Some(big));

    // The relay holds both ciphertexts and opens neither.
    let at_relay = blobs(&relay, &t);
    assert_eq!(at_relay, vec![(None, true), (None, true)]);
    for d in ["a", "relay", "b"] {
        assert!(
            !files_hold(&dir.path().join(d), marker),
            "{d}'s files hold the blob's plaintext"
        );
        assert!(
            !files_hold(&dir.path().join(d), b"FILE-MARKER-77aa91"),
            "{d}'s files hold the file blob's plaintext"
        );
    }
    // No temporary file is left behind.
    let tmp = dir.path().join("a").join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    for c in [a, relay, b] {
        c.close().unwrap();
    }
}
