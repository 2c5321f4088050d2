//! Reading a topic view a page at a time, with a cursor that cannot miss.
//!
//! A topic merges every author's log by (timestamp, author, seq). A
//! position in that merged order is not stable: an event replicated later
//! with an earlier timestamp lands before it. The cursor is therefore one
//! position per log, the seq after the last event taken from it; the next
//! page reads each log from there and merges again, so what a peer sent
//! in the meantime comes on the next page, whatever its timestamp.
//!
//! Cursor format, version 1 (in `docs/mcp.md`): unpadded base64url of the
//! version byte `1`, the topic id (32 bytes), a count (u32 LE, at most
//! [`MAX_CURSOR_LOGS`]), then per log its author (32 bytes) and next seq
//! (u64 LE). Logs not named start at 0.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use xaeroflux::{Core, LogId, TopicId};

use crate::ToolError;
use crate::args::SinceSeq;
use crate::views::{EventOut, PageOut};

const CURSOR_VERSION: u8 = 1;
/// Most logs a cursor names.
pub const MAX_CURSOR_LOGS: usize = 1 << 16;
const ENTRY: usize = 32 + 8;

/// Per author: the next seq to read in the topic.
type Positions = HashMap<[u8; 32], u64>;

fn encode_cursor(topic: &TopicId, pos: &Positions) -> String {
    let mut entries: Vec<(&[u8; 32], &u64)> = pos.iter().filter(|(_, n)| **n > 0).collect();
    entries.sort();
    let mut b = Vec::with_capacity(1 + 32 + 4 + entries.len() * ENTRY);
    b.push(CURSOR_VERSION);
    b.extend_from_slice(&topic.0);
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (author, next) in entries {
        b.extend_from_slice(author);
        b.extend_from_slice(&next.to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(b)
}

fn decode_cursor(topic: &TopicId, text: &str) -> Result<Positions, ToolError> {
    let bad = |why: &str| ToolError::new(format!("since_seq: not a cursor of this topic ({why})"));
    if text.len() > (1 + 32 + 4 + MAX_CURSOR_LOGS * ENTRY) * 4 / 3 + 4 {
        return Err(bad("too long"));
    }
    let b = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad("not base64url"))?;
    let (version, rest) = b.split_first().ok_or_else(|| bad("empty"))?;
    if *version != CURSOR_VERSION {
        return Err(bad(&format!(
            "version {version}, this server reads {CURSOR_VERSION}"
        )));
    }
    let (id, rest) = rest
        .split_first_chunk::<32>()
        .ok_or_else(|| bad("truncated"))?;
    if id != &topic.0 {
        return Err(bad("it was made for another topic"));
    }
    let (n, mut rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("truncated"))?;
    let n = u32::from_le_bytes(*n) as usize;
    if n > MAX_CURSOR_LOGS || rest.len() != n * ENTRY {
        return Err(bad("wrong length"));
    }
    let mut pos = Positions::with_capacity(n);
    while let Some((author, tail)) = rest.split_first_chunk::<32>() {
        let (next, tail) = tail
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("truncated"))?;
        pos.insert(*author, u64::from_le_bytes(*next));
        rest = tail;
    }
    Ok(pos)
}

/// The cursor after a read that went, in each of `logs`, up to the seq
/// `read` gives (the log's size when absent).
pub(crate) fn cursor_after(
    topic: &TopicId,
    logs: &[xaeroflux::LogInfo],
    read: &HashMap<LogId, u64>,
) -> String {
    let mut pos: Positions = logs.iter().map(|l| (l.log.author, l.size)).collect();
    for (log, next) in read {
        let p = pos.entry(log.author).or_insert(0);
        *p = (*p).max(*next);
    }
    encode_cursor(topic, &pos)
}

/// What to read.
pub struct PageRequest {
    /// The topic.
    pub topic: TopicId,
    /// Its name, when known.
    pub name: Option<String>,
    /// Where to start.
    pub since: Option<SinceSeq>,
    /// Only events stamped at or after this.
    pub since_ms: Option<u64>,
    /// At most this many events.
    pub limit: usize,
    /// Show private topics' plaintext.
    pub allow_private: bool,
}

/// Reads one page of a topic view.
pub fn read_page(core: &Core, req: PageRequest) -> Result<PageOut, ToolError> {
    let topic = req.topic;
    let mut pos = match &req.since {
        None => Positions::new(),
        Some(SinceSeq::Cursor(c)) => decode_cursor(&topic, c)?,
        // A seq applies to every log the topic holds now.
        Some(SinceSeq::Seq(n)) => core
            .topic_logs(&topic)?
            .iter()
            .map(|l| (l.log.author, *n))
            .collect(),
    };
    let start = pos.clone();
    let mut events = Vec::new();
    let mut more = false;
    let since_ms = req.since_ms.unwrap_or(0);
    for ev in core.iter_topic_from(&topic, |log: &LogId| {
        start.get(&log.author).copied().unwrap_or(0)
    }) {
        let ev = ev?;
        if ev.timestamp_ms() < since_ms {
            pos.insert(*ev.author(), ev.seq() + 1);
            continue;
        }
        if events.len() >= req.limit {
            more = true;
            break;
        }
        pos.insert(*ev.author(), ev.seq() + 1);
        events.push(EventOut::read(core, &ev, req.allow_private));
    }
    let cursor = encode_cursor(&topic, &pos);
    Ok(PageOut {
        topic: req.name,
        topic_id: topic.to_string(),
        events,
        next: more.then(|| cursor.clone()),
        resume: cursor,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::restriction)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_checked() {
        let topic = xaeroflux::Topic::new("t").unwrap().id();
        let other = xaeroflux::Topic::new("u").unwrap().id();
        let mut pos = Positions::new();
        pos.insert([1; 32], 5);
        pos.insert([2; 32], 0);
        pos.insert([3; 32], u64::MAX);
        let c = encode_cursor(&topic, &pos);
        let back = decode_cursor(&topic, &c).unwrap();
        assert_eq!(back.get(&[1; 32]), Some(&5));
        assert_eq!(back.get(&[2; 32]), None, "a log at 0 is left out");
        assert_eq!(back.get(&[3; 32]), Some(&u64::MAX));
        assert!(
            decode_cursor(&other, &c)
                .unwrap_err()
                .0
                .contains("another topic")
        );
        assert!(decode_cursor(&topic, "!!").is_err());
        assert!(decode_cursor(&topic, "").is_err());
        // Every truncation is refused, none panics.
        let raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for n in 0..raw.len() {
            let cut = URL_SAFE_NO_PAD.encode(&raw[..n]);
            assert!(decode_cursor(&topic, &cut).is_err(), "cut at {n}");
        }
        let mut wrong = raw.clone();
        wrong[0] = 2;
        let e = decode_cursor(&topic, &URL_SAFE_NO_PAD.encode(&wrong)).unwrap_err();
        assert!(e.0.contains("version 2"), "{}", e.0);
    }
}
