//! One session's bytes: the worker runs the state machine; a reader task
//! hands it what arrives (with credit, and not while the peer leaves our
//! answers unread), and this task writes what it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iroh::EndpointId;
use iroh::endpoint::{RecvStream, SendStream, VarInt};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use xaeroflux_store::Topic;
use xaeroflux_sync::{Outcome, SyncError};

use super::{DIAL_TIMEOUT, HELLO_TIMEOUT, LINGER, Node};
use crate::XSP_ALPN;
use crate::error::{NetError, iroh_err};
use crate::events::{Direction, SyncEvent};
use crate::worker::{Job, JobSender, Open, SESSION_CREDIT, SESSION_OUT_LIMIT};

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 256 * 1024;

/// What the reader and writer of one session share.
struct Flow {
    id: u64,
    /// Chunks the reader may hand over before the worker took them.
    credit: Arc<Semaphore>,
    /// Answer bytes the worker queued and the writer has not written.
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
}

impl Node {
    /// Dials `peer` and runs one session.
    pub(super) async fn dial(self: &Arc<Self>, peer: EndpointId) -> Result<Outcome, NetError> {
        let conn = tokio::time::timeout(DIAL_TIMEOUT, self.endpoint.connect(peer, XSP_ALPN))
            .await
            .map_err(|_| NetError::Iroh(format!("dialing {peer} timed out")))?
            .map_err(iroh_err)?;
        let (send, recv) = conn.open_bi().await.map_err(iroh_err)?;
        let hello = Arc::new(AtomicBool::new(false));
        let r = self
            .session(peer, send, recv, Direction::Dialed, hello)
            .await;
        conn.close(VarInt::from_u32(0), b"done");
        r
    }

    /// Runs one XSP session over a stream pair and records how it went.
    pub(super) async fn session(
        self: &Arc<Self>,
        peer: EndpointId,
        mut send: SendStream,
        recv: RecvStream,
        direction: Direction,
        said_hello: Arc<AtomicBool>,
    ) -> Result<Outcome, NetError> {
        let started = Instant::now();
        let flow = Flow {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            credit: Arc::new(Semaphore::new(SESSION_CREDIT)),
            queued: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (done_tx, done_rx) = oneshot::channel();
        let topics: Vec<Topic> = self
            .lock()
            .topics
            .values()
            .map(|j| j.topic.clone())
            .collect();
        let open = Open {
            id: flow.id,
            config: self.config.session.clone().with_topics(topics),
            out: out_tx,
            done: done_tx,
            credit: flow.credit.clone(),
            queued: flow.queued.clone(),
            timeout: self.config.session_timeout,
            hello_timeout: HELLO_TIMEOUT,
            said_hello,
        };
        self.jobs
            .send(Job::Open(Box::new(open)))
            .map_err(|_| NetError::Closed)?;
        let mut reader = spawn_reader(&flow, self.jobs.clone(), recv);
        self.write_answers(&flow, &mut send, out_rx).await;
        let result = done_rx
            .await
            .unwrap_or_else(|_| Err(SyncError::Protocol("the sync worker has stopped".into())));
        let _ = send.finish();
        // Let the peer acknowledge what we sent, bounded.
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        flow.credit.close();
        if tokio::time::timeout(Duration::from_millis(100), &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
        self.session_ended(peer, direction, started, &result);
        if let Ok(o) = &result
            && o.deferred > 0
        {
            // The peer had more of logs another session was pulling: come
            // back once that pull has most likely finished, in case it
            // stopped short.
            self.retry_sync(peer, |_| true);
        }
        Ok(result?)
    }

    /// Writes the worker's answers until it ends the session.
    async fn write_answers(
        &self,
        flow: &Flow,
        send: &mut SendStream,
        mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let mut broken = false;
        while let Some(buf) = out.recv().await {
            // Once the stream is broken, what the worker still sends is
            // dropped until it ends the session. A peer that leaves our
            // answers unread for as long as a session may stay silent is
            // taken for gone: the write gives up, and the session ends.
            let limit = self.config.session_timeout;
            let r = if broken {
                Ok(())
            } else {
                match tokio::time::timeout(limit, send.write_all(&buf)).await {
                    Ok(r) => r.map_err(std::io::Error::other),
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the peer read none of our answers for {limit:?}"),
                    )),
                }
            };
            let before = flow.queued.fetch_sub(buf.len(), Ordering::AcqRel);
            flow.drained.notify_one();
            if before > SESSION_OUT_LIMIT && before - buf.len() <= SESSION_OUT_LIMIT {
                let _ = self.jobs.send(Job::Drained { id: flow.id });
            }
            if let Err(e) = r {
                broken = true;
                let _ = self.jobs.send(Job::Broken {
                    id: flow.id,
                    error: e,
                });
            }
        }
    }

    /// Records a session that moved something or failed.
    fn session_ended(
        &self,
        peer: EndpointId,
        direction: Direction,
        started: Instant,
        result: &Result<Outcome, SyncError>,
    ) {
        let (moved, error) = match result {
            Ok(o) => (o.clone(), None),
            Err(e) => (Outcome::default(), Some(e.to_string())),
        };
        {
            let mut t = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
            t.sessions += 1;
            t.sessions_failed += u64::from(error.is_some());
            t.events_in += moved.events_in;
            t.events_received += moved.events_received;
            t.events_out += moved.events_out;
            t.bytes_in += moved.bytes_in;
            t.bytes_out += moved.bytes_out;
        }
        if moved.events_in > 0 {
            self.note_provider(peer);
        }
        let ended = SyncEvent::SessionEnded {
            peer: peer.to_string(),
            direction,
            events_in: moved.events_in,
            events_out: moved.events_out,
            bytes_in: moved.bytes_in,
            bytes_out: moved.bytes_out,
            millis: started.elapsed().as_millis() as u64,
            error,
        };
        if !ended.ended_quietly() {
            self.record(vec![
                SyncEvent::SessionStarted {
                    peer: peer.to_string(),
                    direction,
                },
                ended,
            ]);
        }
    }
}

/// Reads the peer's bytes and hands them to the worker: a chunk at a time
/// within the credit, and nothing while our unread answers exceed the
/// bound (a peer that asks without reading stops being read).
fn spawn_reader(flow: &Flow, jobs: JobSender, mut recv: RecvStream) -> JoinHandle<()> {
    let id = flow.id;
    let credit = flow.credit.clone();
    let (queued, drained) = (flow.queued.clone(), flow.drained.clone());
    tokio::spawn(async move {
        loop {
            while queued.load(Ordering::Acquire) > SESSION_OUT_LIMIT {
                drained.notified().await;
            }
            match credit.acquire().await {
                Ok(p) => p.forget(),
                Err(_) => return,
            }
            let job = match recv.read_chunk(READ_CHUNK).await {
                Ok(Some(bytes)) => Job::Data {
                    id,
                    bytes: bytes.to_vec(),
                },
                Ok(None) => Job::Eof { id },
                Err(e) => Job::Broken {
                    id,
                    error: std::io::Error::other(e),
                },
            };
            let last = !matches!(job, Job::Data { .. });
            if jobs.send(job).is_err() || last {
                return;
            }
        }
    })
}
