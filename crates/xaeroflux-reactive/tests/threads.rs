// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Dropping subjects, listeners and subscriptions leaves no thread behind.
//! Alone in its binary: it counts the process's threads.

use std::time::Duration;

use xaeroflux_testkit::{thread_count as threads, threads_settle_at as settles_at};

use xaeroflux_reactive::{EventListener, Subject};

#[test]
fn everything_dropped_leaves_no_thread() {
    let before = threads();
    assert!(before > 0, "needs /proc");
    {
        let (subject, observable) = Subject::<u64>::new();
        let l = EventListener::new("l", |_v: u64| {}, 64, 3);
        let _g = observable.subscribe(&l);
        let _t = observable
            .buffer_time(Duration::from_millis(5))
            .subscribe_fn(|_v| {});
        assert_eq!(threads(), before + 5);
        subject.on_next_batch(0..1000);
        assert!(l.wait_until(|s| s.processed == 1000, Duration::from_secs(30)));
    }
    assert!(settles_at(before), "{} threads, {before} before", threads());
}
