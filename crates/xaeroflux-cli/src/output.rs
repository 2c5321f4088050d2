//! What `xf` prints: one serde type per record (the shapes of
//! `xaeroflux::json`, which the MCP server shares), printed as one JSON
//! object a line with `--json`, or as aligned `key value` lines (an array
//! one line per element) without. Hashes are lowercase hex. The formats are
//! in `docs/proofs-and-checkpoints.md`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

pub use xaeroflux::json::{
    Consistency as ConsistencyOut, Dump as DumpOut, Fork as ForkOut, Inclusion as InclusionOut,
    Log as LogOut, Receipt as ReceiptOut, hex as hx,
};

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
