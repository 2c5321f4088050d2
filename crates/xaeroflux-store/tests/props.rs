// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Property test of the whole store against a model: random page
//! geometries, payload sizes (up to an event that fills a page alone) and
//! batches across topics; events, roots and proofs at every size (or a
//! sample of 64 or more in a long log) must match RFC 9162 computed naively
//! from the model's leaves, before and after reopening, and `verify` must
//! pass.

use proptest::prelude::*;
use xaeroflux_store::merkle::{reference, verify_consistency, verify_inclusion};
use xaeroflux_store::{Durability, LogId, NewEvent, Store, StoreOptions, Topic};

#[derive(Debug, Clone)]
struct Op {
    topic: usize,
    /// Payload lengths as fractions of the largest payload (per mille).
    sizes: Vec<u16>,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let size = prop_oneof![
        3 => 0u16..60,      // small events
        2 => 0u16..=1000,   // anything up to a full page
        1 => Just(1000u16), // exactly a full page
        1 => Just(0u16),    // empty payloads
    ];
    proptest::collection::vec(
        (0usize..3, proptest::collection::vec(size, 1..12))
            .prop_map(|(topic, sizes)| Op { topic, sizes }),
        1..25,
    )
}

/// The sizes at which a log of `n` events is checked: every size up to 512,
/// else 64 or more spread over the log (both ends, every page-size-ish
/// stride, and the sizes just below and above each).
fn sizes_to_check(n: u64, salt: u64) -> Vec<u64> {
    if n <= 512 {
        return (1..=n).collect();
    }
    let mut v: Vec<u64> = (1..=8).chain(n - 8..=n).collect();
    let mut x = salt | 1;
    while v.len() < 80 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(1 + x % n);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Roots at every checked size, inclusion proofs of the first, last and a
/// middle event at each, and consistency proofs from each size to the
/// full log and to a later size: all equal to RFC 9162 computed naively
/// from the leaf list, and all verifying.
fn check_proofs(store: &Store, log: &LogId, leaves: &[[u8; 32]]) -> Result<(), TestCaseError> {
    let n = leaves.len() as u64;
    let full = reference::root(leaves);
    for size in sizes_to_check(n, n.wrapping_mul(0x9E37_79B9)) {
        let s = size as usize;
        let root = reference::root(&leaves[..s]);
        prop_assert_eq!(store.root_at(log, size).unwrap(), root, "root at {}", size);
        for seq in [0, size / 2, size - 1] {
            let p = store.prove_inclusion(log, seq, size).unwrap();
            prop_assert_eq!(p.leaf_hash, leaves[seq as usize]);
            prop_assert_eq!(p.root, root);
            prop_assert_eq!(
                &p.path,
                &reference::path(seq as usize, &leaves[..s]),
                "path of {} at {}",
                seq,
                size
            );
            prop_assert!(verify_inclusion(&p.leaf_hash, seq, size, &p.path, &root).is_ok());
        }
        let later = size + (n - size) / 2;
        for to in [n, later] {
            let c = store.prove_consistency(log, size, to).unwrap();
            let to_root = reference::root(&leaves[..to as usize]);
            prop_assert_eq!((c.old_root, c.new_root), (root, to_root));
            prop_assert_eq!(
                &c.path,
                &reference::proof(s, &leaves[..to as usize]),
                "proof {} -> {}",
                size,
                to
            );
            prop_assert!(verify_consistency(size, to, &root, &to_root, &c.path).is_ok());
        }
    }
    prop_assert_eq!(store.mmr_root(log).unwrap(), full);
    Ok(())
}

/// One topic's own log in the model: its payloads and leaf hashes.
type Model = (Vec<Vec<u8>>, Vec<[u8; 32]>);

fn check(store: &Store, topics: &[Topic], model: &[Model]) -> Result<(), TestCaseError> {
    for (t, (payloads, leaves)) in topics.iter().zip(model) {
        let log = store.own_log(t);
        let size = store.log_size(&log).unwrap();
        prop_assert_eq!(size, leaves.len() as u64);
        if size == 0 {
            continue;
        }
        let got: Vec<Vec<u8>> = store
            .iter_log(&log, 0)
            .unwrap()
            .map(|e| e.unwrap().payload().to_vec())
            .collect();
        prop_assert_eq!(&got, payloads);
        check_proofs(store, &log, leaves)?;
        // Iterating from the middle gives the tail.
        let tail = store.iter_log(&log, size / 2).unwrap().count() as u64;
        prop_assert_eq!(tail, size - size / 2);
    }
    let report = store.verify().unwrap();
    prop_assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_store_matches_a_model(page_shift in 10u32..13, segment_pages in 1u32..4, ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            page_size: Some(1 << page_shift),
            segment_pages: Some(segment_pages),
            durability: Durability::Fast,
            writer_log_cache: 2,
            ..StoreOptions::default()
        };
        let topics: Vec<Topic> = (0..3).map(|i| Topic::new(&format!("t{i}")).unwrap()).collect();
        let mut model: Vec<Model> = (0..3).map(|_| (Vec::new(), Vec::new())).collect();
        {
            let store = Store::open(dir.path(), opts.clone()).unwrap();
            let max = store.max_payload_len();
            for (k, op) in ops.iter().enumerate() {
                let payloads: Vec<Vec<u8>> = op
                    .sizes
                    .iter()
                    .enumerate()
                    .map(|(j, s)| vec![(k + j) as u8; max * *s as usize / 1000])
                    .collect();
                let evs: Vec<NewEvent> = payloads.iter().map(|p| NewEvent::application(&topics[op.topic], p.clone())).collect();
                let leaves: Vec<[u8; 32]> = if evs.len() == 1 {
                    vec![store.append(evs.into_iter().next().unwrap()).unwrap().leaf_hash]
                } else {
                    store.append_batch(evs).unwrap().events.iter().map(|e| e.leaf_hash).collect()
                };
                let (ps, ls) = &mut model[op.topic];
                ps.extend(payloads);
                ls.extend(leaves);
            }
            // One byte more than fits is refused and changes nothing.
            let too_big = NewEvent::application(&topics[0], vec![0u8; max + 1]);
            prop_assert!(store.append(too_big).is_err());
            check(&store, &topics, &model)?;
            store.close().unwrap();
        }
        let store = Store::open(dir.path(), opts).unwrap();
        prop_assert_eq!(store.recovered_events(), 0);
        check(&store, &topics, &model)?;
    }
}
