// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Bad bytes on disk: random bytes flipped in, or files truncated, among the
//! segment, index, catalog and identity files. Each damaged copy of a store must give
//! a typed error naming what is corrupt, or answers identical to the
//! undamaged store's: never a panic, a crash, or a silently wrong answer.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use xaeroflux::store::{Store, StoreOptions};
use xaeroflux::{NewEvent, Topic};

const ROUNDS: usize = 120;

fn build(db: &Path) {
    let opts = StoreOptions {
        page_size: Some(1024),
        segment_pages: Some(4),
        ..StoreOptions::default()
    };
    let store = Store::open(db, opts).unwrap();
    for (t, n) in [("alpha", 150u64), ("beta", 64), ("gamma", 1)] {
        let topic = Topic::new(t).unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
            let evs = chunk
                .iter()
                .map(|i| {
                    NewEvent::application(
                        &topic,
                        format!("{t} {i} {}", "p".repeat((*i % 40) as usize)),
                    )
                })
                .collect();
            store.append_batch(evs).unwrap();
        }
        store.checkpoint(&store.own_log(&topic)).unwrap();
    }
    store.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Everything a reader can see of the store.
fn answers(db: &Path) -> Result<String, String> {
    let mut all = String::new();
    for args in [&["verify"][..], &["logs", "--json"][..]] {
        let out = xf(db, args);
        check_exit(&out, args)?;
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    for l in json_lines(&all.lines().skip(2).collect::<Vec<_>>().join("\n")) {
        let log = l["log"].as_str().unwrap().to_string();
        for args in [
            &["dump", "--json", "--log", &log][..],
            &["checkpoint", "--log", &log][..],
        ] {
            let out = xf(db, args);
            check_exit(&out, args)?;
            all.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    for t in ["alpha", "beta", "gamma"] {
        let args = &["cat", "--topic", t][..];
        let out = xf(db, args);
        check_exit(&out, args)?;
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    Ok(all)
}

/// Ok for success; Err(message) for a clean, typed failure; panics on a
/// panic, a signal, or an error that does not say what is wrong.
fn check_exit(out: &std::process::Output, args: &[&str]) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.signal().is_none(),
        "xf {args:?} died of signal {:?}: {err}",
        out.status.signal()
    );
    assert_eq!(out.status.code(), Some(1), "xf {args:?} panicked: {err}");
    let named = [
        "data.mdb",
        ".xfseg",
        "identity.key",
        "catalog.xfcat",
        "index error",
        "index",
    ]
    .iter()
    .any(|n| err.contains(n));
    assert!(
        named,
        "xf {args:?} failed without naming the damaged file: {err}"
    );
    Ok(()).and(Err(err))
}

/// Every log's events, by log id.
fn dumps(db: &Path) -> Vec<String> {
    let logs = json_lines(&xf_ok(db, &["logs", "--json"]));
    let mut out: Vec<String> = logs
        .iter()
        .map(|l| {
            let log = l["log"].as_str().unwrap();
            format!("{log}\n{}", xf_ok(db, &["dump", "--json", "--log", log]))
        })
        .collect();
    out.sort();
    out
}

fn targets(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        db.join("identity.key"),
        db.join("index/data.mdb"),
        db.join("catalog.xfcat"),
    ];
    let mut segs: Vec<PathBuf> = std::fs::read_dir(db.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "the store should span several segments");
    files.extend(segs);
    files
}

#[test]
fn damaged_stores_fail_cleanly_or_answer_correctly() {
    let base = tempfile::tempdir().unwrap();
    let pristine = base.path().join("pristine");
    build(&pristine);
    let want = answers(&pristine).expect("the undamaged store answers");
    let files = targets(&pristine);
    let mut rng = rng();
    let (mut errors, mut same, mut repaired) = (0, 0, 0);
    for round in 0..ROUNDS {
        let db = base.path().join(format!("r{round}"));
        copy_dir(&pristine, &db);
        // Half the rounds hit the segments, the rest the index, the
        // catalog and the identity.
        let which = match rng.below(20) {
            0..=9 => 3 + rng.below(files.len() as u64 - 3) as usize,
            10..=15 => 1,
            16..=17 => 2,
            _ => 0,
        };
        let target = db.join(files[which].strip_prefix(&pristine).unwrap());
        let mut bytes = std::fs::read(&target).unwrap();
        let what = if rng.below(4) == 0 {
            let len = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(len);
            format!("truncated {} to {len}", target.display())
        } else {
            let n = 1 + rng.below(4);
            let mut at = Vec::new();
            for _ in 0..n {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 + rng.below(255) as u8;
                at.push(i);
            }
            format!("flipped bytes {at:?} of {}", target.display())
        };
        std::fs::write(&target, &bytes).unwrap();
        if std::env::var("XF_TEST_TRACE").is_ok() {
            eprintln!("round {round}: {what}");
        }
        match answers(&db) {
            Ok(got) => {
                assert_eq!(
                    got, want,
                    "round {round}: {what}: a wrong answer without an error"
                );
                same += 1;
            }
            Err(_) => {
                errors += 1;
                // Damage confined to the index is repaired from the segments.
                if which == 1 {
                    let out = xf(&db, &["repair"]);
                    assert!(
                        out.status.success(),
                        "round {round}: {what}: repair failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert_eq!(
                        dumps(&db),
                        dumps(&pristine),
                        "round {round}: {what}: repair changed the logs"
                    );
                    repaired += 1;
                }
                // A damaged catalog is rebuilt too (names after the damage
                // are lost, events never), and the store verifies again.
                if which == 2 {
                    let out = xf(&db, &["repair"]);
                    assert!(
                        out.status.success(),
                        "round {round}: {what}: repair failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let v = xf(&db, &["verify"]);
                    assert!(
                        v.status.success(),
                        "round {round}: {what}: verify after repair: {}",
                        String::from_utf8_lossy(&v.stderr)
                    );
                    repaired += 1;
                }
            }
        }
        // A writer opening the damaged store also fails cleanly or works.
        let out = xf(&db, &["append", "--topic", "alpha", "after"]);
        if check_exit(&out, &["append"]).is_ok() {
            let v = xf(&db, &["verify"]);
            let _ = check_exit(&v, &["verify"]);
        }
        std::fs::remove_dir_all(&db).unwrap();
    }
    eprintln!("{errors} damaged copies refused ({repaired} index repairs), {same} unaffected");
    assert!(
        errors > ROUNDS / 4,
        "most damage should be detected ({errors} of {ROUNDS})"
    );
}
