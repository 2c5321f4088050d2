//! Commands that read or create a store: `init`, `id`, `logs`, `dump`,
//! `cat`, `checkpoint`, `stat`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use xaeroflux::{Filter, LogId, Since, Topic, TopicId};

use crate::cli::LogArg;
use crate::output::{DumpOut, LogOut, emit, hx, json_line};
use crate::{open_ro, open_rw, resolve_log};

pub fn init(db: &Path, out: &mut impl Write) -> Result<()> {
    let core = open_rw(db)?;
    writeln!(out, "store  {}", db.display())?;
    writeln!(out, "author {}", hx(&core.author()))?;
    core.close()?;
    Ok(())
}

/// The author key, then the verifier key of each of the store's own logs
/// (and of `topic`'s, when named).
pub fn id(db: &Path, topic: Option<String>, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    writeln!(out, "author {}", hx(&core.author()))?;
    let mut topics: Vec<(String, TopicId)> = Vec::new();
    if let Some(t) = topic {
        let t = Topic::new(&t)?;
        topics.push((t.name().to_string(), t.id()));
    }
    for l in core.logs()? {
        if l.log.author == core.author() && !topics.iter().any(|(_, id)| *id == l.log.topic) {
            let name = l.topic_name.unwrap_or_else(|| l.log.topic.to_string());
            topics.push((name, l.log.topic));
        }
    }
    for (name, id) in topics {
        writeln!(out, "verifier {} {}", name, core.verifier_key(&id))?;
    }
    Ok(())
}

pub fn logs(db: &Path, json: bool, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    for l in core.logs()? {
        if json {
            json_line(out, &LogOut::from(&l))?;
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
    Ok(())
}

pub fn dump(db: &Path, log: &LogArg, json: bool, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    let id = resolve_log(&core, log)?;
    for ev in core.iter_log(&id, 0) {
        let ev = ev?;
        if json {
            json_line(out, &DumpOut::from(&ev))?;
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
    Ok(())
}

/// The payloads of a topic view, one a line; with `follow`, then each new
/// event as it commits.
pub fn cat(db: &Path, topic: &str, follow: bool, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    let topic = Topic::new(topic)?;
    // Listen before reading the history: what is committed in between
    // comes both ways and is printed once.
    let mut live = if follow {
        Some(core.subscribe(Filter::topic(&topic), Since::Now)?)
    } else {
        None
    };
    let mut printed: HashMap<LogId, u64> = HashMap::new();
    for ev in core.iter_topic(&topic) {
        let ev = ev?;
        printed.insert(ev.log_id(), ev.seq() + 1);
        out.write_all(ev.payload())?;
        out.write_all(b"\n")?;
    }
    let Some(sub) = live.as_mut() else {
        return Ok(());
    };
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
    Ok(())
}

/// A log's signed note. Opened for writing when free, so the signed note
/// is also kept; read-only beside a running writer.
pub fn checkpoint(db: &Path, log: &LogArg, out: &mut impl Write) -> Result<()> {
    let core = match open_rw(db) {
        Ok(c) => c,
        Err(_) => open_ro(db)?,
    };
    let id = resolve_log(&core, log)?;
    write!(out, "{}", core.checkpoint(&id)?.note)?;
    Ok(())
}

pub fn stat(db: &Path, json: bool, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    emit(out, json, &core.stat()?)
}
