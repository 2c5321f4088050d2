// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Publish-to-handler throughput of a subject with 1 and 8 listeners,
//! beside the same fan-out done by hand with crossbeam channels (one
//! bounded channel per consumer thread) in the same run.
//!
//! `cargo bench -p xaeroflux-reactive --bench dispatch`
//! (`XF_BENCH_EVENTS` sets the number of events, default 2,000,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xaeroflux_reactive::{EventListener, Subject};

fn events() -> u64 {
    std::env::var("XF_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

/// Events per second through a subject to `subs` listeners, publishing in
/// batches of `batch` (1: one `on_next` per event).
fn subject(n: u64, subs: usize, batch: u64) -> f64 {
    let (subject, observable) = Subject::<u64>::new();
    let mut listeners = Vec::new();
    let mut guards = Vec::new();
    let sum = Arc::new(AtomicU64::new(0));
    for i in 0..subs {
        let s = sum.clone();
        let l = EventListener::new(
            format!("bench{i}"),
            move |v: u64| {
                if v == u64::MAX {
                    s.fetch_add(1, Ordering::Relaxed);
                }
            },
            16 * 1024,
            1,
        );
        guards.push(observable.subscribe(&l));
        listeners.push(l);
    }
    let start = Instant::now();
    let mut v = 0;
    while v < n {
        if batch == 1 {
            subject.on_next(v);
            v += 1;
        } else {
            let end = (v + batch).min(n);
            subject.on_next_batch(v..end);
            v = end;
        }
    }
    for l in &listeners {
        assert!(l.wait_until(|s| s.processed == n, Duration::from_secs(600)));
    }
    let secs = start.elapsed().as_secs_f64();
    subject.close();
    n as f64 / secs
}

/// The same fan-out by hand: one bounded crossbeam channel and thread per
/// consumer, the publisher sending every event to each.
fn channels(n: u64, subs: usize) -> f64 {
    let mut txs = Vec::new();
    let mut joins = Vec::new();
    for _ in 0..subs {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(16 * 1024);
        txs.push(tx);
        joins.push(std::thread::spawn(move || {
            let mut got = 0u64;
            while rx.recv().is_ok() {
                got += 1;
            }
            got
        }));
    }
    let start = Instant::now();
    for v in 0..n {
        for tx in &txs {
            let _ = tx.send(v);
        }
    }
    drop(txs);
    for j in joins {
        assert_eq!(j.join().ok(), Some(n));
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = events();
    println!("publish-to-handler, {n} events of 8 bytes, per run");
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "case", "events/s", "baseline/s", "ratio"
    );
    for subs in [1usize, 8] {
        let base = channels(n, subs);
        let one = subject(n, subs, 1);
        let batched = subject(n, subs, 1024);
        println!(
            "{:<34} {:>14.0} {:>14.0} {:>7.2}x",
            format!("{subs} subscriber(s), on_next"),
            one,
            base,
            one / base
        );
        println!(
            "{:<34} {:>14.0} {:>14.0} {:>7.2}x",
            format!("{subs} subscriber(s), on_next_batch"),
            batched,
            base,
            batched / base
        );
    }
    println!(
        "baseline: one bounded crossbeam channel per consumer thread, one send per event each"
    );
}
