// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The xf commands and their JSON outputs, checked against the pure verifier.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use xaeroflux_merkle::{NoteVerifier, from_hex, hash_leaf, verify_consistency, verify_inclusion};

fn h(v: &serde_json::Value) -> [u8; 32] {
    from_hex(v.as_str().expect("hex string")).expect("32-byte hex")
}

// Long on purpose: one store walked through every command in order, each
// step reading what the steps before it wrote.
#[test]
fn append_dump_prove_checkpoint_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    let init = xf_ok(db, &["init"]);
    assert!(init.contains("author "));
    let r = json_lines(&xf_ok(db, &["append", "--topic", "chat", "hello"]));
    assert_eq!(r[0]["seq"], 0);
    assert_eq!(r[0]["size"], 1);
    let log = r[0]["log"].as_str().unwrap().to_string();

    // --lines: one receipt per line, in order, each with its own root.
    let mut child = spawn_lines(db, "chat");
    let mut stdin = child.stdin.take().unwrap();
    for i in 1..=50 {
        writeln!(stdin, "line {i}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let receipts = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(receipts.len(), 50);
    for (i, r) in receipts.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1);
        assert_eq!(r["size"], i as u64 + 2);
        for k in ["log", "seq", "leaf_hash", "size", "root"] {
            assert!(r.get(k).is_some(), "receipt lacks {k}");
        }
    }
    xf_ok(
        db,
        &[
            "append", "--topic", "other", "--kind", "identity", "id event",
        ],
    );

    let logs = json_lines(&xf_ok(db, &["logs", "--json"]));
    assert_eq!(logs.len(), 2);
    let chat = logs.iter().find(|l| l["log"] == log.as_str()).unwrap();
    assert_eq!(chat["size"], 51);
    assert_eq!(chat["root"], receipts[49]["root"]);
    assert_eq!(
        format!(
            "{}/{}",
            chat["author"].as_str().unwrap(),
            chat["topic_id"].as_str().unwrap()
        ),
        log
    );

    // dump: bytes_hex hashes to leaf_hash, payload_hex is inside it.
    let dump = json_lines(&xf_ok(db, &["dump", "--log", &log, "--json"]));
    assert_eq!(dump.len(), 51);
    for (i, e) in dump.iter().enumerate() {
        let bytes = hex::decode(e["bytes_hex"].as_str().unwrap()).unwrap();
        assert_eq!(hash_leaf(&bytes), h(&e["leaf_hash"]));
        assert!(hex::encode(&bytes).ends_with(e["payload_hex"].as_str().unwrap()));
        assert_eq!(e["seq"], i as u64);
        assert_eq!(e["kind"], "application");
        assert!(e["timestamp_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }
    assert_eq!(dump[0]["payload_hex"], hex::encode("hello"));

    // cat prints the topic view.
    let cat = xf_ok(db, &["cat", "--topic", "chat"]);
    let lines: Vec<&str> = cat.lines().collect();
    assert_eq!(lines.len(), 51);
    assert_eq!(lines[0], "hello");
    assert_eq!(lines[50], "line 50");

    // Proofs, checked with the pure verifier only.
    let p = &json_lines(&xf_ok(
        db,
        &[
            "prove",
            "inclusion",
            "--log",
            &log,
            "--seq",
            "7",
            "--size",
            "40",
            "--json",
        ],
    ))[0];
    let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(h).collect();
    assert_eq!(
        (p["index"].as_u64(), p["size"].as_u64()),
        (Some(7), Some(40))
    );
    assert_eq!(h(&p["leaf_hash"]), h(&dump[7]["leaf_hash"]));
    assert_eq!(h(&p["root"]), h(&receipts[38]["root"]));
    verify_inclusion(&h(&p["leaf_hash"]), 7, 40, &path, &h(&p["root"])).unwrap();
    let c = &json_lines(&xf_ok(
        db,
        &[
            "prove",
            "consistency",
            "--topic",
            "chat",
            "--from",
            "13",
            "--json",
        ],
    ))[0];
    assert_eq!((c["from"].as_u64(), c["to"].as_u64()), (Some(13), Some(51)));
    let cpath: Vec<[u8; 32]> = c["path"].as_array().unwrap().iter().map(h).collect();
    assert_eq!(h(&c["old_root"]), h(&receipts[11]["root"]));
    verify_consistency(13, 51, &h(&c["old_root"]), &h(&c["new_root"]), &cpath).unwrap();

    // The checkpoint verifies with the key `xf id` prints.
    let note = xf_ok(db, &["checkpoint", "--log", &log]);
    let id = xf_ok(db, &["id", "--topic", "chat"]);
    let vkey = id
        .lines()
        .find(|l| l.starts_with("verifier chat "))
        .and_then(|l| l.split(' ').nth(2))
        .unwrap();
    let cp = NoteVerifier::parse(vkey)
        .unwrap()
        .verify_checkpoint(&note)
        .unwrap();
    assert_eq!(cp.size, 51);
    assert_eq!(cp.root, h(&chat["root"]));

    let v = xf_ok(db, &["verify"]);
    assert!(
        v.contains("checked 2 logs") && v.trim_end().ends_with("ok"),
        "{v}"
    );
    let stat = &json_lines(&xf_ok(db, &["stat", "--json"]))[0];
    assert_eq!(stat["events"], 52);
    assert_eq!(stat["logs"], 2);
}

/// Proofs at older sizes of a log, over the CLI: every size of a 5-event
/// log on one open page, and sizes around the page boundaries of a
/// 300-event log. Each is checked with the pure verifier against the root
/// the append receipt reported at that size.
#[test]
fn proofs_at_older_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    let append = |n: usize, topic: &str| -> Vec<serde_json::Value> {
        let mut child = spawn_lines(db, topic);
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..n {
            writeln!(stdin, "{topic} event {i}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        json_lines(&String::from_utf8(out.stdout).unwrap())
    };
    for (topic, n, sizes) in [
        ("chat", 5, (1..=5).collect::<Vec<u64>>()),
        (
            "long",
            300,
            vec![1, 2, 50, 150, 255, 256, 257, 298, 299, 300],
        ),
    ] {
        let receipts = append(n, topic);
        assert_eq!(receipts.len(), n);
        for size in sizes {
            let root = h(&receipts[size as usize - 1]["root"]);
            for seq in [0, size / 2, size - 1] {
                let args = [
                    "prove",
                    "inclusion",
                    "--topic",
                    topic,
                    "--seq",
                    &seq.to_string(),
                    "--size",
                    &size.to_string(),
                    "--json",
                ];
                let p = &json_lines(&xf_ok(db, &args))[0];
                assert_eq!(h(&p["root"]), root, "{topic}: root at {size}");
                assert_eq!(h(&p["leaf_hash"]), h(&receipts[seq as usize]["leaf_hash"]));
                let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(h).collect();
                verify_inclusion(&h(&p["leaf_hash"]), seq, size, &path, &root).unwrap();
            }
            for to in [size, (size + n as u64) / 2, n as u64] {
                let args = [
                    "prove",
                    "consistency",
                    "--topic",
                    topic,
                    "--from",
                    &size.to_string(),
                    "--to",
                    &to.to_string(),
                    "--json",
                ];
                let c = &json_lines(&xf_ok(db, &args))[0];
                let new_root = h(&receipts[to as usize - 1]["root"]);
                assert_eq!((h(&c["old_root"]), h(&c["new_root"])), (root, new_root));
                let path: Vec<[u8; 32]> = c["path"].as_array().unwrap().iter().map(h).collect();
                verify_consistency(size, to, &root, &new_root, &path).unwrap();
            }
        }
    }
    assert!(xf_ok(db, &["verify"]).contains("ok"));
}

#[test]
fn errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    xf_ok(db, &["append", "--topic", "t", "x"]);
    let cases: [(&[&str], &str); 6] = [
        (&["append", "--topic", "", "x"], "topic"),
        (&["dump", "--log", "nonsense"], "log id"),
        (
            &[
                "dump",
                "--log",
                &format!("{}/{}", "ab".repeat(32), "cd".repeat(32)),
            ],
            "unknown log",
        ),
        (
            &[
                "prove",
                "inclusion",
                "--topic",
                "t",
                "--seq",
                "0",
                "--size",
                "9",
            ],
            "out of range",
        ),
        (
            &["prove", "inclusion", "--topic", "t", "--seq", "3"],
            "does not exist",
        ),
        (
            &["append", "--topic", "t", "--kind", "weird", "x"],
            "unknown event kind",
        ),
    ];
    for (args, want) in cases {
        let out = xf(db, args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let big = dir.path().join("big");
    std::fs::write(&big, vec![0u8; 20_000]).unwrap();
    let out = xf(
        db,
        &["append", "--topic", "t", "--file", big.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("20024") && err.contains("16384") && err.contains("blob"),
        "{err}"
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    xf_ok(
        db,
        &["append", "--topic", "t", "--file", empty.to_str().unwrap()],
    );
}

#[test]
fn readers_work_beside_a_writer_process_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    let mut child = spawn_lines(db, "live");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());

    let mut seen = 0;
    for round in 0..5 {
        for i in 0..20 {
            writeln!(stdin, "r{round} e{i}").unwrap();
        }
        stdin.flush().unwrap();
        // Wait (bounded by the pipe) for this round's receipts.
        for _ in 0..20 {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0);
            seen += 1;
        }
        // The writer still holds the store: readers work, writers are refused.
        let logs = json_lines(&xf_ok(db, &["logs", "--json"]));
        assert!(logs[0]["size"].as_u64().unwrap() >= seen);
        assert!(xf_ok(db, &["verify"]).contains("ok"));
        assert!(xf_ok(db, &["cat", "--topic", "live"]).lines().count() as u64 >= seen);
        let out = xf(db, &["append", "--topic", "live", "intruder"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("locked") && err.contains(&format!("process {}", child.id())),
            "{err}"
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(xf_ok(db, &["cat", "--topic", "live"]).lines().count(), 100);
}

#[test]
fn demo_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.contains("verified") && s.trim_end().ends_with("demo ok"),
        "{s}"
    );
}

#[test]
fn cat_follow_prints_history_then_events_committed_by_another_process() {
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    xf_ok(&db, &["append", "--topic", "news", "one"]);
    xf_ok(&db, &["append", "--topic", "news", "two"]);
    let mut follower = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(&db)
        .args(["cat", "--topic", "news", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn xf cat --follow");
    let stdout = follower.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line for {what:?} within 30 s"))
    };
    assert_eq!(next("one"), "one");
    assert_eq!(next("two"), "two");
    // A writer process holds the store while the follower prints.
    let mut writer = spawn_lines(&db, "news");
    let mut stdin = writer.stdin.take().expect("stdin");
    for line in ["three", "four", "five"] {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(next(line), line);
    }
    drop(stdin);
    assert!(writer.wait().unwrap().success());
    xf_ok(&db, &["append", "--topic", "news", "six"]);
    assert_eq!(next("six"), "six");
    // Another topic's events do not show.
    xf_ok(&db, &["append", "--topic", "other", "nope"]);
    xf_ok(&db, &["append", "--topic", "news", "seven"]);
    assert_eq!(next("seven"), "seven");
    follower.kill().unwrap();
    let _ = follower.wait();
    reader.join().unwrap();
}

#[test]
fn serve_and_sync_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for i in 0..20 {
        xf_ok(&a, &["append", "--topic", "news", &format!("a{i}")]);
    }
    xf_ok(&b, &["append", "--topic", "news", "b0"]);
    xf_ok(&b, &["append", "--topic", "private", "p0"]);
    let (mut server, mut lines, addr) = spawn_serve(&a);

    let out = xf_ok(&b, &["sync", "--tcp", &addr, "--topic", "news"]);
    assert!(out.starts_with("ok: pulled 20 events in 1 logs"), "{out}");
    assert!(out.contains("served 1 events"), "{out}");
    let session = lines.next().unwrap().unwrap();
    assert!(session.contains(": ok: pulled 1 events"), "{session}");
    // Only the topic asked for moved.
    let a_cat = xf_ok(&a, &["cat", "--topic", "private"]);
    assert_eq!(a_cat, "");
    let b_news = xf_ok(&b, &["cat", "--topic", "news"]);
    assert_eq!(b_news.lines().count(), 21);
    // A second run moves nothing.
    let out = xf_ok(&b, &["sync", "--tcp", &addr]);
    assert!(out.starts_with("ok: pulled 0 events"), "{out}");
    // Nobody listening: a clear error.
    server.kill().unwrap();
    let _ = server.wait();
    let r = xf(&b, &["sync", "--tcp", &addr, "--timeout", "2"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("connecting to"));
}

#[test]
fn a_repaired_store_serves_other_authors_logs_with_their_names_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for i in 0..20 {
        xf_ok(&a, &["append", "--topic", "news", &format!("a{i}")]);
    }
    xf_ok(&b, &["append", "--topic", "news", "b0"]);
    let (mut server, _lines, addr) = spawn_serve(&a);
    let out = xf_ok(&b, &["sync", "--tcp", &addr]);
    assert!(out.starts_with("ok: pulled 20 events in 1 logs"), "{out}");
    server.kill().unwrap();
    let _ = server.wait();

    // The index is lost; the segments and the catalog rebuild it.
    std::fs::remove_dir_all(b.join("index")).unwrap();
    let out = xf_ok(&b, &["repair"]);
    assert!(
        out.contains("restored 1 topic names and 1 checkpoints of other authors"),
        "{out}"
    );
    assert!(out.contains("verified: ok"), "{out}");

    // A third store pulls both logs from the repaired one: `a`'s is served
    // with `a`'s signed checkpoint, and the topic has its name.
    let (mut server, _lines, addr) = spawn_serve(&b);
    let out = xf_ok(&c, &["sync", "--tcp", &addr]);
    assert!(out.starts_with("ok: pulled 21 events in 2 logs"), "{out}");
    server.kill().unwrap();
    let _ = server.wait();
    let logs = json_lines(&xf_ok(&c, &["logs", "--json"]));
    assert_eq!(logs.len(), 2);
    for l in &logs {
        assert_eq!(l["topic"].as_str(), Some("news"), "{l}");
    }
    assert_eq!(xf_ok(&c, &["cat", "--topic", "news"]).lines().count(), 21);
}

/// Runs `xf --db DB ARGS` on a pseudo-terminal (util-linux `script`):
/// what the terminal got, or `None` when `script` is missing.
fn on_terminal(db: &Path, args: &str) -> Option<String> {
    let cmd = format!("{} --db {} {args}", env!("CARGO_BIN_EXE_xf"), db.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .ok()?;
    assert!(out.status.success(), "{cmd}: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn progress_bars_show_on_a_terminal_and_nothing_of_them_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(&a)
        .args(["append", "--topic", "big", "--lines", "--fast"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        for i in 0..20_000 {
            writeln!(stdin, "event number {i} with some text in it").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());

    // Piped: the outputs are exactly what they always were.
    let piped = xf(&a, &["verify"]);
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty(), "{piped:?}");
    let text = String::from_utf8_lossy(&piped.stdout);
    assert!(text.starts_with("checked 1 logs,"), "{text}");
    assert!(!text.contains('['), "{text}");

    let Some(shown) = on_terminal(&a, "verify") else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert!(shown.contains("verify ["), "{shown:?}");
    assert!(shown.contains(" events"), "{shown:?}");
    assert!(shown.contains("checked 1 logs,"), "{shown:?}");

    let (mut server, _lines, addr) = spawn_serve(&a);
    let shown = on_terminal(&b, &format!("sync --tcp {addr}")).unwrap();
    assert!(shown.contains("sync ["), "{shown:?}");
    assert!(shown.contains("/20000 events"), "{shown:?}");
    assert!(shown.contains("ok: pulled 20000 events"), "{shown:?}");
    server.kill().unwrap();
    let _ = server.wait();

    std::fs::remove_dir_all(b.join("index")).unwrap();
    let shown = on_terminal(&b, "repair").unwrap();
    assert!(shown.contains("rebuild ["), "{shown:?}");
    assert!(shown.contains("verified: ok"), "{shown:?}");
}

#[test]
fn serve_stays_usable_while_200_idle_connections_are_held_open() {
    use std::io::Read;
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for i in 0..20 {
        xf_ok(&a, &["append", "--topic", "news", &format!("a{i}")]);
    }
    let (mut server, lines, addr) = spawn_serve(&a);
    // The server's report, read on a thread so its pipe never fills.
    let report = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let done = AtomicBool::new(false);
    let bound = Duration::from_secs(60);
    let (opened_tx, opened) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        // 200 connections that never send HELLO, from the legitimate
        // peer's own address; each one the server closes is reopened.
        let flood = s.spawn(|| {
            let connect = || TcpStream::connect(addr.as_str()).ok();
            let mut idle: Vec<TcpStream> = (0..200).filter_map(|_| connect()).collect();
            assert_eq!(idle.len(), 200, "200 idle connections opened");
            for c in &idle {
                c.set_nonblocking(true).unwrap();
            }
            opened_tx.send(()).unwrap();
            let started = Instant::now();
            let mut reopened = 0u64;
            let mut buf = [0u8; 4096];
            while !done.load(Ordering::Acquire) && started.elapsed() < bound {
                for conn in &mut idle {
                    let closed = match conn.read(&mut buf) {
                        Ok(0) => true,
                        Ok(_) => false,
                        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                    };
                    if closed && let Some(c) = connect() {
                        c.set_nonblocking(true).unwrap();
                        *conn = c;
                        reopened += 1;
                    }
                }
                std::thread::yield_now();
            }
            reopened
        });
        // A legitimate sync goes through beside them, twice.
        opened
            .recv_timeout(bound)
            .expect("the idle connections are open");
        let out = xf_ok(&b, &["sync", "--tcp", &addr, "--timeout", "20"]);
        assert!(out.starts_with("ok: pulled 20 events in 1 logs"), "{out}");
        let out = xf_ok(&b, &["sync", "--tcp", &addr, "--timeout", "20"]);
        assert!(out.starts_with("ok: pulled 0 events"), "{out}");
        done.store(true, Ordering::Release);
        assert!(
            flood.join().unwrap() > 0,
            "the server closed idle connections"
        );
    });
    server.kill().unwrap();
    let _ = server.wait();
    let report = report.join().unwrap();
    let ok = report.iter().filter(|l| l.contains(": ok: pulled")).count();
    assert_eq!(ok, 2, "two sessions served: {report:?}");
    assert!(
        report.iter().any(|l| l.contains(": dropped: no HELLO yet")),
        "silent connections were dropped"
    );
}

#[test]
fn forks_are_listed_after_a_sync_with_a_forked_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (a, twin, c) = (
        dir.path().join("a"),
        dir.path().join("twin"),
        dir.path().join("c"),
    );
    xf_ok(&a, &["init"]);
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::copy(a.join("identity.key"), twin.join("identity.key")).unwrap();
    for i in 0..4 {
        xf_ok(&a, &["append", "--topic", "t", &format!("a{i}")]);
    }
    xf_ok(&twin, &["append", "--topic", "t", "different"]);
    let serve = |db: &std::path::Path| {
        let (child, _, addr) = spawn_serve(db);
        (child, addr)
    };
    let (mut sa, addr_a) = serve(&a);
    let (mut st, addr_t) = serve(&twin);
    assert!(xf_ok(&c, &["sync", "--tcp", &addr_a]).starts_with("ok: pulled 4 events"));
    let out = xf_ok(&c, &["sync", "--tcp", &addr_t]);
    assert!(out.contains("1 forked logs refused"), "{out}");
    let forks = json_lines(&xf_ok(&c, &["forks", "--json"]));
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0]["our_size"], 4);
    assert_eq!(forks[0]["their_size"], 1);
    assert_eq!(forks[0]["proven"], true);
    assert_eq!(xf_ok(&c, &["cat", "--topic", "t"]).lines().count(), 4);
    sa.kill().unwrap();
    st.kill().unwrap();
    let _ = (sa.wait(), st.wait());
}

/// A running `xf node`, its stdout read line by line on a thread.
struct NodeProc {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl NodeProc {
    fn start(db: &std::path::Path, extra: &[&str]) -> (NodeProc, String) {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = Command::new(env!("CARGO_BIN_EXE_xf"))
            .arg("--db")
            .arg(db)
            .args([
                "node",
                "--topic",
                "chat",
                "--local-only",
                "--sync-interval",
                "3600",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn xf node");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut node = NodeProc { child, lines: rx };
        let first = node.next_line();
        let ticket = first
            .strip_prefix("node ")
            .unwrap_or_else(|| panic!("first line: {first}"))
            .to_string();
        (node, ticket)
    }

    fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a line from xf node within 60 s")
    }

    /// Reads lines until one satisfies `pred`, bounded.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(std::time::Instant::now() < deadline, "no such line");
            let l = self.next_line();
            if pred(&l) {
                return l;
            }
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nodes_sync_and_take_appends_from_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    xf_ok(&a, &["append", "--topic", "chat", "before the node"]);
    let (_na, ticket) = NodeProc::start(&a, &[]);
    assert!(!ticket.is_empty());
    let (mut nb, _) = NodeProc::start(&b, &["--peer", &ticket]);
    nb.wait_for(|l| l.contains("session-ended") && l.contains("events_in=1 "));
    // The store is held by the node; xf append hands its events over,
    // and they are announced and pulled by B.
    let r = json_lines(&xf_ok(
        &a,
        &["append", "--topic", "chat", "through the node"],
    ));
    assert_eq!(r[0]["seq"], 1);
    let mut child = spawn_lines(&a, "chat");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "line one").unwrap();
    writeln!(stdin, "line two").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let receipts = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[1]["size"], 4);
    // B's log of A reaches 4 events; read commands work beside B's node.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let cat = xf_ok(&b, &["cat", "--topic", "chat"]);
        if cat.lines().count() == 4 {
            assert!(
                cat.contains("through the node") && cat.contains("line two"),
                "{cat}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "B has: {cat}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let logs = xf_ok(&b, &["logs", "--json"]);
    assert!(logs.contains("\"size\":4"), "{logs}");
    // A second node on a held directory is refused with a clear error.
    let r = xf(&a, &["node", "--topic", "chat", "--local-only"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("locked"));
}

/// `xf doc` beside a running node: the operation is handed to the node
/// (which holds the store), and `xf doc get` reads the state beside it.
#[test]
fn xf_doc_hands_operations_to_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let (mut node, _ticket) = NodeProc::start(&db, &[]);
    xf_ok(&db, &["doc", "add", "--topic", "chat", "likes", "3"]);
    xf_ok(&db, &["doc", "insert", "--topic", "chat", "here", "ann"]);
    xf_ok(&db, &["doc", "remove", "--topic", "chat", "here", "ann"]);
    xf_ok(&db, &["doc", "add", "--topic", "chat", "likes", "-1"]);
    let state = xf_ok(&db, &["doc", "get", "--topic", "chat", "--json"]);
    let state: serde_json::Value = serde_json::from_str(state.trim()).unwrap();
    assert_eq!(state, serde_json::json!({"likes": 2, "here": []}));
    let _ = node.child.kill();
    let _ = node.child.wait();
}

/// `xf node` closes cleanly on SIGTERM and on SIGINT: exit status 0, its
/// socket for other processes' appends removed, the store closed so the
/// next command opens it for writing at once, and every append kept.
#[test]
fn xf_node_closes_cleanly_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let (mut node, _ticket) = NodeProc::start(&db, &[]);
        // An append handed over to the running node while it runs.
        xf_ok(&db, &["append", "--topic", "chat", name]);
        assert!(db.join("node.sock").exists());
        let pid = node.child.id() as libc::pid_t;
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(s) = node.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "xf node ignored {name}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(status.success(), "{name}: {status:?}");
        assert!(
            !db.join("node.sock").exists(),
            "{name}: node.sock left behind"
        );
        let cat = xf_ok(&db, &["cat", "--topic", "chat"]);
        assert!(cat.contains(name), "{name}: {cat}");
        xf_ok(&db, &["verify"]);
    }
}

/// A disk that fills up: the append that fails says why in the OS's own
/// words, everything acknowledged before stays, and the store verifies.
/// Needs a small tmpfs (root, or a user namespace that may mount); skipped
/// with a message where the machine does not allow one.
#[test]
fn a_full_disk_names_the_os_cause_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: this machine does not let the test mount a small tmpfs");
        return;
    }
    let db = mnt.join("db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(&db)
        .args(["append", "--topic", "t", "--lines"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // 3 MB of lines into 2 MB: the writer runs out of room on the way. The
    // receipts are read meanwhile, so neither side waits on a full pipe.
    let feeder = std::thread::spawn(move || {
        let line = "x".repeat(200);
        for _ in 0..15_000 {
            if writeln!(stdin, "{line}").is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let acknowledged = json_lines(&String::from_utf8(out.stdout).unwrap()).len();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let verified = xf(&db, &["verify"]);
    let logs = json_lines(&xf_ok(&db, &["logs", "--json"]));
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(!out.status.success(), "3 MB fitted in 2 MB");
    assert!(
        acknowledged > 1000,
        "only {acknowledged} events before the disk filled"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert!(logs[0]["size"].as_u64().unwrap() >= acknowledged as u64);
}
