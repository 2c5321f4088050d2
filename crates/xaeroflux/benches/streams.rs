// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Append-to-handler latency through the store: an event appended on one
//! thread, delivered by a subscription to an `EventListener`'s worker,
//! measured from before `append` to the handler. Beside it, in the same run
//! and mode, the latency of `append` alone (until it returns), the baseline
//! the subscription path adds to. Both in the fast and the durable mode.
//! Also the throughput of 8 subscriptions following a writer.
//!
//! `cargo bench -p xaeroflux --bench streams` (XF_BENCH_ROUNDS=N samples,
//! default 5,000).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use xaeroflux::{Core, Durability, Event, EventListener, Filter, Since, Topic};

use xaeroflux_testkit::{Latencies, env_u64, us};

/// Latencies: append alone; append to a blocking `recv` on another thread;
/// append to an `EventListener`'s handler.
fn latencies(durability: Durability, n: usize) -> [Latencies; 3] {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::builder()
        .with_durability(durability)
        .open(dir.path())
        .unwrap();
    let quiet = Topic::new("baseline").unwrap();
    let topic = Topic::new("latency").unwrap();
    let mut alone = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        core.append(core.new_event_in(&quiet, [7u8; 100])).unwrap();
        alone.push(t.elapsed());
    }
    let recv_topic = Topic::new("recv").unwrap();
    let mut sub = core
        .subscribe(Filter::topic(&recv_topic), Since::Now)
        .unwrap();
    let (rtx, rrx) = mpsc::sync_channel::<Instant>(16);
    let receiver = std::thread::spawn(move || {
        for _ in 0..n {
            let ev = sub.recv_timeout(Duration::from_secs(30));
            assert!(matches!(ev, Ok(Some(_))));
            let _ = rtx.send(Instant::now());
        }
    });
    let mut received = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        core.append(core.new_event_in(&recv_topic, [7u8; 100]))
            .unwrap();
        let got = rrx.recv_timeout(Duration::from_secs(30)).unwrap();
        received.push(got.duration_since(t));
    }
    receiver.join().unwrap();
    let (tx, rx) = mpsc::sync_channel::<Instant>(16);
    let listener = EventListener::new(
        "latency",
        move |_ev: Event| {
            let _ = tx.send(Instant::now());
        },
        1024,
        1,
    );
    let _fwd = core
        .subscribe(Filter::topic(&topic), Since::Now)
        .unwrap()
        .forward_to(&listener)
        .unwrap();
    let mut through = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        core.append(core.new_event_in(&topic, [7u8; 100])).unwrap();
        let handled = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        through.push(handled.duration_since(t));
    }
    [alone, received, through].map(Latencies::new)
}

/// Events per second the writer takes alone, and with 8 subscriptions each
/// delivering every event to a listener (until the last one has all).
fn fan_out(n: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::builder()
        .with_durability(Durability::Fast)
        .open(dir.path())
        .unwrap();
    let write = |topic: &Topic| {
        let mut i = 0;
        while i < n {
            let evs = (0..1000)
                .map(|_| core.new_event_in(topic, [1u8; 100]))
                .collect();
            core.append_batch(evs).unwrap();
            i += 1000;
        }
    };
    let t = Instant::now();
    write(&Topic::new("alone").unwrap());
    let alone = n as f64 / t.elapsed().as_secs_f64();
    let topic = Topic::new("fan").unwrap();
    let listeners: Vec<_> = (0..8)
        .map(|i| EventListener::new(format!("s{i}"), |_e: Event| {}, 4096, 1))
        .collect();
    let _fwds: Vec<_> = listeners
        .iter()
        .map(|l| {
            core.subscribe(Filter::topic(&topic), Since::Now)
                .unwrap()
                .forward_to(l)
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    write(&topic);
    for l in &listeners {
        assert!(l.wait_until(|s| s.processed == n, Duration::from_secs(600)));
    }
    (alone, n as f64 / t.elapsed().as_secs_f64())
}

fn main() {
    let n = env_u64("XF_BENCH_ROUNDS", 5_000) as usize;
    println!("append-to-handler latency, {n} events of 100 bytes, one at a time");
    println!(
        "{:<10} {:<28} {:>10} {:>10} {:>14}",
        "mode", "from append to", "p50 µs", "p99 µs", "p50 / append"
    );
    for (name, d) in [("fast", Durability::Fast), ("durable", Durability::Durable)] {
        let [alone, received, through] = latencies(d, n);
        let base = us(alone.p50());
        for (what, v) in [
            ("its return (baseline)", &alone),
            ("Subscription::recv", &received),
            ("EventListener handler", &through),
        ] {
            println!(
                "{:<10} {:<28} {:>10.1} {:>10.1} {:>13.2}x",
                name,
                what,
                us(v.p50()),
                us(v.p99()),
                us(v.p50()) / base
            );
        }
    }
    let events = 200_000;
    let (alone, fanned) = fan_out(events);
    println!(
        "8 subscriptions following a writer ({events} events, fast mode): {fanned:.0} events/s delivered to all 8, writer alone {alone:.0} events/s ({:.2}x)",
        fanned / alone
    );
}
