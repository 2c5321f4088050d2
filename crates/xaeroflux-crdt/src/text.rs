//! Rich text and JSON documents through Loro (feature `loro`): each local
//! commit's update bytes are one event of the topic; opening imports every
//! update in one batch; replicas that edit concurrently converge once their
//! logs are synced, as Loro merges in any order.
//!
//! Event payload (version 1): magic `XFLR` (4 bytes), version (1 byte, 1),
//! then the Loro update bytes (`ExportMode::updates` from the previous
//! commit's version).
//!
//! ```
//! use xaeroflux::{Core, Topic};
//! use xaeroflux_crdt::text::TextDoc;
//!
//! # fn main() -> Result<(), xaeroflux_crdt::CrdtError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::builder().open(dir.path())?;
//! let mut doc = TextDoc::open(&core, &Topic::new("notes")?)?;
//! doc.loro().get_text("body").insert(0, "Hello").map_err(xaeroflux_crdt::text::err)?;
//! doc.commit()?; // one event with the update
//! assert_eq!(doc.loro().get_text("body").to_string(), "Hello");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use loro::{ExportMode, LoroDoc, VersionVector};
use xaeroflux::{Core, LogId, Receipt, Topic};

use crate::error::CrdtError;

/// Magic of a Loro update event.
pub const LORO_MAGIC: [u8; 4] = *b"XFLR";
/// Version of the Loro update event payload.
pub const LORO_VERSION: u8 = 1;

/// A Loro error as a document error.
pub fn err(e: impl std::fmt::Display) -> CrdtError {
    CrdtError::Text(e.to_string())
}

/// A Loro document whose updates are the events of a topic.
pub struct TextDoc<'c> {
    core: &'c Core,
    topic: Topic,
    doc: LoroDoc,
    frontier: BTreeMap<LogId, u64>,
    /// The version of the last update this replica appended or imported.
    exported: VersionVector,
}

impl std::fmt::Debug for TextDoc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextDoc")
            .field("topic", &self.topic.name())
            .finish()
    }
}

impl<'c> TextDoc<'c> {
    /// Opens the document of `topic`, importing every update in one batch.
    pub fn open(core: &'c Core, topic: &Topic) -> Result<Self, CrdtError> {
        let mut doc = Self {
            core,
            topic: topic.clone(),
            doc: LoroDoc::new(),
            frontier: BTreeMap::new(),
            exported: VersionVector::default(),
        };
        doc.refresh()?;
        Ok(doc)
    }

    /// The Loro document, to read and edit (`get_text`, `get_map`, ...).
    /// Edits are local until [`TextDoc::commit`].
    pub fn loro(&self) -> &LoroDoc {
        &self.doc
    }

    /// Imports the updates committed to the topic since the last read
    /// (replicated ones, in one batch); returns how many.
    pub fn refresh(&mut self) -> Result<usize, CrdtError> {
        let frontier = &self.frontier;
        let events = self.core.iter_topic_from(&self.topic.id(), |log| {
            frontier.get(log).copied().unwrap_or(0)
        });
        let mut updates = Vec::new();
        let mut seen = Vec::new();
        for read in self.core.read_events(events) {
            let read = read?;
            seen.push((read.event.log_id(), read.event.seq() + 1));
            let Some(p) = read.plaintext() else { continue };
            match p.split_first_chunk::<5>() {
                Some((head, update)) if head[..4] == LORO_MAGIC && head[4] == LORO_VERSION => {
                    updates.push(update.to_vec());
                }
                _ => {}
            }
        }
        for (log, next) in seen {
            let e = self.frontier.entry(log).or_insert(0);
            *e = (*e).max(next);
        }
        if !updates.is_empty() {
            // Commit pending local edits first so they are not mixed in.
            self.doc.commit();
            self.doc.import_batch(&updates).map_err(err)?;
        }
        Ok(updates.len())
    }

    /// Commits the local edits: their update bytes become one event of the
    /// topic (durable on return). `None` when there was nothing to commit.
    pub fn commit(&mut self) -> Result<Option<Receipt>, CrdtError> {
        self.doc.commit();
        let now = self.doc.oplog_vv();
        if now == self.exported {
            return Ok(None);
        }
        let update = self
            .doc
            .export(ExportMode::updates(&self.exported))
            .map_err(err)?;
        let mut payload = Vec::with_capacity(5 + update.len());
        payload.extend_from_slice(&LORO_MAGIC);
        payload.push(LORO_VERSION);
        payload.extend_from_slice(&update);
        let r = self
            .core
            .append(self.core.new_event_in(&self.topic, payload))?;
        // Our own event is folded in already: skip it on the next read.
        let e = self.frontier.entry(r.log).or_insert(0);
        *e = (*e).max(r.seq + 1);
        self.exported = now;
        Ok(Some(r))
    }

    /// The whole document as JSON (Loro's deep value).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.doc.get_deep_value()).unwrap_or(serde_json::Value::Null)
    }
}
