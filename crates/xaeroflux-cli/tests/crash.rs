// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Durability under `kill -9`: a child `xf append --lines` reports each
//! event's receipt once it is durable (or, in the fast-mode rounds,
//! written); the test kills it with SIGKILL at
//! random moments, then checks that the reopened store holds every reported
//! event, verifies, and takes new appends.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

use common::*;
use xaeroflux::store::{Store, StoreOptions};
use xaeroflux::{LogId, NewEvent, Topic};
use xaeroflux_merkle::{from_hex, hash_leaf};

const ROUNDS: usize = 24;

// Long on purpose: the rounds share one store and the list of
// acknowledged events, and each round checks what all before it left.
#[test]
fn sigkill_never_loses_an_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let mut rng = rng();
    let mut acknowledged: Vec<(LogId, u64, [u8; 32])> = Vec::new();
    let mut kills = 0;
    for round in 0..ROUNDS {
        // Small pages in some rounds (set at creation, round 0) make page
        // seals and segment roll-overs frequent; the topic alternates.
        if round == 0 {
            let s = Store::open(
                &db,
                StoreOptions {
                    page_size: Some(1024),
                    segment_pages: Some(4),
                    ..Default::default()
                },
            )
            .unwrap();
            s.close().unwrap();
        }
        let topic = if round % 3 == 0 { "crash-b" } else { "crash-a" };
        // Every fourth round runs in the fast mode: a process kill must not
        // lose its acknowledged events either (they are in the page cache).
        let extra: &[&str] = if round % 4 == 3 { &["--fast"] } else { &[] };
        let mut child = spawn_lines_with(&db, topic, extra);
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Feed lines until the pipe breaks (bounded in count).
        let seed = rng.next_u64();
        let feeder = std::thread::spawn(move || {
            for i in 0..200_000u64 {
                let len = (seed.wrapping_add(i * 7919) % 180) as usize;
                let line = format!("r{round}-{i}-{}", "x".repeat(len));
                if writeln!(stdin, "{line}").is_err() {
                    break;
                }
            }
        });
        // Read receipts on another thread so the kill can land at any moment.
        let (tx, rx) = mpsc::channel::<serde_json::Value>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // A receipt line cut by the kill is not a report.
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let target = 1 + rng.below(600);
        // Then a random extra delay so the kill hits any phase of a commit.
        let what = format!("round {round}");
        let mut reports: Vec<serde_json::Value> =
            xaeroflux_testkit::kill_after_reports(&mut child, &rx, target, 3000, &mut rng, &what);
        kills += 1;
        reader.join().unwrap();
        feeder.join().unwrap();
        // Receipts the child printed before it died count as acknowledged too.
        reports.extend(rx.try_iter());
        assert!(
            !reports.is_empty(),
            "round {round}: no receipt before the kill"
        );
        let store = Store::open(&db, StoreOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let log = store.own_log(&Topic::new(topic).unwrap());
        let size = store.log_size(&log).unwrap();
        for v in &reports {
            let seq = v["seq"].as_u64().unwrap();
            let leaf = from_hex(v["leaf_hash"].as_str().unwrap()).unwrap();
            assert_eq!(v["log"].as_str().unwrap(), log.to_string());
            acknowledged.push((log, seq, leaf));
            assert!(
                seq < size,
                "round {round}: acknowledged seq {seq} missing (log size {size})"
            );
        }
        // Every acknowledged event of every round so far is present, unchanged.
        let mut leaves: std::collections::HashMap<LogId, Vec<[u8; 32]>> = Default::default();
        for (log, seq, leaf) in &acknowledged {
            let stored = leaves.entry(*log).or_insert_with(|| {
                store
                    .iter_log(log, 0)
                    .unwrap()
                    .map(|e| hash_leaf(e.unwrap().canonical_bytes()))
                    .collect()
            });
            assert_eq!(
                stored.get(*seq as usize),
                Some(leaf),
                "round {round}: seq {seq} missing or changed"
            );
        }
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        // The reopened store takes new appends and proves them.
        let r = store
            .append(NewEvent::application(
                &Topic::new(topic).unwrap(),
                b"after".to_vec(),
            ))
            .unwrap();
        assert_eq!(r.seq, size);
        store
            .prove_inclusion(&r.log, r.seq, r.size)
            .unwrap()
            .verify()
            .unwrap();
        acknowledged.push((r.log, r.seq, r.leaf_hash));
        store.close().unwrap();
    }
    assert!(kills >= 20, "only {kills} kills");
}
