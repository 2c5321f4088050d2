//! Whom to sync with and when: on request (a join, a neighbour coming up,
//! an announcement, a peer that asked), and every `sync_interval`. The
//! rules (one dialed session per peer at a time, one more after it if
//! asked meanwhile, dials to one peer a redial gap apart) are
//! `xaeroflux_sync::schedule`, which the simulator runs too; this file
//! only sleeps and dials.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use iroh::EndpointId;
use xaeroflux_sync::Outcome;

use super::Node;
use crate::error::NetError;
use crate::events::SyncEvent;

impl Node {
    /// Syncs with `peer` soon: at once when no session with it runs and
    /// none started within the redial gap, else once more after the
    /// running one (or once the gap has passed).
    pub fn request_sync(self: &Arc<Self>, peer: EndpointId) {
        let Some(mut at) = self.lock().sched.request(peer, self.now_ms()) else {
            return;
        };
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = at.saturating_sub(node.now_ms());
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                let now = node.now_ms();
                node.lock().sched.dialing(peer, now);
                let r = node.dial(peer).await;
                match node.dialed(peer, &r) {
                    Some(next) => at = next,
                    None => break,
                }
            }
        });
    }

    /// Syncs with `peer` again after `DEFERRED_RETRY_MS`, if `needed` still
    /// says so then: a pull another session was making, or news a
    /// neighbour passed on before it had the events, may not have come.
    pub fn retry_sync(
        self: &Arc<Self>,
        peer: EndpointId,
        needed: impl FnOnce(&Node) -> bool + Send + 'static,
    ) {
        let node = self.clone();
        tokio::spawn(async move {
            let retry = xaeroflux_sync::schedule::DEFERRED_RETRY_MS;
            tokio::time::sleep(Duration::from_millis(retry)).await;
            if needed(&node) {
                node.request_sync(peer);
            }
        });
    }

    /// Notes how a dial to `peer` went, records peer-up/down and dial
    /// errors, and says when to run another session, if one was asked for
    /// meanwhile.
    fn dialed(&self, peer: EndpointId, r: &Result<Outcome, NetError>) -> Option<u64> {
        let (events, again) = {
            let mut st = self.lock();
            let again = st.sched.ended(peer, r.is_ok(), self.now_ms());
            let p = st.peers.entry(peer).or_default();
            let was_up = std::mem::replace(&mut p.up, r.is_ok());
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
