// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The state is a pure function of the set of operations: for random
//! operation sets from several authors, every order of delivery, with
//! duplicates, gives the same state, for every CRDT type.

use proptest::prelude::*;
use xaeroflux_crdt::{DocState, Op, OpBody, OpId, Stamp};
use xaeroflux_testkit::Rng;

const NAMES: [&str; 2] = ["a", "b"];
const VALUES: [&[u8]; 4] = [b"x", b"y", b"z", b""];

/// Builds an operation set from choices: per op an author, a clock step
/// (which may go back), a name, a kind and a value; removes and
/// multi-value writes observe a random subset of the ids before them.
fn ops_from(choices: &[(u8, i8, u8, u8, u8, u64)]) -> Vec<(Stamp, Op)> {
    let mut seqs = [0u64; 3];
    let mut clocks = [1_000u64; 3];
    let mut out: Vec<(Stamp, Op)> = Vec::new();
    for (author, step, name, kind, value, pick) in choices {
        let a = (*author % 3) as usize;
        clocks[a] = clocks[a].saturating_add_signed(*step as i64);
        let id = OpId {
            author: [a as u8 + 1; 32],
            seq: seqs[a],
        };
        seqs[a] += 1;
        let stamp = Stamp {
            timestamp_ms: clocks[a],
            id,
        };
        let v = VALUES[*value as usize % VALUES.len()].to_vec();
        let name = NAMES[*name as usize % NAMES.len()].to_string();
        let seen: Vec<OpId> = out
            .iter()
            .enumerate()
            .filter(|(i, _)| pick >> (i % 64) & 1 == 1)
            .map(|(_, (s, _))| s.id)
            .collect();
        let body = match kind % 8 {
            0 => OpBody::RegisterSet(v),
            1 => OpBody::MapSet(v.clone(), vec![*value]),
            2 => OpBody::MapDelete(v),
            3 => OpBody::CounterAdd(*step as i64),
            4 | 5 => OpBody::SetAdd(v),
            6 => OpBody::SetRemove(v, seen),
            _ => OpBody::MvSet(v, seen),
        };
        out.push((stamp, Op { name, body }));
    }
    out
}

fn fold<'a>(ops: impl IntoIterator<Item = &'a (Stamp, Op)>) -> DocState {
    let mut s = DocState::default();
    for (stamp, op) in ops {
        s.apply(*stamp, op);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_order_with_duplicates_gives_the_same_state(
        choices in proptest::collection::vec(
            (any::<u8>(), -20i8..40, any::<u8>(), any::<u8>(), any::<u8>(), any::<u64>()),
            0..60,
        ),
        seed in any::<u64>(),
    ) {
        let ops = ops_from(&choices);
        let want = fold(&ops);
        let mut rng = Rng::new(seed);
        for _ in 0..6 {
            // A permutation with some operations delivered two or three times.
            let mut order: Vec<&(Stamp, Op)> = ops.iter().collect();
            for op in &ops {
                if rng.below(4) == 0 {
                    order.push(op);
                }
            }
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            let got = fold(order);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(got.to_json(), want.to_json());
        }
    }

    #[test]
    fn operations_round_trip_through_their_encoding(
        choices in proptest::collection::vec(
            (any::<u8>(), -20i8..40, any::<u8>(), any::<u8>(), any::<u8>(), any::<u64>()),
            0..30,
        ),
    ) {
        for (_, op) in ops_from(&choices) {
            prop_assert_eq!(Op::decode(&op.encode().unwrap()).unwrap(), op);
        }
    }
}

#[test]
fn last_writer_wins_by_timestamp_then_author_then_seq_not_by_arrival() {
    let id = |a: u8, seq: u64| OpId {
        author: [a; 32],
        seq,
    };
    let set = |v: &[u8]| Op {
        name: "title".into(),
        body: OpBody::RegisterSet(v.to_vec()),
    };
    let late = (
        Stamp {
            timestamp_ms: 20,
            id: id(1, 0),
        },
        set(b"late"),
    );
    let early = (
        Stamp {
            timestamp_ms: 10,
            id: id(2, 5),
        },
        set(b"early"),
    );
    let tie = (
        Stamp {
            timestamp_ms: 20,
            id: id(3, 0),
        },
        set(b"tie, larger author"),
    );
    for order in [
        [&late, &early, &tie],
        [&tie, &early, &late],
        [&early, &tie, &late],
    ] {
        let s = fold(order);
        assert_eq!(
            s.registers["title"].value(),
            Some(&b"tie, larger author"[..])
        );
    }
}

#[test]
fn a_remove_takes_only_the_adds_it_saw_and_concurrent_writes_are_all_kept() {
    let id = |a: u8, seq: u64| OpId {
        author: [a; 32],
        seq,
    };
    let st = |i: OpId| Stamp {
        timestamp_ms: 1,
        id: i,
    };
    let op = |body| Op {
        name: "s".into(),
        body,
    };
    let add1 = (st(id(1, 0)), op(OpBody::SetAdd(b"bob".to_vec())));
    let add2 = (st(id(2, 0)), op(OpBody::SetAdd(b"bob".to_vec())));
    // Author 1 removes bob having seen only its own add.
    let rm = (
        st(id(1, 1)),
        op(OpBody::SetRemove(b"bob".to_vec(), vec![id(1, 0)])),
    );
    let s = fold([&rm, &add2, &add1]);
    assert!(s.sets["s"].contains(b"bob"), "the concurrent add survives");
    let rm_all = (
        st(id(2, 1)),
        op(OpBody::SetRemove(b"bob".to_vec(), vec![id(1, 0), id(2, 0)])),
    );
    let s = fold([&add1, &rm_all, &add2, &rm]);
    assert!(!s.sets["s"].contains(b"bob"));
    // Two writes that did not see each other are both values; a third that
    // saw both replaces them.
    let mv = |v: &[u8], seen: Vec<OpId>| op(OpBody::MvSet(v.to_vec(), seen));
    let w1 = (st(id(1, 2)), mv(b"red", vec![]));
    let w2 = (st(id(2, 2)), mv(b"blue", vec![]));
    assert_eq!(
        fold([&w1, &w2]).mv_registers["s"].values(),
        vec![&b"blue"[..], b"red"]
    );
    let w3 = (st(id(3, 0)), mv(b"green", vec![id(1, 2), id(2, 2)]));
    assert_eq!(
        fold([&w3, &w1, &w2]).mv_registers["s"].values(),
        vec![&b"green"[..]]
    );
}
