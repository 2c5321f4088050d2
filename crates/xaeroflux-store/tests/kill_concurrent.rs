// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Durability under `kill -9` with concurrent appenders, the fastest way
//! the store is used: this test binary runs itself as a child in which four
//! threads append batches of 1 to 100 events at once (in each round either
//! the durable or the fast mode), each printing a line per acknowledged
//! event. The parent kills the child with SIGKILL at a random moment, then
//! checks that the reopened store holds every acknowledged event, unchanged,
//! verifies, and takes new appends.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xaeroflux_merkle::{from_hex, hash_leaf, to_hex};
use xaeroflux_store::{Durability, LogId, NewEvent, Store, StoreOptions, Topic};

const ROUNDS: usize = 16;
const THREADS: u64 = 4;
/// Set in the child: the store's directory.
const CHILD_DIR: &str = "XF_KILL_CHILD_DIR";
const CHILD_FAST: &str = "XF_KILL_CHILD_FAST";
const CHILD_SEED: &str = "XF_KILL_CHILD_SEED";

/// The child: appends from four threads until it is killed (bounded: it
/// stops by itself after 30 s), printing `topic seq leaf` per event once
/// its batch is acknowledged.
fn child(dir: &str) {
    let fast = std::env::var_os(CHILD_FAST).is_some();
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let store = Store::open(
        std::path::Path::new(dir),
        StoreOptions {
            durability: if fast {
                Durability::Fast
            } else {
                Durability::Durable
            },
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    let stop_at = Instant::now() + Duration::from_secs(30);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, out) = (&store, &out);
            s.spawn(move || {
                let mut rng = xaeroflux_testkit::Rng::new(seed ^ (t + 1));
                let topic = Topic::new(&format!("kill-{t}")).unwrap();
                let mut i = 0u64;
                while Instant::now() < stop_at {
                    let n = 1 + rng.below(100);
                    let batch: Vec<NewEvent> = (0..n)
                        .map(|k| {
                            let len = ((seed >> 3) + i + k) % 200;
                            let body = format!("{t}-{}-{}", i + k, "y".repeat(len as usize));
                            NewEvent::application(&topic, body.into_bytes())
                        })
                        .collect();
                    i += n;
                    let r = store.append_batch(batch).unwrap();
                    let mut lines = String::new();
                    for e in &r.events {
                        lines.push_str(&format!("{t} {} {}\n", e.seq, to_hex(&e.leaf_hash)));
                    }
                    let mut o = out.lock().unwrap();
                    o.write_all(lines.as_bytes()).unwrap();
                    o.flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn sigkill_with_concurrent_appenders_never_loses_an_acknowledged_event() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let mut rng = xaeroflux_testkit::seeded_rng();
    // (thread, seq, leaf) of every event acknowledged in any round.
    let mut acknowledged: Vec<(u64, u64, [u8; 32])> = Vec::new();
    let mut kills = 0;
    // Small pages and segments (fixed at creation) make page seals and
    // segment roll-overs frequent, so kills land in them too.
    Store::open(
        &db,
        StoreOptions {
            page_size: Some(1024),
            segment_pages: Some(16),
            ..StoreOptions::default()
        },
    )
    .unwrap()
    .close()
    .unwrap();
    for round in 0..ROUNDS {
        let fast = round % 2 == 1;
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "sigkill_with_concurrent_appenders_never_loses_an_acknowledged_event",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, &db)
        .env(CHILD_SEED, rng.next_u64().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if fast {
            cmd.env(CHILD_FAST, "1");
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<(u64, u64, [u8; 32])>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // A line cut by the kill, or the harness's own, is no report.
                let mut parts = line.split(' ');
                let (Some(t), Some(seq), Some(leaf), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let (Ok(t), Ok(seq), Some(leaf)) = (t.parse(), seq.parse(), from_hex(leaf)) else {
                    continue;
                };
                let _ = tx.send((t, seq, leaf));
            }
        });
        // Wait for a random number of acknowledgements, then a random moment.
        let target = 1 + rng.below(20_000);
        let what = format!("round {round}");
        let mut reports =
            xaeroflux_testkit::kill_after_reports(&mut child, &rx, target, 5000, &mut rng, &what);
        kills += 1;
        reader.join().unwrap();
        reports.extend(rx.try_iter());
        assert!(
            !reports.is_empty(),
            "round {round}: no acknowledgement before the kill"
        );
        acknowledged.extend(reports);
        let store = Store::open(&db, StoreOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let logs: Vec<LogId> = (0..THREADS)
            .map(|t| store.own_log(&Topic::new(&format!("kill-{t}")).unwrap()))
            .collect();
        let stored: Vec<Vec<[u8; 32]>> = logs
            .iter()
            .map(|log| {
                store
                    .iter_log(log, 0)
                    .unwrap()
                    .map(|e| hash_leaf(e.unwrap().canonical_bytes()))
                    .collect()
            })
            .collect();
        for (t, seq, leaf) in &acknowledged {
            assert_eq!(
                stored[*t as usize].get(*seq as usize),
                Some(leaf),
                "round {round}: thread {t}'s acknowledged seq {seq} missing or changed \
                 (log size {})",
                stored[*t as usize].len()
            );
        }
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        // The reopened store takes appends after what it holds, and proves them.
        let topic = Topic::new("kill-0").unwrap();
        let r = store
            .append(NewEvent::application(&topic, b"after".to_vec()))
            .unwrap();
        assert_eq!(r.seq, stored[0].len() as u64, "round {round}");
        store
            .prove_inclusion(&r.log, r.seq, r.size)
            .unwrap()
            .verify()
            .unwrap();
        acknowledged.push((0, r.seq, r.leaf_hash));
        store.close().unwrap();
    }
    assert_eq!(kills, ROUNDS);
}
