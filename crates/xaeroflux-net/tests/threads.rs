// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The thread budget of a node (alone in its binary, so no other test's
//! threads are counted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use xaeroflux_net::{Backends, Net, NetConfig, NetMode};
use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};
use xaeroflux_testkit::{thread_count as threads, thread_names as names};

#[test]
fn a_node_with_every_backend_stays_within_eight_threads() {
    let base = threads();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let config = NetConfig::new(Backends::parse(&["iroh", "iroh-gossip", "iroh-blob"]).unwrap())
        .with_mode(NetMode::local_only());
    let net = Net::start(store.clone(), config).unwrap();
    let chat = Topic::new("chat").unwrap();
    net.join(&chat, &[]).unwrap();
    store
        .append(NewEvent::application(&chat, b"hi".to_vec()))
        .unwrap();
    let (_, blob) = net.append_blob(&chat, &vec![7u8; 1 << 20]).unwrap();
    assert_eq!(net.read_blob(&blob.hash).unwrap().unwrap().len(), 1 << 20);
    // Blocking threads that served the blob store's file work retire after
    // tokio's idle timeout (10 s); the budget is for a node at rest.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut used = threads() - base;
    while used > 7 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        used = threads() - base;
    }
    // The application's own main thread makes one more.
    eprintln!(
        "node threads: {used} (+1 for the application): {:?}",
        names()
    );
    assert!(used < 8, "{used} threads: {:?}", names());
    net.shutdown();
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(30);
    while threads() > base && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(threads(), base, "threads left behind: {:?}", names());
}
