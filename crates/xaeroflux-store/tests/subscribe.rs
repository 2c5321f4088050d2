// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Live subscriptions: history then live events, gap-free under racing
//! appends, filters, priority, slow subscribers, and the end of the stream.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fill, open, payload};
use xaeroflux_store::Replication;
use xaeroflux_store::reactive::EventListener;
use xaeroflux_store::{
    Commit, Durability, Event, EventKind, Filter, NewEvent, Since, Store, StoreError, StoreOptions,
    Topic,
};

const WAIT: Duration = Duration::from_secs(60);

/// Receives until `n` events have arrived, within the bounded wait.
fn take(sub: &mut xaeroflux_store::Subscription, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {n} events arrived", out.len());
        if let Some(ev) = sub.recv_timeout(left).expect("recv") {
            out.push(ev);
        }
    }
    out
}

/// Nothing more arrives for a short while.
fn quiet(sub: &mut xaeroflux_store::Subscription) {
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(50)).expect("recv"),
        None
    );
}

#[test]
fn history_then_live_from_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = Topic::new("t").unwrap();
    let log = fill(&store, &t, 30);
    let mut sub = store.subscribe(Filter::topic(&t), 10).unwrap();
    let got = take(&mut sub, 20);
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (10..30).collect::<Vec<_>>()
    );
    assert!(
        got.iter()
            .all(|e| e.payload == payload(e.seq) && e.log == log)
    );
    quiet(&mut sub);
    fill(&store, &t, 5);
    let live = take(&mut sub, 5);
    assert_eq!(
        live.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (30..35).collect::<Vec<_>>()
    );
    quiet(&mut sub);
}

#[test]
fn since_now_skips_history_and_filters_select() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (Topic::new("a").unwrap(), Topic::new("b").unwrap());
    fill(&store, &a, 10);
    let mut now = store.subscribe(Filter::topic(&a), Since::Now).unwrap();
    let mut only_b = store.subscribe(Filter::topic(&b), 0).unwrap();
    let mut systems = store.subscribe(Filter::kind(EventKind::System), 0).unwrap();
    let mut all = store.subscribe(Filter::all(), 0).unwrap();
    quiet(&mut now);
    store
        .append(NewEvent::application(&a, b"a10".to_vec()))
        .unwrap();
    store
        .append(NewEvent::system(&b, b"b-sys".to_vec()))
        .unwrap();
    store
        .append(NewEvent::application(&b, b"b-app".to_vec()))
        .unwrap();

    let got = take(&mut now, 1);
    assert_eq!((got[0].seq, &got[0].payload[..]), (10, &b"a10"[..]));
    quiet(&mut now);
    let got = take(&mut only_b, 2);
    assert_eq!(got[0].payload, b"b-sys");
    assert_eq!(got[1].payload, b"b-app");
    quiet(&mut only_b);
    let got = take(&mut systems, 1);
    assert_eq!(got[0].kind, EventKind::System);
    quiet(&mut systems);
    assert_eq!(take(&mut all, 13).len(), 13);
    quiet(&mut all);
    // A log filter, and a log that does not exist yet.
    let c = Topic::new("c").unwrap();
    let mut log_c = store.subscribe(Filter::log(store.own_log(&c)), 0).unwrap();
    quiet(&mut log_c);
    store
        .append(NewEvent::application(&c, b"c0".to_vec()))
        .unwrap();
    assert_eq!(take(&mut log_c, 1)[0].payload, b"c0");
}

#[test]
fn racing_subscribers_see_exactly_the_log_from_their_seq() {
    const TOTAL: u64 = 6000;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            dir.path(),
            StoreOptions {
                durability: Durability::Fast,
                ..common::small_pages()
            },
        )
        .unwrap(),
    );
    let t = Topic::new("race").unwrap();
    let log = store.own_log(&t);
    let w = store.clone();
    let t2 = t.clone();
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        while i < TOTAL {
            // Batches of varying size, so commits and subscribes interleave
            // at every phase.
            let n = 1 + (i * 7919 % 23);
            let evs = (i..(i + n).min(TOTAL))
                .map(|j| NewEvent::application(&t2, payload(j)))
                .collect();
            i = (i + n).min(TOTAL);
            w.append_batch(evs).unwrap();
        }
    });
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut subs = Vec::new();
    while subs.len() < 24 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let size = store.log_size(&log).unwrap();
        // From anywhere in the history, or a little beyond its end.
        let from = rng % (size + 50);
        subs.push((from, store.subscribe(Filter::topic(&t), from).unwrap()));
        std::thread::yield_now();
    }
    writer.join().unwrap();
    for (from, mut sub) in subs {
        let from = from.min(TOTAL);
        let got = take(&mut sub, (TOTAL - from) as usize);
        for (k, ev) in got.iter().enumerate() {
            let want = from + k as u64;
            assert_eq!(ev.seq, want, "subscriber from {from}");
            assert_eq!(ev.payload, payload(want));
        }
        quiet(&mut sub);
    }
}

#[test]
fn urgent_logs_are_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (app, sys) = (Topic::new("app").unwrap(), Topic::new("sys").unwrap());
    let mut sub = store.subscribe(Filter::all(), Since::Now).unwrap();
    // A witness attached after the subscription: once it has both commit
    // notices, so has the subscription's inbox (the dispatch loop serves
    // observers in the order they came).
    let witness = EventListener::new("witness", |_c: Commit| {}, 16, 1);
    let _w = store.commits().unwrap().subscribe(&witness);
    let evs = (0..2000)
        .map(|i| NewEvent::application(&app, payload(i)))
        .collect();
    store.append_batch(evs).unwrap();
    store
        .append(NewEvent::system(&sys, b"alert".to_vec()))
        .unwrap();
    assert!(witness.wait_until(|s| s.processed == 2, WAIT));
    let first = take(&mut sub, 1);
    assert_eq!(first[0].kind, EventKind::System);
    let rest = take(&mut sub, 2000);
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..2000).collect::<Vec<_>>()
    );
}

#[test]
fn a_subscriber_that_falls_behind_its_inbox_catches_up_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Fast,
            ..common::small_pages()
        },
    )
    .unwrap();
    let t = Topic::new("t").unwrap();
    let mut sub = store.subscribe(Filter::topic(&t), 0).unwrap();
    // Many more commits than the inbox holds notices, none read meanwhile.
    for i in 0..5000 {
        store.append(NewEvent::application(&t, payload(i))).unwrap();
    }
    let got = take(&mut sub, 5000);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 && e.payload == payload(e.seq))
    );
    quiet(&mut sub);
    assert!(sub.stats().catch_ups > 0, "{:?}", sub.stats());
    assert!(sub.stats().max_buffered <= 512, "{:?}", sub.stats());
}

#[test]
fn the_stream_ends_when_the_store_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = Topic::new("t").unwrap();
    let mut sub = store.subscribe(Filter::topic(&t), 0).unwrap();
    fill(&store, &t, 3);
    store.close().unwrap();
    assert_eq!(take(&mut sub, 3).len(), 3);
    assert!(matches!(sub.recv_timeout(WAIT), Err(StoreError::Closed)));
    assert!(sub.recv().is_none());
}
