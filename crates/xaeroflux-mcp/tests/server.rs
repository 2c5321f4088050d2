// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The MCP server driven over in-memory stdio, one JSON-RPC message a line,
//! as a client would drive `xf mcp`: the handshake in both eras, every
//! tool, paging, proofs checked with the pure verifier, appends, resource
//! subscriptions fed by another thread and by replication, and every kind
//! of bad input, after which the server still answers and the store is
//! unchanged.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;
use xaeroflux::{Core, Topic};
use xaeroflux_mcp::{McpError, McpServer, Options};
use xaeroflux_merkle::{NoteVerifier, from_hex, verify_consistency, verify_inclusion};

/// How long any one message may take to come.
const WAIT: Duration = Duration::from_secs(20);

struct Client {
    write: WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    next_id: u64,
    /// Messages that came while waiting for another.
    pending: VecDeque<Value>,
    /// `_meta` sent with every request (the 2026-07-28 era), if any.
    meta: Option<Value>,
}

impl Client {
    async fn send_raw(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
        self.write.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the server answered in time")
            .unwrap()
            .expect("the server is still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line} ({e})"))
    }

    /// The next message that satisfies `pred`, from those already come first.
    async fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
            self.pending.push_back(m);
        }
    }

    /// Sends a request and returns the whole response (result or error).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut params = params;
        if let (Some(meta), Some(p)) = (&self.meta, params.as_object_mut()) {
            p.insert("_meta".into(), meta.clone());
        }
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&msg.to_string()).await;
        self.wait_for(|m| m["id"] == id && m.get("method").is_none())
            .await
    }

    async fn initialize(&mut self, version: &str) -> Value {
        let r = self
            .request(
                "initialize",
                json!({"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "test", "version": "1"}}),
            )
            .await;
        self.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        r
    }

    /// Calls a tool; returns its result (`isError` and all).
    async fn call(&mut self, tool: &str, args: Value) -> Value {
        let r = self
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await;
        assert!(r.get("error").is_none(), "{tool}: {r}");
        r["result"].clone()
    }

    /// Calls a tool that must succeed; checks the text and the structured
    /// content agree, and returns the latter.
    async fn ok(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        assert_eq!(r["isError"], false, "{tool}: {r}");
        let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            text, r["structuredContent"],
            "{tool}: the text and the structure differ"
        );
        r["structuredContent"].clone()
    }

    /// Calls a tool that must fail; returns its message.
    async fn tool_error(&mut self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args).await;
        assert_eq!(r["isError"], true, "{tool} should have failed: {r}");
        r["content"][0]["text"].as_str().unwrap().to_string()
    }

    /// The server still answers.
    async fn still_answers(&mut self) {
        let r = self.request("tools/list", json!({})).await;
        assert!(r["result"]["tools"].is_array(), "{r}");
    }
}

fn start(server: McpServer) -> (Client, JoinHandle<Result<(), McpError>>) {
    let (client, server_end) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(server_end);
    let serving = tokio::spawn(async move { server.serve(read, write).await });
    let (r, w) = tokio::io::split(client);
    let client = Client {
        write: w,
        lines: BufReader::new(r).lines(),
        next_id: 0,
        pending: VecDeque::new(),
        meta: None,
    };
    (client, serving)
}

fn open(dir: &Path) -> Arc<Core> {
    Arc::new(Core::builder().open(dir).unwrap())
}

async fn session(core: &Arc<Core>, append: bool) -> (Client, JoinHandle<Result<(), McpError>>) {
    let server = McpServer::new(core.clone(), Options::default().allow_append(append)).unwrap();
    let (mut c, s) = start(server);
    let init = c.initialize("2025-11-25").await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    (c, s)
}

fn fill(core: &Core, topic: &str, n: usize) {
    let t = Topic::new(topic).unwrap();
    for i in 0..n {
        core.append(core.new_event_in(&t, format!("{topic} {i}")))
            .unwrap();
    }
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn h(v: &Value) -> [u8; 32] {
    from_hex(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_handshake_negotiates_down_and_discover_names_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2024-11-05"),
        // A version this server does not know: it answers with its newest
        // one that has a handshake, and the client decides.
        ("2099-01-01", "2025-11-25"),
    ] {
        let (mut c, serving) = start(McpServer::new(core.clone(), Options::default()).unwrap());
        let r = c.initialize(asked).await;
        assert_eq!(r["result"]["protocolVersion"], answered, "{r}");
        assert_eq!(r["result"]["serverInfo"]["name"], "xaeroflux");
        assert_eq!(r["result"]["capabilities"]["resources"]["subscribe"], true);
        assert!(r["result"]["capabilities"]["tools"].is_object());
        c.still_answers().await;
        drop(c);
        serving.await.unwrap().unwrap();
    }
    // The 2026-07-28 era has no handshake: `server/discover` lists the
    // versions, and each request carries its own.
    let (mut c, _serving) = start(McpServer::new(core.clone(), Options::default()).unwrap());
    c.meta = Some(json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    }));
    let d = c.request("server/discover", json!({})).await;
    let versions = d["result"]["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")), "{d}");
    assert!(versions.contains(&json!("2025-11-25")), "{d}");
    let list = c.request("tools/list", json!({})).await;
    assert!(
        tool_names(&list).contains(&"read_topic".to_string()),
        "{list}"
    );
}

#[tokio::test]
async fn tools_are_read_only_unless_appends_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    fill(&core, "chat", 2);
    let read_only = [
        "list_topics",
        "read_topic",
        "get_event",
        "checkpoint",
        "prove_inclusion",
        "verify_inclusion",
        "stats",
    ];
    let (mut c, _s) = session(&core, false).await;
    let list = c.request("tools/list", json!({})).await;
    assert_eq!(tool_names(&list), read_only);
    for t in list["result"]["tools"].as_array().unwrap() {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert_eq!(t["outputSchema"]["type"], "object", "{t}");
        assert!(t["description"].as_str().unwrap().len() > 20, "{t}");
    }
    // Refused, with the way to allow it, and nothing written.
    let before = core.stat().unwrap();
    let r = c
        .request(
            "tools/call",
            json!({"name": "append", "arguments": {"topic": "chat", "payload": "no"}}),
        )
        .await;
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("--allow-append"), "{r}");
    assert_eq!(core.stat().unwrap(), before);

    let (mut c, _s) = session(&core, true).await;
    let list = c.request("tools/list", json!({})).await;
    let names = tool_names(&list);
    assert_eq!(names.len(), read_only.len() + 1);
    let append = &list["result"]["tools"][read_only.len()];
    assert_eq!(append["name"], "append");
    assert_eq!(append["annotations"]["readOnlyHint"], false);
    assert_eq!(append["annotations"]["destructiveHint"], false);
    let required = append["inputSchema"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("topic")) && required.contains(&json!("payload")));
}

#[tokio::test]
async fn list_topics_read_with_paging_and_get_events() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    fill(&core, "chat", 7);
    fill(&core, "other", 1);
    let raw = Topic::new("raw").unwrap();
    core.append(core.new_event_in(&raw, [0xffu8, 0x00, 0xfe]))
        .unwrap();
    let (mut c, _s) = session(&core, false).await;

    let topics = c.ok("list_topics", json!({})).await;
    let topics = topics["topics"].as_array().unwrap();
    let names: Vec<&str> = topics.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["chat", "other", "raw"]);
    assert_eq!(topics[0]["logs"], 1);
    assert_eq!(topics[0]["events"], 7);
    assert_eq!(
        topics[0]["id"],
        Topic::new("chat").unwrap().id().to_string()
    );
    assert_eq!(topics[0]["uri"], "xf://topic/chat");

    // Pages of 3: 3, 3, 1, then the end.
    let mut seqs = Vec::new();
    let mut since = Value::Null;
    for expect in [3, 3, 1] {
        let mut args = json!({"topic": "chat", "limit": 3});
        if !since.is_null() {
            args["since_seq"] = since.clone();
        }
        let page = c.ok("read_topic", args).await;
        let events = page["events"].as_array().unwrap();
        assert_eq!(events.len(), expect, "{page}");
        for e in events {
            seqs.push(e["seq"].as_u64().unwrap());
            assert_eq!(e["payload"], format!("chat {}", e["seq"]));
            assert_eq!(e["encoding"], "utf8");
            assert_eq!(e["kind"], "application");
            assert_eq!(e["author"], hex::encode(core.author()));
            for k in ["log", "timestamp_ms", "leaf_hash"] {
                assert!(e.get(k).is_some(), "event lacks {k}");
            }
        }
        since = page["next"].clone();
        if expect == 1 {
            assert!(since.is_null(), "the last page has no next: {page}");
            since = page["resume"].clone();
        }
    }
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
    // Resuming after the end gives nothing, then what came since.
    let page = c
        .ok("read_topic", json!({"topic": "chat", "since_seq": since}))
        .await;
    assert_eq!(page["events"], json!([]));
    fill(&core, "chat", 1);
    let page = c
        .ok("read_topic", json!({"topic": "chat", "since_seq": since}))
        .await;
    assert_eq!(
        page["events"][0]["payload"], "chat 0",
        "fill numbers from 0 again"
    );
    assert_eq!(page["events"][0]["seq"], 7);

    // A seq applies to every log; since_ms filters by time.
    let page = c
        .ok("read_topic", json!({"topic": "chat", "since_seq": 5}))
        .await;
    let got: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [5, 6, 7]);
    let all = c.ok("read_topic", json!({"topic": "chat"})).await;
    let t5 = all["events"][5]["timestamp_ms"].as_u64().unwrap();
    let page = c
        .ok("read_topic", json!({"topic": "chat", "since_ms": t5}))
        .await;
    for e in page["events"].as_array().unwrap() {
        assert!(e["timestamp_ms"].as_u64().unwrap() >= t5);
    }
    assert!(!page["events"].as_array().unwrap().is_empty());
    let future = c
        .ok("read_topic", json!({"topic": "chat", "since_ms": u64::MAX}))
        .await;
    assert_eq!(future["events"], json!([]));
    assert!(future["next"].is_null());

    // A payload that is not UTF-8 comes as base64.
    let page = c.ok("read_topic", json!({"topic": "raw"})).await;
    assert_eq!(page["events"][0]["encoding"], "base64");
    assert_eq!(page["events"][0]["payload"], "/wD+");

    // get_event: the same event, with its canonical bytes.
    let first = &all["events"][2];
    let ev = c
        .ok("get_event", json!({"log": first["log"], "seq": 2}))
        .await;
    for k in [
        "log",
        "author",
        "seq",
        "timestamp_ms",
        "kind",
        "payload",
        "leaf_hash",
    ] {
        assert_eq!(ev[k], first[k], "{k}");
    }
    let bytes = hex::decode(ev["bytes_hex"].as_str().unwrap()).unwrap();
    assert_eq!(xaeroflux_merkle::hash_leaf(&bytes), h(&ev["leaf_hash"]));
}

#[tokio::test]
async fn a_cursor_misses_nothing_replicated_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    // B writes first (earlier timestamps), A later; A reads its own topic
    // to the end, then B's events arrive by sync: in view order they sit
    // before everything A read, and the cursor still brings them.
    let b = Core::builder().open(dir.path().join("b")).unwrap();
    fill(&b, "chat", 3);
    let a = open(&dir.path().join("a"));
    std::thread::sleep(Duration::from_millis(5)); // strictly later stamps
    fill(&a, "chat", 4);
    let (mut c, _s) = session(&a, false).await;
    let page = c.ok("read_topic", json!({"topic": "chat"})).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 4);
    let resume = page["resume"].clone();

    sync_pair(&a, &b);
    let all = c.ok("read_topic", json!({"topic": "chat"})).await;
    let authors: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["author"].as_str().unwrap())
        .collect();
    let b_author = hex::encode(b.author());
    assert_eq!(
        &authors[..3],
        [b_author.as_str(); 3],
        "B's earlier events lead the view"
    );
    let page = c
        .ok("read_topic", json!({"topic": "chat", "since_seq": resume}))
        .await;
    let got = page["events"].as_array().unwrap();
    assert_eq!(got.len(), 3, "{page}");
    assert!(got.iter().all(|e| e["author"] == b_author.as_str()));
    let topics = c.ok("list_topics", json!({})).await;
    assert_eq!(topics["topics"][0]["logs"], 2);
    assert_eq!(topics["topics"][0]["events"], 7);
}

/// One XSP session between two stores over loopback TCP.
fn sync_pair(a: &Core, b: &Core) {
    xaeroflux_testkit::tcp_pair(
        |c| a.sync_over_tcp(c, &[], WAIT).unwrap(),
        |c| b.sync_over_tcp(c, &[], WAIT).unwrap(),
    );
}

#[tokio::test]
async fn proofs_verify_here_and_with_the_pure_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    fill(&core, "chat", 6);
    let log = core.own_log(&Topic::new("chat").unwrap()).to_string();
    let (mut c, _s) = session(&core, false).await;

    let cp = c.ok("checkpoint", json!({"log": log})).await;
    assert_eq!(cp["size"], 6);
    assert_eq!(cp["log"], log.as_str());
    let note = cp["note"].as_str().unwrap();
    let lid: xaeroflux::LogId = log.parse().unwrap();
    let verifier = NoteVerifier::new(&lid.origin(), &lid.author).unwrap();
    let signed = verifier.verify_checkpoint(note).unwrap();
    assert_eq!(signed.size, 6);
    assert_eq!(hex::encode(signed.root), cp["root"].as_str().unwrap());

    // At the checkpoint's size: the path leads to the signed root.
    let p = c.ok("prove_inclusion", json!({"log": log, "seq": 4})).await;
    assert_eq!(
        (p["index"].as_u64(), p["size"].as_u64()),
        (Some(4), Some(6))
    );
    assert!(p["consistency"].is_null());
    assert_eq!(p["root"], p["checkpoint"]["root"]);
    let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(h).collect();
    verify_inclusion(&h(&p["leaf_hash"]), 4, 6, &path, &signed.root).unwrap();
    let ev = c.ok("get_event", json!({"log": log, "seq": 4})).await;
    assert_eq!(ev["leaf_hash"], p["leaf_hash"]);
    let v = c.ok("verify_inclusion", p.clone()).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        v["checked"],
        json!(["checkpoint signature", "checkpoint root", "inclusion"])
    );

    // At an older size: the consistency proof links it to the checkpoint.
    let old = c
        .ok("prove_inclusion", json!({"log": log, "seq": 1, "size": 3}))
        .await;
    let cons = &old["consistency"];
    assert_eq!(
        (cons["from"].as_u64(), cons["to"].as_u64()),
        (Some(3), Some(6))
    );
    let cpath: Vec<[u8; 32]> = cons["path"].as_array().unwrap().iter().map(h).collect();
    verify_consistency(3, 6, &h(&old["root"]), &signed.root, &cpath).unwrap();
    let opath: Vec<[u8; 32]> = old["path"].as_array().unwrap().iter().map(h).collect();
    verify_inclusion(&h(&old["leaf_hash"]), 1, 3, &opath, &h(&old["root"])).unwrap();
    let v = c.ok("verify_inclusion", old.clone()).await;
    assert_eq!(v["valid"], true, "{v}");
    assert!(
        v["checked"]
            .as_array()
            .unwrap()
            .contains(&json!("consistency"))
    );
    // Without the checkpoint, the bare proof against its root.
    let bare = json!({"index": 1, "size": 3, "leaf_hash": old["leaf_hash"],
                      "path": old["path"], "root": old["root"]});
    assert_eq!(c.ok("verify_inclusion", bare).await["valid"], true);

    // Each kind of tampering is caught, with the reason.
    let mut bad = p.clone();
    let first = bad["path"][0].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if first.starts_with('0') { "1" } else { "0" },
        &first[1..]
    );
    bad["path"][0] = json!(flipped);
    let v = c.ok("verify_inclusion", bad).await;
    assert_eq!(v["valid"], false);
    assert!(
        v["reason"].as_str().unwrap().starts_with("inclusion"),
        "{v}"
    );
    let mut bad = p.clone();
    bad["checkpoint"]["note"] = json!(note.replace("\n6\n", "\n7\n"));
    let v = c.ok("verify_inclusion", bad).await;
    assert_eq!(v["valid"], false);
    assert!(
        v["reason"].as_str().unwrap().starts_with("checkpoint"),
        "{v}"
    );
    let mut bad = p.clone();
    bad["index"] = json!(3);
    assert_eq!(c.ok("verify_inclusion", bad).await["valid"], false);
    let mut bad = old.clone();
    bad["consistency"]["path"][0] = json!("00".repeat(32));
    let v = c.ok("verify_inclusion", bad).await;
    assert_eq!(v["valid"], false);
    assert!(
        v["reason"].as_str().unwrap().starts_with("consistency"),
        "{v}"
    );
    let mut bad = old.clone();
    bad["consistency"] = Value::Null;
    let msg = c.tool_error("verify_inclusion", bad).await;
    assert!(msg.contains("consistency"), "{msg}");
}

#[tokio::test]
async fn appends_return_receipts_and_land_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    let (mut c, _s) = session(&core, true).await;
    let r = c
        .ok(
            "append",
            json!({"topic": "notes", "payload": "written by an agent"}),
        )
        .await;
    let log = core.own_log(&Topic::new("notes").unwrap());
    assert_eq!(r["log"], log.to_string());
    assert_eq!((r["seq"].as_u64(), r["size"].as_u64()), (Some(0), Some(1)));
    assert_eq!(r["root"], hex::encode(core.root(&log).unwrap()));
    let r = c
        .ok(
            "append",
            json!({"topic": "notes", "payload": "/wD+", "encoding": "base64"}),
        )
        .await;
    assert_eq!(r["seq"], 1);
    let ev = core.iter_log(&log, 1).next().unwrap().unwrap();
    assert_eq!(ev.payload(), [0xff, 0x00, 0xfe]);
    let page = c.ok("read_topic", json!({"topic": "notes"})).await;
    assert_eq!(page["events"][0]["payload"], "written by an agent");
    assert_eq!(page["events"][1]["encoding"], "base64");
    let stats = c.ok("stats", json!({})).await;
    assert_eq!(stats["events"], 2);
    assert_eq!(stats["append_allowed"], true);
    assert_eq!(stats["via_node"], false);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    fill(&core, "chat", 3);
    let log = core.own_log(&Topic::new("chat").unwrap()).to_string();
    let before = (core.stat().unwrap(), core.mmr_root());
    let (mut c, _s) = session(&core, true).await;

    // Malformed frames: JSON-RPC errors, and the session goes on.
    for (line, code, says) in [
        ("this is not json", -32700, "not JSON"),
        ("{\"jsonrpc\":\"2.0\",\"id\":", -32700, "not JSON"),
        ("[1,2,3]", -32600, "batch"),
        ("42", -32600, "not a JSON object"),
        (r#"{"id":7,"method":"tools/list"}"#, -32600, "jsonrpc"),
        (r#"{"jsonrpc":"2.0","id":8}"#, -32600, "invalid request"),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":7}"#,
            -32602,
            "tools/call",
        ),
    ] {
        c.send_raw(line).await;
        let e = c.wait_for(|m| m.get("error").is_some()).await;
        assert_eq!(e["error"]["code"], code, "{line}: {e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{line}: {msg}");
        c.still_answers().await;
    }
    // The request's id comes back when the frame had one.
    c.send_raw(r#"{"id":7,"method":"tools/list"}"#).await;
    let e = c.wait_for(|m| m.get("error").is_some()).await;
    assert_eq!(e["id"], 7);
    // A method that does not exist.
    let r = c.request("no/such/method", json!({})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no/such/method")
    );
    // An unknown tool: a JSON-RPC error that lists the tools.
    let r = c
        .request(
            "tools/call",
            json!({"name": "drop_tables", "arguments": {}}),
        )
        .await;
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("drop_tables") && msg.contains("read_topic"),
        "{msg}"
    );

    // Wrong arguments: tool errors naming what is wrong.
    for (tool, args, says) in [
        ("read_topic", json!({}), "topic"),
        ("read_topic", json!({"topic": 5}), "invalid arguments"),
        (
            "read_topic",
            json!({"topic": "chat", "limit": 501}),
            "limit 501",
        ),
        (
            "read_topic",
            json!({"topic": "chat", "limit": 0}),
            "limit 0",
        ),
        (
            "read_topic",
            json!({"topic": "chat", "lmit": 5}),
            "unknown field `lmit`",
        ),
        (
            "read_topic",
            json!({"topic": "chat", "since_seq": "garbage!"}),
            "cursor",
        ),
        (
            "read_topic",
            json!({"topic": "chat", "since_seq": -1}),
            "invalid arguments",
        ),
        ("get_event", json!({"log": log}), "missing field `seq`"),
        (
            "get_event",
            json!({"log": "nope", "seq": 0}),
            "AUTHOR_HEX/TOPIC_ID_HEX",
        ),
        (
            "get_event",
            json!({"log": log, "seq": 3}),
            "seq 3 does not exist",
        ),
        ("prove_inclusion", json!({"log": log, "seq": 9}), "seq 9"),
        (
            "prove_inclusion",
            json!({"log": log, "seq": 0, "size": 4}),
            "beyond",
        ),
        (
            "verify_inclusion",
            json!({"index": 0, "size": 1, "leaf_hash": "xyz", "path": []}),
            "leaf_hash",
        ),
        (
            "verify_inclusion",
            json!({"index": 0, "size": 1, "leaf_hash": "00".repeat(32), "path": []}),
            "root",
        ),
        (
            "append",
            json!({"topic": "chat"}),
            "missing field `payload`",
        ),
        (
            "append",
            json!({"topic": "chat", "payload": "%%%", "encoding": "base64"}),
            "not base64",
        ),
        (
            "append",
            json!({"topic": "chat", "payload": "x", "encoding": "rot13"}),
            "unknown variant",
        ),
        ("list_topics", json!({"verbose": true}), "unknown field"),
    ] {
        let msg = c.tool_error(tool, args.clone()).await;
        assert!(msg.contains(says), "{tool} {args}: {msg}");
    }
    // A log that does not exist, for every tool that takes one.
    let other = Core::builder().open(dir.path().join("other")).unwrap();
    let absent = other.own_log(&Topic::new("chat").unwrap()).to_string();
    for (tool, args) in [
        ("get_event", json!({"log": absent, "seq": 0})),
        ("checkpoint", json!({"log": absent})),
        ("prove_inclusion", json!({"log": absent, "seq": 0})),
    ] {
        let msg = c.tool_error(tool, args).await;
        assert!(
            msg.contains("unknown log") && msg.contains(&absent),
            "{tool}: {msg}"
        );
    }
    // A payload too large for a page.
    let big = "x".repeat(core.max_payload_len() + 1);
    let msg = c
        .tool_error("append", json!({"topic": "chat", "payload": big}))
        .await;
    assert!(msg.contains("too large"), "{msg}");
    // A resource that does not exist.
    let r = c
        .request("resources/read", json!({"uri": "file:///etc/passwd"}))
        .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("xf://topic/"),
        "{r}"
    );

    c.still_answers().await;
    assert_eq!(
        (core.stat().unwrap(), core.mmr_root()),
        before,
        "the store changed"
    );
}

#[tokio::test]
async fn resources_list_read_and_update_as_another_thread_appends() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    fill(&core, "chat", 2);
    fill(&core, "a b", 1);
    let (mut c, _s) = session(&core, false).await;

    let list = c.request("resources/list", json!({})).await;
    let uris: Vec<&str> = list["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["xf://topic/a%20b", "xf://topic/chat"]);
    let t = c.request("resources/templates/list", json!({})).await;
    assert_eq!(
        t["result"]["resourceTemplates"][0]["uriTemplate"],
        "xf://topic/{name}"
    );
    let r = c
        .request("resources/read", json!({"uri": "xf://topic/chat"}))
        .await;
    let content = &r["result"]["contents"][0];
    assert_eq!(content["mimeType"], "application/json");
    let body: Value = serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["topic"], "chat");
    assert_eq!(body["events_total"], 2);
    assert_eq!(body["recent"][1]["payload"], "chat 1");

    let r = c
        .request("resources/subscribe", json!({"uri": "xf://topic/chat"}))
        .await;
    assert!(r.get("error").is_none(), "{r}");
    let r = c
        .request("resources/subscribe", json!({"uri": "xf://topic/a%20b"}))
        .await;
    assert!(r.get("error").is_none(), "{r}");
    let writer = core.clone();
    let t = std::thread::spawn(move || fill(&writer, "chat", 1));
    let n = c
        .wait_for(|m| m["method"] == "notifications/resources/updated")
        .await;
    assert_eq!(n["params"]["uri"], "xf://topic/chat");
    t.join().unwrap();
    // Reading again shows the new event.
    let r = c
        .request("resources/read", json!({"uri": "xf://topic/chat"}))
        .await;
    let body: Value =
        serde_json::from_str(r["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["events_total"], 3);

    // After unsubscribing, commits there bring nothing; the other topic
    // still does.
    let r = c
        .request("resources/unsubscribe", json!({"uri": "xf://topic/chat"}))
        .await;
    assert!(r.get("error").is_none(), "{r}");
    c.pending.clear();
    fill(&core, "chat", 1);
    fill(&core, "a b", 1);
    let n = c
        .wait_for(|m| m["method"] == "notifications/resources/updated")
        .await;
    assert_eq!(n["params"]["uri"], "xf://topic/a%20b", "{n}");
}

#[tokio::test]
async fn a_subscription_hears_replicated_events() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(&dir.path().join("a"));
    let peer = Core::builder().open(dir.path().join("b")).unwrap();
    fill(&peer, "chat", 2);
    let (mut c, _s) = session(&core, false).await;
    let r = c
        .request("resources/subscribe", json!({"uri": "xf://topic/chat"}))
        .await;
    assert!(r.get("error").is_none(), "{r}");
    let a = core.clone();
    let t = std::thread::spawn(move || sync_pair(&a, &peer));
    let n = c
        .wait_for(|m| m["method"] == "notifications/resources/updated")
        .await;
    assert_eq!(n["params"]["uri"], "xf://topic/chat");
    t.join().unwrap();
    let page = c.ok("read_topic", json!({"topic": "chat"})).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_2026_era_listens_for_updates() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    fill(&core, "chat", 1);
    let (mut c, _s) = start(McpServer::new(core.clone(), Options::default()).unwrap());
    c.meta = Some(json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    }));
    let page = c.ok("read_topic", json!({"topic": "chat"})).await;
    assert_eq!(page["events"][0]["payload"], "chat 0");
    // subscriptions/listen: acknowledged with what was accepted (the
    // unknown URI is dropped), then an update per commit burst.
    let id = c.next_id + 1;
    c.next_id = id;
    let listen = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {"notifications": {"resourceSubscriptions": ["xf://topic/chat", "file:///x"]},
                   "_meta": c.meta.clone()}});
    c.send_raw(&listen.to_string()).await;
    let ack = c
        .wait_for(|m| m["method"] == "notifications/subscriptions/acknowledged")
        .await;
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!(["xf://topic/chat"]),
        "{ack}"
    );
    // The commit comes at once, on this task's thread, while the server's
    // listen may still be starting its watcher (rmcp acknowledges first):
    // the update is owed all the same.
    fill(&core, "chat", 1);
    let n = c
        .wait_for(|m| m["method"] == "notifications/resources/updated")
        .await;
    assert_eq!(n["params"]["uri"], "xf://topic/chat");
    // Cancelling the listen ends it with no error.
    c.send_raw(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id}})
        .to_string(),
    )
    .await;
    c.still_answers().await;
}

#[tokio::test]
async fn the_input_ending_ends_the_session_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    let (mut c, serving) = session(&core, false).await;
    let r = c
        .request("resources/subscribe", json!({"uri": "xf://topic/chat"}))
        .await;
    assert!(r.get("error").is_none());
    drop(c);
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("the session ended")
        .unwrap()
        .unwrap();
    // Nothing holds the store any more: it closes.
    let core = Arc::try_unwrap(core).expect("the server let go of the store");
    core.close().unwrap();
}

#[tokio::test]
async fn private_topics_show_as_encrypted_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let core = open(dir.path());
    let created = core.create_private_topic(Some("t")).unwrap();
    core.append(core.new_event_in(&created.topic, "a secret"))
        .unwrap();

    // Default: sealed payloads are not shown, and appends there refused.
    let (mut c, _s) = session(&core, true).await;
    let page = c.ok("read_topic", json!({"topic": created.name})).await;
    let app: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "application")
        .collect();
    assert_eq!(app.len(), 1, "{page}");
    assert_eq!(app[0]["encoding"], "encrypted");
    assert_eq!(app[0]["payload"], "");
    assert_eq!(app[0]["encrypted"], true);
    let msg = c
        .tool_error("append", json!({"topic": created.name, "payload": "x"}))
        .await;
    assert!(msg.contains("--allow-private"), "{msg}");
    let log = core.own_log(&created.topic);
    assert_eq!(core.log_size(&log).unwrap(), 2, "nothing was appended");

    // With allow_private: plaintext, and appends sealed in the writer.
    let server = McpServer::new(
        core.clone(),
        Options::default().allow_append(true).allow_private(true),
    )
    .unwrap();
    let (mut c, _s) = start(server);
    c.initialize("2025-11-25").await;
    let page = c.ok("read_topic", json!({"topic": created.name})).await;
    let texts: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "application")
        .map(|e| e["payload"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["a secret"]);
    c.ok(
        "append",
        json!({"topic": created.name, "payload": "from an agent"}),
    )
    .await;
    let ev = core.iter_log(&log, 2).next().unwrap().unwrap();
    assert!(
        !ev.payload().windows(5).any(|w| w == b"agent"),
        "stored sealed"
    );
    assert_eq!(
        core.read_payload(&ev).unwrap(),
        xaeroflux::Payload::Decrypted(b"from an agent".to_vec())
    );
}
