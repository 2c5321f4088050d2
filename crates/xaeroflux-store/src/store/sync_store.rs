//! The store as an XSP peer: snapshot reads for the session, and its writes
//! started on the writer without waiting.

use std::collections::BTreeMap;

use xaeroflux_merkle::Hash;
use xaeroflux_sync::codec::{PeakEntry, TopicEntry};
use xaeroflux_sync::{Done, EventRange, StoreFault, StoreOp, SyncStore};
use xaeroflux_types::{LogId, TopicId};

use super::{Replication, Store};
use crate::error::StoreError;

impl From<StoreError> for StoreFault {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(r) => StoreFault::Rejected(r),
            other => StoreFault::Failed(Box::new(other)),
        }
    }
}

impl SyncStore for Store {
    fn author(&self) -> [u8; 32] {
        Store::author(self)
    }

    fn pull_claims(&self) -> Option<&xaeroflux_sync::PullClaims> {
        Some(&self.shared.pull_claims)
    }

    fn topics(&self) -> Result<Vec<TopicEntry>, StoreFault> {
        let mut seen = BTreeMap::new();
        for info in self.logs()? {
            // A private topic's name stays here: peers get its id only.
            seen.entry(info.log.topic).or_insert_with(|| {
                info.topic_name
                    .clone()
                    .filter(|n| !xaeroflux_types::is_private_name(n))
                    .unwrap_or_default()
            });
        }
        Ok(seen
            .into_iter()
            .map(|(id, name)| TopicEntry {
                id,
                name,
                digest: [0; 32],
            })
            .collect())
    }

    fn peaks(&self, topic: &TopicId) -> Result<Vec<PeakEntry>, StoreFault> {
        let mut out = Vec::new();
        for info in self.topic_logs(topic)? {
            if info.size == 0 {
                continue;
            }
            match self.checkpoint(&info.log) {
                Ok(cp) => out.push(PeakEntry {
                    author: info.log.author,
                    size: cp.checkpoint.size,
                    note: cp.note,
                }),
                // Another author's log with no checkpoint reached yet: it
                // cannot be served until one is.
                Err(StoreError::NoCheckpoint(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    fn checkpoint_of(&self, log: &LogId) -> Result<Option<PeakEntry>, StoreFault> {
        match self.checkpoint(log) {
            Ok(cp) => Ok(Some(PeakEntry {
                author: log.author,
                size: cp.checkpoint.size,
                note: cp.note,
            })),
            Err(StoreError::NoCheckpoint(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn log_size(&self, log: &LogId) -> Result<u64, StoreFault> {
        Ok(Store::log_size(self, log)?)
    }

    fn root_at(&self, log: &LogId, size: u64) -> Result<Hash, StoreFault> {
        Ok(Store::root_at(self, log, size)?)
    }

    fn read_events(&self, log: &LogId, range: EventRange) -> Result<Vec<Vec<u8>>, StoreFault> {
        let events = self.iter_log_range(log, range.from, range.to)?;
        Ok(range.take(events.map(|e| e.map(|e| (e.seq(), e.canonical_bytes()))))?)
    }

    fn prove_consistency(&self, log: &LogId, old: u64, new: u64) -> Result<Vec<Hash>, StoreFault> {
        Ok(Store::prove_consistency(self, log, old, new)?.path)
    }

    fn start(&self, op: StoreOp, done: Done) {
        match op {
            StoreOp::Import(page) => self.import_then(
                page,
                Box::new(move |r| done(r.map(|(_, n)| n).map_err(StoreFault::from))),
            ),
            StoreOp::RecordFork {
                log,
                theirs,
                their_side,
            } => done(match self.record_fork(&log, &theirs, their_side) {
                Ok(_) => Ok(0),
                Err(StoreError::NoCheckpoint(_)) => Err(StoreFault::NoCheckpoint(log)),
                Err(e) => Err(e.into()),
            }),
        }
    }
}
