//! Dropping subjects, listeners and subscriptions leaves no thread behind.
//! Alone in its binary: it counts the process's threads.

use std::time::{Duration, Instant};

use xaeroflux_reactive::{EventListener, Subject};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (bounded) for the thread count to come back to `want`.
fn settles_at(want: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if threads() == want {
            return true;
        }
        std::thread::yield_now();
    }
    threads() == want
}

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
