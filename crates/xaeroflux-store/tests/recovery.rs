// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Recovery from an index that lags the segments, as after a power loss
//! (LMDB commits are not synced): the writer replays the segments' tail.

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};

use common::*;
use xaeroflux_store::merkle::MemoryTree;
use xaeroflux_store::{NewEvent, Store, Topic};

#[test]
fn an_index_behind_the_segments_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    let (log_a, log_b) = {
        let store = open(dir.path());
        let la = fill(&store, &a, 40);
        let lb = fill(&store, &b, 5);
        store.close().unwrap();
        (la, lb)
    };
    // The index as it was then.
    let old_index = fs::read(dir.path().join("index/data.mdb")).unwrap();
    let (want_a, want_b, root_a, root_b) = {
        let store = open(dir.path());
        // Enough to seal pages and roll over segments (8 pages of 1 KiB each).
        for i in 40..400u64 {
            store.append(NewEvent::application(&a, payload(i))).unwrap();
        }
        fill(&store, &b, 3);
        // A log the old index has never heard of.
        store
            .append(NewEvent::application(
                &Topic::new("c").unwrap(),
                b"new log".to_vec(),
            ))
            .unwrap();
        let out = (
            events(&store, &log_a),
            events(&store, &log_b),
            store.mmr_root(&log_a).unwrap(),
            store.mmr_root(&log_b).unwrap(),
        );
        store.close().unwrap();
        out
    };
    assert_eq!(want_a.len(), 400);
    // Power loss: the segments kept everything, the index lost its latest commits.
    fs::write(dir.path().join("index/data.mdb"), &old_index).unwrap();
    let store = open(dir.path());
    // 360 more in a, 3 more in b, 1 in the new log c.
    assert_eq!(store.recovered_events(), 360 + 3 + 1);
    assert_eq!(events(&store, &log_a), want_a);
    assert_eq!(store.mmr_root(&log_a).unwrap(), root_a);
    assert_eq!(store.mmr_root(&log_b).unwrap(), root_b);
    let mut tree = MemoryTree::new();
    for e in &want_a {
        tree.push(e.leaf_hash());
    }
    for size in [1, 39, 40, 41, 255, 256, 400] {
        let p = store.prove_inclusion(&log_a, size - 1, size).unwrap();
        assert_eq!(p.path, tree.inclusion_path(size - 1, size).unwrap());
        assert_eq!(
            store
                .prove_consistency(&log_a, 40, size.max(40))
                .unwrap()
                .path,
            tree.consistency_proof(40, size.max(40)).unwrap()
        );
    }
    assert_eq!(events(&store, &log_b), want_b);
    assert_eq!(store.logs().unwrap().len(), 3);
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // And the logs go on.
    let r = store
        .append(NewEvent::application(&a, b"after".to_vec()))
        .unwrap();
    assert_eq!(r.seq, 400);
    store.close().unwrap();
    let store = open(dir.path());
    assert_eq!(store.recovered_events(), 0);
    assert_eq!(store.log_size(&log_a).unwrap(), 401);
}

#[test]
fn a_torn_record_after_the_last_good_one_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let t = Topic::new("t").unwrap();
    let log = {
        let store = open(dir.path());
        let log = fill(&store, &t, 10);
        store.close().unwrap();
        log
    };
    let before = {
        let store = open(dir.path());
        let e = events(&store, &log);
        store.close().unwrap();
        e
    };
    // Garbage where the next record would go: a length and a bad CRC.
    let seg = dir.path().join("segments/00000000.xfseg");
    let used: usize = before.iter().map(|e| 8 + e.canonical_bytes().len()).sum();
    // The ten events fill the first pages; find the open page by reading headers.
    let bytes = fs::read(&seg).unwrap();
    let page_size = 1024;
    let mut open_page = None;
    for p in 1..=8usize {
        let h = &bytes[p * page_size..p * page_size + 136];
        if &h[0..4] == b"XFPG" && h[6] & 1 == 0 {
            open_page = Some(p);
        }
    }
    let p = open_page.expect("an open page");
    let used_in_page = u32::from_le_bytes(
        bytes[p * page_size + 96..p * page_size + 100]
            .try_into()
            .unwrap(),
    ) as usize;
    assert!(used_in_page > 0 && used_in_page <= used);
    let mut f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.seek(SeekFrom::Start((p * page_size + 136 + used_in_page) as u64))
        .unwrap();
    f.write_all(&[50, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9]).unwrap();
    drop(f);
    let store = open(dir.path());
    assert_eq!(store.recovered_events(), 0);
    assert_eq!(events(&store, &log), before);
    let r = store
        .append(NewEvent::application(&t, b"next".to_vec()))
        .unwrap();
    assert_eq!(r.seq, 10);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    let store = Store::open(dir.path(), small_pages()).unwrap();
    assert_eq!(events(&store, &log).len(), 11);
}

/// Each log: id, size, root and events.
type Snapshot = Vec<(
    xaeroflux_store::LogId,
    u64,
    [u8; 32],
    Vec<xaeroflux_store::Event>,
)>;

fn snapshot(store: &Store) -> Snapshot {
    let mut logs: Vec<_> = store
        .logs()
        .unwrap()
        .into_iter()
        .map(|l| (l.log, l.size, l.root, events(store, &l.log)))
        .collect();
    logs.sort_by_key(|l| l.0);
    logs
}

fn several_logs(dir: &std::path::Path) -> Snapshot {
    let store = open(dir);
    for (t, n) in [("x", 300u64), ("y", 17), ("z", 64)] {
        fill(&store, &Topic::new(t).unwrap(), n);
    }
    let s = snapshot(&store);
    store.close().unwrap();
    s
}

#[test]
fn a_lost_index_is_rebuilt_from_the_segments_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let before = several_logs(dir.path());
    fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = open(dir.path());
    assert_eq!(store.recovered_events(), 300 + 17 + 64);
    assert_eq!(snapshot(&store), before);
    assert!(store.verify().unwrap().is_ok());
    // The topic view works by name, and the names come back from the catalog.
    let x = Topic::new("x").unwrap();
    assert_eq!(store.iter_topic(&x).unwrap().count(), 300);
    assert_eq!(store.catalog_restored().topic_names, 3);
    assert_eq!(store.topic_name(&x.id()).unwrap().as_deref(), Some("x"));
    store
        .append(NewEvent::application(&x, b"more".to_vec()))
        .unwrap();
    let info = store.log_info(&store.own_log(&x)).unwrap();
    assert_eq!((info.size, info.topic_name.as_deref()), (301, Some("x")));
}

#[test]
fn repair_sets_a_damaged_index_aside_and_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let before = several_logs(dir.path());
    // Wreck the index: zero its first pages (both LMDB meta pages included).
    let data = dir.path().join("index/data.mdb");
    let mut bytes = fs::read(&data).unwrap();
    bytes[..16384].fill(0);
    fs::write(&data, &bytes).unwrap();
    assert!(Store::open(dir.path(), small_pages()).is_err());
    let (store, moved) = Store::repair(dir.path(), small_pages()).unwrap();
    let moved = moved.expect("the damaged index is kept");
    assert!(moved.join("data.mdb").exists());
    assert_eq!(snapshot(&store), before);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    // And it opens normally afterwards, with nothing left to replay.
    let store = open(dir.path());
    assert_eq!(store.recovered_events(), 0);
    assert_eq!(snapshot(&store), before);
    // Repair refuses a directory without segments, and a store held by a writer.
    let empty = tempfile::tempdir().unwrap();
    assert!(Store::repair(empty.path(), small_pages()).is_err());
    assert!(matches!(
        Store::repair(dir.path(), small_pages()),
        Err(xaeroflux_store::StoreError::Locked { .. })
    ));
}
