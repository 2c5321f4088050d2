//! The tools' results: one type per result, whose JSON schema is the
//! tool's `outputSchema`. Field names are those of `xf --json`
//! (`xaeroflux::json`); hashes are lowercase hex.

use base64::Engine;
use schemars::JsonSchema;
use serde::Serialize;
use xaeroflux::EventRef;
use xaeroflux::json::{self, hex};

/// How a payload is written in an event's `payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    /// The payload is UTF-8 text, given as is.
    Utf8,
    /// The payload is not UTF-8: standard base64 with padding.
    Base64,
    /// The payload is sealed (a private topic) and not shown: the server
    /// was not started with `--allow-private`, or holds no key for it.
    Encrypted,
}

/// One event.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventOut {
    /// Its log, as `AUTHOR_HEX/TOPIC_ID_HEX`.
    pub log: String,
    /// The author's key, hex.
    pub author: String,
    /// Its position in the log.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, the author's clock.
    pub timestamp_ms: u64,
    /// `application`, `system` or `identity`.
    pub kind: String,
    /// The payload: its text when it is UTF-8, else base64.
    pub payload: String,
    /// `utf8`, `base64`, or `encrypted` (then `payload` is empty).
    pub encoding: PayloadEncoding,
    /// The RFC 9162 leaf hash of the event's canonical bytes (for a
    /// private topic, over the sealed bytes).
    pub leaf_hash: String,
    /// Present and true for an event of a private topic.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

fn text_or_base64(bytes: &[u8]) -> (String, PayloadEncoding) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), PayloadEncoding::Utf8),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            PayloadEncoding::Base64,
        ),
    }
}

impl EventOut {
    /// An event as the server shows it: a private topic's payload opened
    /// only when `allow_private` and the store holds its key, else shown
    /// as encrypted.
    pub fn read(core: &xaeroflux::Core, ev: &EventRef<'_>, allow_private: bool) -> Self {
        let mut out = Self::from(ev);
        if ev.flags() & xaeroflux::store::FLAG_ENCRYPTED == 0 {
            return out;
        }
        out.encrypted = true;
        match core.read_payload(ev) {
            Ok(xaeroflux::Payload::Decrypted(p)) if allow_private => {
                (out.payload, out.encoding) = text_or_base64(&p);
            }
            _ => {
                out.payload = String::new();
                out.encoding = PayloadEncoding::Encrypted;
            }
        }
        out
    }
}

impl From<&EventRef<'_>> for EventOut {
    /// The event as stored (a private topic's payload is sealed: use
    /// [`EventOut::read`]).
    fn from(ev: &EventRef<'_>) -> Self {
        let (payload, encoding) = text_or_base64(ev.payload());
        Self {
            log: ev.log_id().to_string(),
            author: hex(ev.author()),
            seq: ev.seq(),
            timestamp_ms: ev.timestamp_ms(),
            kind: ev.kind().as_str().to_string(),
            payload,
            encoding,
            leaf_hash: hex(&ev.leaf_hash()),
            encrypted: false,
        }
    }
}

/// One topic.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TopicOut {
    /// Its name, when this store knows it.
    pub name: Option<String>,
    /// Its id, hex.
    pub id: String,
    /// The logs (one per author) the store holds in it.
    pub logs: u64,
    /// Their events, all together.
    pub events: u64,
    /// Its resource, `xf://topic/{name}` (null without a name).
    pub uri: Option<String>,
}

/// `list_topics`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TopicsOut {
    /// Every topic, by name (unnamed ones last, by id).
    pub topics: Vec<TopicOut>,
}

/// A page of a topic view.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PageOut {
    /// The topic's name, when known.
    pub topic: Option<String>,
    /// The topic's id, hex.
    pub topic_id: String,
    /// The events, in the topic view's order (timestamp, author, seq).
    pub events: Vec<EventOut>,
    /// Pass as `since_seq` for the next page; null when this page reached
    /// the end of what the store holds now.
    pub next: Option<String>,
    /// Pass as `since_seq` later to get what came after this page (what
    /// was appended or replicated since), once `next` is null.
    pub resume: String,
}

/// `get_event`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GetEventOut {
    /// The event.
    #[serde(flatten)]
    pub event: EventOut,
    /// Its canonical bytes (what the leaf hash covers), hex.
    pub bytes_hex: String,
}

/// `prove_inclusion`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProofOut {
    /// The inclusion proof: `log`, `index`, `size`, `leaf_hash`, `root`,
    /// `path`.
    #[serde(flatten)]
    pub inclusion: json::Inclusion,
    /// The log's latest signed checkpoint: `root` is its root when `size`
    /// is its size.
    pub checkpoint: json::Checkpoint,
    /// When `size` is below the checkpoint's: the consistency proof from
    /// `root` to the checkpoint's root.
    pub consistency: Option<json::Consistency>,
}

/// `verify_inclusion`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VerifyOut {
    /// Whether everything given checks out.
    pub valid: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// What was checked, in order (`inclusion`, `checkpoint signature`,
    /// `checkpoint root`, `consistency`).
    pub checked: Vec<String>,
}

/// `stats`: the store's sizes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatsOut {
    /// As `xf stat --json` prints them.
    #[serde(flatten)]
    pub stats: xaeroflux::Stats,
    /// Whether this server may append (`--allow-append`).
    pub append_allowed: bool,
    /// Whether appends go through a node running on the store.
    pub via_node: bool,
}
