// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Dropping a subscription leaves no thread or channel behind. Alone in its
//! binary: it counts the process's threads.

use std::time::Duration;

use xaeroflux_testkit::{thread_count as threads, threads_settle_at as settles_at};

use xaeroflux_store::reactive::EventListener;
use xaeroflux_store::{Event, Filter, NewEvent, Replication, Store, StoreOptions, Topic};

#[test]
fn dropping_subscriptions_returns_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let t = Topic::new("t").unwrap();
    store
        .append(NewEvent::application(&t, b"x".to_vec()))
        .unwrap();
    let before = threads();
    assert!(before > 0, "needs /proc");
    for _ in 0..3 {
        let mut plain = store.subscribe(Filter::topic(&t), 0).unwrap();
        assert!(
            plain
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .is_some()
        );
        let listener = EventListener::new("l", |_e: Event| {}, 64, 2);
        let fwd = store
            .subscribe(Filter::all(), 0)
            .unwrap()
            .forward_to(&listener)
            .unwrap();
        assert!(listener.wait_until(|s| s.processed >= 1, Duration::from_secs(10)));
        assert_eq!(threads(), before + 3);
        assert!(store.commits().is_some());
        drop(fwd);
        drop(listener);
        drop(plain);
        assert!(settles_at(before), "{} threads, {before} before", threads());
    }
    // Unsubscribed for real: the commit subject has nobody left.
    store
        .append(NewEvent::application(&t, b"y".to_vec()))
        .unwrap();
    let mut late = store.subscribe(Filter::topic(&t), 0).unwrap();
    assert_eq!(
        late.recv_timeout(Duration::from_secs(10))
            .unwrap()
            .map(|e| e.seq),
        Some(0)
    );
    drop(late);
    store.close().unwrap();
}
