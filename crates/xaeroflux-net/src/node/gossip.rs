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
        let held = self.store.log_size(&ann.log).unwrap_or(0);
        if cp.size <= held {
            return;
        }
        // Pull from the announcer when it is a peer of ours on this topic;
        // otherwise from the neighbour that passed the news on.
        let announcer = EndpointId::from_bytes(&ann.announcer).ok();
        let target = {
            let st = self.lock();
            match (announcer, st.topics.get(&topic)) {
                (Some(a), Some(j)) if j.neighbors.contains(&a) || j.given.contains(&a) => a,
                _ => from,
            }
        };
        if target != self.endpoint.id() {
            self.request_sync(target);
        }
    }

    /// Gossips an announcement on its topic.
    pub async fn announce(&self, ann: Announcement) {
        let sender = self
            .lock()
            .topics
            .get(&ann.log.topic)
            .and_then(|j| j.sender.clone());
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
            self.announce(ann).await;
        }
    }
}
