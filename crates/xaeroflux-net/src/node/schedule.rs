//! Whom to sync with and when: on request (a join, a neighbour coming up,
//! an announcement, a peer that asked), and every `sync_interval`; at most
//! one session per peer at a time, with one more after it if asked for
//! meanwhile, and sessions with one peer started at least `REDIAL_GAP`
//! apart (so a flood of announcements costs a few dials a second, not one
//! each).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::EndpointId;
use xaeroflux_sync::Outcome;

use super::Node;
use crate::error::NetError;
use crate::events::SyncEvent;

/// Least time between the starts of two sessions dialed to one peer.
pub(super) const REDIAL_GAP: Duration = Duration::from_millis(200);

impl Node {
    /// Syncs with `peer` soon: at once when no session with it runs and
    /// none started in the last `REDIAL_GAP`, else once more after the
    /// running one (or once the gap has passed).
    pub fn request_sync(self: &Arc<Self>, peer: EndpointId) {
        {
            let mut st = self.lock();
            let p = st.peers.entry(peer).or_default();
            if p.running {
                p.again = true;
                return;
            }
            p.running = true;
        }
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                let since = node.lock().peers.get(&peer).and_then(|p| p.last_dial);
                if let Some(wait) = since.map(|t| REDIAL_GAP.saturating_sub(t.elapsed())) {
                    tokio::time::sleep(wait).await;
                }
                if let Some(p) = node.lock().peers.get_mut(&peer) {
                    p.last_dial = Some(Instant::now());
                }
                let r = node.dial(peer).await;
                if !node.dialed(peer, &r) {
                    break;
                }
            }
        });
    }

    /// Notes how a dial to `peer` went, records peer-up/down and dial
    /// errors, and says whether to run another session at once.
    fn dialed(&self, peer: EndpointId, r: &Result<Outcome, NetError>) -> bool {
        let (events, again) = {
            let mut st = self.lock();
            let p = st.peers.entry(peer).or_default();
            let was_up = std::mem::replace(&mut p.up, r.is_ok());
            // Once more only after a session that worked: a peer that
            // cannot be reached waits for the next trigger.
            let again = r.is_ok() && p.again;
            p.again = false;
            p.running = again;
            let mut events = Vec::new();
            // Without gossip, reachability is what says a peer is up or
            // down; with it, gossip's neighbour events do.
            let track = self.gossip.is_none();
            let peer_s = || peer.to_string();
            match r {
                Ok(_) if track && !was_up => events.push(SyncEvent::PeerUp { peer: peer_s() }),
                Err(e) => {
                    if track && was_up {
                        events.push(SyncEvent::PeerDown { peer: peer_s() });
                    }
                    // Session failures are in their SessionEnded.
                    if let NetError::Iroh(_) = e {
                        events.push(SyncEvent::Error {
                            peer: Some(peer_s()),
                            message: e.to_string(),
                        });
                    }
                }
                _ => {}
            }
            (events, again)
        };
        if !events.is_empty() {
            self.record(events);
        }
        again
    }

    /// Every `sync_interval`, syncs with each peer of each joined topic.
    pub async fn periodic(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.sync_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stopping.notified() => return,
            }
            let peers: HashSet<EndpointId> = self
                .lock()
                .topics
                .values()
                .flat_map(|j| j.given.iter().chain(j.neighbors.iter()).copied())
                .collect();
            for p in peers {
                self.request_sync(p);
            }
        }
    }
}
