//! A mesh of real `xf node` processes on 127.0.0.1 (local-only: nothing
//! leaves the machine), shared by the mesh test and the mesh benchmark.
//!
//! Each node appends to one topic, then runs with 1 to 3 peers of a random
//! connected topology (from a printed seed). Once all hold the same logs
//! and roots, a third of them are killed with SIGKILL, the others append
//! again through their running nodes, the killed ones restart on their
//! directories, and all converge again. The report has both times to
//! converge and, for every node that ran through, the bytes it received
//! and sent (the node's own totals, printed when it closes) against the
//! ideal: each event of another author received once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Nodes (processes).
    pub nodes: usize,
    /// Events each node appends in each of the two rounds.
    pub events: usize,
    /// Payload bytes of each event.
    pub payload: usize,
    /// Seed of the topology and of who is killed.
    pub seed: u64,
    /// Longest each convergence may take.
    pub bound: Duration,
}

/// Bytes one node moved over the whole run.
#[derive(Debug, Clone, Copy)]
pub struct NodeBytes {
    pub node: usize,
    pub sessions: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub events_in: u64,
    /// Events that arrived in pages (held already or not).
    pub events_received: u64,
    /// Each event of another author once, in bytes.
    pub ideal_in: u64,
    /// Events of other authors.
    pub ideal_events: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub first: Duration,
    pub second: Duration,
    pub killed: Vec<usize>,
    /// The nodes that were never killed (their totals cover the run).
    pub survivors: Vec<NodeBytes>,
}

impl Report {
    /// Events that arrived in pages over those the survivors needed:
    /// 1.0 when no page crossed the network twice.
    pub fn page_redundancy(&self) -> f64 {
        let got: u64 = self.survivors.iter().map(|n| n.events_received).sum();
        let ideal: u64 = self.survivors.iter().map(|n| n.ideal_events).sum();
        got as f64 / ideal.max(1) as f64
    }

    /// Mean bytes received per surviving node over the ideal.
    pub fn ratio(&self) -> f64 {
        let got: u64 = self.survivors.iter().map(|n| n.bytes_in).sum();
        let ideal: u64 = self.survivors.iter().map(|n| n.ideal_in).sum();
        got as f64 / ideal.max(1) as f64
    }

    /// Prints the figures.
    pub fn print(&self, cfg: &Config) {
        eprintln!(
            "mesh of {} xf node processes (seed {}): {} events of {} bytes each, twice; converged in {:.2} s; after SIGKILL of {:?} and more appends, again in {:.2} s",
            cfg.nodes,
            cfg.seed,
            cfg.events,
            cfg.payload,
            self.first.as_secs_f64(),
            self.killed,
            self.second.as_secs_f64()
        );
        eprintln!(
            "{:>5} {:>9} {:>11} {:>11} {:>10} {:>9} {:>11} {:>7}",
            "node",
            "sessions",
            "bytes in",
            "bytes out",
            "events in",
            "received",
            "ideal in",
            "ratio"
        );
        for n in &self.survivors {
            eprintln!(
                "{:>5} {:>9} {:>11} {:>11} {:>10} {:>9} {:>11} {:>6.2}x",
                n.node,
                n.sessions,
                n.bytes_in,
                n.bytes_out,
                n.events_in,
                n.events_received,
                n.ideal_in,
                n.bytes_in as f64 / n.ideal_in.max(1) as f64
            );
        }
        eprintln!(
            "bytes received per surviving node against the ideal: {:.2}x; events that arrived in pages over those needed: {:.3}x",
            self.ratio(),
            self.page_redundancy()
        );
    }
}

struct Node {
    dir: PathBuf,
    listen: String,
    peers: Vec<String>,
    child: Option<Child>,
}

/// A free UDP port on 127.0.0.1 for each node, reserved until they start.
fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().expect("bound").port())
        .collect()
}

/// 1 to 3 peers each, connected: node i > 0 knows a random earlier node.
fn topology(rng: &mut xaeroflux_testkit::Rng, n: usize) -> Vec<Vec<usize>> {
    let mut links = vec![Vec::new(); n];
    for (i, l) in links.iter_mut().enumerate() {
        if i > 0 {
            l.push(rng.below(i as u64) as usize);
        }
        for _ in 0..rng.below(3) {
            let j = rng.below(n as u64) as usize;
            if j != i && !l.contains(&j) && l.len() < 3 {
                l.push(j);
            }
        }
        if l.is_empty() {
            l.push((i + 1) % n);
        }
    }
    links
}

fn xf(xf: &Path, dir: &Path) -> Command {
    let mut c = Command::new(xf);
    c.arg("--db").arg(dir);
    c
}

/// Appends `n` events of `payload` bytes (`xf append --lines`, through the
/// running node when there is one), in parallel on every node of `who`.
fn append_all(bin: &Path, nodes: &[Node], who: &[usize], round: usize, n: usize, payload: usize) {
    let children: Vec<Child> = who
        .iter()
        .map(|&i| {
            let mut c = xf(bin, &nodes[i].dir)
                .args(["append", "--topic", "chat", "--lines"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn xf append");
            let mut stdin = c.stdin.take().expect("stdin");
            for e in 0..n {
                let mut line = format!("node {i:03} round {round} event {e:05} ");
                while line.len() < payload {
                    line.push('x');
                }
                writeln!(stdin, "{line}").expect("write a line");
            }
            drop(stdin);
            c
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("xf append").success(), "xf append failed");
    }
}

/// Starts a node; returns its first line (`node TICKET`) through `ready`.
fn spawn_node(bin: &Path, node: &mut Node, ready: &mpsc::Sender<(String, String)>) {
    let mut child = xf(bin, &node.dir)
        .args([
            "node",
            "--topic",
            "chat",
            "--local-only",
            "--listen",
            &node.listen,
            "--backend",
            "iroh",
            "--backend",
            "iroh-gossip",
            "--sync-interval",
            "10",
        ])
        .args(node.peers.iter().flat_map(|p| ["--peer", p.as_str()]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xf node");
    let out = child.stdout.take().expect("stdout");
    let tx = ready.clone();
    let listen = node.listen.clone();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send((listen, first));
        }
        // The rest (sync events) is read and dropped, so the pipe never
        // fills.
        for _ in lines {}
    });
    node.child = Some(child);
}

/// Stops a node with SIGTERM; returns its totals line from stderr.
fn stop(node: &mut Node) -> Option<String> {
    let mut child = node.child.take()?;
    // SAFETY: plain kill(2) on a child we started and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().expect("wait xf node");
    assert!(status.success(), "xf node exited {status:?}: {err}");
    err.lines()
        .find(|l| l.starts_with("xf node: totals "))
        .map(str::to_string)
}

/// A value of the totals line `xf node: totals key=value ...`.
fn total(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// Each node's chat logs: log -> (size, root).
fn heads(bin: &Path, dir: &Path, topic: &str) -> BTreeMap<String, (u64, String)> {
    let out = xf(bin, dir)
        .args(["logs", "--json"])
        .output()
        .expect("xf logs");
    if !out.status.success() {
        return BTreeMap::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["topic_id"].as_str() == Some(topic))
        .map(|v| {
            (
                v["log"].as_str().unwrap_or_default().to_string(),
                (
                    v["size"].as_u64().unwrap_or(0),
                    v["root"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// Waits until every node holds `want` logs of `size_of(author node)`
/// events with the same roots; the time it took.
fn converge(bin: &Path, nodes: &[Node], topic: &str, sizes: &[u64], bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let all: Vec<_> = nodes.iter().map(|n| heads(bin, &n.dir, topic)).collect();
        let first = &all[0];
        let sizes_ok = {
            let mut got: Vec<u64> = first.values().map(|h| h.0).collect();
            let mut want = sizes.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            got == want
        };
        if sizes_ok && all.iter().all(|h| h == first) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "no convergence in {bound:?}: {} nodes agree with node 0",
            all.iter().filter(|h| *h == first).count()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs the whole scenario.
pub fn run(bin: &Path, cfg: &Config) -> Report {
    let root = tempfile::tempdir().expect("tempdir");
    let n = cfg.nodes;
    let ports = free_ports(n);
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            dir: root.path().join(format!("n{i:03}")),
            listen: format!("127.0.0.1:{}", ports[i]),
            peers: Vec::new(),
            child: None,
        })
        .collect();
    let all: Vec<usize> = (0..n).collect();
    append_all(bin, &nodes, &all, 1, cfg.events, cfg.payload);
    // The topic id, from a receipt-free source: the first log listed.
    let topic = {
        let out = xf(bin, &nodes[0].dir)
            .args(["logs", "--json"])
            .output()
            .expect("xf logs");
        let v: serde_json::Value = serde_json::from_str(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .expect("a log"),
        )
        .expect("JSON");
        v["topic_id"].as_str().expect("topic_id").to_string()
    };
    // Learn each node's ticket (its endpoint key is made at first start).
    let (tx, rx) = mpsc::channel();
    for node in nodes.iter_mut() {
        spawn_node(bin, node, &tx);
    }
    let mut tickets = BTreeMap::new();
    for _ in 0..n {
        let (listen, line) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a node started");
        let t = line.strip_prefix("node ").expect("node TICKET").to_string();
        tickets.insert(listen, t);
    }
    for node in nodes.iter_mut() {
        stop(node);
    }
    let mut rng = xaeroflux_testkit::Rng::new(cfg.seed);
    let links = topology(&mut rng, n);
    for (i, l) in links.iter().enumerate() {
        nodes[i].peers = l
            .iter()
            .map(|&j| tickets[&nodes[j].listen].clone())
            .collect();
    }
    // Round one: every node runs with its peers.
    for node in nodes.iter_mut() {
        spawn_node(bin, node, &tx);
    }
    for _ in 0..n {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a node started");
    }
    let mut sizes = vec![cfg.events as u64; n];
    let first = converge(bin, &nodes, &topic, &sizes, cfg.bound);
    // A third are killed; the rest append through their running nodes.
    let mut killed: Vec<usize> = Vec::new();
    while killed.len() < n / 3 {
        let k = rng.below(n as u64) as usize;
        if !killed.contains(&k) {
            killed.push(k);
        }
    }
    killed.sort_unstable();
    for &k in &killed {
        let mut c = nodes[k].child.take().expect("running");
        c.kill().expect("SIGKILL");
        let _ = c.wait();
    }
    let survivors: Vec<usize> = (0..n).filter(|i| !killed.contains(i)).collect();
    append_all(bin, &nodes, &survivors, 2, cfg.events, cfg.payload);
    for &s in &survivors {
        sizes[s] += cfg.events as u64;
    }
    for &k in &killed {
        spawn_node(bin, &mut nodes[k], &tx);
    }
    for _ in &killed {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a node restarted");
    }
    let second = converge(bin, &nodes, &topic, &sizes, cfg.bound);
    // Every node verifies beside its running node (a read-only open).
    for node in &nodes {
        let out = xf(bin, &node.dir)
            .args(["verify"])
            .output()
            .expect("xf verify");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let event_bytes = (xaeroflux::store::EVENT_HEADER_LEN + cfg.payload) as u64;
    let all_bytes: u64 = sizes.iter().sum::<u64>() * event_bytes;
    let mut bytes = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        let line = stop(node).expect("the node's totals");
        if killed.contains(&i) {
            continue;
        }
        bytes.push(NodeBytes {
            node: i,
            sessions: total(&line, "sessions"),
            bytes_in: total(&line, "bytes_in"),
            bytes_out: total(&line, "bytes_out"),
            events_in: total(&line, "events_in"),
            events_received: total(&line, "events_received"),
            ideal_in: all_bytes - sizes[i] * event_bytes,
            ideal_events: sizes.iter().sum::<u64>() - sizes[i],
        });
    }
    Report {
        first,
        second,
        killed,
        survivors: bytes,
    }
}
