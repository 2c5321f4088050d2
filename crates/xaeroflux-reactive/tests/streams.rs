// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Subjects, listeners and operators: multicast, order, priority, isolation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xaeroflux_reactive::{EventListener, Overflow, Prioritized, Priority, Subject};

const WAIT: Duration = Duration::from_secs(60);

/// A listener that records what it sees.
fn recorder<T: Prioritized + Send + 'static>(
    name: &str,
    capacity: usize,
) -> (EventListener<T>, Arc<Mutex<Vec<T>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let l = EventListener::new(name, move |e: T| s.lock().unwrap().push(e), capacity, 1);
    (l, seen)
}

#[test]
fn eight_subscribers_each_get_all_100k_events_in_order() {
    const N: u64 = 100_000;
    let (subject, _observable) = Subject::<u64>::new();
    let mut listeners = Vec::new();
    let mut guards = Vec::new();
    let mut checks = Vec::new();
    for i in 0..8 {
        // Each handler checks order as it goes: the next value must be the
        // one after the last.
        let next = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let (n2, b2) = (next.clone(), bad.clone());
        let l = EventListener::new(
            format!("sub{i}"),
            move |v: u64| {
                if n2.fetch_add(1, Ordering::Relaxed) != v {
                    b2.fetch_add(1, Ordering::Relaxed);
                }
            },
            4096,
            1,
        );
        guards.push(subject.subscribe(&l));
        listeners.push(l);
        checks.push((next, bad));
    }
    for v in 0..N {
        subject.on_next(v);
    }
    for (l, (next, bad)) in listeners.iter().zip(&checks) {
        assert!(l.wait_until(|s| s.processed == N, WAIT), "{:?}", l.stats());
        assert_eq!(next.load(Ordering::Relaxed), N);
        assert_eq!(
            bad.load(Ordering::Relaxed),
            0,
            "{} saw events out of order",
            l.name()
        );
        let s = l.stats();
        assert_eq!((s.dropped, s.panicked, s.missed), (0, 0, 0));
    }
    assert_eq!(subject.stats().published, N);
    subject.close();
}

#[test]
fn a_system_event_overtakes_a_full_inbox_of_application_events() {
    const CAP: usize = 64;
    let (subject, observable) = Subject::<(Priority, u32)>::new();
    // The handler holds its first event until released, so the inbox fills.
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let entered = Arc::new(std::sync::Barrier::new(2));
    let (g2, s2, e2) = (gate.clone(), seen.clone(), entered.clone());
    let l = EventListener::new(
        "gated",
        move |e: (Priority, u32)| {
            if e.1 == 0 {
                e2.wait();
            }
            let (m, cv) = &*g2;
            let mut open = m.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            s2.lock().unwrap().push(e);
        },
        CAP,
        1,
    );
    let _g = observable.subscribe(&l);
    // One event in the handler, then exactly a full inbox of application events.
    subject.on_next((Priority::Application, 0));
    entered.wait();
    subject.on_next_batch((1..=CAP as u32).map(|i| (Priority::Application, i)));
    assert!(l.wait_until(|s| s.queued == CAP, WAIT), "{:?}", l.stats());
    subject.on_next((Priority::Identity, 1000));
    subject.on_next((Priority::System, 2000));
    assert!(
        l.wait_until(|s| s.queued == CAP + 2, WAIT),
        "{:?}",
        l.stats()
    );
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    assert!(l.wait_until(|s| s.processed == CAP as u64 + 3, WAIT));
    let seen = seen.lock().unwrap();
    let order: Vec<u32> = seen.iter().map(|(_, v)| *v).collect();
    // The event in hand, then system, identity, then the application events
    // in their own order.
    let mut expected = vec![0, 2000, 1000];
    expected.extend(1..=CAP as u32);
    assert_eq!(order, expected);
    subject.close();
}

#[test]
fn a_panicking_handler_is_counted_and_isolated() {
    let (subject, observable) = Subject::<u64>::new();
    let bad = EventListener::new(
        "bad",
        |v: u64| {
            if v % 10 == 3 {
                panic!("handler failure on {v} (expected by the test)");
            }
        },
        128,
        2,
    );
    let (good, seen) = recorder::<u64>("good", 128);
    // A closure subscriber that panics runs on the dispatch thread: it must
    // not take the dispatcher down either. It comes first, so it has seen
    // every batch by the time the listeners have.
    let calls = Arc::new(AtomicU64::new(0));
    let c2 = calls.clone();
    let _c = observable.subscribe_fn(move |v| {
        c2.fetch_add(1, Ordering::Relaxed);
        if v == 50 {
            panic!("closure failure (expected by the test)");
        }
    });
    // A panic in an operator escapes to the dispatch loop, which counts it
    // and goes on.
    let _d = observable
        .map(|v| {
            if v == 70 {
                panic!("operator failure (expected by the test)");
            }
            v
        })
        .subscribe_fn(|_| {});
    let _a = observable.subscribe(&bad);
    let _b = observable.subscribe(&good);
    for v in 0..1000 {
        subject.on_next(v);
    }
    assert!(bad.wait_until(|s| s.processed + s.panicked == 1000, WAIT));
    assert!(good.wait_until(|s| s.processed == 1000, WAIT));
    let s = bad.stats();
    assert_eq!((s.processed, s.panicked), (900, 100));
    assert_eq!(*seen.lock().unwrap(), (0..1000).collect::<Vec<_>>());
    assert_eq!(calls.load(Ordering::Relaxed), 1000);
    assert_eq!(subject.stats().observer_panics, 1);
    // The listener still works after its handler panicked.
    subject.on_next(2000);
    assert!(bad.wait_until(|s| s.processed == 901, WAIT));
    subject.close();
}

#[derive(Debug, Clone, PartialEq)]
struct Keyed {
    key: u64,
    n: u64,
}

impl Prioritized for Keyed {
    fn priority(&self) -> Priority {
        Priority::Application
    }
    fn route_key(&self) -> u64 {
        self.key
    }
}

#[test]
fn a_pool_keeps_order_per_key() {
    let (subject, observable) = Subject::<Keyed>::new();
    let last = Arc::new(Mutex::new(std::collections::HashMap::<u64, u64>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let (l2, e2) = (last.clone(), errors.clone());
    let pool = EventListener::new(
        "pool",
        move |k: Keyed| {
            let mut m = l2.lock().unwrap();
            let prev = m.insert(k.key, k.n);
            if prev.map_or(k.n != 0, |p| p + 1 != k.n) {
                e2.fetch_add(1, Ordering::Relaxed);
            }
        },
        256,
        4,
    );
    let _g = observable.subscribe(&pool);
    for n in 0..2000 {
        for key in 0..8 {
            subject.on_next(Keyed { key, n });
        }
    }
    assert!(pool.wait_until(|s| s.processed == 16_000, WAIT));
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    assert_eq!(last.lock().unwrap().len(), 8);
    subject.close();
}

#[test]
fn a_dropping_listener_counts_and_never_holds_the_source_up() {
    let (subject, observable) = Subject::<u64>::new();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g2 = gate.clone();
    let slow = EventListener::<u64>::builder("slow")
        .inbox_capacity(10)
        .overflow(Overflow::DropNewest)
        .build(move |_v: u64| drop(g2.lock().unwrap()));
    let (fast, seen) = recorder::<u64>("fast", 100_000);
    let _a = observable.subscribe(&slow);
    let _b = observable.subscribe(&fast);
    for v in 0..10_000 {
        subject.on_next(v);
    }
    // The fast subscriber gets everything while the slow one is stuck.
    assert!(fast.wait_until(|s| s.processed == 10_000, WAIT));
    assert_eq!(seen.lock().unwrap().len(), 10_000);
    drop(held);
    assert!(slow.wait_until(|s| s.processed + s.dropped == 10_000 && s.queued == 0, WAIT));
    // At most one event in the handler, one inbox in the worker's hands and
    // one full inbox got through.
    let s = slow.stats();
    assert!(s.processed <= 21, "{s:?}");
    subject.close();
}

#[test]
fn operators_compose() {
    let (subject, observable) = Subject::<u64>::new();
    let (sums, sums_seen) = recorder::<u64>("sums", 1024);
    let (chunks, chunks_seen) = recorder::<Vec<u64>>("chunks", 1024);
    let (merged, merged_seen) = recorder::<u64>("merged", 1024);
    let (other, other_observable) = Subject::<u64>::new();

    let _a = observable
        .filter(|v| v % 2 == 1)
        .map(|v| v * 10)
        .scan(0u64, |acc, v| acc + v)
        .subscribe(&sums);
    let _b = observable.buffer(3).subscribe(&chunks);
    let _c = observable
        .map(|v| v + 100)
        .merge(&other_observable)
        .subscribe(&merged);

    for v in 0..7 {
        subject.on_next(v);
    }
    other.on_next(1);
    assert!(sums.wait_until(|s| s.processed == 3, WAIT));
    assert!(chunks.wait_until(|s| s.processed == 2, WAIT));
    assert!(merged.wait_until(|s| s.processed == 8, WAIT));
    // odd values 1, 3, 5 -> 10, 30, 50 -> running sums
    assert_eq!(*sums_seen.lock().unwrap(), [10, 40, 90]);
    assert_eq!(*chunks_seen.lock().unwrap(), [vec![0, 1, 2], vec![3, 4, 5]]);
    let mut m = merged_seen.lock().unwrap().clone();
    m.sort();
    assert_eq!(m, [1, 100, 101, 102, 103, 104, 105, 106]);
    // Completing the stream flushes the partial buffer.
    subject.close();
    assert!(chunks.wait_until(|s| s.processed == 3, WAIT));
    assert_eq!(chunks_seen.lock().unwrap()[2], vec![6]);
    other.close();
}

#[test]
fn buffer_time_emits_per_period_and_stops_with_its_guard() {
    let (subject, observable) = Subject::<u64>::new();
    let (chunks, seen) = recorder::<Vec<u64>>("timed", 1024);
    let guard = observable
        .buffer_time(Duration::from_millis(20))
        .subscribe(&chunks);
    subject.on_next_batch(0..5);
    assert!(chunks.wait_until(|s| s.processed >= 1, WAIT));
    subject.on_next_batch(5..8);
    assert!(chunks.wait_until(|s| s.processed >= 2, WAIT));
    let all: Vec<u64> = seen.lock().unwrap().iter().flatten().copied().collect();
    assert_eq!(all, (0..8).collect::<Vec<_>>());
    assert!(seen.lock().unwrap().iter().all(|c| !c.is_empty()));
    drop(guard);
    subject.on_next(99);
    subject.close();
    // Nothing arrives after unsubscribing.
    assert!(!chunks.wait_until(|s| s.processed > 2, Duration::from_millis(100)));
}

#[test]
fn dropping_the_guard_unsubscribes_at_once() {
    let (subject, observable) = Subject::<u64>::new();
    let (l, seen) = recorder::<u64>("l", 1024);
    let g = observable.subscribe(&l);
    subject.on_next_batch(0..100);
    assert!(l.wait_until(|s| s.processed == 100, WAIT));
    drop(g);
    assert_eq!(subject.stats().subscribers, 0);
    subject.on_next_batch(100..200);
    // A witness subscribed later sees the last event: everything before it
    // has been dispatched.
    let (witness, wseen) = recorder::<u64>("witness", 1024);
    let _w = observable.subscribe(&witness);
    subject.on_next(500);
    assert!(witness.wait_until(|_| wseen.lock().unwrap().last() == Some(&500), WAIT));
    assert_eq!(seen.lock().unwrap().len(), 100);
    subject.close();
}

#[test]
fn a_closed_subject_completes_late_subscribers_and_ignores_publishes() {
    let (subject, observable) = Subject::<u64>::new();
    let (l, _seen) = recorder::<u64>("l", 16);
    let publisher = subject.clone();
    subject.close();
    publisher.on_next(1);
    let _g = observable.subscribe(&l);
    assert_eq!(publisher.stats().published, 0);
    assert_eq!(l.close().processed, 0);
}

#[test]
fn an_observer_may_subscribe_and_unsubscribe_from_the_dispatch_thread() {
    let (subject, observable) = Subject::<u64>::new();
    let (late, seen) = recorder::<u64>("late", 64);
    let late = Arc::new(late);
    let guards: Arc<Mutex<Vec<xaeroflux_reactive::SubscriptionGuard>>> = Arc::default();
    let (o2, l2, g2) = (observable.clone(), late.clone(), guards.clone());
    // On the first event, subscribe `late` from inside the dispatch loop;
    // on the third, drop that subscription from inside it too.
    let _trigger = observable.subscribe_fn(move |v| {
        if v == 1 {
            g2.lock().unwrap().push(o2.subscribe(&l2));
        }
        if v == 3 {
            g2.lock().unwrap().clear();
        }
    });
    // One event per batch: wait for each to be handled before the next.
    subject.on_next(1);
    let deadline = std::time::Instant::now() + WAIT;
    while guards.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        std::thread::yield_now();
    }
    subject.on_next(2);
    assert!(late.wait_until(|s| s.processed == 1, WAIT));
    subject.on_next(3);
    // Unsubscribed on the dispatch thread: the batch in flight (3) still
    // reaches it, nothing after.
    assert!(late.wait_until(|s| s.processed == 2, WAIT));
    subject.on_next(4);
    subject.close();
    assert_eq!(*seen.lock().unwrap(), [2, 3]);
    assert_eq!(late.stats().processed, 2);
}
