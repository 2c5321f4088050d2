//! `xf doc`: documents of op-based CRDTs on a topic.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use xaeroflux::{Core, Error, NewEvent, StoreError, Topic};
use xaeroflux_crdt::{Doc, Op, OpBody};

use crate::cli::DocCmd;
use crate::output::{ReceiptOut, json_line};

/// Runs one `xf doc` command.
pub fn doc(db: &Path, what: DocCmd, out: &mut impl Write) -> Result<()> {
    match what {
        DocCmd::Get { topic, json, at } => get(db, &topic, json, at.as_deref(), out),
        DocCmd::Set {
            topic,
            map,
            key,
            value,
        } => write(db, &topic, out, |_| {
            Some(Op {
                name: map,
                body: OpBody::MapSet(key.into_bytes(), value.into_bytes()),
            })
        }),
        DocCmd::Del { topic, map, key } => write(db, &topic, out, |_| {
            Some(Op {
                name: map,
                body: OpBody::MapDelete(key.into_bytes()),
            })
        }),
        DocCmd::Add { topic, counter, n } => write(db, &topic, out, |_| {
            Some(Op {
                name: counter,
                body: OpBody::CounterAdd(n),
            })
        }),
        DocCmd::Insert {
            topic,
            set,
            element,
        } => write(db, &topic, out, |_| {
            Some(Op {
                name: set,
                body: OpBody::SetAdd(element.into_bytes()),
            })
        }),
        DocCmd::Remove {
            topic,
            set,
            element,
        } => write(db, &topic, out, |doc| doc.set(&set).remove_op(&element)),
        DocCmd::Put { topic, name, value } => write(db, &topic, out, |_| {
            Some(Op {
                name,
                body: OpBody::RegisterSet(value.into_bytes()),
            })
        }),
    }
}

/// Prints the document: with `--json` one object keyed by CRDT name, else
/// one `name: value` line per CRDT (values as JSON).
fn get(db: &Path, topic: &str, json: bool, at: Option<&str>, out: &mut impl Write) -> Result<()> {
    let core = crate::open_ro(db)?;
    let topic = Topic::new(topic)?;
    if xaeroflux::e2e::parse_topic_name(topic.name()).is_some() {
        core.private_topic(topic.name())?;
    }
    let state = match at {
        Some(when) => {
            let now = super::when::parse_when(when, super::when::now_ms())?;
            Doc::state_at(&core, &topic, now)?.to_json()
        }
        None => Doc::open(&core, &topic)?.to_json(),
    };
    if json {
        writeln!(out, "{state}")?;
    } else if let Some(obj) = state.as_object() {
        for (name, value) in obj {
            writeln!(out, "{name}: {value}")?;
        }
    }
    Ok(out.flush()?)
}

/// Appends the operation `make` gives for the document as this store sees
/// it, and prints its receipt (nothing when there is nothing to do, as
/// removing an element not in the set). When a node runs on the store the
/// operation is handed to it, as `xf append` does.
fn write(
    db: &Path,
    topic: &str,
    out: &mut impl Write,
    make: impl FnOnce(&mut Doc<'_>) -> Option<Op>,
) -> Result<()> {
    let topic = Topic::new(topic)?;
    let private = xaeroflux::e2e::parse_topic_name(topic.name()).is_some();
    let (core, via_node) = match Core::builder().open(db) {
        Ok(c) => (c, false),
        Err(Error::Store(StoreError::Locked { .. }))
            if xaeroflux::net::handoff::socket_path(db).exists() =>
        {
            (crate::open_ro(db)?, true)
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", db.display())),
    };
    if private {
        core.private_topic(topic.name())?;
    }
    let mut doc = Doc::open(&core, &topic)?;
    let Some(op) = make(&mut doc) else {
        return Ok(());
    };
    if via_node {
        let payload = op.encode()?;
        let mut client = xaeroflux::net::handoff::Client::connect(db)?;
        let event = NewEvent::application(&topic, payload).encrypted(private);
        for r in client.append(&[event])? {
            json_line(out, &ReceiptOut::from(&r))?;
        }
        return Ok(out.flush()?);
    }
    let r = doc.apply(op)?;
    json_line(out, &ReceiptOut::from(&r))?;
    out.flush()?;
    drop(doc);
    core.close()?;
    Ok(())
}
