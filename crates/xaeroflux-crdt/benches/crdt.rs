// Benchmarks may unwrap, index and panic: a panic is a failed run.
#![allow(clippy::restriction)]
//! Application state on the log, in one run:
//!
//! 1. typed reads: `EventRef::typed` (zero copy, validated) against reading
//!    the same values' bytes and deserializing them with serde (postcard),
//!    and against the aligned-copy path;
//! 2. `iter_topic_range` of 100 events out of N against a filtered scan;
//! 3. opening an N-operation document from its snapshot against replaying;
//! 4. operations applied per second, per CRDT type.
//!
//! `cargo bench -p xaeroflux-crdt --bench crdt` (XF_BENCH_EVENTS=N, default
//! 1,000,000; XF_BENCH_READS=N typed events, default 200,000).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xaeroflux::store::{Clock, Durability, NewEvent, Store, StoreOptions};
use xaeroflux::typed::read_typed_copy;
use xaeroflux::{Core, EventRefTyped, EventType, Topic};
use xaeroflux_crdt::{Doc, DocState, Op, OpBody, OpId, Stamp};
use xaeroflux_testkit::{env_u64, rate};

#[derive(
    xaeroflux::rkyv::Archive, xaeroflux::rkyv::Serialize, serde::Serialize, serde::Deserialize,
)]
#[rkyv(crate = xaeroflux::rkyv)]
struct Listing {
    id: u64,
    price_cents: u32,
    title: String,
    tags: Vec<String>,
}

impl EventType for Listing {
    const TAG: [u8; 4] = *b"lstg";
    const VERSION: u16 = 1;
}

fn listing(i: u64) -> Listing {
    Listing {
        id: i,
        price_cents: (i % 10_000) as u32,
        title: format!("listing number {i} with a title"),
        tags: vec!["bike".into(), format!("city{}", i % 50)],
    }
}

/// The best of three timings of `f`.
fn best(mut f: impl FnMut() -> u64) -> (Duration, u64) {
    let mut out = (Duration::MAX, 0);
    for _ in 0..3 {
        let t = Instant::now();
        let v = f();
        let d = t.elapsed();
        if d < out.0 {
            out = (d, v);
        }
    }
    out
}

fn typed_reads(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::builder()
        .with_durability(Durability::Fast)
        .open(dir.path())
        .unwrap();
    let typed = Topic::new("typed").unwrap();
    let serde = Topic::new("serde").unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let a = chunk
            .iter()
            .map(|i| {
                core.new_event_in(
                    &typed,
                    xaeroflux::typed::encode_typed(&listing(*i)).unwrap(),
                )
            })
            .collect();
        core.append_batch(a).unwrap();
        let b = chunk
            .iter()
            .map(|i| core.new_event_in(&serde, postcard::to_stdvec(&listing(*i)).unwrap()))
            .collect();
        core.append_batch(b).unwrap();
    }
    // Each reads every event and touches the same fields.
    let (zero, s1) = best(|| {
        let mut sum = 0u64;
        for ev in core.iter_topic(&typed) {
            let ev = ev.unwrap();
            let l = ev.typed::<Listing>().unwrap();
            sum += l.price_cents.to_native() as u64 + l.title.len() as u64 + l.tags.len() as u64;
        }
        sum
    });
    let (copy, s2) = best(|| {
        let mut sum = 0u64;
        for ev in core.iter_topic(&typed) {
            let ev = ev.unwrap();
            let l = read_typed_copy::<Listing>(&|| String::new(), ev.payload()).unwrap();
            sum += l.price_cents.to_native() as u64 + l.title.len() as u64 + l.tags.len() as u64;
        }
        sum
    });
    let (serde_t, s3) = best(|| {
        let mut sum = 0u64;
        for ev in core.iter_topic(&serde) {
            let ev = ev.unwrap();
            let l: Listing = postcard::from_bytes(ev.payload()).unwrap();
            sum += l.price_cents as u64 + l.title.len() as u64 + l.tags.len() as u64;
        }
        sum
    });
    let (raw, _) = best(|| {
        let mut sum = 0u64;
        for ev in core.iter_topic(&serde) {
            sum += ev.unwrap().payload().len() as u64;
        }
        sum
    });
    assert_eq!((s1, s2), (s3, s3));
    println!(
        "typed reads of {n} events (best of 3; each reads every event and sums three fields):"
    );
    println!(
        "  zero copy (validated, in the map)  {:>10.0} events/s",
        rate(n, zero)
    );
    println!(
        "  aligned copy, then validated       {:>10.0} events/s",
        rate(n, copy)
    );
    println!(
        "  bytes + postcard (serde)           {:>10.0} events/s",
        rate(n, serde_t)
    );
    println!(
        "  bytes only (the iteration itself)  {:>10.0} events/s",
        rate(n, raw)
    );
    println!(
        "  ratio zero copy / serde: {:.2}x (target 3x); copy / serde: {:.2}x",
        serde_t.as_secs_f64() / zero.as_secs_f64(),
        serde_t.as_secs_f64() / copy.as_secs_f64()
    );
    println!(
        "  ratio excluding the iteration: zero copy {:.2}x against serde",
        (serde_t.saturating_sub(raw)).as_secs_f64()
            / (zero.saturating_sub(raw)).as_secs_f64().max(1e-9)
    );
}

fn range_reads(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1));
    let clock = now.clone();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Fast,
            clock: Clock::from_fn(move || clock.load(Ordering::Relaxed)),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let topic = Topic::new("feed").unwrap();
    // 100 events per millisecond.
    for b in 0..n / 100 {
        now.store(1 + b, Ordering::Relaxed);
        let evs = (0..100)
            .map(|_| NewEvent::application(&topic, vec![7u8; 100]))
            .collect();
        store.append_batch(evs).unwrap();
    }
    let mid = 1 + n / 200;
    let (idx, k1) = best(|| {
        store
            .iter_topic_range(&topic.id(), mid, mid + 1)
            .unwrap()
            .count() as u64
    });
    let (scan, k2) = best(|| {
        store
            .iter_topic(&topic)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| (mid..mid + 1).contains(&e.timestamp_ms()))
            })
            .count() as u64
    });
    let (last, k3) = best(|| store.iter_topic_last(&topic.id(), 100).unwrap().count() as u64);
    assert_eq!((k1, k2, k3), (100, 100, 100));
    println!("reads by time, 100 events out of {n} (best of 3):");
    println!("  iter_topic_range   {:>10.1} us", idx.as_secs_f64() * 1e6);
    println!("  iter_topic_last    {:>10.1} us", last.as_secs_f64() * 1e6);
    println!("  filtered scan      {:>10.1} us", scan.as_secs_f64() * 1e6);
    println!(
        "  ratio scan / range: {:.0}x",
        scan.as_secs_f64() / idx.as_secs_f64()
    );
}

fn op_of(i: u64) -> Op {
    let body = match i % 4 {
        0 => OpBody::CounterAdd(1),
        1 => OpBody::MapSet(
            format!("k{}", i % 1_000).into_bytes(),
            i.to_le_bytes().to_vec(),
        ),
        2 => OpBody::SetAdd(format!("user{}", i % 1_000).into_bytes()),
        _ => OpBody::RegisterSet(i.to_le_bytes().to_vec()),
    };
    Op {
        name: ["likes", "profile", "followers", "title"][(i % 4) as usize].into(),
        body,
    }
}

fn doc_open(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::builder()
        .with_durability(Durability::Fast)
        .open(dir.path())
        .unwrap();
    let topic = Topic::new("doc").unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let evs = chunk
            .iter()
            .map(|i| core.new_event_in(&topic, op_of(*i).encode().unwrap()))
            .collect();
        core.append_batch(evs).unwrap();
    }
    let t = Instant::now();
    let replayed = Doc::replay(&core, &topic).unwrap();
    let replay = t.elapsed();
    assert_eq!(replayed.folded(), n);
    let mut first = Doc::open(&core, &topic).unwrap();
    first.save_snapshot().unwrap();
    drop(first);
    let (snap, _) = best(|| {
        let d = Doc::open(&core, &topic).unwrap();
        assert_eq!(d.folded(), 0);
        assert_eq!(d.state(), replayed.state());
        d.folded()
    });
    println!("opening a document of {n} operations:");
    println!(
        "  replaying every operation  {:>10.1} ms",
        replay.as_secs_f64() * 1e3
    );
    println!(
        "  from its snapshot          {:>10.3} ms",
        snap.as_secs_f64() * 1e3
    );
    println!(
        "  ratio replay / snapshot: {:.0}x (target 100x)",
        replay.as_secs_f64() / snap.as_secs_f64()
    );
}

/// Makes the i-th operation of a kind.
type MakeOp = fn(u64) -> OpBody;

fn apply_rates(n: u64) {
    println!("operations applied in memory (DocState::apply), {n} each:");
    let kinds: [(&str, MakeOp); 6] = [
        ("LwwRegister set", |i| {
            OpBody::RegisterSet(i.to_le_bytes().to_vec())
        }),
        ("LwwMap set (1,000 keys)", |i| {
            OpBody::MapSet((i % 1_000).to_le_bytes().to_vec(), vec![1; 8])
        }),
        ("PnCounter add", |i| OpBody::CounterAdd(i as i64 % 3 - 1)),
        ("OrSet add (1,000 elements)", |i| {
            OpBody::SetAdd((i % 1_000).to_le_bytes().to_vec())
        }),
        ("OrSet remove (observed tag)", |i| {
            OpBody::SetRemove(
                vec![],
                vec![OpId {
                    author: [1; 32],
                    seq: i,
                }],
            )
        }),
        ("MvRegister set (observes 1)", |i| {
            OpBody::MvSet(
                vec![1; 8],
                vec![OpId {
                    author: [2; 32],
                    seq: i.saturating_sub(1),
                }],
            )
        }),
    ];
    for (name, body) in kinds {
        let ops: Vec<(Stamp, Op)> = (0..n)
            .map(|i| {
                let id = OpId {
                    author: [2; 32],
                    seq: i,
                };
                (
                    Stamp {
                        timestamp_ms: i,
                        id,
                    },
                    Op {
                        name: "x".into(),
                        body: body(i),
                    },
                )
            })
            .collect();
        let t = Instant::now();
        let mut s = DocState::default();
        for (stamp, op) in &ops {
            s.apply(*stamp, op);
        }
        black_box(&s);
        println!("  {name:<30} {:>12.0} ops/s", rate(n, t.elapsed()));
    }
}

fn main() {
    let n = env_u64("XF_BENCH_EVENTS", 1_000_000);
    let reads = env_u64("XF_BENCH_READS", 200_000);
    typed_reads(reads);
    range_reads(n);
    doc_open(n);
    apply_rates(n);
}
