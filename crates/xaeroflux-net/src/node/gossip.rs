//! Topics joined: their gossip swarms, announcements heard and made.

use std::collections::HashSet;
use std::sync::Arc;

use iroh::{EndpointAddr, EndpointId};
use iroh_gossip::api::Event as GossipEvent;
use tokio::sync::mpsc;
use xaeroflux_store::{Topic, TopicId};

use super::{Joined, Node, gossip_topic};
use crate::error::{NetError, iroh_err};
use crate::events::SyncEvent;
use crate::wire::Announcement;
use crate::worker::Job;

/// The announcer of a relayed announcement: none.
const RELAYED: [u8; 32] = [0; 32];

impl Node {
    /// Joins a topic: remembers the peers' addresses, joins its gossip
    /// swarm, and syncs with the peers.
    pub async fn join(
        self: &Arc<Self>,
        topic: Topic,
        peers: Vec<EndpointAddr>,
    ) -> Result<(), NetError> {
        let id = topic.id();
        let mut ids = Vec::new();
        for p in peers {
            if p.id == self.endpoint.id() {
                continue;
            }
            ids.push(p.id);
            if !p.is_empty() {
                self.lookup.add_endpoint_info(p);
            }
        }
        let fresh = {
            let mut st = self.lock();
            match st.topics.get_mut(&id) {
                Some(j) => {
                    for i in &ids {
                        if !j.given.contains(i) {
                            j.given.push(*i);
                        }
                    }
                    false
                }
                None => {
                    st.topics.insert(
                        id,
                        Joined {
                            topic: topic.clone(),
                            given: ids.clone(),
                            neighbors: HashSet::new(),
                            sender: None,
                        },
                    );
                    true
                }
            }
        };
        if fresh {
            let _ = self.jobs.send(Job::Join(id));
            if let Some(g) = &self.gossip {
                let sub = g
                    .subscribe(gossip_topic(&id), ids.clone())
                    .await
                    .map_err(iroh_err)?;
                let (sender, receiver) = sub.split();
                if let Some(j) = self.lock().topics.get_mut(&id) {
                    j.sender = Some(sender);
                }
                let node = self.clone();
                tokio::spawn(async move { node.gossip_loop(id, receiver).await });
            }
        } else {
            let sender = self.lock().topics.get(&id).and_then(|j| j.sender.clone());
            if let Some(sender) = sender {
                let _ = sender.join_peers(ids.clone()).await;
            }
        }
        for peer in ids {
            self.request_sync(peer);
        }
        Ok(())
    }

    async fn gossip_loop(
        self: Arc<Self>,
        topic: TopicId,
        mut rx: iroh_gossip::api::GossipReceiver,
    ) {
        use n0_future::StreamExt;
        loop {
            let ev = tokio::select! {
                ev = rx.next() => ev,
                _ = self.stopping.notified() => return,
            };
            let Some(ev) = ev else { return };
            match ev {
                Ok(GossipEvent::NeighborUp(peer)) => {
                    if let Some(j) = self.lock().topics.get_mut(&topic) {
                        j.neighbors.insert(peer);
                    }
                    self.record(vec![SyncEvent::PeerUp {
                        peer: peer.to_string(),
                    }]);
                    self.request_sync(peer);
                }
                Ok(GossipEvent::NeighborDown(peer)) => {
                    if let Some(j) = self.lock().topics.get_mut(&topic) {
                        j.neighbors.remove(&peer);
                    }
                    self.record(vec![SyncEvent::PeerDown {
                        peer: peer.to_string(),
                    }]);
                }
                Ok(GossipEvent::Received(msg)) => {
                    self.heard(topic, &msg.content, msg.delivered_from);
                }
                Ok(GossipEvent::Lagged) => {
                    // Missed announcements: catch up with every neighbour.
                    let peers: Vec<EndpointId> = self
                        .lock()
                        .topics
                        .get(&topic)
                        .map(|j| j.neighbors.iter().copied().collect())
                        .unwrap_or_default();
                    for p in peers {
                        self.request_sync(p);
                    }
                }
                Err(e) => {
                    self.record(vec![SyncEvent::Error {
                        peer: None,
                        message: format!("gossip: {e}"),
                    }]);
                    return;
                }
            }
        }
    }

    /// An announcement arrived: pull if it is news.
    fn heard(self: &Arc<Self>, topic: TopicId, bytes: &[u8], from: EndpointId) {
        let Ok(ann) = Announcement::decode(bytes) else {
            return;
        };
        if ann.log.topic != topic {
            return;
        }
        let Ok(cp) = ann.verify() else {
            return;
        };
        {
            let mut st = self.lock();
            let h = st.heard.entry(ann.log).or_default();
            *h = (*h).max(cp.size);
        }
        let held = self.store.log_size(&ann.log).unwrap_or(0);
        if cp.size <= held {
            return;
        }
        // Pull from the announcer when it is a peer of ours on this topic;
        // otherwise from the neighbour that passed the news on.
        // A relayed announcement names no announcer (all zeros): pull
        // from whoever passed it on.
        let announcer = Some(ann.announcer)
            .filter(|a| *a != RELAYED)
            .and_then(|a| EndpointId::from_bytes(&a).ok());
        let target = {
            let st = self.lock();
            let joined = st.topics.get(&topic);
            xaeroflux_sync::schedule::pull_from(announcer, from, |a| {
                joined.is_some_and(|j| j.neighbors.contains(a) || j.given.contains(a))
            })
        };
        if target != self.endpoint.id() {
            self.request_sync(target);
        }
        if target == from && Some(from) != announcer {
            // The neighbour passed the news on before it had pulled the
            // events itself, and will not announce them again: check, and
            // sync with it once more if they have not come.
            let (log, size) = (ann.log, cp.size);
            self.retry_sync(from, move |node| {
                node.store.log_size(&log).unwrap_or(0) < size
            });
        }
    }

    /// Gossips an announcement on its topic. Another author's log is
    /// announced only after `RELAY_DELAY_MS`, when this node has still not
    /// heard that size announced, and as a relay: with no announcer, so
    /// that every node's relay of the same head is the same gossip message
    /// and crosses the swarm once.
    pub async fn announce(&self, mut ann: Announcement) {
        let own = ann.log.author == self.store.author();
        if !own {
            let delay = xaeroflux_sync::schedule::RELAY_DELAY_MS;
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            ann.announcer = RELAYED;
        }
        let size = xaeroflux_merkle::peek_checkpoint(&ann.note).map_or(0, |c| c.size);
        let sender = {
            let st = self.lock();
            let heard = st.heard.get(&ann.log).copied();
            if !xaeroflux_sync::schedule::worth_announcing(own, size, heard) {
                return;
            }
            st.topics.get(&ann.log.topic).and_then(|j| j.sender.clone())
        };
        if let Some(s) = sender {
            let _ = s.broadcast(ann.encode().into()).await;
        }
    }

    /// Sends announcements made by the worker.
    pub async fn announcer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Announcement>) {
        loop {
            let ann = tokio::select! {
                a = rx.recv() => a,
                _ = self.stopping.notified() => return,
            };
            let Some(ann) = ann else { return };
            if ann.log.author == self.store.author() {
                self.announce(ann).await;
            } else {
                // Relays wait a moment (see `announce`): not in this loop.
                let node = self.clone();
                tokio::spawn(async move { node.announce(ann).await });
            }
        }
    }
}
