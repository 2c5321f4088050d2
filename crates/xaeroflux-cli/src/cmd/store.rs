//! Commands that read or create a store: `init`, `id`, `logs`, `dump`,
//! `cat`, `checkpoint`, `stat`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use xaeroflux::{EventRef, Filter, LogId, Payload, Since, Topic, TopicId};

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

/// The author key, the member key, then the verifier key of each of the
/// store's own logs (and of `topic`'s, when named). Opened for writing when
/// free, so a store made before member keys gets one.
pub fn id(
    db: &Path,
    topic: Option<String>,
    json: bool,
    rotate: bool,
    out: &mut impl Write,
) -> Result<()> {
    let core = if rotate {
        open_rw(db)?
    } else {
        match open_rw(db) {
            Ok(c) => c,
            Err(_) => open_ro(db)?,
        }
    };
    if rotate {
        core.rotate_member_key()?;
    }
    let member = core.member_key().ok().map(|k| k.to_string());
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
    if json {
        let verifiers: serde_json::Map<String, serde_json::Value> = topics
            .iter()
            .map(|(name, id)| (name.clone(), core.verifier_key(id).into()))
            .collect();
        json_line(
            out,
            &serde_json::json!({
                "author": hx(&core.author()),
                "member_key": member,
                "verifiers": verifiers,
            }),
        )?;
        return Ok(());
    }
    writeln!(out, "author {}", hx(&core.author()))?;
    if let Some(m) = member {
        writeln!(out, "member {m}")?;
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
            // A member sees a private topic's plaintext; the JSON keeps the
            // sealed bytes the leaf hash covers.
            let shown = match core.read_payload(&ev) {
                Ok(Payload::Plain(p)) => String::from_utf8_lossy(p).into_owned(),
                Ok(Payload::Decrypted(p)) => String::from_utf8_lossy(&p).into_owned(),
                Ok(Payload::Encrypted { epoch, len }) => {
                    format!("<encrypted: epoch {epoch}, {len} bytes>")
                }
                Err(e) => format!("<refused: {e}>"),
            };
            writeln!(
                out,
                "{:>8}  {}  {:<11}  {}",
                ev.seq(),
                ev.timestamp_ms(),
                ev.kind().as_str(),
                shown
            )?;
        }
    }
    Ok(())
}

/// The payloads of a topic view, one a line; with `follow`, then each new
/// event as it commits.
pub fn cat(
    db: &Path,
    topic: &str,
    follow: bool,
    window: super::when::Window,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let core = open_ro(db)?;
    let topic = Topic::new(topic)?;
    if xaeroflux::e2e::parse_topic_name(topic.name()).is_some() {
        core.private_topic(topic.name())?;
    }
    let private = core.is_private(&topic.id());
    // Listen before reading the history: what is committed in between
    // comes both ways and is printed once.
    let mut live = if follow {
        Some(core.subscribe(Filter::topic(&topic), Since::Now)?)
    } else {
        None
    };
    let mut printed: HashMap<LogId, u64> = HashMap::new();
    // A window by time and a count from the end use the index by time:
    // nothing before the window is read.
    let history = match (window.since, window.until, window.last) {
        (None, None, None) => core.iter_topic(&topic),
        (None, None, Some(n)) => core.iter_topic_last(&topic, n),
        (since, until, _) => {
            core.iter_topic_range(&topic, since.unwrap_or(0), until.unwrap_or(u64::MAX))
        }
    };
    let mut kept = std::collections::VecDeque::new();
    let keep = match (window.since.or(window.until), window.last) {
        (Some(_), Some(n)) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => None,
    };
    for ev in history {
        let ev = ev?;
        printed.insert(ev.log_id(), ev.seq() + 1);
        match keep {
            Some(0) => {}
            Some(n) => {
                if kept.len() == n {
                    kept.pop_front();
                }
                kept.push_back(ev);
            }
            None => print_event(&core, &ev, private, json, out)?,
        }
    }
    for ev in kept {
        print_event(&core, &ev, private, json, out)?;
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
        let bytes = ev.canonical_bytes();
        let log = ev.log.to_bytes();
        let view = EventRef::new(&log, &bytes)?;
        print_event(&core, &view, private, json, out)?;
        out.flush()?;
    }
    Ok(())
}

/// One event as `xf cat` prints it: its payload as a line (a private
/// topic's opened, or `<encrypted: epoch E, N bytes>` without the key), or
/// with `--json` an object. A private topic's key changes are not content
/// and are not printed.
fn print_event(
    core: &xaeroflux::Core,
    ev: &EventRef<'_>,
    private: bool,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    if private
        && ev.kind() == xaeroflux::EventKind::Identity
        && xaeroflux::e2e::control::is_record(ev.payload())
    {
        return Ok(());
    }
    let payload = match core.read_payload(ev) {
        Ok(p) => Ok(p),
        Err(e) => Err(e.report()),
    };
    if json {
        let mut o = serde_json::Map::new();
        o.insert("log".into(), ev.log_id().to_string().into());
        o.insert("seq".into(), ev.seq().into());
        o.insert("timestamp_ms".into(), ev.timestamp_ms().into());
        o.insert("kind".into(), ev.kind().as_str().into());
        let sealed = ev.flags() & xaeroflux::store::FLAG_ENCRYPTED != 0;
        let readable = matches!(payload, Ok(Payload::Decrypted(_) | Payload::Plain(_)));
        match payload {
            Ok(Payload::Plain(p)) => o.insert("payload_hex".into(), hx(p).into()),
            Ok(Payload::Decrypted(p)) => o.insert("payload_hex".into(), hx(&p).into()),
            Ok(Payload::Encrypted { epoch, .. }) => o.insert("epoch".into(), epoch.into()),
            Err(e) => o.insert("error".into(), e.into()),
        };
        if sealed || private {
            o.insert("encrypted".into(), sealed.into());
            o.insert("readable".into(), readable.into());
        }
        return json_line(out, &o);
    }
    match payload {
        Ok(Payload::Plain(p)) => out.write_all(p)?,
        Ok(Payload::Decrypted(p)) => out.write_all(&p)?,
        Ok(Payload::Encrypted { epoch, len }) => {
            write!(out, "<encrypted: epoch {epoch}, {len} bytes>")?
        }
        Err(e) => write!(out, "<refused: {e}>")?,
    }
    out.write_all(b"\n")?;
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
