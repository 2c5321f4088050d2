#![allow(dead_code)]
//! Helpers shared by the store's integration tests.

use std::path::Path;

use xaeroflux_store::{Event, LogId, NewEvent, Store, StoreOptions, Topic};

pub fn small_pages() -> StoreOptions {
    StoreOptions {
        page_size: Some(1024),
        segment_pages: Some(8),
        ..StoreOptions::default()
    }
}

pub fn open(dir: &Path) -> Store {
    Store::open(dir, small_pages()).expect("open store")
}

pub fn payload(i: u64) -> Vec<u8> {
    // Sizes vary from 0 to ~300 bytes so pages fill unevenly.
    let len = (i * 37 % 300) as usize;
    (0..len).map(|j| (i as usize + j) as u8).collect()
}

pub fn fill(store: &Store, topic: &Topic, n: u64) -> LogId {
    let mut log = None;
    for chunk in (0..n).collect::<Vec<_>>().chunks(97) {
        let evs = chunk
            .iter()
            .map(|i| NewEvent::application(topic, payload(*i)))
            .collect();
        let r = store.append_batch(evs).expect("append");
        log = Some(r.events[0].log);
    }
    log.unwrap_or_else(|| store.own_log(topic))
}

pub fn events(store: &Store, log: &LogId) -> Vec<Event> {
    store
        .iter_log(log, 0)
        .expect("iter")
        .map(|e| e.expect("event").to_event())
        .collect()
}
