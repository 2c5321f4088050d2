// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! `xf doc` and `xf cat --since/--until/--last` as a user runs them.

mod common;

use common::*;

fn get(db: &std::path::Path, topic: &str) -> serde_json::Value {
    let out = xf_ok(db, &["doc", "get", "--topic", topic, "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn doc_commands_edit_a_document_and_get_prints_it_as_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    xf_ok(db, &["init"]);
    let r = json_lines(&xf_ok(
        db,
        &["doc", "set", "--topic", "t", "profile", "name", "Alice"],
    ));
    assert_eq!(r[0]["seq"], 0);
    xf_ok(
        db,
        &["doc", "set", "--topic", "t", "profile", "city", "Oslo"],
    );
    xf_ok(db, &["doc", "del", "--topic", "t", "profile", "city"]);
    xf_ok(db, &["doc", "add", "--topic", "t", "likes", "5"]);
    xf_ok(db, &["doc", "add", "--topic", "t", "likes", "-1"]);
    xf_ok(db, &["doc", "insert", "--topic", "t", "followers", "zed"]);
    xf_ok(db, &["doc", "insert", "--topic", "t", "followers", "bob"]);
    xf_ok(db, &["doc", "insert", "--topic", "t", "followers", "amy"]);
    xf_ok(db, &["doc", "remove", "--topic", "t", "followers", "zed"]);
    // Removing what is not there appends nothing.
    assert_eq!(
        xf_ok(
            db,
            &["doc", "remove", "--topic", "t", "followers", "nobody"]
        ),
        ""
    );
    xf_ok(db, &["doc", "put", "--topic", "t", "title", "hello"]);
    assert_eq!(
        get(db, "t"),
        serde_json::json!({
            "profile": {"name": "Alice"},
            "likes": 4,
            "followers": ["amy", "bob"],
            "title": "hello",
        })
    );
    let text = xf_ok(db, &["doc", "get", "--topic", "t"]);
    assert!(text.contains("likes: 4"), "{text}");
    // A document is a topic like any other: 10 operations, verified.
    let logs = xf_ok(db, &["logs", "--json"]);
    assert!(logs.contains("\"size\":10"), "{logs}");
    xf_ok(db, &["verify"]);
    // As it was before any operation, and now.
    let before = xf_ok(db, &["doc", "get", "--topic", "t", "--json", "--at", "0"]);
    assert_eq!(before.trim(), "{}");
    let later = xf_ok(
        db,
        &[
            "doc",
            "get",
            "--topic",
            "t",
            "--json",
            "--at",
            "2999-01-01T00:00:00Z",
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(later.trim()).unwrap(),
        get(db, "t")
    );
    // An empty document is an empty object.
    assert_eq!(get(db, "nothing-here"), serde_json::json!({}));
}

#[test]
fn two_stores_edit_one_document_concurrently_and_converge_after_xf_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for db in [&a, &b, &c] {
        xf_ok(db, &["init"]);
    }
    // `xf serve` holds the store: each sync serves it for one session.
    let sync = |from: &std::path::Path, to: &std::path::Path| {
        let (mut server, _lines, addr) = spawn_serve(from);
        xf_ok(to, &["sync", "--tcp", &addr]);
        let _ = server.kill();
        let _ = server.wait();
    };
    xf_ok(&a, &["doc", "insert", "--topic", "d", "set", "x"]);
    sync(&a, &b);
    // Concurrent: a removes x, b adds x again; both set the same key and
    // add to the counter.
    xf_ok(&a, &["doc", "remove", "--topic", "d", "set", "x"]);
    xf_ok(&b, &["doc", "insert", "--topic", "d", "set", "x"]);
    xf_ok(&a, &["doc", "set", "--topic", "d", "m", "k", "from a"]);
    xf_ok(&b, &["doc", "set", "--topic", "d", "m", "k", "from b"]);
    xf_ok(&a, &["doc", "add", "--topic", "d", "n", "2"]);
    xf_ok(&b, &["doc", "add", "--topic", "d", "n", "-7"]);
    sync(&a, &b);
    let (sa, sb) = (get(&a, "d"), get(&b, "d"));
    assert_eq!(sa, sb);
    assert_eq!(sa["n"], -5);
    assert_eq!(sa["set"], serde_json::json!(["x"]));
    // A third store synced from a gets the same state.
    sync(&a, &c);
    assert_eq!(get(&c, "d"), sa);
}

#[test]
fn cat_reads_a_window_by_time_and_the_last_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    xf_ok(db, &["init"]);
    for i in 0..30 {
        xf_ok(db, &["append", "--topic", "t", &format!("e{i}")]);
    }
    let all: Vec<serde_json::Value> = json_lines(&xf_ok(db, &["cat", "--topic", "t", "--json"]));
    assert_eq!(all.len(), 30);
    let ts: Vec<u64> = all
        .iter()
        .map(|e| e["timestamp_ms"].as_u64().unwrap())
        .collect();
    let mid = ts[15];
    let since = json_lines(&xf_ok(
        db,
        &["cat", "--topic", "t", "--json", "--since", &mid.to_string()],
    ));
    assert_eq!(since.len(), ts.iter().filter(|t| **t >= mid).count());
    let until = json_lines(&xf_ok(
        db,
        &["cat", "--topic", "t", "--json", "--until", &mid.to_string()],
    ));
    assert_eq!(until.len(), ts.iter().filter(|t| **t < mid).count());
    let last = xf_ok(db, &["cat", "--topic", "t", "--last", "3"]);
    assert_eq!(last, "e27\ne28\ne29\n");
    let window_last = xf_ok(
        db,
        &[
            "cat",
            "--topic",
            "t",
            "--until",
            &mid.to_string(),
            "--last",
            "2",
        ],
    );
    let n_before = ts.iter().filter(|t| **t < mid).count();
    let want: String = (n_before - 2..n_before)
        .map(|i| format!("e{i}\n"))
        .collect();
    assert_eq!(window_last, want);
    // Relative and RFC 3339 moments.
    assert_eq!(
        json_lines(&xf_ok(
            db,
            &["cat", "--topic", "t", "--json", "--since", "1h"]
        ))
        .len(),
        30
    );
    assert_eq!(
        xf_ok(
            db,
            &["cat", "--topic", "t", "--since", "2999-01-01T00:00:00Z"]
        ),
        ""
    );
    let bad = xf(db, &["cat", "--topic", "t", "--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a moment"));
}
