//! The network layer of a [`crate::Core`], which can be paused and resumed.
//!
//! A phone suspends an application and kills its sockets; a paused core
//! holds no socket, no timer and no thread of the network layer, and keeps
//! what it needs to come back: the configuration, the address it was bound
//! to (so tickets given out stay valid when the port is still free) and
//! every topic joined with the peers given for it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use xaeroflux_net::{Net, NetConfig, NetError, NetMode, Peer};
use xaeroflux_store::{Store, Topic};

use crate::Error;

/// The network layer, running or paused.
#[derive(Debug)]
pub(crate) struct NetSlot {
    store: Arc<Store>,
    config: NetConfig,
    /// `None` while paused (or after shutdown).
    running: RwLock<Option<Net>>,
    /// Where the first start bound, to bind there again on resume.
    bound: Mutex<Option<SocketAddr>>,
    /// Topics joined, with the peers given for each, in join order.
    joined: Mutex<Vec<(Topic, Vec<Peer>)>>,
}

impl NetSlot {
    /// Starts the network layer.
    pub(crate) fn start(store: Arc<Store>, config: NetConfig) -> Result<NetSlot, Error> {
        let net = Net::start(store.clone(), config.clone())?;
        let bound = match config.mode {
            NetMode::LocalOnly { .. } => net.peer().addrs().first().copied(),
            _ => None,
        };
        Ok(NetSlot {
            store,
            config,
            running: RwLock::new(Some(net)),
            bound: Mutex::new(bound),
            joined: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on the running network layer; a paused one is an error.
    /// Pausing waits for calls in flight.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Net) -> Result<T, Error>) -> Result<T, Error> {
        let guard = self.running.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(net) => f(net),
            None => Err(NetError::Paused.into()),
        }
    }

    /// Joins `topic` with `peers`, and remembers both for resume. While
    /// paused, the join takes effect on resume.
    pub(crate) fn join(&self, topic: &Topic, peers: &[Peer]) -> Result<(), Error> {
        let guard = self.running.read().unwrap_or_else(|e| e.into_inner());
        if let Some(net) = guard.as_ref() {
            net.join(topic, peers)?;
        } else if topic.name() == xaeroflux_net::SYNC_TOPIC {
            return Err(NetError::InvalidTopic(topic.name().to_string()).into());
        }
        let mut joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        match joined.iter_mut().find(|(t, _)| t == topic) {
            Some((_, known)) => {
                for p in peers {
                    if !known.contains(p) {
                        known.push(p.clone());
                    }
                }
            }
            None => joined.push((topic.clone(), peers.to_vec())),
        }
        Ok(())
    }

    /// Whether the network layer is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.running
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Closes every socket, timer and thread of the network layer. Appends
    /// and reads go on; a second pause does nothing.
    pub(crate) fn pause(&self) {
        let net = self
            .running
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(net) = net {
            net.shutdown();
        }
    }

    /// Starts the network layer again (on the address it had, when that is
    /// still free), joins every topic joined before, and so syncs with the
    /// peers given for them. Resuming a running layer does nothing.
    pub(crate) fn resume(&self) -> Result<(), Error> {
        let mut running = self.running.write().unwrap_or_else(|e| e.into_inner());
        if running.is_some() {
            return Ok(());
        }
        let bound = *self.bound.lock().unwrap_or_else(|e| e.into_inner());
        let again = match bound {
            Some(listen) => Net::start(
                self.store.clone(),
                self.config.clone().with_mode(NetMode::LocalOnly { listen }),
            )
            .ok(),
            None => None,
        };
        let net = match again {
            Some(net) => net,
            None => Net::start(self.store.clone(), self.config.clone())?,
        };
        let joined = self
            .joined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (topic, peers) in &joined {
            net.join(topic, peers)?;
        }
        *running = Some(net);
        Ok(())
    }
}

impl Drop for NetSlot {
    fn drop(&mut self) {
        self.pause();
    }
}
