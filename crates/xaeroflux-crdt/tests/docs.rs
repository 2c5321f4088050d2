// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Documents on real stores: concurrent edits on two stores converge after
//! an XSP session over loopback TCP, and a third store synced from one of
//! them gets the same state; snapshots open large documents without
//! replaying and are ignored when damaged; a watch reports each change once.

use std::path::Path;
use std::time::Duration;

use xaeroflux::{Core, Topic};
use xaeroflux_crdt::{CrdtKind, Doc, snapshot};

const WAIT: Duration = Duration::from_secs(30);

fn open(dir: &Path) -> Core {
    Core::builder().open(dir).unwrap()
}

fn sync_pair(a: &Core, b: &Core) {
    xaeroflux_testkit::tcp_pair(
        |c| a.sync_over_tcp(c, &[], WAIT).unwrap(),
        |c| b.sync_over_tcp(c, &[], WAIT).unwrap(),
    );
}

#[test]
fn concurrent_edits_on_two_stores_converge_and_a_third_gets_the_same_state() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, c) = (
        open(dirs[0].path()),
        open(dirs[1].path()),
        open(dirs[2].path()),
    );
    let topic = Topic::new("profile-of-dana").unwrap();
    // A shared start: both see bob follow.
    {
        let mut da = Doc::open(&a, &topic).unwrap();
        da.set("followers").insert("bob").unwrap();
        da.counter("likes").add(10).unwrap();
    }
    sync_pair(&a, &b);
    let mut da = Doc::open(&a, &topic).unwrap();
    let mut db = Doc::open(&b, &topic).unwrap();
    assert_eq!(da.state(), db.state());
    // Concurrent edits: the same keys, counters both ways, a remove racing
    // an add of the same element, concurrent register writes.
    da.map("profile").set("name", "Dana").unwrap();
    db.map("profile").set("name", "Dana B.").unwrap();
    da.map("profile").set("city", "Lyon").unwrap();
    db.map("profile").delete("city").unwrap();
    da.counter("likes").add(3).unwrap();
    db.counter("likes").add(-1).unwrap();
    db.counter("likes").add(5).unwrap();
    da.set("followers").remove("bob").unwrap(); // a saw one add of bob
    db.set("followers").insert("bob").unwrap(); // b adds bob again, concurrently
    db.set("followers").insert("erin").unwrap();
    da.mv_register("status").set("busy").unwrap();
    db.mv_register("status").set("away").unwrap();
    da.register("title").set("first").unwrap();
    db.register("title").set("second").unwrap();
    sync_pair(&a, &b);
    da.refresh().unwrap();
    db.refresh().unwrap();
    assert_eq!(da.state(), db.state());
    let s = da.state();
    assert_eq!(s.counters["likes"].value(), 17);
    // Add wins over the concurrent remove; erin was only added.
    assert!(s.sets["followers"].contains(b"bob"));
    assert!(s.sets["followers"].contains(b"erin"));
    // Both concurrent writes are kept by the multi-value register.
    assert_eq!(s.mv_registers["status"].values().len(), 2);
    // A write that saw both replaces them, everywhere.
    db.mv_register("status").set("back").unwrap();
    // The third store meets only b.
    sync_pair(&b, &c);
    let dc = Doc::open(&c, &topic).unwrap();
    db.refresh().unwrap();
    assert_eq!(dc.state(), db.state());
    assert_eq!(dc.to_json(), db.to_json());
    assert_eq!(
        dc.state().mv_registers["status"].values(),
        vec![&b"back"[..]]
    );
    sync_pair(&a, &c);
    da.refresh().unwrap();
    assert_eq!(da.state(), dc.state());
    let json = dc.to_json();
    assert_eq!(json["likes"], 17);
    assert_eq!(json["followers"], serde_json::json!(["bob", "erin"]));
}

#[test]
fn a_snapshot_opens_a_document_without_replaying_and_a_damaged_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    let topic = Topic::new("counts").unwrap();
    let mut doc = Doc::open(&core, &topic).unwrap();
    for i in 0..200 {
        doc.counter("n").add(1).unwrap();
        doc.map("m")
            .set(format!("k{}", i % 7), format!("{i}"))
            .unwrap();
    }
    doc.save_snapshot().unwrap();
    let want = doc.state().clone();
    let path = snapshot::snapshot_path(&core, &topic);
    assert!(path.exists());
    // More operations after the snapshot are folded in at open.
    doc.counter("n").add(5).unwrap();
    let want_after = doc.state().clone();
    drop(doc);
    let reopened = Doc::open(&core, &topic).unwrap();
    assert_eq!(reopened.state(), &want_after);
    // It read one operation, not 401.
    assert_eq!(reopened.folded(), 1);
    let replayed = Doc::replay(&core, &topic).unwrap();
    assert_eq!(replayed.state(), &want_after);
    assert_eq!(replayed.folded(), 401);
    assert_eq!(
        want.counters["n"].value() + 5,
        want_after.counters["n"].value()
    );
    // Every flipped byte of the snapshot is refused by its checks, and the
    // document replays to the same state.
    let good = std::fs::read(&path).unwrap();
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        assert!(
            snapshot_refused(&path, &bad, &topic),
            "flip at {i} accepted"
        );
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(Doc::open(&core, &topic).unwrap().state(), &want_after);
    }
}

fn snapshot_refused(path: &Path, bytes: &[u8], topic: &Topic) -> bool {
    // Through the public loader's behaviour: a refused snapshot makes the
    // open replay; here the file-level checks are asserted directly.
    xaeroflux_crdt::snapshot::check_file(path, bytes, topic).is_err()
}

#[test]
fn the_state_at_a_past_moment_folds_only_the_operations_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    let topic = Topic::new("hist").unwrap();
    let mut doc = Doc::open(&core, &topic).unwrap();
    doc.counter("n").add(1).unwrap();
    doc.map("m").set("k", "old").unwrap();
    let ts = |seq: u64| {
        core.iter_log(&core.own_log(&topic), seq)
            .next()
            .unwrap()
            .unwrap()
            .timestamp_ms()
    };
    // Wait for the clock to move on, boundedly, so the next ops are later.
    let t1 = ts(1);
    assert!(xaeroflux_testkit::wait_until(WAIT, || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            > t1
    }));
    doc.counter("n").add(10).unwrap();
    doc.map("m").set("k", "new").unwrap();
    assert!(ts(2) > t1);
    let then = Doc::state_at(&core, &topic, t1 + 1).unwrap();
    assert_eq!(then.counters["n"].value(), 1);
    assert_eq!(then.maps["m"].get(b"k"), Some(&b"old"[..]));
    assert_eq!(
        &Doc::state_at(&core, &topic, u64::MAX).unwrap(),
        doc.state()
    );
    assert_eq!(Doc::state_at(&core, &topic, 0).unwrap(), Default::default());
}

#[test]
fn a_watch_reports_each_change_once_after_its_commit_local_or_replicated() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b) = (open(dirs[0].path()), open(dirs[1].path()));
    let topic = Topic::new("room").unwrap();
    let mut da = Doc::open(&a, &topic).unwrap();
    let mut watch = da.watch().unwrap();
    da.counter("people").add(1).unwrap();
    da.counter("people").add(0).unwrap(); // no visible change
    da.map("topic").set("now", "rust").unwrap();
    da.map("topic").set("now", "rust").unwrap(); // same value: no change
    let c1 = watch.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!((c1.name.as_str(), c1.kind), ("people", CrdtKind::Counter));
    let c2 = watch.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!((c2.name.as_str(), c2.kind), ("topic", CrdtKind::Map));
    assert_eq!(
        watch.recv_timeout(Duration::from_millis(300)).unwrap(),
        None
    );
    // A replicated operation is reported like a local one.
    {
        let mut db = Doc::open(&b, &topic).unwrap();
        db.set("here").insert("zoe").unwrap();
    }
    sync_pair(&a, &b);
    let c3 = watch.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!((c3.name.as_str(), c3.kind), ("here", CrdtKind::Set));
    assert!(watch.state().sets["here"].contains(b"zoe"));
    assert_eq!(
        watch.recv_timeout(Duration::from_millis(300)).unwrap(),
        None
    );
}
