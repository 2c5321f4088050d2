// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! A store written by format version 1 (pages without record padding, an
//! index without `log_times`; `fixtures/store-v1`, written by the build
//! before version 2) is read as it is, read-only, and upgraded by a writer:
//! its old pages keep their layout, new pages are of version 2, and reads
//! by time, proofs and `verify` hold throughout.

use std::path::Path;

use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1");
const CHAT_ROOT: &str = "8357781d1b4bd65c073e576ae2d316cbd58d79ef79952e3e58a43b7d2cf80b2d";
const PROFILE_ROOT: &str = "03e41d59b7a37672e97bb1a1adf9f261d2f1806616c474520c97cc8f5fe654c8";
const SEGMENT_LEN: u64 = 16_793_600;
const INDEX_LEN: u64 = 376_832;
const PAGE: usize = 16 * 1024;

/// The fixture, copied and extended back to its files' lengths.
fn old_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(FIXTURE);
    for (file, len) in [
        ("identity.key", None),
        ("segments/00000000.xfseg", Some(SEGMENT_LEN)),
        ("index/data.mdb", Some(INDEX_LEN)),
    ] {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(file), &to).unwrap();
        if let Some(len) = len {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&to)
                .unwrap()
                .set_len(len)
                .unwrap();
        }
    }
    dir
}

fn chat_payload(i: usize) -> Vec<u8> {
    format!("chat message {i} {}", "x".repeat(i * 7 % 301)).into_bytes()
}

fn roots(s: &Store) -> Vec<(String, u64, String)> {
    let mut v: Vec<_> = s
        .logs()
        .unwrap()
        .into_iter()
        .map(|l| {
            // By id: `repair` does not bring topic names back (yet).
            let name = ["chat", "profile"]
                .into_iter()
                .find(|n| Topic::new(n).unwrap().id() == l.log.topic)
                .unwrap();
            (name.to_string(), l.size, hex(&l.root))
        })
        .collect();
    v.sort();
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The format version of every data page in use, from the raw segment.
fn page_versions(dir: &Path) -> Vec<u16> {
    let seg = std::fs::read(dir.join("segments/00000000.xfseg")).unwrap();
    seg.chunks(PAGE)
        .skip(1)
        .take_while(|p| &p[..4] == b"XFPG")
        .map(|p| u16::from_le_bytes([p[4], p[5]]))
        .collect()
}

fn check_chat(s: &Store, n: usize) {
    let chat = Topic::new("chat").unwrap();
    let got: Vec<Vec<u8>> = s
        .iter_topic(&chat)
        .unwrap()
        .map(|e| e.unwrap().payload().to_vec())
        .collect();
    assert_eq!(got.len(), n);
    for (i, p) in got.iter().enumerate().take(200) {
        assert_eq!(p, &chat_payload(i), "event {i}");
    }
    // Reads by time agree with a filtered scan.
    let ts: Vec<u64> = s
        .iter_topic(&chat)
        .unwrap()
        .map(|e| e.unwrap().timestamp_ms())
        .collect();
    let mid = ts[ts.len() / 2];
    let want = ts.iter().filter(|t| **t >= mid).count();
    assert_eq!(
        s.iter_topic_range(&chat.id(), mid, u64::MAX)
            .unwrap()
            .count(),
        want
    );
    assert_eq!(s.iter_topic_last(&chat.id(), 5).unwrap().count(), 5);
}

#[test]
fn a_version_1_store_is_read_as_written_then_upgraded_by_a_writer() {
    let dir = old_store();
    let want = vec![
        ("chat".to_string(), 200, CHAT_ROOT.to_string()),
        ("profile".to_string(), 3, PROFILE_ROOT.to_string()),
    ];
    assert_eq!(page_versions(dir.path()), vec![1; 4]);
    // Read-only: the old index as it is (reads by time scan instead).
    {
        let ro = StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        };
        let s = Store::open(dir.path(), ro).unwrap();
        assert_eq!(roots(&s), want);
        check_chat(&s, 200);
        assert!(s.verify().unwrap().is_ok());
    }
    // A writer upgrades the index and appends: the open v1 page of each
    // log goes on in its own layout, then pages of version 2 follow.
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(roots(&s), want);
    assert!(s.verify().unwrap().is_ok());
    let chat = Topic::new("chat").unwrap();
    let profile = Topic::new("profile").unwrap();
    let log = s.own_log(&chat);
    let old_proof = s.prove_inclusion(&log, 17, 200).unwrap();
    for i in 200..300 {
        s.append(NewEvent::application(&chat, chat_payload(i)))
            .unwrap();
    }
    s.append(NewEvent::application(&profile, b"name=alice4".to_vec()))
        .unwrap();
    check_chat(&s, 300);
    assert_eq!(s.prove_inclusion(&log, 17, 200).unwrap(), old_proof);
    assert!(s.verify().unwrap().is_ok());
    drop(s);
    let versions = page_versions(dir.path());
    assert_eq!(&versions[..4], &[1; 4]);
    assert!(
        versions.len() > 4 && versions[4..].iter().all(|v| *v == 2),
        "{versions:?}"
    );
    // Reopened, and rebuilt from the segments, it reads the same.
    let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
    check_chat(&s, 300);
    let before = roots(&s);
    drop(s);
    let (s, _) = Store::repair(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(roots(&s), before);
    check_chat(&s, 300);
    assert!(s.verify().unwrap().is_ok());
}
