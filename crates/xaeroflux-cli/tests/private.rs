// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Private topics from the command line: member keys, creating, members,
//! reading; and a relay process that carries a private topic between two
//! members without a plaintext byte in its files or its memory.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{json_lines, xf, xf_ok};

fn member_key(db: &Path) -> String {
    let id = json_lines(&xf_ok(db, &["id", "--json"]));
    id[0]["member_key"].as_str().unwrap().to_string()
}

#[test]
fn create_add_list_append_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let id = xf_ok(&a, &["id"]);
    let line = id.lines().find(|l| l.starts_with("member ")).unwrap();
    assert_eq!(line.len(), "member ".len() + 64, "{id}");
    let key_b = member_key(&b);

    let created = json_lines(&xf_ok(
        &a,
        &[
            "topic",
            "create",
            "--encrypted",
            "--title",
            "club",
            "--json",
        ],
    ));
    let name = created[0]["topic"].as_str().unwrap().to_string();
    assert!(name.starts_with("xfe1.") && name.len() == 31, "{name}");
    assert_eq!(created[0]["epoch"], 0);
    assert_eq!(created[0]["topic_id"].as_str().unwrap().len(), 64);
    // Plain topics are not created.
    assert!(!xf(&a, &["topic", "create"]).status.success());

    xf_ok(&a, &["members", "add", "--topic", &name, &key_b]);
    let members = json_lines(&xf_ok(&a, &["members", "--topic", &name, "--json"]));
    let keys: Vec<&str> = members
        .iter()
        .map(|m| m["member_key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&key_b.as_str()) && keys.contains(&member_key(&a).as_str()));
    assert!(members.iter().all(|m| m["since_epoch"] == 0));

    xf_ok(&a, &["append", "--topic", &name, "hello members"]);
    assert_eq!(xf_ok(&a, &["cat", "--topic", &name]), "hello members\n");
    let j = json_lines(&xf_ok(&a, &["cat", "--topic", &name, "--json"]));
    assert_eq!(j.len(), 1, "key changes are not content: {j:?}");
    assert_eq!(j[0]["encrypted"], true);
    assert_eq!(j[0]["readable"], true);
    assert_eq!(j[0]["payload_hex"], hex::encode("hello members"));
    // The leaf covers the sealed bytes: dump shows them, not the text.
    let dump = xf_ok(&a, &["dump", "--topic", &name, "--json"]);
    assert!(!dump.contains(&hex::encode("hello members")), "{dump}");
    // The text dump shows a member the plaintext.
    let text = xf_ok(&a, &["dump", "--topic", &name]);
    assert!(
        text.lines().any(|l| l.ends_with("  hello members")),
        "{text}"
    );
    // Plain topics get --json too, without the private fields.
    xf_ok(&a, &["append", "--topic", "plain", "open text"]);
    let j = json_lines(&xf_ok(&a, &["cat", "--topic", "plain", "--json"]));
    assert_eq!(j[0]["payload_hex"], hex::encode("open text"));
    assert!(j[0].get("encrypted").is_none());

    // Removing b: a new epoch. A non-controller cannot change members.
    xf_ok(&a, &["members", "remove", "--topic", &name, &key_b]);
    let out = xf(&b, &["members", "add", "--topic", &name, &key_b]);
    assert!(!out.status.success());
    // A store without the key shows the event as encrypted.
    let relay = dir.path().join("relay");
    xf_ok(&relay, &["init"]);
    let rot = xf_ok(&a, &["id", "--rotate-member-key", "--json"]);
    assert_ne!(json_lines(&rot)[0]["member_key"].as_str().unwrap(), keys[0]);
}

/// A running `xf node` and its output lines.
struct Node {
    child: Child,
    lines: Receiver<String>,
}

impl Node {
    fn start(db: &Path, topics: &[&str], peer: Option<&str>) -> (Self, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xf"));
        cmd.arg("--db").arg(db).arg("node");
        for t in topics {
            cmd.args(["--topic", t]);
        }
        if let Some(p) = peer {
            cmd.args(["--peer", p]);
        }
        let mut child = cmd
            .args(["--local-only", "--sync-interval", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(60)).unwrap();
        let ticket = first.strip_prefix("node ").unwrap().to_string();
        (Self { child, lines }, ticket)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `xf cat` on `db` until it shows `want`, bounded.
fn wait_cat(db: &Path, topic: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = xf(db, &["cat", "--topic", topic]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never showed {want}: {text}",
            db.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The forms a marker could take in bytes: raw, hex, and base64 at each of
/// the three alignments (the part that does not depend on neighbours).
fn forms(marker: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut out = vec![marker.as_bytes().to_vec(), hex::encode(marker).into_bytes()];
    for k in 0..3 {
        let b = base64::engine::general_purpose::STANDARD.encode(&marker.as_bytes()[k..]);
        let stable = (marker.len() - k) / 3 * 4;
        out.push(b.as_bytes()[..stable.saturating_sub(4)].to_vec());
    }
    out
}

fn holds(hay: &[u8], marker: &str) -> bool {
    forms(marker)
        .iter()
        .any(|f| f.len() >= 8 && hay.windows(f.len()).any(|w| w == f.as_slice()))
}

fn files_of(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for p in xaeroflux_testkit::files_under(dir) {
        if let Ok(b) = std::fs::read(&p) {
            all.extend_from_slice(&b);
        }
    }
    all
}

/// Every readable mapping of a process's memory.
fn memory_of(pid: u32) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut all = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.contains("[vvar") || line.contains("[vsyscall") {
            continue;
        }
        let (s, e) = range.split_once('-').unwrap();
        let (s, e) = (
            u64::from_str_radix(s, 16).unwrap(),
            u64::from_str_radix(e, 16).unwrap(),
        );
        if e - s > 1 << 30 {
            continue;
        }
        let mut buf = vec![0u8; (e - s) as usize];
        if mem.seek(SeekFrom::Start(s)).is_ok() && mem.read_exact(&mut buf).is_ok() {
            all.extend_from_slice(&buf);
        }
    }
    all
}

#[test]
fn a_relay_process_carries_a_private_topic_blind() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, relay) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("relay"),
    );
    let name = xf_ok(
        &a,
        &[
            "topic",
            "create",
            "--encrypted",
            "--title",
            "hidden-title-31337",
        ],
    )
    .trim()
    .to_string();
    xf_ok(&a, &["members", "add", "--topic", &name, &member_key(&b)]);
    let mut rng = common::rng();
    let marker = |who: &str, rng: &mut xaeroflux_testkit::Rng| {
        format!("{who}-{:016x}{:016x}", rng.next_u64(), rng.next_u64())
    };
    let (m_a, m_b, m_plain) = (
        marker("ma", &mut rng),
        marker("mb", &mut rng),
        marker("mp", &mut rng),
    );

    let (relay_node, ticket) = Node::start(&relay, &[&name, "plain"], None);
    let (_na, _) = Node::start(&a, &[&name, "plain"], Some(&ticket));
    let (_nb, _) = Node::start(&b, &[&name, "plain"], Some(&ticket));
    // Appends go to the running nodes, whose writers seal them.
    xf_ok(&a, &["append", "--topic", &name, &m_a]);
    wait_cat(&b, &name, &m_a);
    xf_ok(&b, &["append", "--topic", &name, &m_b]);
    wait_cat(&a, &name, &m_b);
    xf_ok(&a, &["append", "--topic", "plain", &m_plain]);
    wait_cat(&b, "plain", &m_plain);
    // The relay holds both logs and reads neither.
    let cat = xf_ok(&relay, &["cat", "--topic", &name]);
    assert!(
        cat.lines()
            .filter(|l| l.starts_with("<encrypted: epoch 0"))
            .count()
            >= 2,
        "{cat}"
    );
    let _ = relay_node.lines.try_recv();

    let files = files_of(&relay);
    let memory = memory_of(relay_node.child.id());
    assert!(
        memory.len() > 1 << 20,
        "read {} bytes of the relay's memory",
        memory.len()
    );
    for m in [&m_a, &m_b, &"hidden-title-31337".to_string()] {
        assert!(!holds(&files, m), "the relay's files hold {m}");
        assert!(!holds(&memory, m), "the relay's memory holds {m}");
    }
    // The same scans find what a plain topic carried through it.
    assert!(
        holds(&files, &m_plain),
        "the file scan finds nothing at all"
    );
    assert!(
        holds(&memory, &m_plain),
        "the memory scan finds nothing at all"
    );
    let verify = xf(&relay, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Every envelope nonce in the raw segment files, with the 32 bytes that
/// follow it, torn slots included: an
/// epoch-0 envelope starts with its version and epoch (`01` and eight
/// zero bytes), then 24 nonce bytes. An envelope lies within one page, so
/// a match that runs over a page boundary is not one: the zero padding at
/// the end of a page, then the next page's header (its magic and its log
/// id, the same in every page of the log), matched that way before.
fn raw_nonces(db: &Path) -> Vec<([u8; 24], Vec<u8>)> {
    const PAGE: usize = 16 * 1024; // the default page size, which this store has
    let mut out = Vec::new();
    let head = [1u8, 0, 0, 0, 0, 0, 0, 0, 0];
    for e in std::fs::read_dir(db.join("segments")).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let mut i = 0;
        while i + 9 + 24 <= bytes.len() {
            let one_page = i / PAGE == (i + 9 + 24 - 1) / PAGE;
            if one_page && bytes[i..i + 9] == head {
                // The nonce, and the ciphertext's first bytes after it.
                let after = bytes[i + 33..(i + 33 + 32).min(bytes.len())].to_vec();
                out.push((bytes[i + 9..i + 33].try_into().unwrap(), after));
                i += 33;
            } else {
                i += 1;
            }
        }
    }
    out
}

#[test]
fn nonces_never_repeat_across_kill_9() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let name = xf_ok(&db, &["topic", "create", "--encrypted"])
        .trim()
        .to_string();
    let mut rng = common::rng();
    let rounds = 30;
    for round in 0..rounds {
        let mut child = common::spawn_lines(&db, &name);
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            for i in 0..100_000u32 {
                if writeln!(stdin, "round {round} line {i}").is_err() {
                    return;
                }
            }
        });
        // Kill at a random point, without waiting for anything.
        std::thread::sleep(Duration::from_millis(5 + rng.next_u64() % 60));
        child.kill().unwrap();
        child.wait().unwrap();
        feeder.join().unwrap();
    }
    // Recovery keeps what was durable; every nonce on disk is unique.
    let verify = xf(&db, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let nonces = raw_nonces(&db);
    let readable = xf_ok(&db, &["cat", "--topic", &name]).lines().count();
    assert!(
        readable > rounds,
        "only {readable} events survived {rounds} kills"
    );
    assert!(
        nonces.len() >= readable,
        "{} nonces for {readable} events",
        nonces.len()
    );
    // A nonce is reused when it seals two different envelopes. The same
    // bytes twice (a slot written again after a kill, or a pattern in page
    // structure that happens to look like an envelope's head) are not a
    // reuse: compare what follows each nonce.
    let mut sealed: std::collections::HashMap<[u8; 24], Vec<u8>> = Default::default();
    for (nonce, after) in &nonces {
        let first = sealed.entry(*nonce).or_insert_with(|| after.clone());
        assert_eq!(
            first,
            after,
            "nonce {} seals two envelopes",
            hex::encode(nonce)
        );
    }
    // And every event the store kept opens.
    let cat = xf_ok(&db, &["cat", "--topic", &name]);
    assert!(
        !cat.contains("<encrypted") && !cat.contains("<refused"),
        "{cat}"
    );
}
