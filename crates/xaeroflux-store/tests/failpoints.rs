// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Faults inside a store, on purpose: the segment write (and the creation
//! of a segment), the data sync and the index commit fail with `EIO` or
//! `ENOSPC` at chosen moments. Each failure must give a typed error that
//! names the OS cause and the file, lose no acknowledged event, leave the
//! open store serving reads, and leave a directory that reopens, verifies
//! and takes appends again.

use std::path::Path;
use std::time::Duration;

use xaeroflux_store::failpoints::{Failpoints, Fault, Point};
use xaeroflux_store::{
    Durability, LogId, NewEvent, Store, StoreError, StoreOptions, Topic, VerifyReport,
};

const POINTS: [Point; 4] = [
    Point::SegmentWrite,
    Point::SegmentCreate,
    Point::Fsync,
    Point::IndexCommit,
];
const ERRNOS: [i32; 2] = [libc::EIO, libc::ENOSPC];

fn options(durability: Durability, failpoints: Option<Failpoints>) -> StoreOptions {
    StoreOptions {
        // Small pages and segments: pages fill and segments roll over
        // within a few batches, so the points are reached in every state.
        page_size: Some(1024),
        segment_pages: Some(4),
        durability,
        failpoints,
        ..StoreOptions::default()
    }
}

fn batch(from: u64, n: u64) -> Vec<NewEvent> {
    let topic = Topic::new("faults").unwrap();
    (from..from + n)
        .map(|i| {
            NewEvent::application(
                &topic,
                format!("event {i:06} {}", "x".repeat(60)).into_bytes(),
            )
        })
        .collect()
}

/// Appends batches until one fails (bounded); returns the events
/// acknowledged (seq and payload) and the error. With `idle_syncs`, every
/// tenth batch is followed by a wait (bounded) for the fast mode's idle
/// sync to reach the `Fsync` point.
fn append_until_failure(
    store: &Store,
    acked: &mut Vec<(u64, Vec<u8>)>,
    idle_syncs: Option<&Failpoints>,
) -> (LogId, StoreError) {
    let log = acked_log(store);
    for round in 0..400u64 {
        let events = batch(acked.len() as u64, 7);
        let payloads: Vec<Vec<u8>> = events.iter().map(|e| e.payload().to_vec()).collect();
        match store.append_batch(events) {
            Ok(r) => {
                for (e, p) in r.events.iter().zip(payloads) {
                    assert_eq!(e.log, log);
                    acked.push((e.seq, p));
                }
            }
            Err(e) => return (log, e),
        }
        if let Some(fp) = idle_syncs.filter(|_| round % 10 == 9) {
            let before = fp.hits(Point::Fsync);
            xaeroflux_testkit::wait_until(Duration::from_secs(5), || {
                fp.hits(Point::Fsync) > before
            });
        }
        assert!(round < 399, "the armed point never failed");
    }
    unreachable!()
}

/// The store's own log in the test's topic.
fn acked_log(store: &Store) -> LogId {
    store.own_log(&Topic::new("faults").unwrap())
}

/// Every acknowledged event is in `store`, with its payload.
fn holds_all(store: &Store, log: &LogId, acked: &[(u64, Vec<u8>)]) {
    let held: Vec<(u64, Vec<u8>)> = store
        .iter_log(log, 0)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.seq(), e.payload().to_vec())
        })
        .take(acked.len())
        .collect();
    assert_eq!(held.len(), acked.len(), "acknowledged events are missing");
    assert!(held == acked, "an acknowledged event changed");
    let size = store.log_size(log).unwrap();
    assert!(size >= acked.len() as u64);
    // Its proofs still hold at the acknowledged size.
    let Some(last) = (acked.len() as u64).checked_sub(1) else {
        return;
    };
    store
        .prove_inclusion(log, last, acked.len() as u64)
        .unwrap()
        .verify()
        .unwrap();
}

fn assert_names_os_cause(err: &StoreError, errno: i32, dir: &Path, what: &str) {
    let os = err
        .os_error()
        .unwrap_or_else(|| panic!("{what}: no OS error behind {err:?}"));
    assert_eq!(os.raw_os_error(), Some(errno), "{what}: {err}");
    let text = err.to_string();
    let cause = std::io::Error::from_raw_os_error(errno).to_string();
    let cause = cause.split(" (os error").next().unwrap();
    assert!(
        text.contains(cause),
        "{what}: {text:?} does not say {cause:?}"
    );
    let path = err.os_error_path().expect("the error names a file");
    assert!(
        path.starts_with(dir),
        "{what}: {} is not in the store",
        path.display()
    );
    assert!(text.contains(&path.display().to_string()), "{what}: {text}");
}

fn reopen_and_check(dir: &Path, log: &LogId, acked: &[(u64, Vec<u8>)], what: &str) {
    let store = Store::open(dir, options(Durability::Durable, None))
        .unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    let report: VerifyReport = store
        .verify()
        .unwrap_or_else(|e| panic!("{what}: verify: {e}"));
    assert!(report.events >= acked.len() as u64, "{what}: {report:?}");
    holds_all(&store, log, acked);
    // A reopened store takes appends again, after what it holds.
    let size = store.log_size(log).unwrap();
    let r = store.append_batch(batch(size, 3)).unwrap();
    assert_eq!(r.events[0].seq, size, "{what}");
    store.verify().unwrap();
    store.close().unwrap();
}

/// One fault: `point` fails with `errno` after passing `after` times.
fn fault(point: Point, errno: i32, after: u64, durability: Durability) {
    let what = format!("{point:?} errno {errno} after {after} ({durability:?})");
    let dir = tempfile::tempdir().unwrap();
    let fp = Failpoints::new();
    let store = Store::open(dir.path(), options(durability, Some(fp.clone()))).unwrap();
    let mut acked = Vec::new();
    for i in 0..5 {
        let r = store.append_batch(batch(i * 7, 7)).unwrap();
        acked.extend(
            r.events
                .iter()
                .zip(batch(i * 7, 7))
                .map(|(e, n)| (e.seq, n.payload().to_vec())),
        );
    }
    // Appends are answered before their index commit; a read waits for
    // the last one, so the fault cannot land in it.
    assert_eq!(
        store.log_size(&acked_log(&store)).unwrap(),
        acked.len() as u64
    );
    fp.arm(point, Fault::now(errno).after(after));
    // In the fast mode a sync comes once the writer idles (or once a
    // second): the appends leave it a moment now and then.
    let idle = (durability == Durability::Fast && point == Point::Fsync).then_some(&fp);
    let (log, err) = append_until_failure(&store, &mut acked, idle);
    assert!(fp.failures(point) >= 1, "{what}: {err}");
    assert_names_os_cause(&err, errno, dir.path(), &what);
    // The writer has stopped: later appends say why, with the same cause.
    fp.disarm(point);
    let again = store.append_batch(batch(0, 1)).unwrap_err();
    assert!(again.is_terminal(), "{what}: {again}");
    assert_eq!(again.os_error().and_then(|e| e.raw_os_error()), Some(errno));
    // Reads still serve everything acknowledged, with proofs. An append is
    // answered once its pages are written (and synced), before its index
    // commit: when that commit is what fails, the store stops with the
    // last acknowledged batch durable but not yet indexed, and it is read
    // again after reopening (recovery replays it from the segments).
    if point == Point::IndexCommit {
        let unindexed = acked.len().saturating_sub(7);
        assert_eq!(store.log_size(&log).unwrap(), unindexed as u64, "{what}");
        holds_all(&store, &log, &acked[..unindexed]);
    } else {
        holds_all(&store, &log, &acked);
    }
    let _ = store.close();
    reopen_and_check(dir.path(), &log, &acked, &what);
}

#[test]
fn every_point_fails_typed_and_loses_nothing_durable() {
    for point in POINTS {
        for errno in ERRNOS {
            for after in [0, 1, 4, 11] {
                fault(point, errno, after, Durability::Durable);
            }
        }
    }
}

#[test]
fn every_point_fails_typed_and_loses_nothing_fast() {
    // In the fast mode an append is acknowledged once written (its index
    // commit follows);
    // a failed sync afterwards must still leave those events readable and
    // the store reopening to all of them (the process did not crash).
    for point in POINTS {
        for errno in ERRNOS {
            for after in [0, 3] {
                fault(point, errno, after, Durability::Fast);
            }
        }
    }
}

/// A failure when the next segment file is created: nothing of it is
/// left behind, and the segments before it are whole.
#[test]
fn a_segment_that_cannot_be_created() {
    for errno in ERRNOS {
        let dir = tempfile::tempdir().unwrap();
        let fp = Failpoints::new();
        let store =
            Store::open(dir.path(), options(Durability::Durable, Some(fp.clone()))).unwrap();
        let mut acked = Vec::new();
        fp.arm(Point::SegmentCreate, Fault::now(errno).after(1));
        let (log, err) = append_until_failure(&store, &mut acked, None);
        assert_eq!(fp.failures(Point::SegmentCreate), 1);
        let files: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_names_os_cause(&err, errno, dir.path(), "segment creation");
        holds_all(&store, &log, &acked);
        let _ = store.close();
        reopen_and_check(dir.path(), &log, &acked, "segment creation");
    }
}

#[test]
fn a_point_that_fails_once_is_counted_and_disarms_itself() {
    let fp = Failpoints::new();
    fp.arm(Point::Fsync, Fault::now(libc::EIO).after(2).times(1));
    let r: Vec<bool> = (0..5).map(|_| fp.check(Point::Fsync).is_ok()).collect();
    assert_eq!(r, [true, true, false, true, true]);
    assert_eq!((fp.hits(Point::Fsync), fp.failures(Point::Fsync)), (5, 1));
    assert_eq!(fp.hits(Point::IndexCommit), 0);
}
