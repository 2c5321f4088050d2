// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Envelopes: known answers, every byte mutated refused, a ciphertext
//! moved to another place refused, and structure checks that never panic.

use proptest::prelude::*;
use xaeroflux_e2e::control;
use xaeroflux_e2e::{
    ContentKey, E2eError, ENVELOPE_OVERHEAD, EpochSecret, Group, MemberSecret, Place,
    check_envelope, sealed_len,
};
use xaeroflux_types::{EventKind, TopicId};

fn place() -> Place {
    Place {
        author: [0xa1; 32],
        topic: TopicId([0x70; 32]),
        kind: EventKind::Application,
        flags: 1,
        seq: 42,
        timestamp_ms: 1_700_000_000_123,
    }
}

fn key() -> ContentKey {
    ContentKey::derive(
        &place().topic,
        3,
        &EpochSecret::from_bytes([0x5e; 32]),
        &place().author,
    )
}

#[test]
fn the_known_answer_holds() {
    let mut nonce = [0u8; 24];
    for (i, n) in nonce.iter_mut().enumerate() {
        *n = i as u8 + 1;
    }
    let sealed = key()
        .seal_with_nonce(&place(), b"hello, private world", nonce)
        .unwrap();
    let hex = hex::encode(&sealed);
    assert!(
        hex.starts_with("010300000000000000"),
        "version and epoch: {hex}"
    );
    assert_eq!(
        hex, KAT_FULL,
        "the envelope changed: docs/private-topics.md must change too"
    );
    assert_eq!(sealed.len(), sealed_len(20));
    assert_eq!(
        key().open(&place(), &sealed).unwrap(),
        b"hello, private world"
    );
}

/// The known answer written down in docs/private-topics.md (checked
/// there with an independent XChaCha20-Poly1305).
const KAT_FULL: &str = "0103000000000000000102030405060708090a0b0c0d0e0f1011121314151617187427270be9e0a8cc23652ce5ba302a2b12146a41dbdc312cec2bfad920ccc4025183bebf023e";

#[test]
fn a_moved_ciphertext_is_refused() {
    let sealed = key().seal(&place(), b"bound to its place").unwrap();
    let moved = [
        Place { seq: 43, ..place() },
        Place {
            timestamp_ms: 1,
            ..place()
        },
        Place {
            kind: EventKind::Identity,
            ..place()
        },
        Place {
            flags: 3,
            ..place()
        },
        Place {
            author: [0xa2; 32],
            ..place()
        },
        Place {
            topic: TopicId([0x71; 32]),
            ..place()
        },
    ];
    for p in moved {
        // Another author or topic has another key; either way it fails.
        let k = ContentKey::derive(&p.topic, 3, &EpochSecret::from_bytes([0x5e; 32]), &p.author);
        for key in [&key(), &k] {
            assert!(
                matches!(key.open(&p, &sealed), Err(E2eError::Refused { .. })),
                "opened at {p:?}"
            );
        }
    }
    // Another epoch's key says so rather than failing obscurely.
    let other = ContentKey::derive(
        &place().topic,
        4,
        &EpochSecret::from_bytes([0x5e; 32]),
        &place().author,
    );
    assert!(matches!(
        other.open(&place(), &sealed),
        Err(E2eError::NoKey { epoch: 3 })
    ));
}

#[test]
fn sizes_are_padded_and_the_overhead_is_fixed() {
    for len in [0usize, 1, 10, 100, 1000, 10_000] {
        let sealed = key().seal(&place(), &vec![7u8; len]).unwrap();
        assert_eq!(sealed.len(), sealed_len(len));
        assert!(sealed.len() >= len + 1 + ENVELOPE_OVERHEAD);
        assert_eq!(check_envelope(&sealed).unwrap().epoch, 3);
    }
    assert_eq!(ENVELOPE_OVERHEAD, 49);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_mutated_byte_is_refused(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let sealed = key().seal(&place(), &payload).unwrap();
        let mut bad = sealed.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        prop_assert!(key().open(&place(), &bad).is_err(), "byte {i} of {} changed and opened", bad.len());
        // Truncated or extended, too.
        prop_assert!(key().open(&place(), &sealed[..i]).is_err());
        let mut longer = sealed.clone();
        longer.push(flip);
        prop_assert!(key().open(&place(), &longer).is_err());
        prop_assert_eq!(key().open(&place(), &sealed).unwrap(), payload);
    }

    #[test]
    fn random_bytes_never_panic_the_checks(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = check_envelope(&bytes);
        let _ = key().open(&place(), &bytes);
        let _ = control::parse(&bytes);
        let mut magic = b"XFEC\x01".to_vec();
        magic.extend_from_slice(&bytes);
        let _ = control::parse(&magic);
    }

    #[test]
    fn every_mutated_byte_of_a_key_change_is_refused_or_harmless(
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let alice = MemberSecret::generate().unwrap();
        let created = Group::create([9; 32], &alice, Some("t")).unwrap();
        let mut bad = created.genesis.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        let mut g = Group::new(*created.group.topic(), Some(&created.name), [9; 32], vec![alice]).unwrap();
        // Either refused, or accepted with nothing readable (a changed
        // wrap or commitment): never a wrong secret or title.
        if g.apply(&[9; 32], &bad).is_ok() {
            prop_assert!(!g.can_read(0), "byte {} changed and still read", i);
            prop_assert!(g.title().is_none());
        }
    }
}
