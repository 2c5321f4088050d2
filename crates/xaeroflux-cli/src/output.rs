//! What `xf` prints: one serde type per record, printed as one JSON object
//! a line with `--json`, or as aligned `key value` lines (an array one
//! line per element) without. Hashes are lowercase hex. The formats are in
//! `docs/proofs-and-checkpoints.md`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use xaeroflux::{ConsistencyProof, EventRef, InclusionProof, LogInfo, Receipt};

/// Lowercase hex.
pub fn hx(h: &[u8]) -> String {
    hex::encode(h)
}

fn hashes(hs: &[[u8; 32]]) -> Vec<String> {
    hs.iter().map(|h| hx(h)).collect()
}

/// An append's receipt.
#[derive(Serialize)]
pub struct ReceiptOut {
    pub log: String,
    pub seq: u64,
    pub leaf_hash: String,
    pub size: u64,
    pub root: String,
}

impl From<&Receipt> for ReceiptOut {
    fn from(r: &Receipt) -> Self {
        Self {
            log: r.log.to_string(),
            seq: r.seq,
            leaf_hash: hx(&r.leaf_hash),
            size: r.size,
            root: hx(&r.root),
        }
    }
}

/// One log, as `xf logs --json` lists it.
#[derive(Serialize)]
pub struct LogOut {
    pub log: String,
    pub author: String,
    pub topic_id: String,
    pub topic: Option<String>,
    pub size: u64,
    pub root: String,
}

impl From<&LogInfo> for LogOut {
    fn from(l: &LogInfo) -> Self {
        Self {
            log: l.log.to_string(),
            author: hx(&l.log.author),
            topic_id: l.log.topic.to_string(),
            topic: l.topic_name.clone(),
            size: l.size,
            root: hx(&l.root),
        }
    }
}

/// One event, as `xf dump --json` prints it: `bytes_hex` is the canonical
/// encoding the leaf hash covers.
#[derive(Serialize)]
pub struct DumpOut {
    pub seq: u64,
    pub timestamp_ms: u64,
    pub kind: &'static str,
    pub leaf_hash: String,
    pub bytes_hex: String,
    pub payload_hex: String,
}

impl From<&EventRef<'_>> for DumpOut {
    fn from(ev: &EventRef<'_>) -> Self {
        Self {
            seq: ev.seq(),
            timestamp_ms: ev.timestamp_ms(),
            kind: ev.kind().as_str(),
            leaf_hash: hx(&ev.leaf_hash()),
            bytes_hex: hx(ev.canonical_bytes()),
            payload_hex: hx(ev.payload()),
        }
    }
}

/// An inclusion proof.
#[derive(Serialize)]
pub struct InclusionOut {
    pub log: String,
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub root: String,
    pub path: Vec<String>,
}

impl From<&InclusionProof> for InclusionOut {
    fn from(p: &InclusionProof) -> Self {
        Self {
            log: p.log.to_string(),
            index: p.index,
            size: p.size,
            leaf_hash: hx(&p.leaf_hash),
            root: hx(&p.root),
            path: hashes(&p.path),
        }
    }
}

/// A consistency proof.
#[derive(Serialize)]
pub struct ConsistencyOut {
    pub log: String,
    pub from: u64,
    pub to: u64,
    pub old_root: String,
    pub new_root: String,
    pub path: Vec<String>,
}

impl From<&ConsistencyProof> for ConsistencyOut {
    fn from(p: &ConsistencyProof) -> Self {
        Self {
            log: p.log.to_string(),
            from: p.old_size,
            to: p.new_size,
            old_root: hx(&p.old_root),
            new_root: hx(&p.new_root),
            path: hashes(&p.path),
        }
    }
}

/// A fork proof kept.
#[derive(Serialize)]
pub struct ForkOut {
    pub log: String,
    pub our_size: u64,
    pub their_size: u64,
    pub at: u64,
    pub proven: bool,
    pub ours: String,
    pub theirs: String,
}

/// Prints one JSON object on one line.
pub fn json_line(out: &mut (impl Write + ?Sized), v: &impl Serialize) -> Result<()> {
    writeln!(out, "{}", serde_json::to_string(v)?)?;
    Ok(())
}

/// Prints one record: a JSON object on one line, or aligned `key value`
/// lines in the type's field order (one line per element of an array).
pub fn emit(out: &mut impl Write, json: bool, v: &impl Serialize) -> Result<()> {
    if json {
        return json_line(out, v);
    }
    let fields = ordered_fields(v)?;
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &fields {
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

/// A record's fields in the order its type declares them (a JSON map would
/// sort them).
fn ordered_fields(v: &impl Serialize) -> Result<Vec<(String, Value)>> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a record")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = m.next_entry()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    let text = serde_json::to_string(v)?;
    let mut de = serde_json::Deserializer::from_str(&text);
    Ok(serde::Deserializer::deserialize_map(&mut de, Pairs)?)
}
