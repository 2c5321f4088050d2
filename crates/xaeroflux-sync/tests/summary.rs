// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! `SUMMARY`: a topic with many logs is summed up in buckets, and `PEAKS`
//! lists only the logs of buckets that differ. Two stores that differ in
//! one log of sixty exchange a fraction of the full lists; every mix of
//! peers (both summing up, one predating it, one with few logs) still
//! converges to the same logs.

use std::time::Duration;

use xaeroflux_sync::{MemStore, Outcome, SessionConfig, driver, pipe};
use xaeroflux_types::Topic;

/// One session between `a` and `b` over an in-memory pipe.
fn session(a: &MemStore, ca: SessionConfig, b: &MemStore, cb: SessionConfig) -> (Outcome, Outcome) {
    let ((ar, aw), (br, bw)) = pipe();
    let t = Duration::from_secs(30);
    std::thread::scope(|s| {
        let h = s.spawn(|| driver::run(a, ca, ar, aw, t));
        let ob = driver::run(b, cb, br, bw, t).unwrap();
        (h.join().unwrap().unwrap(), ob)
    })
}

fn on(summaries: bool) -> SessionConfig {
    SessionConfig {
        summaries,
        ..SessionConfig::default()
    }
}

/// `n` authors with one event each in "chat", all synced into `a` and `b`.
fn shared_logs(n: u64) -> (MemStore, MemStore, Vec<MemStore>) {
    let chat = Topic::new("chat").unwrap();
    let (a, b) = (MemStore::with_seed(1000), MemStore::with_seed(1001));
    let authors: Vec<MemStore> = (0..n).map(MemStore::with_seed).collect();
    for s in &authors {
        s.append(&chat, b"hello");
        session(s, on(true), &a, on(true));
        session(s, on(true), &b, on(true));
    }
    assert_eq!(a.heads(), b.heads());
    (a, b, authors)
}

#[test]
fn one_new_log_of_sixty_costs_a_fraction_of_the_full_lists() {
    let chat = Topic::new("chat").unwrap();
    let mut bytes = Vec::new();
    for summaries in [false, true] {
        let (a, b, authors) = shared_logs(60);
        authors[7].append(&chat, b"news");
        session(&authors[7], on(true), &a, on(true));
        let (oa, ob) = session(&a, on(summaries), &b, on(summaries));
        assert_eq!(ob.events_in, 1, "B pulled the one new event");
        assert_eq!(a.heads(), b.heads());
        bytes.push(oa.bytes_in + oa.bytes_out);
        let _ = ob;
    }
    eprintln!(
        "one new event among 60 logs: {} bytes with full PEAKS, {} with SUMMARY ({:.2}x)",
        bytes[0],
        bytes[1],
        bytes[1] as f64 / bytes[0] as f64
    );
    assert!(bytes[1] * 4 < bytes[0], "{bytes:?}");
}

#[test]
fn every_mix_of_peers_converges() {
    let chat = Topic::new("chat").unwrap();
    // (a sums up, b sums up, logs only a holds, logs only b holds)
    for (sa, sb, only_a, only_b) in [
        (true, true, 3, 2),
        (true, false, 3, 2),
        (false, true, 0, 5),
        (true, true, 40, 0),
        (true, true, 0, 40),
        (true, true, 1, 1),
    ] {
        let (a, b, authors) = shared_logs(20);
        // Newer heads of a few shared logs on one side or the other.
        authors[3].append(&chat, b"newer");
        session(&authors[3], on(true), &a, on(true));
        authors[4].append(&chat, b"newer");
        session(&authors[4], on(true), &b, on(true));
        for i in 0..only_a {
            let s = MemStore::with_seed(5000 + i);
            s.append(&chat, b"a only");
            session(&s, on(true), &a, on(true));
        }
        for i in 0..only_b {
            let s = MemStore::with_seed(7000 + i);
            s.append(&chat, b"b only");
            session(&s, on(true), &b, on(true));
        }
        assert_ne!(a.heads(), b.heads());
        let (oa, ob) = session(&a, on(sa), &b, on(sb));
        assert_eq!(
            a.heads(),
            b.heads(),
            "summaries {sa}/{sb}, {only_a}/{only_b} logs alone: {oa:?} {ob:?}"
        );
        assert_eq!(oa.events_in, 1 + only_b, "{sa}/{sb}");
        assert_eq!(ob.events_in, 1 + only_a, "{sa}/{sb}");
    }
}
