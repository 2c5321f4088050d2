//! Whom a node syncs with, and when: the rules of the iroh node
//! (`xaeroflux-net`), free of I/O and of clocks, so that the node and the
//! simulator ([`crate::sim`]) run the same code. Times are milliseconds
//! from any origin the caller keeps.
//!
//! A node syncs with a peer when there is a reason to (it joined a topic
//! with that peer, the peer came up as a gossip neighbour, the peer or a
//! neighbour relayed an announcement of news, the period came round, or a
//! session deferred a log to another). At most one session it dials runs
//! per peer; a reason that comes while one runs makes one more run after
//! it (once it worked); and two dials to one peer start at least the
//! redial gap apart, so a flood of announcements costs a few dials a
//! second, not one each.

use std::collections::HashMap;
use std::hash::Hash;

/// Least time between the starts of two sessions dialed to one peer.
pub const REDIAL_GAP_MS: u64 = 200;
/// How long after a session that deferred a log (another session was
/// pulling it) the node syncs with that peer again, in case that pull
/// stopped short; and how long after pulling news from the neighbour that
/// relayed it (not from its announcer) the node checks that it has it,
/// and syncs with that neighbour again if not: a relayer passes news on
/// before it has pulled the events itself, and does not announce them
/// again once it has (see [`worth_announcing`]).
pub const DEFERRED_RETRY_MS: u64 = 1000;

#[derive(Debug, Default, Clone, Copy)]
struct Peer {
    running: bool,
    again: bool,
    last_dial: Option<u64>,
}

/// The dialing state of one node: per peer, whether a dialed session
/// runs, whether another is wanted after it, and when the last started.
#[derive(Debug)]
pub struct Scheduler<P> {
    peers: HashMap<P, Peer>,
    redial_gap: u64,
}

impl<P: Copy + Eq + Hash> Default for Scheduler<P> {
    fn default() -> Self {
        Self::new(REDIAL_GAP_MS)
    }
}

impl<P: Copy + Eq + Hash> Scheduler<P> {
    /// A scheduler with `redial_gap` ms between two dials to one peer.
    pub fn new(redial_gap: u64) -> Self {
        Self {
            peers: HashMap::new(),
            redial_gap,
        }
    }

    fn earliest(&self, p: &Peer, now: u64) -> u64 {
        p.last_dial
            .map_or(now, |t| now.max(t.saturating_add(self.redial_gap)))
    }

    /// A reason to sync with `peer` came at `now`: when to dial it, or
    /// `None` when a session dialed to it runs (one more follows it).
    pub fn request(&mut self, peer: P, now: u64) -> Option<u64> {
        let p = self.peers.entry(peer).or_default();
        if p.running {
            p.again = true;
            return None;
        }
        p.running = true;
        let p = *p;
        Some(self.earliest(&p, now))
    }

    /// The dial to `peer` starts now.
    pub fn dialing(&mut self, peer: P, now: u64) {
        self.peers.entry(peer).or_default().last_dial = Some(now);
    }

    /// The session dialed to `peer` ended (`ok`: it worked): when to dial
    /// it again, if a reason came meanwhile. A peer that cannot be
    /// reached waits for the next reason.
    pub fn ended(&mut self, peer: P, ok: bool, now: u64) -> Option<u64> {
        let p = self.peers.entry(peer).or_default();
        let again = ok && p.again;
        p.again = false;
        p.running = again;
        let p = *p;
        again.then(|| self.earliest(&p, now))
    }

    /// A session `peer` opened starts. While it runs it holds the peer as
    /// a dialed one does (reasons meanwhile make one more session after
    /// it), unless a dialed session runs already: then it does not, and
    /// this returns false.
    pub fn accepted(&mut self, peer: P) -> bool {
        let p = self.peers.entry(peer).or_default();
        if p.running {
            return false;
        }
        p.running = true;
        true
    }

    /// The session `peer` opened, which held it, ended: whether a reason
    /// to sync came meanwhile (then call [`Scheduler::request`]).
    pub fn accepted_ended(&mut self, peer: P) -> bool {
        let p = self.peers.entry(peer).or_default();
        p.running = false;
        std::mem::take(&mut p.again)
    }

    /// Whether a session dialed to `peer` runs (or waits for its dial).
    pub fn running(&self, peer: &P) -> bool {
        self.peers.get(peer).is_some_and(|p| p.running)
    }
}

/// How long a node waits before it announces another author's log it
/// pulled: the author's own announcement is often still on its way (a
/// session can outrun gossip), and once it is heard there is nothing to
/// add.
pub const RELAY_DELAY_MS: u64 = 500;

/// Whether a node announces that it holds a log at `size` (after a
/// commit grew it): always for its own logs; for another author's only
/// when it has not heard that size or a larger one announced (`heard`,
/// checked again after [`RELAY_DELAY_MS`]), so that news crosses the swarm
/// once, not once more for every node that pulled it. What it got without
/// hearing of it (a periodic sync, a partition healing) it does announce,
/// so its side learns of it.
pub fn worth_announcing(own: bool, size: u64, heard: Option<u64>) -> bool {
    own || heard.is_none_or(|h| h < size)
}

/// Whom to pull an announced checkpoint from: the announcer when it is a
/// peer of this node in the topic (a neighbour or a peer it was given),
/// otherwise the neighbour that relayed the news.
pub fn pull_from<P: Copy>(announcer: Option<P>, relayer: P, known: impl Fn(&P) -> bool) -> P {
    match announcer {
        Some(a) if known(&a) => a,
        _ => relayer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dial_at_a_time_one_more_after_and_a_gap_between() {
        let mut s = Scheduler::<u8>::new(200);
        assert_eq!(s.request(1, 1000), Some(1000));
        s.dialing(1, 1000);
        // Reasons while it runs: one more session after it, not one each.
        assert_eq!(s.request(1, 1010), None);
        assert_eq!(s.request(1, 1020), None);
        assert_eq!(s.ended(1, true, 1050), Some(1200), "the gap holds");
        s.dialing(1, 1200);
        assert_eq!(s.ended(1, true, 1300), None, "no reason came");
        assert!(!s.running(&1));
        // A failed session does not run again by itself.
        assert_eq!(s.request(1, 1310), Some(1400));
        s.dialing(1, 1400);
        assert_eq!(s.request(1, 1410), None);
        assert_eq!(s.ended(1, false, 1500), None);
        assert_eq!(s.request(1, 2000), Some(2000));
    }

    #[test]
    fn a_session_the_peer_opened_holds_it_too() {
        let mut s = Scheduler::<u8>::new(200);
        assert!(s.accepted(1));
        assert_eq!(s.request(1, 10), None, "waits for the accepted one");
        assert!(s.accepted_ended(1));
        assert_eq!(s.request(1, 20), Some(20));
        assert!(!s.accepted(1), "a dialed one runs");
    }

    #[test]
    fn news_is_announced_once() {
        assert!(worth_announcing(true, 5, Some(9)));
        assert!(worth_announcing(false, 5, None));
        assert!(worth_announcing(false, 5, Some(4)));
        assert!(!worth_announcing(false, 5, Some(5)));
    }

    #[test]
    fn pulls_from_the_announcer_when_known() {
        assert_eq!(pull_from(Some(7), 3, |p| *p == 7), 7);
        assert_eq!(pull_from(Some(7), 3, |_| false), 3);
        assert_eq!(pull_from(None, 3, |_| true), 3);
    }
}
