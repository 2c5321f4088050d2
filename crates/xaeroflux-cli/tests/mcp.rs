// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
#![cfg(feature = "mcp")]
//! `xf mcp` as an MCP client starts it: a process speaking JSON-RPC on its
//! standard input and output, beside other `xf` processes on the same
//! store; and driven by the official MCP Python SDK.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{json_lines, spawn_lines, xf_ok};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A running `xf mcp` and the messages it has sent that no one took yet.
struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pending: Vec<Value>,
    next_id: u64,
}

impl Mcp {
    fn start(db: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xf"))
            .arg("--db")
            .arg(db)
            .arg("mcp")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn xf mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut mcp = Self {
            child,
            stdin,
            lines,
            pending: Vec::new(),
            next_id: 0,
        };
        let init = mcp.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "cli-test", "version": "1"}
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "xaeroflux", "{init}");
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("input open");
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message from the server, one it sent earlier first.
    fn next(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self
            .lines
            .recv_timeout(left)
            .expect("a message from xf mcp in time");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON {line:?}: {e}"))
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.next(deadline);
            if m["id"] == id {
                return m;
            }
            self.pending.push(m);
        }
    }

    /// Calls a tool that must succeed and returns its structured content.
    fn ok(&mut self, tool: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        assert_eq!(r["result"]["isError"], false, "{tool}: {r}");
        r["result"]["structuredContent"].clone()
    }

    /// Waits for a message `pred` accepts, among those already received
    /// first.
    fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.next(deadline);
            if pred(&m) {
                return m;
            }
        }
    }

    /// Ends the input and waits for the process, bounded; returns whether
    /// it exited successfully.
    fn finish(mut self) -> bool {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "xf mcp did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool_names(m: &mut Mcp) -> Vec<String> {
    let list = m.request("tools/list", json!({}));
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn read_only_beside_a_writing_process_hears_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    xf_ok(&db, &["append", "--topic", "chat", "first"]);
    // Another process holds the store for writing.
    let mut writer = spawn_lines(&db, "chat");
    let mut writer_in = writer.stdin.take().unwrap();
    let mut writer_out = BufReader::new(writer.stdout.take().unwrap());

    let mut m = Mcp::start(&db, &[]);
    let names = tool_names(&mut m);
    assert!(names.contains(&"read_topic".to_string()), "{names:?}");
    assert!(!names.contains(&"append".to_string()), "{names:?}");
    let refused = m.request(
        "tools/call",
        json!({"name": "append", "arguments": {"topic": "chat", "payload": "x"}}),
    );
    let msg = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("--allow-append"), "{refused}");

    let r = m.request("resources/subscribe", json!({"uri": "xf://topic/chat"}));
    assert!(r.get("error").is_none(), "{r}");
    writeln!(writer_in, "second").unwrap();
    writer_in.flush().unwrap();
    let mut receipt = String::new();
    writer_out.read_line(&mut receipt).unwrap();
    assert_eq!(json_lines(&receipt)[0]["seq"], 1, "{receipt}");
    let n = m.wait_for(|v| v["method"] == "notifications/resources/updated");
    assert_eq!(n["params"]["uri"], "xf://topic/chat");

    let page = m.ok("read_topic", json!({"topic": "chat"}));
    let payloads: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["first", "second"]);
    drop(writer_in);
    assert!(writer.wait().unwrap().success());
    assert!(m.finish(), "xf mcp exits 0 when its input ends");
}

#[test]
fn appends_beside_a_node_are_handed_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    xf_ok(&db, &["append", "--topic", "chat", "before the node"]);
    let mut node = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(&db)
        .args([
            "node",
            "--topic",
            "chat",
            "--local-only",
            "--sync-interval",
            "3600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn xf node");
    // The node prints its ticket once it holds the store and listens.
    let mut first = String::new();
    BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("node "), "{first}");

    let mut m = Mcp::start(&db, &["--allow-append"]);
    assert!(tool_names(&mut m).contains(&"append".to_string()));
    let stats = m.ok("stats", json!({}));
    assert_eq!(stats["via_node"], true, "{stats}");
    let receipt = m.ok(
        "append",
        json!({"topic": "chat", "payload": "from an agent"}),
    );
    assert_eq!(receipt["seq"], 1, "{receipt}");
    assert_eq!(receipt["size"], 2, "{receipt}");
    // The node wrote it: another process reads it back.
    let cat = xf_ok(&db, &["cat", "--topic", "chat"]);
    assert!(cat.contains("from an agent"), "{cat}");
    assert!(m.finish());
    let _ = node.kill();
    let _ = node.wait();
}

#[test]
fn a_missing_store_is_refused_before_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing here");
    let out = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(&db)
        .arg("mcp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "stdout carries only the protocol");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing here"), "{err}");
    assert!(!db.exists(), "a read-only server creates nothing");
}

#[test]
fn a_malformed_frame_gets_an_error_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    xf_ok(&db, &["append", "--topic", "chat", "hello"]);
    let mut m = Mcp::start(&db, &[]);
    m.stdin
        .as_mut()
        .unwrap()
        .write_all(b"{\"jsonrpc\": \"2.0\", \"id\": 7, \"method\": \n")
        .unwrap();
    let e = m.wait_for(|v| v.get("error").is_some());
    assert_eq!(e["error"]["code"], -32700, "{e}");
    let page = m.ok("read_topic", json!({"topic": "chat"}));
    assert_eq!(page["events"][0]["payload"], "hello");
    assert!(m.finish());
}

/// The Python interpreter that has the official MCP SDK: `XF_MCP_PYTHON`,
/// or the virtual environment `.ci/run` makes in `target/mcp-venv`.
fn mcp_python() -> Option<std::path::PathBuf> {
    let python = match std::env::var_os("XF_MCP_PYTHON") {
        Some(p) => std::path::PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcp-venv/bin/python"),
    };
    let has_sdk = Command::new(&python)
        .args(["-c", "import mcp, cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    has_sdk.then_some(python)
}

#[test]
fn the_official_python_sdk_reads_appends_and_checks_the_proofs_itself() {
    let Some(python) = mcp_python() else {
        let msg = "the MCP Python SDK is not installed: run \
                   `python3 -m venv target/mcp-venv && target/mcp-venv/bin/pip install mcp==2.3.0` \
                   (or set XF_MCP_PYTHON to a python that has it)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the Python SDK test: {msg}"
        );
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for i in 0..7 {
        xf_ok(&db, &["append", "--topic", "chat", &format!("message {i}")]);
    }
    xf_ok(&db, &["append", "--topic", "other", "elsewhere"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_xf"))
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: the script's own waits are 30 s each.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.success() && stdout.contains("all checks passed"),
        "the Python client failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("negotiated 2026-07-28"), "{stdout}");
    assert!(stdout.contains("negotiated 2025-11-25"), "{stdout}");
    // What the agent appended is in the store, in order.
    let cat = xf_ok(&db, &["cat", "--topic", "chat"]);
    let last: Vec<&str> = cat.lines().rev().take(3).collect();
    assert!(
        last[2].contains("from python")
            && last[1].contains("followed")
            && last[0].contains("legacy"),
        "{cat}"
    );
}
