//! Appends handed over by other processes on `node.sock` (the protocol is
//! in [`crate::handoff`]).

use std::sync::Arc;

use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::Node;
use crate::worker::Job;

impl Node {
    /// Serves appends handed over by other processes.
    pub async fn handoff_loop(self: Arc<Self>, listener: tokio::net::UnixListener) {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = self.stopping.notified() => return,
            };
            let Ok((stream, _)) = conn else { continue };
            let node = self.clone();
            tokio::spawn(async move { node.handoff_client(stream).await });
        }
    }

    /// One client connection: requests answered in order until it closes
    /// or sends something malformed.
    async fn handoff_client(&self, mut stream: UnixStream) {
        loop {
            let events = match crate::handoff::read_request(&mut stream).await {
                Ok(None) => return,
                Ok(Some(events)) => events,
                Err(msg) => {
                    let _ = crate::handoff::write_reply(&mut stream, Err(msg)).await;
                    return;
                }
            };
            let (tx, rx) = oneshot::channel();
            let gone = || "the node is shutting down".to_string();
            let reply = if self.jobs.send(Job::Append { events, reply: tx }).is_err() {
                Err(gone())
            } else {
                rx.await
                    .map_err(|_| gone())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            };
            if crate::handoff::write_reply(&mut stream, reply)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
