//! Sessions peers open on the XSP ALPN.

use std::sync::Arc;

use iroh::EndpointId;
use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};

use super::{DIAL_TIMEOUT, LINGER, Node};
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
        let Ok(_slot) = node.accepting.clone().try_acquire_owned() else {
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
        let _ = node.session(peer, send, recv, Direction::Accepted).await;
        node.end_accept(peer, owned);
        // The dialer closes once it has everything; wait for that, bounded.
        let _ = tokio::time::timeout(LINGER, conn.closed()).await;
        Ok(())
    }
}

impl Node {
    fn begin_accept(&self, peer: EndpointId) -> bool {
        let mut st = self.lock();
        let p = st.peers.entry(peer).or_default();
        if p.running {
            false
        } else {
            p.running = true;
            true
        }
    }

    fn end_accept(self: &Arc<Self>, peer: EndpointId, owned: bool) {
        if !owned {
            return;
        }
        let again = {
            let mut st = self.lock();
            let p = st.peers.entry(peer).or_default();
            p.running = false;
            std::mem::take(&mut p.again)
        };
        if again {
            self.request_sync(peer);
        }
    }
}
