// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Codec property tests: every message round-trips; arbitrary bytes and
//! damaged frames never panic and never make the decoder buffer more than
//! one bounded frame.

use proptest::prelude::*;
use xaeroflux_sync::codec::{
    DiffEntry, MAX_FRAME, PageRequest, PageResponse, PeakEntry, TopicEntry,
};
use xaeroflux_sync::{Decoder, ErrorCode, Message};
use xaeroflux_types::{LogId, TopicId};

fn log() -> impl Strategy<Value = LogId> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(author, t)| LogId {
        author,
        topic: TopicId(t),
    })
}

// Long on purpose: one strategy covering every message of the protocol.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u16>(),
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<bool>(),
            prop::collection::vec((any::<[u8; 32]>(), "[a-z/]{0,20}", any::<[u8; 32]>()), 0..5)
        )
            .prop_map(|(version, node_id, caps, all_topics, t)| Message::Hello {
                version,
                node_id,
                caps,
                all_topics,
                topics: t
                    .into_iter()
                    .map(|(id, name, digest)| TopicEntry {
                        id: TopicId(id),
                        name,
                        digest
                    })
                    .collect(),
            }),
        (
            any::<[u8; 32]>(),
            prop::collection::vec((any::<[u8; 32]>(), any::<u64>(), ".{0,40}"), 0..4)
        )
            .prop_map(|(t, logs)| Message::Peaks {
                topic: TopicId(t),
                logs: logs
                    .into_iter()
                    .map(|(author, size, note)| PeakEntry { author, size, note })
                    .collect(),
            }),
        (any::<[u8; 32]>(), 1u32..6, any::<[u8; 8]>()).prop_map(|(t, k, fill)| {
            Message::Summary {
                topic: TopicId(t),
                buckets: (0..1usize << k)
                    .map(|i| {
                        let mut b = fill;
                        b[0] ^= i as u8;
                        b
                    })
                    .collect(),
            }
        }),
        prop::collection::vec((log(), any::<u64>(), any::<u64>()), 0..4).prop_map(|w| {
            Message::Diff {
                wants: w
                    .into_iter()
                    .map(|(log, from, to)| DiffEntry { log, from, to })
                    .collect(),
            }
        }),
        (
            log(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<bool>()
        )
            .prop_map(
                |(log, from, to, max_events, want_base)| Message::PageRequest(PageRequest {
                    log,
                    from,
                    to,
                    max_events,
                    want_base,
                })
            ),
        (
            log(),
            any::<u64>(),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..6),
            prop::collection::vec(any::<[u8; 32]>(), 0..8),
            prop::option::of((
                any::<[u8; 32]>(),
                prop::collection::vec(any::<[u8; 32]>(), 0..8)
            ))
        )
            .prop_map(|(log, from, events, proof, base)| Message::PageResponse(
                PageResponse {
                    log,
                    from,
                    events,
                    proof,
                    base
                }
            )),
        Just(Message::SyncDone),
        (log(), ".{0,60}").prop_map(|(log, note)| Message::Checkpoint { log, note }),
        (1u16..10, ".{0,60}").prop_map(|(c, reason)| Message::Error {
            code: ErrorCode::from_u16(c),
            reason
        }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip_through_any_split(
        msgs in prop::collection::vec(message(), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        for m in &msgs {
            m.encode(&mut bytes).unwrap();
        }
        // Arrives in two pieces, split anywhere.
        let at = cut.index(bytes.len() + 1);
        let mut d = Decoder::new();
        let mut got = Vec::new();
        d.feed(&bytes[..at]);
        while let Some(m) = d.next_message().unwrap() {
            got.push(m);
        }
        d.feed(&bytes[at..]);
        while let Some(m) = d.next_message().unwrap() {
            got.push(m);
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut d = Decoder::new();
        d.feed(&bytes);
        for _ in 0..64 {
            match d.next_message() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn damaged_frames_are_refused_or_decode_to_something_else(
        m in message(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = Vec::new();
        m.encode(&mut bytes).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let mut d = Decoder::new();
        d.feed(&bytes);
        match d.next_message() {
            Ok(Some(other)) => prop_assert_ne!(other, m),
            Ok(None) => prop_assert!(i < 4, "only a damaged length can leave the frame incomplete"),
            Err(_) => {}
        }
    }
}

#[test]
fn a_length_over_the_bound_is_refused_before_buffering() {
    let mut d = Decoder::new();
    d.feed(&((MAX_FRAME as u32) + 1).to_be_bytes());
    assert!(d.next_message().is_err());
    let mut d = Decoder::new();
    d.feed(&0u32.to_be_bytes());
    assert!(d.next_message().is_err());
    // A count larger than the frame holds is refused without allocating it.
    let mut frame = vec![0u8, 0, 0, 0, 3];
    frame.extend_from_slice(&u32::MAX.to_be_bytes());
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let mut d = Decoder::new();
    d.feed(&frame);
    assert!(d.next_message().is_err());
}
