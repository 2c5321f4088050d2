//! After commits: which logs of joined topics to announce (with a freshly
//! signed checkpoint for the store's own) and to scan for blob references.

use std::collections::{HashMap, HashSet};

use xaeroflux_store::{Commit, LogId, Store, TopicId};

use super::Outputs;
use crate::wire::{Announcement, BlobRef};

pub(super) struct Announcer {
    outputs: Outputs,
    joined: HashSet<TopicId>,
    dirty: HashSet<LogId>,
    /// Size each log was last announced at, and scanned for blobs up to.
    announced: HashMap<LogId, u64>,
    scanned: HashMap<LogId, u64>,
}

impl Announcer {
    pub fn new(outputs: Outputs) -> Self {
        Self {
            outputs,
            joined: HashSet::new(),
            dirty: HashSet::new(),
            announced: HashMap::new(),
            scanned: HashMap::new(),
        }
    }

    pub fn commit(&mut self, c: Commit) {
        if self.joined.contains(&c.log.topic) {
            self.dirty.insert(c.log);
        }
    }

    pub fn join(&mut self, store: &Store, topic: TopicId) {
        if self.joined.insert(topic)
            && let Ok(logs) = store.topic_logs(&topic)
        {
            self.dirty.extend(logs.into_iter().map(|l| l.log));
        }
    }

    /// Announces and scans every log committed to since the last flush.
    pub fn flush(&mut self, store: &Store) {
        for log in std::mem::take(&mut self.dirty) {
            let Ok(size) = store.log_size(&log) else {
                continue;
            };
            self.announce(store, log, size);
            self.scan(store, log, size);
        }
    }

    fn announce(&mut self, store: &Store, log: LogId, size: u64) {
        if self.announced.get(&log).is_some_and(|&s| s >= size) {
            return;
        }
        if let Ok(signed) = store.checkpoint(&log)
            && signed.checkpoint.size == size
        {
            self.announced.insert(log, size);
            let _ = self.outputs.announce.send(Announcement {
                announcer: self.outputs.me,
                log,
                note: signed.note,
            });
        }
    }

    fn scan(&mut self, store: &Store, log: LogId, size: u64) {
        let Some(blobs) = &self.outputs.blobs else {
            return;
        };
        let from = self.scanned.get(&log).copied().unwrap_or(0);
        if from >= size {
            return;
        }
        if let Ok(iter) = store.iter_log_range(&log, from, size) {
            for ev in iter.flatten() {
                if let Some(r) = BlobRef::decode(ev.payload()) {
                    let _ = blobs.send(r);
                }
            }
            self.scanned.insert(log, size);
        }
    }
}
