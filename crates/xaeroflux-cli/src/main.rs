//! `xf`: create, fill, read, prove and verify Xaeroflux stores.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use xaeroflux::merkle::{Checkpoint, NoteVerifier, verify_consistency, verify_inclusion};
use xaeroflux::sync;
use xaeroflux::{
    Core, EventKind, Filter, LogId, NewEvent, Receipt, Since, Store, StoreOptions, Topic,
};

#[derive(Parser)]
#[command(
    name = "xf",
    version,
    about = "Xaeroflux: a verifiable, append-only event store"
)]
struct Cli {
    /// Store directory (default: the per-user data directory).
    #[arg(long, global = true, value_name = "DIR")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the store and its identity.
    Init,
    /// Print the author key and the verifier keys of the store's own logs.
    Id {
        /// Also print the verifier key of this topic's log.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Append events to the store's own log in a topic.
    Append(AppendArgs),
    /// List the logs.
    Logs {
        /// One JSON object per log.
        #[arg(long)]
        json: bool,
    },
    /// Print every event of a log.
    Dump {
        #[command(flatten)]
        log: LogArg,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
    },
    /// Print the payloads of a topic view, one per line.
    Cat {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Then print new events as they are committed, until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
    /// Print a log's signed checkpoint (a C2SP signed note).
    Checkpoint {
        #[command(flatten)]
        log: LogArg,
    },
    /// Print an inclusion or consistency proof.
    Prove {
        #[command(subcommand)]
        what: Prove,
    },
    /// Check every page, record, tree root and checkpoint signature.
    Verify,
    /// Rebuild the index from the segments (the damaged index is kept aside).
    Repair,
    /// Print the store's sizes.
    Stat {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answer XSP sync sessions on a TCP address until interrupted; one
    /// line per session.
    Serve {
        /// Address to listen on, such as 127.0.0.1:7411.
        #[arg(long, value_name = "ADDR")]
        tcp: String,
    },
    /// Run one XSP sync session with a peer and print what moved.
    Sync {
        /// The peer's address.
        #[arg(long, value_name = "ADDR")]
        tcp: String,
        /// Only these topics (repeatable; default: every topic either side holds).
        #[arg(long = "topic", value_name = "NAME")]
        topics: Vec<String>,
        /// Seconds the peer may stay silent.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// List the fork proofs kept: logs whose author signed two heads that
    /// disagree, as presented by peers during sync.
    Forks {
        /// One JSON object per fork.
        #[arg(long)]
        json: bool,
    },
    /// Run a node in the foreground: join topics over iroh, sync with
    /// peers, serve appends from `xf append` on the same store. Prints
    /// `node <ticket>`, then one line per sync event.
    Node(NodeArgs),
    /// Run the demo: three nodes on loopback converge on a shared topic.
    Demo,
}

#[derive(Args)]
struct NodeArgs {
    /// A topic to join (repeatable).
    #[arg(long = "topic", value_name = "NAME", required = true)]
    topics: Vec<String>,
    /// A peer: an iroh ticket, ID@IP:PORT, or an endpoint id (repeatable).
    #[arg(long = "peer", value_name = "TICKET_OR_ID@ADDR")]
    peers: Vec<String>,
    /// Bind only --listen, with relays, address lookup and port mapping
    /// off (for tests and LAN use).
    #[arg(long)]
    local_only: bool,
    /// Address to bind in the local-only mode.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "local_only",
        default_value = "127.0.0.1:0"
    )]
    listen: std::net::SocketAddr,
    /// Sync backends to run.
    #[arg(long = "backend", value_name = "NAME", default_values_t = ["iroh".to_string(), "iroh-gossip".to_string(), "iroh-blob".to_string()])]
    backends: Vec<String>,
    /// Seconds between syncs with every known peer, besides gossip.
    #[arg(long, default_value_t = 30)]
    sync_interval: u64,
}

#[derive(Args)]
struct AppendArgs {
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Event kind.
    #[arg(long, default_value = "application")]
    kind: String,
    /// Payload, as text.
    #[arg(conflicts_with_all = ["file", "lines"])]
    data: Option<String>,
    /// Read the payload from a file.
    #[arg(long, conflicts_with = "lines")]
    file: Option<PathBuf>,
    /// Append each line of standard input as one event.
    #[arg(long)]
    lines: bool,
    /// Fast mode: report each event once written and indexed, before it is
    /// synced (a process crash loses nothing; a power loss may lose the
    /// last moments).
    #[arg(long)]
    fast: bool,
}

#[derive(Args)]
struct LogArg {
    /// Log as AUTHOR_HEX/TOPIC_ID_HEX.
    #[arg(long, conflicts_with = "topic")]
    log: Option<String>,
    /// The store's own log in this topic.
    #[arg(long)]
    topic: Option<String>,
}

#[derive(Subcommand)]
enum Prove {
    /// RFC 9162 audit path of one event.
    Inclusion {
        #[command(flatten)]
        log: LogArg,
        /// The event's seq.
        #[arg(long)]
        seq: u64,
        /// Tree size (default: the log's size).
        #[arg(long)]
        size: Option<u64>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// RFC 9162 consistency proof between two sizes.
    Consistency {
        #[command(flatten)]
        log: LogArg,
        /// Older size.
        #[arg(long)]
        from: u64,
        /// Newer size (default: the log's size).
        #[arg(long)]
        to: Option<u64>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

fn default_db() -> Result<PathBuf> {
    let base =
        dirs::data_dir().ok_or_else(|| anyhow!("no per-user data directory; pass --db DIR"))?;
    Ok(base.join("xaeroflux"))
}

/// Sessions `xf serve` runs at once, at most.
const MAX_SESSIONS: usize = 32;

/// One line for a session's outcome.
fn describe(r: &Result<sync::Outcome, sync::SyncError>) -> String {
    match r {
        Ok(o) => format!(
            "ok: pulled {} events in {} logs ({} pages), served {} events ({} pages), {} bytes in, {} bytes out, {} topics{}",
            o.events_in,
            o.logs_in,
            o.pages_in,
            o.events_out,
            o.pages_out,
            o.bytes_in,
            o.bytes_out,
            o.topics,
            if o.forks.is_empty() {
                String::new()
            } else {
                format!(", {} forked logs refused", o.forks.len())
            }
        ),
        Err(e) => format!("failed: {e}"),
    }
}

fn open_rw(db: &Path) -> Result<Store> {
    Store::open(db, StoreOptions::default()).with_context(|| format!("opening {}", db.display()))
}

fn open_ro(db: &Path) -> Result<Store> {
    let opts = StoreOptions {
        read_only: true,
        ..StoreOptions::default()
    };
    Store::open(db, opts).with_context(|| format!("opening {} to read", db.display()))
}

fn resolve_log(store: &Store, arg: &LogArg) -> Result<LogId> {
    match (&arg.log, &arg.topic) {
        (Some(l), _) => Ok(l.parse()?),
        (None, Some(t)) => Ok(store.own_log(&Topic::new(t)?)),
        (None, None) => bail!("name a log with --log AUTHOR_HEX/TOPIC_ID_HEX or --topic NAME"),
    }
}

fn hx(h: &[u8]) -> String {
    hex::encode(h)
}

fn receipt_json(r: &Receipt) -> serde_json::Value {
    json!({
        "log": r.log.to_string(),
        "seq": r.seq,
        "leaf_hash": hx(&r.leaf_hash),
        "size": r.size,
        "root": hx(&r.root),
    })
}

/// An error and its chain of causes on one line.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn hashes(hs: &[[u8; 32]]) -> serde_json::Value {
    serde_json::Value::Array(hs.iter().map(|h| json!(hx(h))).collect())
}

/// Prints one record: a JSON object on one line, or aligned `key value`
/// lines (one line per element of an array).
fn emit(out: &mut impl Write, json: bool, fields: &[(&str, serde_json::Value)]) -> Result<()> {
    use serde_json::Value;
    if json {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        writeln!(out, "{}", Value::Object(map))?;
        return Ok(());
    }
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        match v {
            Value::Array(items) => {
                for item in items {
                    writeln!(out, "{k:<w$} {}", plain(item))?;
                }
            }
            _ => writeln!(out, "{k:<w$} {}", plain(v))?,
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("xf: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Cmd::Demo = cli.cmd {
        return demo();
    }
    let db = match cli.db {
        Some(d) => d,
        None => default_db()?,
    };
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    match cli.cmd {
        Cmd::Demo => unreachable!("handled above"),
        Cmd::Init => {
            let store = open_rw(&db)?;
            writeln!(out, "store  {}", db.display())?;
            writeln!(out, "author {}", hx(&store.author()))?;
            store.close()?;
        }
        Cmd::Id { topic } => {
            let store = open_ro(&db)?;
            writeln!(out, "author {}", hx(&store.author()))?;
            let mut topics: Vec<(String, xaeroflux::TopicId)> = Vec::new();
            if let Some(t) = topic {
                let t = Topic::new(&t)?;
                topics.push((t.name().to_string(), t.id()));
            }
            for l in store.logs()? {
                if l.log.author == store.author()
                    && !topics.iter().any(|(_, id)| *id == l.log.topic)
                {
                    topics.push((
                        l.topic_name.unwrap_or_else(|| l.log.topic.to_string()),
                        l.log.topic,
                    ));
                }
            }
            for (name, id) in topics {
                writeln!(out, "verifier {} {}", name, store.verifier_key(&id))?;
            }
        }
        Cmd::Append(a) => append(&db, a, &mut out)?,
        Cmd::Node(a) => node(&db, a, &mut out)?,
        Cmd::Logs { json } => {
            let store = open_ro(&db)?;
            for l in store.logs()? {
                if json {
                    let v = json!({
                        "log": l.log.to_string(),
                        "author": hx(&l.log.author),
                        "topic_id": l.log.topic.to_string(),
                        "topic": l.topic_name,
                        "size": l.size,
                        "root": hx(&l.root),
                    });
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(
                        out,
                        "{}  {:>10}  {}  {}",
                        l.log,
                        l.size,
                        hx(&l.root),
                        l.topic_name.unwrap_or_default()
                    )?;
                }
            }
        }
        Cmd::Dump { log, json } => {
            let store = open_ro(&db)?;
            let id = resolve_log(&store, &log)?;
            for ev in store.iter_log(&id, 0)? {
                let ev = ev?;
                if json {
                    let v = json!({
                        "seq": ev.seq(),
                        "timestamp_ms": ev.timestamp_ms(),
                        "kind": ev.kind().as_str(),
                        "leaf_hash": hx(&ev.leaf_hash()),
                        "bytes_hex": hx(ev.canonical_bytes()),
                        "payload_hex": hx(ev.payload()),
                    });
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(
                        out,
                        "{:>8}  {}  {:<11}  {}",
                        ev.seq(),
                        ev.timestamp_ms(),
                        ev.kind().as_str(),
                        String::from_utf8_lossy(ev.payload())
                    )?;
                }
            }
        }
        Cmd::Cat { topic, follow } => {
            let store = open_ro(&db)?;
            let topic = Topic::new(&topic)?;
            // Listen before reading the history: what is committed in
            // between comes both ways and is printed once.
            let mut live = if follow {
                Some(store.subscribe(Filter::topic(&topic), Since::Now)?)
            } else {
                None
            };
            let mut printed: HashMap<LogId, u64> = HashMap::new();
            for ev in store.iter_topic(&topic)? {
                let ev = ev?;
                printed.insert(ev.log_id(), ev.seq() + 1);
                out.write_all(ev.payload())?;
                out.write_all(b"\n")?;
            }
            if let Some(sub) = live.as_mut() {
                out.flush()?;
                while let Some(ev) = sub.recv() {
                    let ev = ev?;
                    if printed.get(&ev.log).is_some_and(|n| ev.seq < *n) {
                        continue;
                    }
                    out.write_all(&ev.payload)?;
                    out.write_all(b"\n")?;
                    out.flush()?;
                }
            }
        }
        Cmd::Checkpoint { log } => {
            // Opened for writing when free, so the signed note is also kept;
            // read-only beside a running writer.
            let store = match open_rw(&db) {
                Ok(s) => s,
                Err(_) => open_ro(&db)?,
            };
            let id = resolve_log(&store, &log)?;
            write!(out, "{}", store.checkpoint(&id)?.note)?;
        }
        Cmd::Prove { what } => {
            let store = open_ro(&db)?;
            match what {
                Prove::Inclusion {
                    log,
                    seq,
                    size,
                    json,
                } => {
                    let id = resolve_log(&store, &log)?;
                    let size = match size {
                        Some(s) => s,
                        None => store.log_size(&id)?,
                    };
                    let p = store.prove_inclusion(&id, seq, size)?;
                    let fields = [
                        ("log", json!(id.to_string())),
                        ("index", json!(p.index)),
                        ("size", json!(p.size)),
                        ("leaf_hash", json!(hx(&p.leaf_hash))),
                        ("root", json!(hx(&p.root))),
                        ("path", hashes(&p.path)),
                    ];
                    emit(&mut out, json, &fields)?;
                }
                Prove::Consistency {
                    log,
                    from,
                    to,
                    json,
                } => {
                    let id = resolve_log(&store, &log)?;
                    let to = match to {
                        Some(t) => t,
                        None => store.log_size(&id)?,
                    };
                    let p = store.prove_consistency(&id, from, to)?;
                    let fields = [
                        ("log", json!(id.to_string())),
                        ("from", json!(p.old_size)),
                        ("to", json!(p.new_size)),
                        ("old_root", json!(hx(&p.old_root))),
                        ("new_root", json!(hx(&p.new_root))),
                        ("path", hashes(&p.path)),
                    ];
                    emit(&mut out, json, &fields)?;
                }
            }
        }
        Cmd::Verify => {
            let store = open_ro(&db)?;
            let r = store.verify()?;
            writeln!(
                out,
                "checked {} logs, {} pages ({} sealed, page-tree roots recomputed), {} events, {} index chunks, {} log roots, {} checkpoint signatures",
                r.logs, r.pages, r.sealed_pages, r.events, r.chunks, r.roots, r.checkpoints
            )?;
            out.flush()?;
            if !r.is_ok() {
                for p in &r.problems {
                    eprintln!("corrupt: {}", with_causes(p));
                }
                bail!("{} problem(s) found", r.problems.len());
            }
            writeln!(out, "ok")?;
        }
        Cmd::Repair => {
            let (store, moved) = Store::repair(&db, StoreOptions::default())
                .with_context(|| format!("repairing {}", db.display()))?;
            let s = store.stat()?;
            writeln!(
                out,
                "rebuilt the index from {} events in {} logs ({} pages)",
                store.recovered_events(),
                s.logs,
                s.pages
            )?;
            if let Some(p) = moved {
                writeln!(out, "the previous index is kept at {}", p.display())?;
            }
            let r = store.verify()?;
            if !r.is_ok() {
                for p in &r.problems {
                    eprintln!("corrupt: {}", with_causes(p));
                }
                bail!("{} problem(s) remain after the rebuild", r.problems.len());
            }
            writeln!(out, "verified: ok")?;
            store.close()?;
        }
        Cmd::Serve { tcp } => {
            let store = open_rw(&db)?;
            let listener =
                std::net::TcpListener::bind(&tcp).with_context(|| format!("listening on {tcp}"))?;
            writeln!(
                out,
                "serving {} on {}",
                db.display(),
                listener.local_addr()?
            )?;
            out.flush()?;
            // This thread holds stdout: it prints what the sessions report,
            // while another accepts connections (one thread per session).
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            let active = AtomicUsize::new(0);
            std::thread::scope(|s| -> Result<()> {
                let store = &store;
                let active = &active;
                s.spawn(move || {
                    for conn in listener.incoming() {
                        let conn = match conn {
                            Ok(c) => c,
                            Err(e) => {
                                let _ = tx.send(format!("accept failed: {e}"));
                                continue;
                            }
                        };
                        let peer = conn
                            .peer_addr()
                            .map(|a| a.to_string())
                            .unwrap_or_else(|_| "?".into());
                        // Bounded: a flood of connections must not become a
                        // flood of threads.
                        if active.load(Ordering::Acquire) >= MAX_SESSIONS {
                            let _ = tx.send(format!(
                                "session {peer}: refused: {MAX_SESSIONS} sessions already running"
                            ));
                            drop(conn);
                            continue;
                        }
                        active.fetch_add(1, Ordering::AcqRel);
                        let tx = tx.clone();
                        s.spawn(move || {
                            let r = sync::driver::run_tcp(
                                store,
                                sync::SessionConfig::default(),
                                conn,
                                std::time::Duration::from_secs(30),
                            );
                            let _ = tx.send(format!("session {peer}: {}", describe(&r)));
                            active.fetch_sub(1, Ordering::AcqRel);
                        });
                    }
                });
                for line in rx {
                    writeln!(out, "{line}")?;
                    out.flush()?;
                }
                Ok(())
            })?;
        }
        Cmd::Sync {
            tcp,
            topics,
            timeout,
        } => {
            let store = open_rw(&db)?;
            let topics = topics
                .iter()
                .map(|t| Topic::new(t))
                .collect::<Result<Vec<_>, _>>()?;
            let conn = std::net::TcpStream::connect(&tcp)
                .with_context(|| format!("connecting to {tcp}"))?;
            let r = sync::driver::run_tcp(
                &store,
                sync::SessionConfig::default().with_topics(topics),
                conn,
                std::time::Duration::from_secs(timeout.max(1)),
            );
            writeln!(out, "{}", describe(&r))?;
            out.flush()?;
            store.close()?;
            if let Err(e) = r {
                bail!("sync with {tcp} failed: {e}");
            }
        }
        Cmd::Forks { json } => {
            let store = open_ro(&db)?;
            for f in store.forks()? {
                let proven = f.verify().unwrap_or(false);
                let verifier = NoteVerifier::new(&f.log.origin(), &f.log.author)?;
                let size_of = |note: &str| {
                    verifier
                        .verify_checkpoint(note)
                        .map(|c| c.size)
                        .unwrap_or_default()
                };
                let (ours, theirs) = (size_of(&f.ours), size_of(&f.theirs));
                if json {
                    writeln!(
                        out,
                        "{}",
                        json!({
                            "log": f.log.to_string(),
                            "our_size": ours,
                            "their_size": theirs,
                            "at": f.at,
                            "proven": proven,
                            "ours": f.ours,
                            "theirs": f.theirs,
                        })
                    )?;
                } else {
                    writeln!(
                        out,
                        "{} ours at {ours}, theirs at {theirs}: {}",
                        f.log,
                        if proven {
                            "proven fork"
                        } else {
                            "two heads, not proven"
                        }
                    )?;
                }
            }
        }
        Cmd::Stat { json } => {
            let store = open_ro(&db)?;
            let s = store.stat()?;
            let fields = [
                ("logs", json!(s.logs)),
                ("events", json!(s.events)),
                ("segments", json!(s.segments)),
                ("pages", json!(s.pages)),
                ("sealed_pages", json!(s.sealed_pages)),
                ("segment_bytes", json!(s.segment_bytes)),
                ("index_bytes", json!(s.index_bytes)),
                ("page_size", json!(s.page_size)),
                ("segment_pages", json!(s.segment_pages)),
            ];
            emit(&mut out, json, &fields)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn append(db: &Path, a: AppendArgs, out: &mut impl Write) -> Result<()> {
    let kind: EventKind = a.kind.parse()?;
    let topic = Topic::new(&a.topic)?;
    let durability = if a.fast {
        xaeroflux::Durability::Fast
    } else {
        xaeroflux::Durability::Durable
    };
    let store = match Store::open(
        db,
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    ) {
        Ok(s) => s,
        // A node runs on this store: hand the events to it.
        Err(xaeroflux::StoreError::Locked { .. })
            if xaeroflux::net::handoff::socket_path(db).exists() =>
        {
            return append_via_node(db, a, &topic, kind, out);
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", db.display())),
    };
    if a.lines {
        // A reader thread hands each line to the writer as it arrives; this
        // thread prints each receipt once that event is durable. Lines that
        // arrive together are group-committed.
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1024);
            let store = &store;
            let topic = &topic;
            let reader = s.spawn(move || -> Result<()> {
                let stdin = std::io::stdin();
                let mut input = stdin.lock();
                while let Some(line) = next_line(&mut input)? {
                    let pending = store.submit(NewEvent::new(topic, kind, line))?;
                    if tx.send(pending).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            for pending in rx {
                let r = pending.wait()?;
                writeln!(out, "{}", receipt_json(&r))?;
                out.flush()?;
            }
            reader
                .join()
                .map_err(|_| anyhow!("stdin reader panicked"))??;
            Ok(())
        })?;
    } else {
        let payload = payload_of(a.data, a.file)?;
        let r = store.append(NewEvent::new(&topic, kind, payload))?;
        writeln!(out, "{}", receipt_json(&r))?;
    }
    out.flush()?;
    store.close()?;
    Ok(())
}

/// The next line of `input` without its line ending; `None` at the end.
fn next_line(input: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if input.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(Some(line))
}

/// The payload of a single `xf append`: the argument or the file.
fn payload_of(data: Option<String>, file: Option<PathBuf>) -> Result<Vec<u8>> {
    match (data, file) {
        (Some(d), _) => Ok(d.into_bytes()),
        (None, Some(f)) => std::fs::read(&f).with_context(|| format!("reading {}", f.display())),
        (None, None) => bail!("give the payload as an argument, with --file F, or use --lines"),
    }
}

/// `xf append` beside a running node: the events go over the node's
/// socket, and the node appends, commits and announces them.
fn append_via_node(
    db: &Path,
    a: AppendArgs,
    topic: &Topic,
    kind: EventKind,
    out: &mut impl Write,
) -> Result<()> {
    let mut client = xaeroflux::net::handoff::Client::connect(db)?;
    if a.lines {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        while let Some(line) = next_line(&mut input)? {
            for r in client.append(&[NewEvent::new(topic, kind, line)])? {
                writeln!(out, "{}", receipt_json(&r))?;
            }
            out.flush()?;
        }
    } else {
        let payload = payload_of(a.data, a.file)?;
        for r in client.append(&[NewEvent::new(topic, kind, payload)])? {
            writeln!(out, "{}", receipt_json(&r))?;
        }
    }
    out.flush()?;
    Ok(())
}

fn node(db: &Path, a: NodeArgs, out: &mut impl Write) -> Result<()> {
    let mut builder = Core::builder()
        .with_sync_backends(&a.backends)?
        .with_sync_interval(std::time::Duration::from_secs(a.sync_interval.max(1)));
    if a.local_only {
        builder = builder.with_network(xaeroflux::NetMode::LocalOnly { listen: a.listen });
    }
    let core = builder
        .open(db)
        .with_context(|| format!("starting a node on {}", db.display()))?;
    // Listen before joining, so no sync event is missed.
    let sync_topic = Topic::new(xaeroflux::SYNC_TOPIC)?;
    let mut events = core.subscribe(Filter::topic(&sync_topic), Since::Now)?;
    writeln!(out, "node {}", core.node_ticket()?)?;
    out.flush()?;
    for t in &a.topics {
        core.join(&Topic::new(t)?, &a.peers)?;
    }
    while let Some(ev) = events.recv() {
        out.write_all(&ev?.payload)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    drop(events);
    core.close()?;
    Ok(())
}

fn demo() -> Result<()> {
    use std::time::{Duration, Instant};
    println!("Xaeroflux demo: three nodes on loopback share the topic \"chat\"");
    println!("(local-only mode: 127.0.0.1, no relays, no address lookup)\n");
    let names = ["alice", "bob", "carol"];
    let dirs = names
        .iter()
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut nodes = Vec::new();
    for (name, dir) in names.iter().zip(&dirs) {
        let core = Core::builder()
            .with_sync_backends(&["iroh", "iroh-gossip"])?
            .with_network(xaeroflux::NetMode::local_only())
            .with_sync_interval(Duration::from_secs(5))
            .open(dir.path())?;
        println!(
            "{name:5}  endpoint {}  author {}",
            short(&core.endpoint_id()?),
            short(&hx(&core.author()))
        );
        nodes.push(core);
    }
    let chat = Topic::new("chat")?;
    // History written before anyone connects.
    for (i, (name, core)) in names.iter().zip(&nodes).enumerate() {
        let n = [300, 200, 100][i];
        let batch: Vec<NewEvent> = (0..n)
            .map(|k| core.new_event(&chat, format!("{name}: message {k}")))
            .collect();
        core.append_batch(batch)?;
    }
    // A line: bob knows alice, carol knows bob; alice and carol are
    // never told of each other.
    let started = Instant::now();
    nodes[0].join(&chat, &[] as &[&str])?;
    nodes[1].join(&chat, &[nodes[0].node_ticket()?])?;
    nodes[2].join(&chat, &[nodes[1].node_ticket()?])?;
    println!("\njoined: alice <- bob <- carol (tickets); appending live messages");
    for (name, core) in names.iter().zip(&nodes) {
        core.append(core.new_event(&chat, format!("{name}: hello, live")))?;
    }
    let logs: Vec<LogId> = nodes.iter().map(|c| c.own_log(&chat)).collect();
    let want: Vec<u64> = logs
        .iter()
        .zip(&nodes)
        .map(|(l, c)| c.log_size(l))
        .collect::<Result<_, _>>()?;
    let deadline = started + Duration::from_secs(60);
    loop {
        let converged = nodes.iter().all(|c| {
            logs.iter().zip(&want).all(|(l, w)| {
                c.log_size(l).ok() == Some(*w) && c.mmr_root(l).ok() == nodes[0].mmr_root(l).ok()
            })
        });
        if converged {
            break;
        }
        if Instant::now() > deadline {
            bail!("the nodes did not converge within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("converged in {:?}\n", started.elapsed());
    println!("log of    size  root (the same on all three nodes)");
    for (i, l) in logs.iter().enumerate() {
        let roots: Vec<_> = nodes
            .iter()
            .map(|c| c.mmr_root(l))
            .collect::<Result<_, _>>()?;
        if roots.iter().any(|r| *r != roots[0]) {
            bail!("roots differ for {}", names[i]);
        }
        println!("{:8} {:5}  {}", names[i], want[i], hx(&roots[0]));
    }

    // Each node checks the checkpoints it holds of the others' logs, with
    // only the author's verifier key, as an outside tool would.
    println!();
    for (x, holder) in nodes.iter().enumerate() {
        for (y, author) in nodes.iter().enumerate() {
            if x == y {
                continue;
            }
            let verifier = NoteVerifier::parse(&author.verifier_key(&chat.id()))?;
            let note = holder.checkpoint(&logs[y])?.note;
            let cp: Checkpoint = verifier.verify_checkpoint(&note)?;
            if (cp.size, cp.root) != (want[y], holder.mmr_root(&logs[y])?) {
                bail!("{}'s checkpoint of {} does not match", names[x], names[y]);
            }
            println!(
                "{:5} verified {:5}'s signed checkpoint: size {}, root {}",
                names[x],
                names[y],
                cp.size,
                short(&hx(&cp.root))
            );
        }
    }

    // A replica proves an event of another author's log; the proof checks
    // against the author's own signed root.
    let seq = 42;
    let carol = &nodes[2];
    let ev = carol
        .iter_log(&logs[0], seq)?
        .next()
        .ok_or_else(|| anyhow!("no event {seq}"))??;
    let leaf = xaeroflux::merkle::hash_leaf(ev.canonical_bytes());
    let alice_cp = NoteVerifier::parse(&nodes[0].verifier_key(&chat.id()))?
        .verify_checkpoint(&nodes[0].checkpoint(&logs[0])?.note)?;
    let incl = carol.prove_inclusion(&logs[0], seq, alice_cp.size)?;
    verify_inclusion(&leaf, seq, alice_cp.size, &incl.path, &alice_cp.root)?;
    println!(
        "\ncarol proved alice's event {seq} ({:?}) against alice's root: {} hashes, verified",
        String::from_utf8_lossy(ev.payload()),
        incl.path.len()
    );
    let cons = carol.prove_consistency(&logs[0], 300, alice_cp.size)?;
    verify_consistency(
        300,
        alice_cp.size,
        &carol.root_at(&logs[0], 300)?,
        &alice_cp.root,
        &cons.path,
    )?;
    println!(
        "carol proved alice's log only grew from size 300 to {}: verified",
        alice_cp.size
    );
    for (name, core) in names.iter().zip(&nodes) {
        let report = core.verify()?;
        if !report.is_ok() {
            bail!("{name}: verify found problems: {:?}", report.problems);
        }
    }
    println!("every store verified: pages, records, roots and signatures");
    let sync_topic = Topic::new(xaeroflux::SYNC_TOPIC)?;
    println!(
        "\nbob's sync events (System events in {}):",
        xaeroflux::SYNC_TOPIC
    );
    for ev in nodes[1].iter_topic(&sync_topic)?.take(6) {
        println!("  {}", String::from_utf8_lossy(ev?.payload()));
    }
    for core in nodes {
        core.close()?;
    }
    println!("demo ok");
    Ok(())
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}
