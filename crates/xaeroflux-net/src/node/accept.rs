//! Sessions peers open on the XSP ALPN, and the gate that bounds them: at
//! most `MAX_ACCEPTED` at once and `MAX_ACCEPTED_PER_PEER` per peer; a
//! session that has not sent its HELLO yields its place to a newcomer when
//! the node is full, and is ended after `HELLO_TIMEOUT` in any case.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use iroh::EndpointId;
use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};

use super::{DIAL_TIMEOUT, LINGER, MAX_ACCEPTED, MAX_ACCEPTED_PER_PEER, Node};
use crate::events::Direction;

/// Accepts XSP connections.
#[derive(Debug, Clone)]
pub(super) struct XspHandler(pub Arc<Node>);

impl ProtocolHandler for XspHandler {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let node = self.0.clone();
        let peer = conn.remote_id();
        if node.lock().topics.is_empty() {
            conn.close(VarInt::from_u32(2), b"no topics joined");
            return Ok(());
        }
        let said_hello = Arc::new(AtomicBool::new(false));
        let Some(_slot) = node.admit(peer, &conn, said_hello.clone()) else {
            conn.close(VarInt::from_u32(3), b"busy");
            return Ok(());
        };
        let streams = tokio::time::timeout(DIAL_TIMEOUT, conn.accept_bi()).await;
        let Ok(Ok((send, recv))) = streams else {
            conn.close(VarInt::from_u32(1), b"no stream");
            return Ok(());
        };
        // While this session runs, a sync with the same peer that comes
        // due waits for it instead of pulling the same pages twice.
        let owned = node.begin_accept(peer);
        // Its outcome is recorded by `session`; nothing more to do here.
        let _ = node
            .session(peer, send, recv, Direction::Accepted, said_hello)
            .await;
        node.end_accept(peer, owned);
        // The dialer closes once it has everything; wait for that, bounded,
        // then close (a peer that never does gives its place back too).
        let _ = tokio::time::timeout(LINGER, conn.closed()).await;
        conn.close(VarInt::from_u32(0), b"done");
        Ok(())
    }
}

/// One accepted session, as the gate knows it.
pub(super) struct Accepted {
    id: u64,
    peer: EndpointId,
    since: Instant,
    said_hello: Arc<AtomicBool>,
    conn: Connection,
}

/// An accepted session's place; given back when dropped.
pub(super) struct Place {
    node: Arc<Node>,
    id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.node.accepted_lock().retain(|a| a.id != self.id);
    }
}

impl Node {
    fn accepted_lock(&self) -> std::sync::MutexGuard<'_, Vec<Accepted>> {
        self.accepted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a session accepted from `peer`: refused when the
    /// peer holds its share already; when every place is taken, the oldest
    /// session that has not sent its HELLO is closed (code 4) to make room,
    /// and the new one is refused only if every session has.
    fn admit(
        self: &Arc<Self>,
        peer: EndpointId,
        conn: &Connection,
        said_hello: Arc<AtomicBool>,
    ) -> Option<Place> {
        let mut all = self.accepted_lock();
        if all.iter().filter(|a| a.peer == peer).count() >= MAX_ACCEPTED_PER_PEER {
            return None;
        }
        if all.len() >= MAX_ACCEPTED {
            let victim = all
                .iter()
                .enumerate()
                .filter(|(_, a)| !a.said_hello.load(Ordering::Acquire))
                .min_by_key(|(_, a)| a.since)
                .map(|(i, _)| i)?;
            let v = all.swap_remove(victim);
            v.conn.close(
                VarInt::from_u32(4),
                b"evicted: no HELLO while the node was full",
            );
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        all.push(Accepted {
            id,
            peer,
            since: Instant::now(),
            said_hello,
            conn: conn.clone(),
        });
        Some(Place {
            node: self.clone(),
            id,
        })
    }

    fn begin_accept(&self, peer: EndpointId) -> bool {
        self.lock().sched.accepted(peer)
    }

    fn end_accept(self: &Arc<Self>, peer: EndpointId, owned: bool) {
        if owned && self.lock().sched.accepted_ended(peer) {
            self.request_sync(peer);
        }
    }
}
