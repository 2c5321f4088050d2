//! Blobs referenced by replicated events: fetched from the peers that sent
//! events and from neighbours, verified as they stream; a blob no peer
//! could serve is asked for again after a backoff (1 s doubling to 60 s),
//! at once when a peer sends events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::EndpointId;
use iroh::endpoint::VarInt;
use iroh_blobs::store::fs::FsStore;
use tokio::sync::mpsc;

use super::{DIAL_TIMEOUT, Node};
use crate::events::SyncEvent;
use crate::wire::BlobRef;

/// How often the fetcher looks for missing blobs that are due; a blob no
/// peer could serve waits twice as long after each failed round, up to
/// `BLOB_RETRY_MAX`.
const BLOB_RETRY: Duration = Duration::from_secs(1);
const BLOB_RETRY_MAX: Duration = Duration::from_secs(60);

impl Node {
    /// Fetches blobs that replicated events reference.
    pub async fn blob_fetcher(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<BlobRef>) {
        let Some(blobs) = self.blobs.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(BLOB_RETRY);
        loop {
            tokio::select! {
                r = rx.recv() => {
                    let Some(r) = r else { return };
                    if blobs.has(r.hash.to_iroh()).await.unwrap_or(false) {
                        continue;
                    }
                    self.lock()
                        .missing
                        .entry(r.hash)
                        .or_insert((r, Instant::now(), 0));
                }
                _ = tick.tick() => {}
                _ = self.stopping.notified() => return,
            }
            for r in self.due_blobs() {
                let node = self.clone();
                let blobs = blobs.clone();
                tokio::spawn(async move {
                    let got = node.fetch_blob(&blobs, r).await;
                    node.fetched(r, got);
                });
            }
        }
    }

    /// Missing blobs whose next ask is due, marked as being fetched.
    fn due_blobs(&self) -> Vec<BlobRef> {
        let mut st = self.lock();
        let now = Instant::now();
        let due: Vec<BlobRef> = st
            .missing
            .iter()
            .filter(|(h, (_, next, _))| !st.fetching.contains(*h) && *next <= now)
            .map(|(_, (r, _, _))| *r)
            .collect();
        st.fetching.extend(due.iter().map(|r| r.hash));
        due
    }

    /// After a fetch: done, or asked again after the backoff.
    fn fetched(&self, r: BlobRef, got: bool) {
        let mut st = self.lock();
        st.fetching.remove(&r.hash);
        if got {
            st.missing.remove(&r.hash);
        } else if let Some((_, next, fails)) = st.missing.get_mut(&r.hash) {
            *fails += 1;
            let wait = BLOB_RETRY
                .saturating_mul(1 << (*fails).min(6))
                .min(BLOB_RETRY_MAX);
            *next = Instant::now() + wait;
        }
    }

    /// Peers to ask for a blob: recent providers first, then every peer of
    /// every joined topic.
    fn blob_candidates(&self) -> Vec<EndpointId> {
        let st = self.lock();
        let mut c: Vec<EndpointId> = st.providers.iter().copied().collect();
        for j in st.topics.values() {
            for p in j.neighbors.iter().chain(j.given.iter()) {
                if !c.contains(p) {
                    c.push(*p);
                }
            }
        }
        c
    }

    async fn fetch_blob(&self, blobs: &FsStore, r: BlobRef) -> bool {
        for peer in self.blob_candidates() {
            let dial = self.endpoint.connect(peer, iroh_blobs::ALPN);
            let Ok(Ok(conn)) = tokio::time::timeout(DIAL_TIMEOUT, dial).await else {
                continue;
            };
            let got = blobs
                .remote()
                .fetch(conn.clone(), r.hash.to_iroh())
                .complete()
                .await;
            conn.close(VarInt::from_u32(0), b"done");
            if got.is_err() {
                continue;
            }
            // The transfer is verified against the hash as it streams; the
            // blob counts once it is whole and of the size the event says.
            if let Ok(iroh_blobs::api::proto::BlobStatus::Complete { size }) =
                blobs.status(r.hash.to_iroh()).await
                && size == r.size
            {
                self.record(vec![SyncEvent::BlobFetched {
                    hash: r.hash,
                    size: r.size,
                    peer: peer.to_string(),
                }]);
                return true;
            }
        }
        false
    }
}
