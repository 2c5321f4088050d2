//! The tools' arguments: one type per tool, whose JSON schema is the
//! tool's `inputSchema` and whose `Deserialize` checks a call against it.
//! Unknown fields are refused, so a misspelt argument is an error and not
//! silently ignored.

use schemars::JsonSchema;
use serde::Deserialize;

/// Most events `read_topic` returns at once.
pub const MAX_LIMIT: u32 = 500;
/// Events `read_topic` returns when no limit is given.
pub const DEFAULT_LIMIT: u32 = 100;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Where a topic read starts: a seq in every log, or a cursor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SinceSeq {
    /// Events whose seq is at least this, in every log of the topic.
    Seq(u64),
    /// The `next` (or `resume`) cursor of an earlier page.
    Cursor(String),
}

/// `read_topic`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadTopic {
    /// The topic's name.
    pub topic: Option<String>,
    /// The topic's id (64 hex digits), for a topic whose name this store
    /// does not know; give `topic` or `topic_id`.
    pub topic_id: Option<String>,
    /// Start here: a seq, applied to every log of the topic (each author's
    /// log counts its own events from 0), or the `next` cursor of an
    /// earlier page to go on where it stopped (nothing is missed, even
    /// events replicated since into the part already read).
    pub since_seq: Option<SinceSeq>,
    /// Only events stamped at or after this time (milliseconds since the
    /// Unix epoch, the author's clock).
    pub since_ms: Option<u64>,
    /// At most this many events (1 to 500; 100 when not given).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// `get_event`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetEvent {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX` (an event's `log` field).
    pub log: String,
    /// The event's position in the log.
    pub seq: u64,
}

/// `checkpoint`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogOnly {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
}

/// `prove_inclusion`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProveInclusion {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The event's seq.
    pub seq: u64,
    /// The tree size to prove against (default: the size the log's latest
    /// checkpoint signs). Below it, a consistency proof from this size to
    /// the checkpoint comes too.
    pub size: Option<u64>,
}

/// A checkpoint given to `verify_inclusion`: the signed note, or the
/// `checkpoint` object `prove_inclusion` returned.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CheckpointArg {
    /// The whole C2SP signed note.
    Note(String),
    /// An object with the note in `note` (other fields are ignored: the
    /// note is what is checked).
    Object {
        /// The whole C2SP signed note.
        note: String,
    },
}

impl CheckpointArg {
    /// The note.
    pub fn note(&self) -> &str {
        match self {
            Self::Note(n) | Self::Object { note: n } => n,
        }
    }
}

/// A consistency proof given to `verify_inclusion`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConsistencyArg {
    /// The older size (the inclusion proof's `size`).
    pub from: Option<u64>,
    /// The newer size (the checkpoint's).
    pub to: Option<u64>,
    /// The root at `from`, hex (must be the inclusion proof's root).
    pub old_root: Option<String>,
    /// The root at `to`, hex (must be the checkpoint's root).
    pub new_root: Option<String>,
    /// The proof's hashes, lowercase hex.
    pub path: Vec<String>,
}

/// `verify_inclusion`: what `prove_inclusion` returned, as it returned it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyInclusion {
    /// The log, as `AUTHOR_HEX/TOPIC_ID_HEX`: its author's key checks the
    /// checkpoint's signature.
    pub log: Option<String>,
    /// The event's seq (`seq` is accepted too).
    #[serde(alias = "seq")]
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The event's leaf hash, hex.
    pub leaf_hash: String,
    /// The audit path, hex hashes, leaf to root.
    pub path: Vec<String>,
    /// The root at `size`, hex; may be left out when `checkpoint` signs
    /// that size.
    pub root: Option<String>,
    /// The signed checkpoint the root should lead to (checked with the
    /// author's key from `log`).
    pub checkpoint: Option<CheckpointArg>,
    /// From `root` to the checkpoint's root, when the proof is for an
    /// older size than the checkpoint signs.
    pub consistency: Option<ConsistencyArg>,
}

/// How an appended payload is written in `payload`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The text's UTF-8 bytes.
    #[default]
    #[serde(alias = "utf-8", alias = "text")]
    Utf8,
    /// Standard base64 (with or without padding).
    Base64,
}

/// `append`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Append {
    /// The topic's name.
    pub topic: String,
    /// The payload.
    pub payload: String,
    /// `utf8` (the default) or `base64`.
    pub encoding: Option<Encoding>,
}
