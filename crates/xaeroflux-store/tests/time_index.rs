// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Reads by time: `iter_topic_range` and `iter_topic_last` return exactly
//! what a filtered scan of the topic view returns, over logs of several
//! authors whose clocks jump back and forth, and read O(log n + k) index
//! entries, not a number that grows with the topic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use xaeroflux_store::{Clock, Durability, EventRef, NewEvent, Store, StoreOptions, Topic};
use xaeroflux_sync::{SessionConfig, SyncStore, driver, pipe};
use xaeroflux_testkit::seeded_rng;

/// A store whose clock reads `now`.
fn store(dir: &std::path::Path, now: &Arc<AtomicU64>) -> Store {
    let now = now.clone();
    Store::open(
        dir,
        StoreOptions {
            page_size: Some(1024),
            segment_pages: Some(64),
            // Durability is not what these tests are about.
            durability: Durability::Fast,
            clock: Clock::from_fn(move || now.load(Ordering::Relaxed)),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn sync(a: &(dyn SyncStore + Sync), b: &(dyn SyncStore + Sync)) {
    let t = Duration::from_secs(30);
    let ((ar, aw), (br, bw)) = pipe();
    std::thread::scope(|s| {
        let h = s.spawn(move || driver::run(a, SessionConfig::default(), ar, aw, t));
        driver::run(b, SessionConfig::default(), br, bw, t).unwrap();
        h.join().unwrap().unwrap();
    });
}

type Key = (u64, [u8; 32], u64);

fn key(e: &EventRef<'_>) -> Key {
    (e.timestamp_ms(), *e.author(), e.seq())
}

fn keys<'a>(it: impl Iterator<Item = xaeroflux_store::Result<EventRef<'a>>>) -> Vec<Key> {
    it.map(|e| key(&e.unwrap())).collect()
}

/// Equal lists, or a short message naming the first difference.
fn same(got: &[Key], want: &[Key], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        let at = at.unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} events, want {}; first difference at {at}: {:?} against {:?}",
            got.len(),
            want.len(),
            got.get(at).map(|k| (k.0, k.1[0], k.2)),
            want.get(at).map(|k| (k.0, k.1[0], k.2)),
        );
    }
}

#[test]
fn reads_by_time_equal_a_filtered_scan_over_clocks_that_go_back() {
    let mut rng = seeded_rng();
    let topic = Topic::new("feed").unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let clocks: Vec<_> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let stores: Vec<_> = dirs
        .iter()
        .zip(&clocks)
        .map(|(d, c)| store(d.path(), c))
        .collect();
    for (s, clock) in stores.iter().zip(&clocks) {
        let mut t = 1_000 + rng.below(1_000);
        for _ in 0..20 + rng.below(40) {
            // Mostly forward, sometimes far back (the store raises those to
            // the previous timestamp), sometimes several events at once.
            t = match rng.below(5) {
                0 => t.saturating_sub(rng.below(500)),
                1 => t,
                _ => t + rng.below(50),
            };
            clock.store(t, Ordering::Relaxed);
            let n = 1 + rng.below(30);
            let evs = (0..n)
                .map(|i| NewEvent::application(&topic, vec![i as u8; rng.below(200) as usize]))
                .collect();
            s.append_batch(evs).unwrap();
        }
    }
    // Store 0 holds every author's log of the topic.
    sync(&stores[1], &stores[0]);
    sync(&stores[2], &stores[0]);
    let a = &stores[0];
    assert_eq!(a.topic_logs(&topic.id()).unwrap().len(), 3);
    let all = keys(a.iter_topic(&topic).unwrap());
    let (lo, hi) = (all[0].0, all[all.len() - 1].0);
    for _ in 0..300 {
        let from = lo.saturating_sub(20) + rng.below(hi - lo + 40);
        let to = from + rng.below(300);
        let want: Vec<Key> = all
            .iter()
            .filter(|k| k.0 >= from && k.0 < to)
            .copied()
            .collect();
        let got = keys(a.iter_topic_range(&topic.id(), from, to).unwrap());
        same(&got, &want, &format!("range {from}..{to}"));
        let n = rng.below(all.len() as u64 + 10);
        let last = keys(a.iter_topic_last(&topic.id(), n).unwrap());
        let skip = all.len().saturating_sub(n as usize);
        same(&last, &all[skip..], &format!("last {n}"));
    }
    // Empty and reversed ranges, and the whole span.
    assert_eq!(
        a.iter_topic_range(&topic.id(), hi + 1, u64::MAX)
            .unwrap()
            .count(),
        0
    );
    assert_eq!(a.iter_topic_range(&topic.id(), 50, 10).unwrap().count(), 0);
    assert_eq!(
        keys(a.iter_topic_range(&topic.id(), 0, u64::MAX).unwrap()),
        all
    );
    // The same after the index is rebuilt from the segments.
    drop(stores);
    let (b, moved) = Store::repair(dirs[0].path(), StoreOptions::default()).unwrap();
    assert!(moved.is_some());
    assert_eq!(keys(b.iter_topic(&topic).unwrap()), all);
    let mid = (lo + hi) / 2;
    let want: Vec<Key> = all.iter().filter(|k| k.0 >= mid).copied().collect();
    assert_eq!(
        keys(b.iter_topic_range(&topic.id(), mid, u64::MAX).unwrap()),
        want
    );
}

#[test]
fn a_read_by_time_touches_a_number_of_index_entries_that_does_not_grow_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(1));
    let s = store(dir.path(), &clock);
    let topic = Topic::new("big").unwrap();
    // 40,000 events, ten per millisecond, on about 2,000 pages.
    let n = 40_000u64;
    for b in 0..n / 10 {
        clock.store(1 + b, Ordering::Relaxed);
        let evs = (0..10)
            .map(|_| NewEvent::application(&topic, vec![7u8; 10]))
            .collect();
        s.append_batch(evs).unwrap();
    }
    let pages = s.stat().unwrap().pages;
    assert!(pages > 1_000, "{pages} pages");
    for (from, k) in [(1u64, 100u64), (2_000, 100), (3_999, 10), (1_234, 1_000)] {
        let before = s.index_entries_read();
        let got = s
            .iter_topic_range(&topic.id(), from, from + k / 10)
            .unwrap()
            .map(|e| e.unwrap().timestamp_ms())
            .collect::<Vec<_>>();
        let read = s.index_entries_read() - before;
        assert_eq!(got.len() as u64, k.min(n - (from - 1) * 10));
        assert!(got.iter().all(|t| *t >= from && *t < from + k / 10));
        // Two time lookups, a page lookup each, and the pages of the k
        // events (at least 20 per page here), whatever the log's length.
        assert!(read <= 8 + k / 10, "{read} entries for {k} events of {n}");
        let before = s.index_entries_read();
        assert_eq!(s.iter_topic_last(&topic.id(), k).unwrap().count() as u64, k);
        let read = s.index_entries_read() - before;
        assert!(read <= 4 + k / 10, "{read} entries for the last {k} of {n}");
    }
    // A scan of the whole log reads every page entry.
    let before = s.index_entries_read();
    assert_eq!(s.iter_topic(&topic).unwrap().count() as u64, n);
    assert!(s.index_entries_read() - before >= pages / 2);
}
