//! The XSP wire format: length-prefixed frames, one message each. Every
//! length and count is checked against its bound and against the bytes
//! actually present before anything is allocated. See
//! `docs/sync-protocol.md`.

use xaeroflux_merkle::Hash;
use xaeroflux_types::bytes::Cursor;
use xaeroflux_types::{LOG_ID_LEN, LogId, TopicId};

use crate::SyncError;

/// Protocol version carried in `HELLO`.
pub const VERSION: u16 = 1;
/// Magic at the start of a `HELLO` payload.
pub const MAGIC: [u8; 4] = *b"XSP\x01";
/// Largest frame (tag and payload), bytes.
pub const MAX_FRAME: usize = 4 << 20;
/// Most topics in a `HELLO`.
pub const MAX_TOPICS: usize = 1024;
/// Longest topic name on the wire.
pub const MAX_TOPIC_NAME: usize = 256;
/// Most logs in one `PEAKS`.
pub const MAX_LOGS: usize = 16 * 1024;
/// Longest checkpoint note on the wire.
pub const MAX_NOTE: usize = 4096;
/// Most entries in one `DIFF`.
pub const MAX_DIFF: usize = 64 * 1024;
/// Most events in one `PAGE_RESPONSE`.
pub const MAX_EVENTS: usize = 64 * 1024;
/// Longest event in a `PAGE_RESPONSE`.
pub const MAX_EVENT: usize = 1 << 20;
/// Most hashes in a proof (a proof of a log of 2^64 events has at most 128).
pub const MAX_PROOF: usize = 128;
/// Longest error reason.
pub const MAX_REASON: usize = 1024;
/// Most buckets in a `SUMMARY` (a power of two from 2 to this).
pub const MAX_BUCKETS: usize = 4096;

/// Message tags.
mod tag {
    pub const HELLO: u8 = 1;
    pub const PEAKS: u8 = 2;
    pub const DIFF: u8 = 3;
    pub const PAGE_REQUEST: u8 = 4;
    pub const PAGE_RESPONSE: u8 = 5;
    pub const SYNC_DONE: u8 = 6;
    pub const CHECKPOINT: u8 = 7;
    pub const ERROR: u8 = 8;
    pub const SUMMARY: u8 = 9;
}

/// Capability bits in `HELLO`.
pub mod caps {
    /// Log replication (this protocol).
    pub const SYNC: u32 = 1;
    /// Live mode: `CHECKPOINT` announcements after `SYNC_DONE`.
    pub const LIVE: u32 = 2;
    /// `SUMMARY`: a topic's logs summed up in buckets, so that `PEAKS`
    /// carries only the logs of buckets that differ. Used only when both
    /// sides announce it.
    pub const SUMMARY: u32 = 4;
}

/// A topic in a `HELLO`: its id and, when known, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicEntry {
    /// Topic id.
    pub id: TopicId,
    /// Name (empty when the sender does not know it).
    pub name: String,
    /// SHA-256 over the `PEAKS` entries the sender would send for this
    /// topic (zeros when it has none): equal digests on both sides mean
    /// nothing to exchange, and the `PEAKS` is sent empty.
    pub digest: Hash,
}

/// One log in a `PEAKS`: its author, size and latest checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeakEntry {
    /// The log's author (the topic is the message's).
    pub author: [u8; 32],
    /// Size the checkpoint commits to.
    pub size: u64,
    /// The checkpoint, a signed note by the author.
    pub note: String,
}

/// One suffix a side will pull: events `from..to` of `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffEntry {
    /// The log.
    pub log: LogId,
    /// First seq wanted (the puller's size).
    pub from: u64,
    /// Size of the checkpoint the puller verifies against.
    pub to: u64,
}

/// Error codes in `ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A frame or message could not be decoded.
    Malformed,
    /// A message came out of order, or named something not agreed on.
    Protocol,
    /// Data or a proof or a signature did not verify.
    Rejected,
    /// The peer sent nothing for too long.
    Timeout,
    /// The sender's store failed.
    Internal,
    /// Another version of the protocol.
    Version,
    /// The sender has no room for this session now (its session caps are
    /// reached); try again later.
    Busy,
    /// A code this version does not know.
    Other(u16),
}

impl ErrorCode {
    /// The code on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::Protocol => 2,
            ErrorCode::Rejected => 3,
            ErrorCode::Timeout => 4,
            ErrorCode::Internal => 5,
            ErrorCode::Version => 6,
            ErrorCode::Busy => 7,
            ErrorCode::Other(c) => c,
        }
    }
    /// The code from the wire.
    pub fn from_u16(c: u16) -> Self {
        match c {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::Protocol,
            3 => ErrorCode::Rejected,
            4 => ErrorCode::Timeout,
            5 => ErrorCode::Internal,
            6 => ErrorCode::Version,
            7 => ErrorCode::Busy,
            c => ErrorCode::Other(c),
        }
    }
}

/// Asks for events `from..` of a log, at most `max_events`, with the
/// consistency proof to the checkpoint of size `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The log.
    pub log: LogId,
    /// First seq.
    pub from: u64,
    /// The checkpoint's size.
    pub to: u64,
    /// Most events wanted.
    pub max_events: u32,
    /// Also send the server's root at `from` and the proof from there to
    /// the checkpoint (asked once per log when the requester already holds
    /// events of it, to tell a fork from a lie).
    pub want_base: bool,
}

/// Events `from..from + events.len()` and the consistency proof from
/// `from + events.len()` to the requested checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageResponse {
    /// The log.
    pub log: LogId,
    /// Seq of the first event.
    pub from: u64,
    /// Canonical event encodings.
    pub events: Vec<Vec<u8>>,
    /// The proof.
    pub proof: Vec<Hash>,
    /// When asked: the server's root at `from`, and the consistency proof
    /// from `from` to the checkpoint.
    pub base: Option<(Hash, Vec<Hash>)>,
}

/// An XSP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Opens a session.
    Hello {
        /// Protocol version.
        version: u16,
        /// The sender's node id (its store's author key).
        node_id: [u8; 32],
        /// Capability bits ([`caps`]).
        caps: u32,
        /// Whether the sender wants every topic; `topics` then lists the
        /// topics it holds.
        all_topics: bool,
        /// Topics of interest.
        topics: Vec<TopicEntry>,
    },
    /// The sender's logs in one shared topic, with their checkpoints.
    Peaks {
        /// The topic.
        topic: TopicId,
        /// Its logs.
        logs: Vec<PeakEntry>,
    },
    /// The sender's logs in one shared topic, summed up: its logs fall in
    /// `buckets.len()` buckets by the first bytes of their author key, and
    /// each bucket is the first 8 bytes of a hash over its `PEAKS` entries
    /// (zeros when empty). The peer answers with `PEAKS` holding only its
    /// logs in the buckets that differ.
    Summary {
        /// The topic.
        topic: TopicId,
        /// One digest per bucket; a power of two of them, at most
        /// [`MAX_BUCKETS`].
        buckets: Vec<[u8; 8]>,
    },
    /// The suffixes the sender will pull.
    Diff {
        /// What it will request.
        wants: Vec<DiffEntry>,
    },
    /// Asks for a page of a log.
    PageRequest(PageRequest),
    /// A page of a log, with its proof.
    PageResponse(PageResponse),
    /// The sender will request nothing more.
    SyncDone,
    /// Live mode: a log has a new checkpoint.
    Checkpoint {
        /// The log.
        log: LogId,
        /// The signed note.
        note: String,
    },
    /// The sender is closing the session, and why.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// A human-readable reason.
        reason: String,
    },
}

impl Message {
    /// The message's name, as in the protocol description.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "HELLO",
            Message::Peaks { .. } => "PEAKS",
            Message::Summary { .. } => "SUMMARY",
            Message::Diff { .. } => "DIFF",
            Message::PageRequest(_) => "PAGE_REQUEST",
            Message::PageResponse(_) => "PAGE_RESPONSE",
            Message::SyncDone => "SYNC_DONE",
            Message::Checkpoint { .. } => "CHECKPOINT",
            Message::Error { .. } => "ERROR",
        }
    }

    /// Appends the message as one frame to `out`. Fails, leaving `out` as
    /// it was, if it would break a bound (the receiver would refuse it).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), SyncError> {
        let start = out.len();
        out.extend_from_slice(&[0u8; 4]);
        let body = self.encode_body(out);
        let len = out.len() - start - 4;
        let framed = body.and_then(|()| {
            check("frame", len, MAX_FRAME)?;
            u32::try_from(len).map_err(|_| too_big("frame", len, MAX_FRAME))
        });
        match framed {
            Ok(len) => {
                if let Some(prefix) = out.get_mut(start..start + 4) {
                    prefix.copy_from_slice(&len.to_be_bytes());
                }
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), SyncError> {
        match self {
            Message::Hello {
                version,
                node_id,
                caps,
                all_topics,
                topics,
            } => encode_hello(out, *version, node_id, *caps, *all_topics, topics)?,
            Message::Peaks { topic, logs } => {
                check("logs", logs.len(), MAX_LOGS)?;
                out.push(tag::PEAKS);
                out.extend_from_slice(&topic.0);
                put_len32(out, logs.len())?;
                for l in logs {
                    check("note", l.note.len(), MAX_NOTE)?;
                    out.extend_from_slice(&l.author);
                    out.extend_from_slice(&l.size.to_be_bytes());
                    put_str16(out, &l.note)?;
                }
            }
            Message::Summary { topic, buckets } => {
                check("buckets", buckets.len(), MAX_BUCKETS)?;
                out.push(tag::SUMMARY);
                out.extend_from_slice(&topic.0);
                put_len16(out, buckets.len())?;
                for b in buckets {
                    out.extend_from_slice(b);
                }
            }
            Message::Diff { wants } => {
                check("diff entries", wants.len(), MAX_DIFF)?;
                out.push(tag::DIFF);
                put_len32(out, wants.len())?;
                for w in wants {
                    out.extend_from_slice(&w.log.to_bytes());
                    out.extend_from_slice(&w.from.to_be_bytes());
                    out.extend_from_slice(&w.to.to_be_bytes());
                }
            }
            Message::PageRequest(r) => {
                out.push(tag::PAGE_REQUEST);
                out.extend_from_slice(&r.log.to_bytes());
                out.extend_from_slice(&r.from.to_be_bytes());
                out.extend_from_slice(&r.to.to_be_bytes());
                out.extend_from_slice(&r.max_events.to_be_bytes());
                out.push(u8::from(r.want_base));
            }
            Message::PageResponse(p) => encode_page(out, p)?,
            Message::SyncDone => out.push(tag::SYNC_DONE),
            Message::Checkpoint { log, note } => {
                check("note", note.len(), MAX_NOTE)?;
                out.push(tag::CHECKPOINT);
                out.extend_from_slice(&log.to_bytes());
                put_str16(out, note)?;
            }
            Message::Error { code, reason } => {
                out.push(tag::ERROR);
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                // Reasons are cut, on a character boundary, rather than refused.
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                put_str16(out, reason.get(..end).unwrap_or_default())?;
            }
        }
        Ok(())
    }

    /// Decodes one frame's body (tag and payload).
    pub fn decode(body: &[u8]) -> Result<Message, SyncError> {
        let mut r = Reader(Cursor::new(body));
        let msg = match r.u8()? {
            tag::HELLO => decode_hello(&mut r)?,
            tag::PEAKS => {
                let topic = TopicId(r.arr32()?);
                let n = r.count32(MAX_LOGS, 42, "logs")?;
                let mut logs = Vec::with_capacity(n);
                for _ in 0..n {
                    let author = r.arr32()?;
                    let size = r.u64()?;
                    let note = r.str16(MAX_NOTE, "note")?;
                    logs.push(PeakEntry { author, size, note });
                }
                Message::Peaks { topic, logs }
            }
            tag::SUMMARY => {
                let topic = TopicId(r.arr32()?);
                let n = r.count16(MAX_BUCKETS, 8, "buckets")?;
                if !n.is_power_of_two() || n < 2 {
                    return Err(r.bad(format!("{n} buckets: not a power of two from 2")));
                }
                let mut buckets = Vec::with_capacity(n);
                for _ in 0..n {
                    buckets.push(r.array::<8>()?);
                }
                Message::Summary { topic, buckets }
            }
            tag::DIFF => {
                let n = r.count32(MAX_DIFF, LOG_ID_LEN + 16, "diff entries")?;
                let mut wants = Vec::with_capacity(n);
                for _ in 0..n {
                    let log = r.log()?;
                    let from = r.u64()?;
                    let to = r.u64()?;
                    wants.push(DiffEntry { log, from, to });
                }
                Message::Diff { wants }
            }
            tag::PAGE_REQUEST => Message::PageRequest(PageRequest {
                log: r.log()?,
                from: r.u64()?,
                to: r.u64()?,
                max_events: r.u32()?,
                want_base: r.flag("want-base flag")?,
            }),
            tag::PAGE_RESPONSE => decode_page(&mut r)?,
            tag::SYNC_DONE => Message::SyncDone,
            tag::CHECKPOINT => Message::Checkpoint {
                log: r.log()?,
                note: r.str16(MAX_NOTE, "note")?,
            },
            tag::ERROR => Message::Error {
                code: ErrorCode::from_u16(r.u16()?),
                reason: r.str16(MAX_REASON, "reason")?,
            },
            other => return Err(r.bad(format!("unknown message tag {other}"))),
        };
        if r.0.left() != 0 {
            return Err(r.bad(format!("{} bytes after the message", r.0.left())));
        }
        Ok(msg)
    }
}

fn too_big(what: &str, n: usize, max: usize) -> SyncError {
    SyncError::Malformed {
        offset: 0,
        reason: format!("{what}: {n} is more than {max}"),
    }
}

fn check(what: &str, n: usize, max: usize) -> Result<(), SyncError> {
    if n > max {
        Err(too_big(what, n, max))
    } else {
        Ok(())
    }
}

fn put_len16(out: &mut Vec<u8>, n: usize) -> Result<(), SyncError> {
    let n = u16::try_from(n).map_err(|_| too_big("count", n, u16::MAX as usize))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn put_len32(out: &mut Vec<u8>, n: usize) -> Result<(), SyncError> {
    let n = u32::try_from(n).map_err(|_| too_big("count", n, u32::MAX as usize))?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn put_str16(out: &mut Vec<u8>, s: &str) -> Result<(), SyncError> {
    put_len16(out, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_proof(out: &mut Vec<u8>, what: &str, proof: &[Hash]) -> Result<(), SyncError> {
    check(what, proof.len(), MAX_PROOF)?;
    out.push(proof.len() as u8);
    for h in proof {
        out.extend_from_slice(h);
    }
    Ok(())
}

fn encode_hello(
    out: &mut Vec<u8>,
    version: u16,
    node_id: &[u8; 32],
    caps: u32,
    all_topics: bool,
    topics: &[TopicEntry],
) -> Result<(), SyncError> {
    check("topics", topics.len(), MAX_TOPICS)?;
    out.push(tag::HELLO);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(node_id);
    out.extend_from_slice(&caps.to_be_bytes());
    out.push(u8::from(all_topics));
    put_len16(out, topics.len())?;
    for t in topics {
        check("topic name", t.name.len(), MAX_TOPIC_NAME)?;
        out.extend_from_slice(&t.id.0);
        put_str16(out, &t.name)?;
        out.extend_from_slice(&t.digest);
    }
    Ok(())
}

fn encode_page(out: &mut Vec<u8>, p: &PageResponse) -> Result<(), SyncError> {
    check("events", p.events.len(), MAX_EVENTS)?;
    out.push(tag::PAGE_RESPONSE);
    out.extend_from_slice(&p.log.to_bytes());
    out.extend_from_slice(&p.from.to_be_bytes());
    put_len32(out, p.events.len())?;
    for e in &p.events {
        check("event", e.len(), MAX_EVENT)?;
        put_len32(out, e.len())?;
        out.extend_from_slice(e);
    }
    put_proof(out, "proof", &p.proof)?;
    match &p.base {
        None => out.push(0),
        Some((root, p)) => {
            out.push(1);
            out.extend_from_slice(root);
            put_proof(out, "base proof", p)?;
        }
    }
    Ok(())
}

fn decode_hello(r: &mut Reader<'_>) -> Result<Message, SyncError> {
    if r.take(4)? != MAGIC {
        return Err(r.bad("not an XSP HELLO (bad magic)"));
    }
    let version = r.u16()?;
    let node_id = r.arr32()?;
    let caps = r.u32()?;
    let all_topics = r.flag("all-topics flag")?;
    let n = r.count16(MAX_TOPICS, 66, "topics")?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let id = TopicId(r.arr32()?);
        let name = r.str16(MAX_TOPIC_NAME, "topic name")?;
        let digest = r.arr32()?;
        topics.push(TopicEntry { id, name, digest });
    }
    Ok(Message::Hello {
        version,
        node_id,
        caps,
        all_topics,
        topics,
    })
}

fn decode_page(r: &mut Reader<'_>) -> Result<Message, SyncError> {
    let log = r.log()?;
    let from = r.u64()?;
    let n = r.count32(MAX_EVENTS, 4, "events")?;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        if len > MAX_EVENT {
            return Err(r.bad(format!("event of {len} bytes, more than {MAX_EVENT}")));
        }
        events.push(r.take(len)?.to_vec());
    }
    let proof = r.proof()?;
    let base = if r.flag("base flag")? {
        let root = r.arr32()?;
        Some((root, r.proof()?))
    } else {
        None
    };
    Ok(Message::PageResponse(PageResponse {
        log,
        from,
        events,
        proof,
        base,
    }))
}

/// The shared cursor, with this format's errors: every failure names its
/// offset in the frame.
struct Reader<'a>(Cursor<'a>);

impl<'a> Reader<'a> {
    fn bad(&self, reason: impl Into<String>) -> SyncError {
        SyncError::Malformed {
            offset: self.0.pos() as u64,
            reason: reason.into(),
        }
    }
    fn truncated(&self, n: usize) -> SyncError {
        self.bad(format!(
            "truncated: {n} bytes wanted, {} left",
            self.0.left()
        ))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SyncError> {
        let e = self.truncated(n);
        self.0.take(n).ok_or(e)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SyncError> {
        let e = self.truncated(N);
        self.0.array().ok_or(e)
    }
    fn u8(&mut self) -> Result<u8, SyncError> {
        self.array::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Result<u16, SyncError> {
        self.array().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, SyncError> {
        self.array().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, SyncError> {
        self.array().map(u64::from_be_bytes)
    }
    fn arr32(&mut self) -> Result<[u8; 32], SyncError> {
        self.array()
    }
    fn flag(&mut self, what: &str) -> Result<bool, SyncError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad(format!("{what} is not 0 or 1"))),
        }
    }
    fn proof(&mut self) -> Result<Vec<Hash>, SyncError> {
        let p = self.u8()? as usize;
        if p > MAX_PROOF || p * 32 > self.0.left() {
            return Err(self.bad(format!("proof of {p} hashes")));
        }
        (0..p).map(|_| self.arr32()).collect()
    }
    fn log(&mut self) -> Result<LogId, SyncError> {
        Ok(LogId::from_bytes(&self.array()?))
    }
    /// A count, checked against its bound and against the bytes left
    /// (each item takes at least `min_item` bytes).
    fn count(
        &mut self,
        n: usize,
        max: usize,
        min_item: usize,
        what: &str,
    ) -> Result<usize, SyncError> {
        if n > max || n.saturating_mul(min_item) > self.0.left() {
            return Err(self.bad(format!(
                "{n} {what}: more than the bound ({max}) or the frame holds"
            )));
        }
        Ok(n)
    }
    fn count16(&mut self, max: usize, min_item: usize, what: &str) -> Result<usize, SyncError> {
        let n = self.u16()? as usize;
        self.count(n, max, min_item, what)
    }
    fn count32(&mut self, max: usize, min_item: usize, what: &str) -> Result<usize, SyncError> {
        let n = self.u32()? as usize;
        self.count(n, max, min_item, what)
    }
    fn str16(&mut self, max: usize, what: &str) -> Result<String, SyncError> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(self.bad(format!("{what} of {n} bytes, more than {max}")));
        }
        let at = self.0.pos();
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| SyncError::Malformed {
            offset: at as u64,
            reason: format!("{what} is not UTF-8"),
        })
    }
}

/// Bytes of a frame's length prefix.
const PREFIX: usize = 4;

/// Splits a byte stream into frames. Feed it what arrives; take messages
/// out as they complete. A frame's length is checked before its body is
/// buffered, so a peer cannot make it hold more than one bounded frame.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes consumed so far, for error offsets.
    consumed: u64,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Message>, SyncError> {
        let Some(len) = xaeroflux_types::bytes::u32_be_at(&self.buf, 0) else {
            return Ok(None);
        };
        let len = len as usize;
        if len == 0 {
            return Err(SyncError::Malformed {
                offset: self.consumed,
                reason: "empty frame".into(),
            });
        }
        if len > MAX_FRAME {
            return Err(SyncError::FrameTooLong {
                offset: self.consumed,
                len: len as u64,
                max: MAX_FRAME as u64,
            });
        }
        let Some(body) = self.buf.get(PREFIX..PREFIX + len) else {
            return Ok(None);
        };
        let msg = Message::decode(body).map_err(|e| match e {
            SyncError::Malformed { offset, reason } => SyncError::Malformed {
                offset: self.consumed + PREFIX as u64 + offset,
                reason,
            },
            e => e,
        })?;
        self.buf.drain(..PREFIX + len);
        self.consumed += (PREFIX + len) as u64;
        Ok(Some(msg))
    }
}
