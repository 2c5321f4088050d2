//! Document snapshots: the folded state and the frontier it covers, cached
//! in the store directory so a large document opens without replaying.
//!
//! `STORE/cache/crdt/<topic id hex>.snap`, written whole (temporary file,
//! sync, rename):
//!
//! ```text
//! 0   magic "XFDS"             4
//! 4   version (u16 LE, 1)      2
//! 6   reserved (0)             2
//! 8   body length n (u32 LE)   4
//! 12  CRC-32C of the body      4
//! 16  body                     n   postcard: topic id, per log (log id,
//!                                  size, root at that size), state
//! ```
//!
//! A snapshot is derived data: deleting it only makes the next open replay.
//! At load it must name the topic, pass its CRC, and each log it covers must
//! be held by the store at least as far, with the same root there (so the
//! operations it folded are the ones the store holds); otherwise it is
//! ignored and the document replayed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use xaeroflux::{Core, LogId, Topic};

use crate::doc::Frontier;
use crate::error::CrdtError;
use crate::types::DocState;

/// Magic of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"XFDS";
/// Snapshot format version.
pub const SNAPSHOT_VERSION: u16 = 1;
const HEADER_LEN: usize = 16;
/// Largest snapshot read (a corrupt length is refused before allocating).
const MAX_SNAPSHOT: u64 = 1 << 30;

/// What a snapshot holds.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub state: DocState,
    pub frontier: Frontier,
}

/// A log the snapshot covers: how far, and its root there.
#[derive(Serialize, Deserialize)]
struct LogEntry {
    author: [u8; 32],
    topic: [u8; 32],
    size: u64,
    root: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct Body {
    topic: [u8; 32],
    logs: Vec<LogEntry>,
    state: DocState,
}

/// Where the snapshot of `topic` lives.
pub fn snapshot_path(core: &Core, topic: &Topic) -> PathBuf {
    core.dir()
        .join("cache")
        .join("crdt")
        .join(format!("{}.snap", hex::encode(topic.id().0)))
}

pub(crate) fn save(core: &Core, topic: &Topic, snap: &Snapshot) -> Result<(), CrdtError> {
    let mut logs = Vec::with_capacity(snap.frontier.len());
    for (log, size) in &snap.frontier {
        logs.push(LogEntry {
            author: log.author,
            topic: log.topic.0,
            size: *size,
            root: core.root_at(log, *size)?,
        });
    }
    let body = Body {
        topic: topic.id().0,
        logs,
        state: snap.state.clone(),
    };
    let body = postcard::to_stdvec(&body).map_err(|e| CrdtError::Invalid(e.to_string()))?;
    let len = u32::try_from(body.len())
        .map_err(|_| CrdtError::Invalid("a snapshot over 4 GiB".into()))?;
    let mut file = Vec::with_capacity(HEADER_LEN + body.len());
    file.extend_from_slice(&SNAPSHOT_MAGIC);
    file.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    file.extend_from_slice(&[0, 0]);
    file.extend_from_slice(&len.to_le_bytes());
    file.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    file.extend_from_slice(&body);
    let path = snapshot_path(core, topic);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| CrdtError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    xaeroflux_types::fs::write_atomic(&path, &file, None).map_err(|e| CrdtError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Why a snapshot file was refused, naming the file and the offset.
fn refused(path: &std::path::Path, offset: u64, reason: &str) -> CrdtError {
    CrdtError::Snapshot {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    }
}

/// Checks a snapshot file's bytes (magic, version, length, CRC, topic):
/// the error names the file and the offset of what is wrong.
pub fn check_file(path: &std::path::Path, bytes: &[u8], topic: &Topic) -> Result<(), CrdtError> {
    decode(path, bytes, topic).map(|_| ())
}

type Decoded = (Frontier, Vec<[u8; 32]>, DocState);

/// Reads and checks a snapshot file's bytes.
fn decode(path: &std::path::Path, bytes: &[u8], topic: &Topic) -> Result<Decoded, CrdtError> {
    let Some((head, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(refused(path, 0, "shorter than its header"));
    };
    if head[..4] != SNAPSHOT_MAGIC {
        return Err(refused(path, 0, "bad magic"));
    }
    if head[6..8] != [0, 0] {
        return Err(refused(path, 6, "reserved bytes are not zero"));
    }
    let version = u16::from_le_bytes([head[4], head[5]]);
    if version != SNAPSHOT_VERSION {
        return Err(refused(
            path,
            4,
            &format!("unknown snapshot version {version}"),
        ));
    }
    let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if len != body.len() {
        return Err(refused(path, 8, "length does not match the file"));
    }
    let crc = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    if crc32c::crc32c(body) != crc {
        return Err(refused(path, 12, "checksum mismatch"));
    }
    let body: Body =
        postcard::from_bytes(body).map_err(|e| refused(path, HEADER_LEN as u64, &e.to_string()))?;
    if body.topic != topic.id().0 {
        return Err(refused(
            path,
            HEADER_LEN as u64,
            "the snapshot of another topic",
        ));
    }
    let mut frontier = Frontier::new();
    let mut roots = Vec::with_capacity(body.logs.len());
    for e in body.logs {
        let log = LogId {
            author: e.author,
            topic: xaeroflux::TopicId(e.topic),
        };
        frontier.insert(log, e.size);
        roots.push(e.root);
    }
    Ok((frontier, roots, body.state))
}

/// The snapshot of `topic`, if there is one that matches the store.
pub(crate) fn load(core: &Core, topic: &Topic) -> Result<Option<Snapshot>, CrdtError> {
    let path = snapshot_path(core, topic);
    let bytes = match std::fs::metadata(&path) {
        Ok(m) if m.len() > MAX_SNAPSHOT => return Ok(None),
        Ok(_) => std::fs::read(&path).map_err(|source| CrdtError::Io {
            path: path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CrdtError::Io { path, source }),
    };
    // A damaged or stale snapshot is only a lost shortcut: replay.
    let Ok((frontier, roots, state)) = decode(&path, &bytes, topic) else {
        return Ok(None);
    };
    for ((log, size), root) in frontier.iter().zip(&roots) {
        let held = core.log_size(log).unwrap_or(0);
        if held < *size || core.root_at(log, *size).ok().as_ref() != Some(root) {
            return Ok(None);
        }
    }
    Ok(Some(Snapshot { state, frontier }))
}
