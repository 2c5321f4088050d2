// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! A peer that asks without end cannot make a session queue answers
//! without bound: `receive` stops acting on requests once the output not
//! yet taken reaches `OUTPUT_PAUSE`, and goes on once it is taken.

use xaeroflux_sync::codec::{DiffEntry, PageRequest, TopicEntry, VERSION, caps};
use xaeroflux_sync::{Decoder, MemStore, Message, OUTPUT_PAUSE, Session, SessionConfig};
use xaeroflux_types::Topic;

/// The frames of a peer that holds nothing, wants the whole of `log` (of
/// `size` events) and sends `requests` page requests for it at once.
fn flood(topic: &Topic, log: xaeroflux_types::LogId, size: u64, requests: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let msgs = [
        Message::Hello {
            version: VERSION,
            node_id: [9; 32],
            caps: caps::SYNC,
            all_topics: false,
            topics: vec![TopicEntry {
                id: topic.id(),
                name: topic.name().to_string(),
                digest: [0; 32],
            }],
        },
        Message::Peaks {
            topic: topic.id(),
            logs: Vec::new(),
        },
        Message::Diff {
            wants: vec![DiffEntry {
                log,
                from: 0,
                to: size,
            }],
        },
    ];
    for m in msgs {
        m.encode(&mut out).unwrap();
    }
    let req = Message::PageRequest(PageRequest {
        log,
        from: 0,
        to: size,
        max_events: 4096,
        want_base: false,
    });
    for _ in 0..requests {
        req.encode(&mut out).unwrap();
    }
    out
}

#[test]
fn a_flood_of_page_requests_in_one_read_is_answered_a_bounded_part_at_a_time() {
    let store = MemStore::with_seed(1);
    let topic = Topic::new("chat").unwrap();
    let mut log = None;
    for i in 0..1000u32 {
        // About 100 KiB of events: one answer is about that much.
        log = Some(store.append(&topic, &[i as u8; 100]));
    }
    let log = log.unwrap();
    let config = SessionConfig::default().with_topics([topic.clone()]);
    let page_bytes = config.page_bytes;
    let mut server = Session::new(&store, config).unwrap();
    let requests = 200;
    let bytes = flood(&topic, log, 1000, requests);

    server.receive(&bytes).unwrap();
    let mut answers = 0;
    let mut rounds = 0;
    loop {
        let out = server.take_output();
        assert!(
            out.len() <= OUTPUT_PAUSE + page_bytes + 64 * 1024,
            "round {rounds}: {} bytes queued at once",
            out.len()
        );
        let mut d = Decoder::new();
        d.feed(&out);
        while let Some(m) = d.next_message().unwrap() {
            match m {
                Message::PageResponse(p) => {
                    assert_eq!(p.events.len(), 1000);
                    answers += 1;
                }
                Message::Hello { .. }
                | Message::Peaks { .. }
                | Message::Diff { .. }
                | Message::SyncDone => {}
                other => panic!("unexpected {}", other.name()),
            }
        }
        rounds += 1;
        if !server.input_paused() {
            break;
        }
        server.receive(&[]).unwrap();
    }
    // 200 answers of ~100 KiB (20 MiB) took several rounds, and all came.
    assert_eq!(answers, requests);
    assert!(rounds >= 5, "only {rounds} rounds");
    assert!(!server.is_finished());
}

#[test]
fn a_paused_session_that_fails_reads_nothing_more() {
    let store = MemStore::with_seed(2);
    let topic = Topic::new("chat").unwrap();
    let mut log = None;
    for i in 0..1000u32 {
        log = Some(store.append(&topic, &[i as u8; 100]));
    }
    let config = SessionConfig::default().with_topics([topic.clone()]);
    let mut server = Session::new(&store, config).unwrap();
    server
        .receive(&flood(&topic, log.unwrap(), 1000, 100))
        .unwrap();
    assert!(server.input_paused());
    let _ = server.fail(xaeroflux_sync::SyncError::Closed);
    // A driver looping while paused would spin on a failed session.
    assert!(!server.input_paused());
    assert!(server.receive(&[]).is_err());
}
