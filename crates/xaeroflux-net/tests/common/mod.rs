//! What the network tests share: a node (a store and its network layer)
//! on loopback in the local-only mode, and bounded waits.
#![allow(dead_code)] // each test file uses part of it

use std::sync::Arc;
use std::time::{Duration, Instant};

use xaeroflux_net::{Backends, Net, NetConfig, NetMode};
use xaeroflux_store::{LogId, NewEvent, Store, StoreOptions, Topic};

/// Longest any wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// A store and its network layer.
pub struct Node {
    pub store: Arc<Store>,
    pub net: Net,
}

/// A local-only configuration of `backends`, syncing every `interval`.
pub fn config(backends: &[&str], interval: Duration) -> NetConfig {
    NetConfig::new(Backends::parse(backends).unwrap())
        .with_mode(NetMode::local_only())
        .with_sync_interval(interval)
}

/// A node on a store opened with `options`.
pub fn start_with(dir: &std::path::Path, options: StoreOptions, config: NetConfig) -> Node {
    let store = Arc::new(Store::open(dir, options).unwrap());
    let net = Net::start(store.clone(), config).unwrap();
    Node { store, net }
}

/// A node with `backends`, syncing every `interval`.
pub fn start(dir: &std::path::Path, backends: &[&str], interval: Duration) -> Node {
    start_with(dir, StoreOptions::default(), config(backends, interval))
}

impl Node {
    /// Shuts the network down and closes the store.
    pub fn stop(self) {
        self.net.shutdown();
        match Arc::try_unwrap(self.store) {
            Ok(s) => s.close().unwrap(),
            Err(_) => panic!("the network layer still holds the store"),
        }
    }

    /// Appends `n` events (`"{tag} {i}"`) in one batch; returns the log.
    pub fn append(&self, topic: &Topic, n: usize, tag: &str) -> LogId {
        let evs = (0..n)
            .map(|i| NewEvent::application(topic, format!("{tag} {i}").into_bytes()))
            .collect();
        self.store.append_batch(evs).unwrap().events[0].log
    }
}

/// Polls `cond` until it holds, at most `WAIT`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether both stores hold `log` at `size` with the same root.
pub fn same_log(a: &Store, b: &Store, log: &LogId, size: u64) -> bool {
    b.log_size(log).ok() == Some(size)
        && a.log_size(log).ok() == Some(size)
        && a.mmr_root(log).ok() == b.mmr_root(log).ok()
}
