//! Property test of the whole store against a model: random page
//! geometries, payload sizes (up to an event that fills a page alone) and
//! batches across topics; events, roots and proofs must match an in-memory
//! model, before and after reopening, and `verify` must pass.

use proptest::prelude::*;
use xaeroflux_store::merkle::{MemoryTree, verify_consistency, verify_inclusion};
use xaeroflux_store::{Durability, NewEvent, Store, StoreOptions, Topic};

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

fn check(
    store: &Store,
    topics: &[Topic],
    model: &[(Vec<Vec<u8>>, MemoryTree)],
) -> Result<(), TestCaseError> {
    for (t, (payloads, tree)) in topics.iter().zip(model) {
        let log = store.own_log(t);
        let size = store.log_size(&log).unwrap();
        prop_assert_eq!(size, tree.len());
        if size == 0 {
            continue;
        }
        let got: Vec<Vec<u8>> = store
            .iter_log(&log, 0)
            .unwrap()
            .map(|e| e.unwrap().payload().to_vec())
            .collect();
        prop_assert_eq!(&got, payloads);
        prop_assert_eq!(store.mmr_root(&log).unwrap(), tree.root());
        for seq in [0, size / 2, size - 1] {
            let p = store.prove_inclusion(&log, seq, size).unwrap();
            prop_assert!(verify_inclusion(&p.leaf_hash, seq, size, &p.path, &tree.root()).is_ok());
            let c = store.prove_consistency(&log, seq, size).unwrap();
            prop_assert!(
                verify_consistency(
                    seq,
                    size,
                    &tree.root_at(seq).unwrap(),
                    &tree.root(),
                    &c.path
                )
                .is_ok()
            );
        }
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
        let mut model: Vec<(Vec<Vec<u8>>, MemoryTree)> = (0..3).map(|_| (Vec::new(), MemoryTree::new())).collect();
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
                let (ps, tree) = &mut model[op.topic];
                for (p, l) in payloads.into_iter().zip(leaves) {
                    ps.push(p);
                    tree.push(l);
                }
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
