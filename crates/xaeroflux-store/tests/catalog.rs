// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Nothing is only in the index: topic names and the checkpoints received
//! from other authors are kept in the catalog (`catalog.xfcat`) and come
//! back when the index is rebuilt (`Store::repair`), lost, or behind the
//! segments after a power loss.

mod common;

use std::fs;
use std::path::Path;

use common::{fill, open, small_pages};
use xaeroflux_store::{
    CatalogRestore, Durability, ImportPage, LogId, NewEvent, Replication, Store, StoreError,
    StoreOptions, Topic,
};

/// Events `from..to` of `log` in `src`, with the proof to `src`'s latest
/// checkpoint and the topic's name.
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
        topic_name: src.topic_name(&log.topic).unwrap(),
        first_seq: from,
        events,
        note,
        proof: src.prove_consistency(log, to, size).unwrap().path,
    }
}

/// Zeroes the index's first pages (both LMDB meta pages among them).
fn wreck_index(dir: &Path) {
    let data = dir.join("index/data.mdb");
    let mut bytes = fs::read(&data).unwrap();
    bytes[..16384].fill(0);
    fs::write(&data, &bytes).unwrap();
}

/// What a rebuilt index must give back.
#[derive(Debug, PartialEq)]
struct Names {
    chat: Option<String>,
    notes: Option<String>,
    their_checkpoint: Option<String>,
}

fn names(store: &Store, theirs: &LogId) -> Names {
    Names {
        chat: store.topic_name(&Topic::new("chat").unwrap().id()).unwrap(),
        notes: store
            .topic_name(&Topic::new("notes").unwrap().id())
            .unwrap(),
        their_checkpoint: store.checkpoint(theirs).ok().map(|c| c.note),
    }
}

/// `b` holds `a`'s log in "chat" (with `a`'s checkpoint) and its own in
/// "notes"; returns `a`'s log.
fn two_authors(a: &Store, b: &Store) -> LogId {
    let chat = Topic::new("chat").unwrap();
    let theirs = fill(a, &chat, 150);
    b.import(page(a, &theirs, 0, 150)).unwrap();
    fill(b, &Topic::new("notes").unwrap(), 20);
    theirs
}

#[test]
fn repair_brings_back_topic_names_and_other_authors_checkpoints() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = open(da.path());
    let b = open(db.path());
    let theirs = two_authors(&a, &b);
    let before = names(&b, &theirs);
    assert_eq!(before.chat.as_deref(), Some("chat"));
    assert_eq!(before.notes.as_deref(), Some("notes"));
    assert_eq!(
        before.their_checkpoint,
        Some(a.checkpoint(&theirs).unwrap().note)
    );
    b.close().unwrap();

    wreck_index(db.path());
    assert!(Store::open(db.path(), small_pages()).is_err());
    let (b, moved) = Store::repair(db.path(), small_pages()).unwrap();
    assert!(moved.is_some());
    assert_eq!(
        b.catalog_restored(),
        &CatalogRestore {
            topic_names: 2,
            checkpoints: 1,
            set_aside: None,
        }
    );
    assert_eq!(names(&b, &theirs), before);
    let report = b.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.checkpoints, 1);
    assert!(report.catalog_records >= 3);

    // The rebuilt store serves the other author's log with its signature:
    // a third store imports it from there and verifies it against `a`'s key.
    let c = open(dc.path());
    let (head, _) = c.import(page(&b, &theirs, 0, 150)).unwrap();
    assert_eq!(head.root, a.mmr_root(&theirs).unwrap());
    assert_eq!(
        c.topic_name(&theirs.topic).unwrap().as_deref(),
        Some("chat")
    );
    assert_eq!(
        c.checkpoint(&theirs).unwrap().note,
        a.checkpoint(&theirs).unwrap().note
    );

    // Opened again, nothing is missing, so nothing is restored.
    b.close().unwrap();
    let b = open(db.path());
    assert_eq!(b.catalog_restored(), &CatalogRestore::default());
    assert_eq!(names(&b, &theirs), before);
}

#[test]
fn a_lost_index_and_an_index_behind_the_segments_get_them_back_on_open() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path());
    let chat = Topic::new("chat").unwrap();
    let theirs = fill(&a, &chat, 40);
    let b = open(db.path());
    fill(&b, &Topic::new("notes").unwrap(), 5);
    b.close().unwrap();
    // The index as it was before the import, as a power loss would leave
    // it (the index is synced at most once a second; the segments and the
    // catalog at every durable commit).
    let old_index = tempfile::tempdir().unwrap();
    for f in ["data.mdb", "lock.mdb"] {
        fs::copy(db.path().join("index").join(f), old_index.path().join(f)).unwrap();
    }
    let b = open(db.path());
    b.import(page(&a, &theirs, 0, 40)).unwrap();
    let before = names(&b, &theirs);
    assert!(before.their_checkpoint.is_some());
    b.close().unwrap();
    for f in ["data.mdb", "lock.mdb"] {
        fs::copy(old_index.path().join(f), db.path().join("index").join(f)).unwrap();
    }
    let b = open(db.path());
    assert_eq!(b.recovered_events(), 40);
    assert_eq!(
        b.catalog_restored(),
        &CatalogRestore {
            topic_names: 1,
            checkpoints: 1,
            set_aside: None,
        }
    );
    assert_eq!(names(&b, &theirs), before);
    assert!(b.verify().unwrap().is_ok());
    b.close().unwrap();

    // No index at all: rebuilt from the segments, names from the catalog.
    fs::remove_dir_all(db.path().join("index")).unwrap();
    let b = open(db.path());
    assert_eq!(b.recovered_events(), 45);
    assert_eq!(b.catalog_restored().topic_names, 2);
    assert_eq!(names(&b, &theirs), before);
    assert!(b.verify().unwrap().is_ok());
}

#[test]
fn a_torn_tail_is_cut_off_and_a_flipped_byte_is_corruption_that_repair_salvages() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path());
    let b = open(db.path());
    let theirs = two_authors(&a, &b);
    let before = names(&b, &theirs);
    b.close().unwrap();
    let cat = db.path().join("catalog.xfcat");
    let whole = fs::read(&cat).unwrap();

    // A record cut short by a crash: the open drops it, writes the file
    // again from the index (the same records), and appends after them.
    let mut torn = whole.clone();
    torn.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
    fs::write(&cat, &torn).unwrap();
    let b = open(db.path());
    let rewritten = fs::read(&cat).unwrap();
    assert_eq!(rewritten.len(), whole.len());
    assert_eq!(rewritten[..32], whole[..32]);
    fill(&b, &Topic::new("later").unwrap(), 3);
    assert!(b.verify().unwrap().is_ok());
    b.close().unwrap();
    let grown = fs::read(&cat).unwrap();
    assert!(grown.len() > whole.len() && grown.starts_with(&rewritten));

    // A flipped byte inside the second record (the header is 32 bytes):
    // verify names the file and the record's offset, a writer's open
    // refuses, and repair keeps the whole records before it.
    let first_len = u32::from_le_bytes(grown[32..36].try_into().unwrap()) as usize;
    let second = 32 + 8 + first_len;
    let mut bad = grown.clone();
    bad[second + 12] ^= 0x01;
    fs::write(&cat, &bad).unwrap();
    let ro = Store::open(
        db.path(),
        StoreOptions {
            read_only: true,
            ..small_pages()
        },
    )
    .unwrap();
    let report = ro.verify().unwrap();
    let problem = report.problems.first().expect("verify finds the damage");
    match problem {
        StoreError::Corrupt(c) => {
            assert!(c.file.ends_with("catalog.xfcat"), "{c}");
            assert_eq!(c.offset, second as u64);
        }
        e => panic!("not a corruption: {e}"),
    }
    drop(ro);
    match Store::open(db.path(), small_pages()) {
        Err(StoreError::Corrupt(c)) => assert!(c.file.ends_with("catalog.xfcat"), "{c}"),
        Err(e) => panic!("not a corruption: {e}"),
        Ok(_) => panic!("a writer opened a damaged catalog"),
    }
    let (b, _) = Store::repair(db.path(), small_pages()).unwrap();
    let restored = b.catalog_restored().clone();
    let aside = restored.set_aside.expect("the damaged catalog is kept");
    assert_eq!(fs::read(&aside).unwrap(), bad);
    assert_eq!(restored.topic_names, 1, "only the record before the damage");
    // The first record was the first name written: "chat", from the import.
    assert_eq!(names(&b, &theirs).chat, before.chat);
    let report = b.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn a_store_without_a_catalog_gets_one_from_its_index() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open(da.path());
    let b = open(db.path());
    let theirs = two_authors(&a, &b);
    let before = names(&b, &theirs);
    b.close().unwrap();
    // As a store written before catalogs existed.
    fs::remove_file(db.path().join("catalog.xfcat")).unwrap();
    let b = open(db.path());
    assert_eq!(b.catalog_restored(), &CatalogRestore::default());
    b.close().unwrap();
    wreck_index(db.path());
    let (b, _) = Store::repair(db.path(), small_pages()).unwrap();
    assert_eq!(b.catalog_restored().checkpoints, 1);
    assert_eq!(names(&b, &theirs), before);
}

#[test]
fn the_catalog_is_compacted_and_keeps_the_newest_checkpoint() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fast = StoreOptions {
        durability: Durability::Fast,
        ..small_pages()
    };
    let a = Store::open(da.path(), fast.clone()).unwrap();
    let b = Store::open(db.path(), fast.clone()).unwrap();
    let chat = Topic::new("chat").unwrap();
    // Each import of one event keeps a newer checkpoint: one record of a
    // few hundred bytes each, more in all than the catalog may grow to.
    let log = a.own_log(&chat);
    let mut largest = 0;
    for i in 0..6000u64 {
        a.append(NewEvent::application(&chat, i.to_le_bytes().to_vec()))
            .unwrap();
        b.import(page(&a, &log, i, i + 1)).unwrap();
        let len = fs::metadata(db.path().join("catalog.xfcat")).unwrap().len();
        largest = largest.max(len);
    }
    assert!(
        largest <= (1 << 20) + 4096,
        "catalog grew to {largest} bytes"
    );
    let newest = a.checkpoint(&log).unwrap().note;
    b.close().unwrap();
    wreck_index(db.path());
    let (b, _) = Store::repair(db.path(), fast).unwrap();
    assert_eq!(b.log_size(&log).unwrap(), 6000);
    assert_eq!(b.checkpoint(&log).unwrap().note, newest);
}
