//! Filling a real store.

use xaeroflux_store::{LogId, NewEvent, Store, StoreOptions, Topic};

/// Appends `n` events of `payload(i)` to the store's own log in `topic`,
/// `batch` per group commit; returns the log.
pub fn fill_with(
    store: &Store,
    topic: &Topic,
    n: u64,
    batch: u64,
    payload: impl Fn(u64) -> Vec<u8>,
) -> LogId {
    let mut i = 0;
    while i < n {
        let k = (n - i).min(batch.max(1));
        let evs = (i..i + k)
            .map(|j| NewEvent::application(topic, payload(j)))
            .collect();
        store.append_batch(evs).expect("filling a store");
        i += k;
    }
    store.own_log(topic)
}

/// A store in `dir` holding one log of `n` benchmark events (100 bytes
/// each) in the topic `bench`, appended in batches of 1,000: the source of
/// the catch-up benchmarks.
pub fn bench_source(dir: &std::path::Path, n: u64) -> (Store, LogId) {
    let store = Store::open(dir, StoreOptions::default()).expect("opening the source store");
    let topic = Topic::new("bench").expect("a valid topic");
    let log = fill_with(&store, &topic, n, 1000, crate::bench_payload);
    (store, log)
}
