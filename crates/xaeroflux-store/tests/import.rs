// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Importing another author's verified pages: what verifies is appended
//! (and seen by subscribers); anything else is refused and changes nothing.

mod common;

use std::time::Duration;

use common::{fill, open};
use xaeroflux_store::merkle::{Checkpoint, sign_checkpoint};
use xaeroflux_store::{Filter, ImportPage, LogId, Replication, Store, StoreError, Topic};

/// Events `from..to` of `log` in `src`, with the proof to `src`'s checkpoint.
fn page(src: &Store, log: &LogId, from: u64, to: u64) -> ImportPage {
    let note = src.checkpoint(log).unwrap().note;
    let size = src.log_size(log).unwrap();
    let events = src
        .iter_log(log, from)
        .unwrap()
        .take((to - from) as usize)
        .map(|e| e.unwrap().canonical_bytes().to_vec())
        .collect();
    ImportPage {
        log: *log,
        topic_name: Some("t".into()),
        first_seq: from,
        events,
        note,
        proof: src.prove_consistency(log, to, size).unwrap().path,
    }
}

/// Everything observable about a log in `dst`.
fn state(dst: &Store, log: &LogId) -> (u64, Option<[u8; 32]>, Option<String>, u64) {
    let size = dst.log_size(log).unwrap();
    let root = (size > 0).then(|| dst.mmr_root(log).unwrap());
    let cp = dst.checkpoint(log).ok().map(|c| c.note);
    (size, root, cp, dst.stat().unwrap().events)
}

#[test]
fn verified_pages_are_imported_page_by_page() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    let t = Topic::new("t").unwrap();
    let log = fill(&a, &t, 300);
    let mut sub = b.subscribe(Filter::topic(&t), 0).unwrap();
    let mut from = 0;
    for to in [1, 64, 65, 200, 300] {
        let (head, _) = b.import(page(&a, &log, from, to)).unwrap();
        assert_eq!(head.size, to);
        assert_eq!(head.root, a.root_at(&log, to).unwrap());
        from = to;
    }
    assert_eq!(b.mmr_root(&log).unwrap(), a.mmr_root(&log).unwrap());
    assert_eq!(
        b.checkpoint(&log).unwrap().note,
        a.checkpoint(&log).unwrap().note
    );
    assert_eq!(common::events(&b, &log), common::events(&a, &log));
    assert_eq!(b.topic_name(&t.id()).unwrap().as_deref(), Some("t"));
    for seq in 0..300 {
        let ev = sub.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!((ev.log, ev.seq), (log, seq));
    }
    assert!(b.verify().unwrap().is_ok());
    // And it survives a reopen.
    b.close().unwrap();
    drop(sub);
    let b = open(db.path());
    assert_eq!(b.mmr_root(&log).unwrap(), a.mmr_root(&log).unwrap());
}

#[test]
fn anything_that_does_not_verify_is_refused_and_changes_nothing() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    let t = Topic::new("t").unwrap();
    let log = fill(&a, &t, 100);
    b.import(page(&a, &log, 0, 40)).unwrap();
    let before = state(&b, &log);
    let good = page(&a, &log, 40, 80);

    let mut cases: Vec<(&str, ImportPage)> = Vec::new();
    let mut p = good.clone();
    let last = p.events[3].len() - 1;
    p.events[3][last] ^= 1;
    cases.push(("altered payload", p));
    let mut p = good.clone();
    p.events.swap(5, 6);
    cases.push(("reordered events", p));
    let mut p = good.clone();
    p.events.remove(7);
    cases.push(("missing event", p));
    let mut p = good.clone();
    p.proof[0][0] ^= 1;
    cases.push(("wrong proof", p));
    let mut p = good.clone();
    p.proof.pop();
    cases.push(("truncated proof", p));
    let mut p = good.clone();
    p.first_seq = 39;
    cases.push(("wrong start", p));
    let mut p = page(&a, &log, 40, 100);
    p.events.truncate(40);
    cases.push(("proof to a size the page does not reach", p));
    // The checkpoint signed by another key (b's) for a's log.
    let mut p = good.clone();
    let cp = Checkpoint {
        origin: log.origin(),
        size: 100,
        root: a.mmr_root(&log).unwrap(),
    };
    let other = tempfile::tempdir().unwrap();
    let c = open(other.path());
    let forged_key = {
        // b's identity signs; only a's key may.
        let bytes = std::fs::read(db.path().join("identity.key")).unwrap();
        let secret: [u8; 32] = bytes[8..40].try_into().unwrap();
        ed25519_dalek::SigningKey::from_bytes(&secret)
    };
    p.note = sign_checkpoint(&cp, &forged_key).note;
    cases.push(("checkpoint signed by another key", p));

    for (what, p) in cases {
        let r = b.import(p);
        assert!(matches!(r, Err(StoreError::Rejected(_))), "{what}: {r:?}");
        assert_eq!(state(&b, &log), before, "{what} changed the store");
    }
    // The store's own log is never imported, even from a valid page.
    let own = fill(&c, &t, 3);
    let own_page = page(&c, &own, 0, 3);
    assert!(matches!(c.import(own_page), Err(StoreError::Rejected(_))));
    b.import(good).unwrap();
    assert_eq!(b.log_size(&log).unwrap(), 80);
    assert!(b.verify().unwrap().is_ok());

    // A page overlapping what is held (a concurrent session got there
    // first) adds only the rest, which must extend the held tree to the
    // signed root; what the page says of the held part is not used.
    assert_eq!(b.import(page(&a, &log, 60, 90)).unwrap().1, 10);
    assert_eq!(b.import(page(&a, &log, 70, 85)).unwrap().1, 0);
    let mut p = page(&a, &log, 85, 100);
    let last = p.events[2].len() - 1;
    p.events[2][last] ^= 1;
    assert_eq!(b.import(p).unwrap().1, 10);
    assert_eq!(b.mmr_root(&log).unwrap(), a.mmr_root(&log).unwrap());
    let mut p = page(&a, &log, 0, 100);
    p.first_seq = 101;
    assert!(matches!(b.import(p), Err(StoreError::Rejected(_))), "a gap");
    assert!(b.verify().unwrap().is_ok());
}
