//! `xf append`: into the store directly, or through the node running on it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use xaeroflux::{Core, Durability, Error, EventKind, NewEvent, StoreError, Topic};

use crate::cli::AppendArgs;
use crate::output::{ReceiptOut, json_line};

pub fn append(db: &Path, a: AppendArgs, out: &mut impl Write) -> Result<()> {
    let kind: EventKind = a.kind.parse()?;
    let topic = Topic::new(&a.topic)?;
    let durability = if a.fast {
        Durability::Fast
    } else {
        Durability::Durable
    };
    let core = match Core::builder().with_durability(durability).open(db) {
        Ok(c) => c,
        // A node runs on this store: hand the events to it.
        Err(Error::Store(StoreError::Locked { .. }))
            if xaeroflux::net::handoff::socket_path(db).exists() =>
        {
            return append_via_node(db, a, &topic, kind, out);
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", db.display())),
    };
    if a.lines {
        append_lines(&core, &topic, kind, out)?;
    } else {
        let payload = payload_of(a.data, a.file)?;
        let r = core.append(NewEvent::new(&topic, kind, payload))?;
        json_line(out, &ReceiptOut::from(&r))?;
    }
    out.flush()?;
    core.close()?;
    Ok(())
}

/// Each line of standard input as one event. A reader thread hands each
/// line to the writer as it arrives; this thread prints each receipt once
/// that event is durable. Lines that arrive together are group-committed.
fn append_lines(core: &Core, topic: &Topic, kind: EventKind, out: &mut impl Write) -> Result<()> {
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1024);
        let reader = s.spawn(move || -> Result<()> {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            while let Some(line) = next_line(&mut input)? {
                let pending = core.submit(NewEvent::new(topic, kind, line))?;
                if tx.send(pending).is_err() {
                    break;
                }
            }
            Ok(())
        });
        for pending in rx {
            let r = pending.wait()?;
            json_line(out, &ReceiptOut::from(&r))?;
            out.flush()?;
        }
        reader
            .join()
            .map_err(|_| anyhow!("stdin reader panicked"))??;
        Ok(())
    })
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
    let mut send = |payload: Vec<u8>, out: &mut dyn Write| -> Result<()> {
        // The node seals events of a private topic in its writer.
        let private = xaeroflux::e2e::parse_topic_name(topic.name()).is_some();
        let event = NewEvent::new(topic, kind, payload).encrypted(private);
        for r in client.append(&[event])? {
            json_line(out, &ReceiptOut::from(&r))?;
        }
        Ok(out.flush()?)
    };
    if a.lines {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        while let Some(line) = next_line(&mut input)? {
            send(line, out)?;
        }
    } else {
        send(payload_of(a.data, a.file)?, out)?;
    }
    Ok(())
}
