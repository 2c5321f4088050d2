//! Pulls in progress, shared by every session of one store. When several
//! peers offer the same log at once (many of them announced the same
//! checkpoint), the first session to ask claims the log and pulls it; the
//! others leave it and count it as deferred, so each page crosses the
//! network once rather than once per peer. A claim ends when its pull is
//! complete or its session ends, however it ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use xaeroflux_types::LogId;

/// The logs being pulled into one store, and by which session.
#[derive(Debug, Default)]
pub struct PullClaims(Mutex<HashMap<LogId, u64>>);

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A fresh owner id for a session (unique in the process).
pub(crate) fn next_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

impl PullClaims {
    /// No log claimed.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<LogId, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `log` for `owner`: whether it may pull it (no other session
    /// does).
    pub fn claim(&self, owner: u64, log: &LogId) -> bool {
        *self.map().entry(*log).or_insert(owner) == owner
    }

    /// Ends `owner`'s claim on `log`.
    pub fn release(&self, owner: u64, log: &LogId) {
        let mut m = self.map();
        if m.get(log) == Some(&owner) {
            m.remove(log);
        }
    }

    /// Ends every claim of `owner`.
    pub fn release_all(&self, owner: u64) {
        self.map().retain(|_, o| *o != owner);
    }

    /// Logs claimed now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no log is claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time() {
        let c = PullClaims::new();
        let log = LogId {
            author: [1; 32],
            topic: xaeroflux_types::TopicId([2; 32]),
        };
        assert!(c.claim(1, &log));
        assert!(c.claim(1, &log), "an owner may ask again");
        assert!(!c.claim(2, &log));
        c.release(2, &log);
        assert!(!c.claim(2, &log), "only the owner releases");
        c.release_all(1);
        assert!(c.is_empty());
        assert!(c.claim(2, &log));
    }
}
