// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Appending, reading, proofs and checkpoints, reopening, and bad input.

mod common;

use std::sync::Arc;

use common::*;
use xaeroflux_store::merkle::{MemoryTree, NoteVerifier, verify_consistency, verify_inclusion};
use xaeroflux_store::{
    EventKind, LogId, NewEvent, Store, StoreError, StoreOptions, Topic, TopicId,
};

#[test]
fn append_read_prove_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let topic = Topic::new("chat").unwrap();
    let mut tree = MemoryTree::new();
    let mut receipts = Vec::new();
    for i in 0..300u64 {
        let r = store
            .append(NewEvent::application(&topic, payload(i)))
            .unwrap();
        assert_eq!(r.seq, i);
        assert_eq!(r.size, i + 1);
        tree.push(r.leaf_hash);
        assert_eq!(r.root, tree.root(), "root after {i}");
        receipts.push(r);
    }
    let log = receipts[0].log;
    assert_eq!(log, store.own_log(&topic));
    let evs = events(&store, &log);
    assert_eq!(evs.len(), 300);
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert_eq!(e.payload, payload(i as u64));
        assert_eq!(e.kind, EventKind::Application);
        assert_eq!(e.leaf_hash(), receipts[i].leaf_hash);
        if i > 0 {
            assert!(e.timestamp_ms >= evs[i - 1].timestamp_ms);
        }
    }
    assert_eq!(store.mmr_root(&log).unwrap(), tree.root());
    for size in [1u64, 2, 3, 16, 17, 255, 256, 257, 300] {
        assert_eq!(
            store.root_at(&log, size).unwrap(),
            tree.root_at(size).unwrap()
        );
        for seq in [0, size / 2, size - 1] {
            let p = store.prove_inclusion(&log, seq, size).unwrap();
            assert_eq!(p.path, tree.inclusion_path(seq, size).unwrap());
            verify_inclusion(
                &receipts[seq as usize].leaf_hash,
                seq,
                size,
                &p.path,
                &p.root,
            )
            .unwrap();
        }
        for old in [0, 1, size / 3, size - 1, size] {
            let p = store.prove_consistency(&log, old, size).unwrap();
            assert_eq!(p.path, tree.consistency_proof(old, size).unwrap());
            verify_consistency(old, size, &p.old_root, &p.new_root, &p.path).unwrap();
        }
    }
    let cp = store.checkpoint(&log).unwrap();
    let v = NoteVerifier::parse(&store.verifier_key(&topic.id())).unwrap();
    let parsed = v.verify_checkpoint(&cp.note).unwrap();
    assert_eq!(parsed.size, 300);
    assert_eq!(parsed.root, tree.root());
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.events, 300);
    assert_eq!(report.checkpoints, 1);
    assert!(
        report.sealed_pages > 10,
        "small pages must have been sealed"
    );
}

#[test]
fn kinds_empty_payloads_and_topic_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = Topic::new("a").unwrap();
    let b = Topic::new("b").unwrap();
    store.append(NewEvent::identity(&a, Vec::new())).unwrap();
    store.append(NewEvent::system(&b, b"sys".to_vec())).unwrap();
    store
        .append(NewEvent::application(&a, b"x".to_vec()))
        .unwrap();
    let view: Vec<_> = store
        .iter_topic(&a)
        .unwrap()
        .map(|e| e.unwrap().to_event())
        .collect();
    assert_eq!(view.len(), 2);
    assert_eq!(view[0].kind, EventKind::Identity);
    assert!(view[0].payload.is_empty());
    assert_eq!(view[1].payload, b"x");
    let all: Vec<_> = store
        .iter_events()
        .unwrap()
        .map(|e| e.unwrap().to_event())
        .collect();
    assert_eq!(all.len(), 3);
    let logs = store.logs().unwrap();
    assert_eq!(logs.len(), 2);
    assert!(
        logs.iter()
            .any(|l| l.topic_name.as_deref() == Some("b") && l.size == 1)
    );
    let s = store.stat().unwrap();
    assert_eq!((s.logs, s.events), (2, 3));
}

#[test]
fn reopen_gives_identical_roots_proofs_and_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let topics: Vec<Topic> = (0..3)
        .map(|i| Topic::new(&format!("t{i}")).unwrap())
        .collect();
    let (logs, before) = {
        let store = Arc::new(open(dir.path()));
        // Several threads append at once.
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                let topics = topics.clone();
                std::thread::spawn(move || {
                    for i in 0..150u64 {
                        let topic = &topics[((i + t) % 3) as usize];
                        if i % 10 == 0 {
                            let evs = (0..7)
                                .map(|j| NewEvent::application(topic, payload(i * 7 + j)))
                                .collect();
                            store.append_batch(evs).unwrap();
                        } else {
                            store
                                .append(NewEvent::application(topic, payload(i)))
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let logs: Vec<LogId> = topics.iter().map(|t| store.own_log(t)).collect();
        let snapshot = snapshot(&store, &logs);
        let store = Arc::into_inner(store).unwrap();
        store.close().unwrap();
        (logs, snapshot)
    };
    let total: u64 = before.iter().map(|s| s.0).sum();
    assert_eq!(total, 4 * (135 + 15 * 7));
    let store = open(dir.path());
    assert_eq!(store.recovered_events(), 0);
    assert_eq!(snapshot(&store, &logs), before);
    assert!(store.verify().unwrap().is_ok());
    // And the log goes on where it was.
    let r = store
        .append(NewEvent::application(&topics[0], b"more".to_vec()))
        .unwrap();
    assert_eq!(r.seq, before[0].0);
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.log_size(&logs[0]).unwrap(), before[0].0 + 1);
}

type Snap = (
    u64,
    [u8; 32],
    Vec<Vec<[u8; 32]>>,
    Vec<xaeroflux_store::Event>,
);

fn snapshot(store: &Store, logs: &[LogId]) -> Vec<Snap> {
    logs.iter()
        .map(|log| {
            let info = store.log_info(log).unwrap();
            let proofs = (0..info.size)
                .step_by(13)
                .map(|s| store.prove_inclusion(log, s, info.size).unwrap().path)
                .collect();
            (info.size, info.root, proofs, events(store, log))
        })
        .collect()
}

// Long on purpose: a list of independent refusals on one store, each two
// or three lines, and the store unchanged after all of them.
#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = Topic::new("t").unwrap();
    // Too large for a 1 KiB page: the error names both sizes.
    let err = store
        .append(NewEvent::application(&t, vec![0u8; 2000]))
        .unwrap_err();
    match &err {
        StoreError::EventTooLarge {
            size,
            max,
            page_size,
        } => {
            assert_eq!(*size, 2024);
            assert_eq!(*page_size, 1024);
            assert!(*max < 1024);
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("2024") && err.to_string().contains("1024"));
    // The largest payload that fits does fit.
    let r = store
        .append(NewEvent::application(
            &t,
            vec![1u8; store.max_payload_len()],
        ))
        .unwrap();
    assert_eq!(r.seq, 0);
    // A batch with one bad event stores nothing of it.
    let batch = vec![
        NewEvent::application(&t, b"ok".to_vec()),
        NewEvent::application(&t, vec![0u8; 5000]),
    ];
    assert!(matches!(
        store.append_batch(batch),
        Err(StoreError::EventTooLarge { .. })
    ));
    assert_eq!(store.log_size(&r.log).unwrap(), 1);
    // Topic names.
    assert!(matches!(
        Topic::new(""),
        Err(xaeroflux_store::InvalidInput::Topic(_))
    ));
    assert!(matches!(
        Topic::new(&"n".repeat(300)),
        Err(xaeroflux_store::InvalidInput::Topic(_))
    ));
    // Unknown log.
    let nobody = LogId {
        author: [9; 32],
        topic: TopicId([9; 32]),
    };
    assert!(matches!(
        store.mmr_root(&nobody),
        Err(StoreError::UnknownLog(_))
    ));
    assert!(matches!(
        store.iter_log(&nobody, 0),
        Err(StoreError::UnknownLog(_))
    ));
    assert!(matches!(
        store.checkpoint(&nobody),
        Err(StoreError::UnknownLog(_))
    ));
    // Proofs beyond the log.
    assert!(matches!(
        store.prove_inclusion(&r.log, 0, 5),
        Err(StoreError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        store.prove_inclusion(&r.log, 1, 1),
        Err(StoreError::SeqOutOfRange { .. })
    ));
    assert!(matches!(
        store.prove_consistency(&r.log, 0, 2),
        Err(StoreError::SizeOutOfRange { .. })
    ));
    assert!(store.prove_consistency(&r.log, 1, 0).is_err());
    // A different geometry for an existing store.
    drop(store);
    let err = Store::open(
        dir.path(),
        StoreOptions {
            page_size: Some(4096),
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("1024"), "{err}");
}

#[test]
fn one_writer_at_a_time_and_read_only_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = Topic::new("t").unwrap();
    store
        .append(NewEvent::application(&t, b"1".to_vec()))
        .unwrap();
    match Store::open(dir.path(), StoreOptions::default()) {
        Err(StoreError::Locked { holder, .. }) => assert!(holder.contains("process"), "{holder}"),
        other => panic!("second writer must be refused: {other:?}"),
    }
    drop(store);
    let ro = Store::open(
        dir.path(),
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    assert!(matches!(
        ro.append(NewEvent::application(&t, b"2".to_vec())),
        Err(StoreError::ReadOnly)
    ));
    assert_eq!(ro.log_size(&ro.own_log(&t)).unwrap(), 1);
    assert!(ro.verify().unwrap().is_ok());
}

#[test]
fn fast_mode_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            durability: xaeroflux_store::Durability::Fast,
            ..common::small_pages()
        },
    )
    .unwrap();
    let t = Topic::new("t").unwrap();
    let log = fill(&store, &t, 500);
    store.sync().unwrap();
    assert_eq!(events(&store, &log).len(), 500);
    store.close().unwrap();
    let store = open(dir.path());
    assert_eq!(store.log_size(&log).unwrap(), 500);
}

#[test]
fn many_logs_with_a_small_writer_cache() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        writer_log_cache: 4,
        ..common::small_pages()
    };
    let topics: Vec<Topic> = (0..40)
        .map(|i| Topic::new(&format!("topic {i}")).unwrap())
        .collect();
    let mut trees: Vec<MemoryTree> = (0..40).map(|_| MemoryTree::new()).collect();
    {
        let store = Store::open(dir.path(), opts.clone()).unwrap();
        for round in 0..12u64 {
            for (i, t) in topics.iter().enumerate() {
                if (round + i as u64).is_multiple_of(3) {
                    let evs = (0..5)
                        .map(|j| NewEvent::application(t, payload(round * 5 + j)))
                        .collect();
                    let b = store.append_batch(evs).unwrap();
                    for e in &b.events {
                        trees[i].push(e.leaf_hash);
                    }
                    assert_eq!(b.heads[0].root, trees[i].root());
                } else {
                    let r = store
                        .append(NewEvent::application(t, payload(round)))
                        .unwrap();
                    trees[i].push(r.leaf_hash);
                    assert_eq!(
                        (r.size, r.root),
                        (trees[i].len(), trees[i].root()),
                        "topic {i} round {round}"
                    );
                }
            }
        }
        for (i, t) in topics.iter().enumerate() {
            let log = store.own_log(t);
            assert_eq!(store.mmr_root(&log).unwrap(), trees[i].root());
            let evs = events(&store, &log);
            assert_eq!(evs.len() as u64, trees[i].len());
            let mut again = MemoryTree::new();
            for e in &evs {
                again.push(e.leaf_hash());
            }
            assert_eq!(again.root(), trees[i].root());
        }
        assert!(store.verify().unwrap().is_ok());
    }
    let store = Store::open(dir.path(), opts).unwrap();
    assert_eq!(store.recovered_events(), 0);
    for (i, t) in topics.iter().enumerate() {
        assert_eq!(store.mmr_root(&store.own_log(t)).unwrap(), trees[i].root());
    }
    assert_eq!(store.logs().unwrap().len(), 40);
}
