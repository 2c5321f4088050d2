//! `xf`: create, fill, read, prove, verify and sync Xaeroflux stores.
//!
//! - `cli`: the commands and flags;
//! - `cmd::*`: one module per group of commands;
//! - `output`: what the commands print, as serde types;
//! - `demo`: the three-node demo.

mod cli;
mod cmd;
mod demo;
mod output;
mod progress;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use xaeroflux::{Core, LogId, Topic};

use cli::{Cli, Cmd, LogArg};

fn default_db() -> Result<PathBuf> {
    let base =
        dirs::data_dir().ok_or_else(|| anyhow!("no per-user data directory; pass --db DIR"))?;
    Ok(base.join("xaeroflux"))
}

/// Opens the store for writing (it holds the writer lock while open).
pub(crate) fn open_rw(db: &Path) -> Result<Core> {
    Core::builder()
        .open(db)
        .with_context(|| format!("opening {}", db.display()))
}

/// Opens the store for reading, beside any writer.
pub(crate) fn open_ro(db: &Path) -> Result<Core> {
    Core::builder()
        .read_only()
        .open(db)
        .with_context(|| format!("opening {} to read", db.display()))
}

/// The log a command names: `--log AUTHOR/TOPIC`, or the store's own log
/// in `--topic`.
pub(crate) fn resolve_log(core: &Core, arg: &LogArg) -> Result<LogId> {
    match (&arg.log, &arg.topic) {
        (Some(l), _) => Ok(l.parse()?),
        (None, Some(t)) => Ok(core.own_log(&Topic::new(t)?)),
        (None, None) => bail!("name a log with --log AUTHOR_HEX/TOPIC_ID_HEX or --topic NAME"),
    }
}

/// An error and its causes on one line, each cause once.
fn report(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if s.contains(&t) {
            continue;
        }
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&t);
    }
    s
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("xf: {}", report(&e));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Cmd::Demo = cli.cmd {
        return demo::run();
    }
    let db = match cli.db {
        Some(d) => d,
        None => default_db()?,
    };
    let db = db.as_path();
    // A node prints from a thread of its own, so stdout is not locked here.
    let cmd = match cli.cmd {
        Cmd::Node(a) => return cmd::node::node(db, a),
        other => other,
    };
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    match cmd {
        Cmd::Demo => return demo::run(),
        Cmd::Init => cmd::store::init(db, &mut out)?,
        Cmd::Id {
            topic,
            json,
            rotate_member_key,
        } => cmd::store::id(db, topic, json, rotate_member_key, &mut out)?,
        Cmd::Topic { what } => cmd::private::topic(db, what, &mut out)?,
        Cmd::Members {
            topic,
            json,
            change,
        } => cmd::private::members(db, topic, json, change, &mut out)?,
        Cmd::Append(a) => cmd::append::append(db, a, &mut out)?,
        Cmd::Node(_) => unreachable!("handled above"),
        Cmd::Logs { json } => cmd::store::logs(db, json, &mut out)?,
        Cmd::Dump { log, json } => cmd::store::dump(db, &log, json, &mut out)?,
        Cmd::Cat {
            topic,
            follow,
            since,
            until,
            last,
            json,
        } => {
            let window = cmd::when::Window::parse(since.as_deref(), until.as_deref(), last)?;
            cmd::store::cat(db, &topic, follow, window, json, &mut out)?
        }
        Cmd::Doc { what } => cmd::doc::doc(db, what, &mut out)?,
        Cmd::Checkpoint { log } => cmd::store::checkpoint(db, &log, &mut out)?,
        Cmd::Stat { json } => cmd::store::stat(db, json, &mut out)?,
        Cmd::Prove { what } => cmd::prove::prove(db, what, &mut out)?,
        Cmd::Verify => cmd::prove::verify(db, &mut out)?,
        Cmd::Repair => cmd::prove::repair(db, &mut out)?,
        Cmd::Serve { tcp } => cmd::sync::serve(db, &tcp, &mut out)?,
        Cmd::Sync {
            tcp,
            topics,
            timeout,
        } => cmd::sync::sync(db, &tcp, &topics, timeout, &mut out)?,
        Cmd::Forks { json } => cmd::sync::forks(db, json, &mut out)?,
        #[cfg(feature = "mcp")]
        Cmd::Mcp {
            allow_append,
            allow_private,
        } => {
            // Standard output carries the protocol and nothing else.
            drop(out);
            let options = xaeroflux_mcp::Options::default()
                .allow_append(allow_append)
                .allow_private(allow_private);
            return Ok(xaeroflux_mcp::McpServer::open(db, options)?.run_stdio()?);
        }
    }
    out.flush()?;
    Ok(())
}
