//! Appends, sync and close.

use crossbeam_channel::{Receiver, bounded};
use xaeroflux_types::{NewEvent, TopicId};

use super::Store;
use crate::error::{Result, StoreError, internal};
use crate::receipts::{BatchReceipt, EventReceipt, LogHead, Receipt};
use crate::writer::{Committed, Reply, Request};

/// An append handed to the writer, not yet known to be committed.
#[must_use = "an append is only known to be durable once waited for"]
pub struct PendingAppend {
    rx: Receiver<Result<Committed>>,
}

impl PendingAppend {
    /// Waits until the event is committed (durable, in the durable mode).
    pub fn wait(self) -> Result<Receipt> {
        receipt_of(wait(&self.rx)?)
    }
}

fn wait<T>(rx: &Receiver<Result<T>>) -> Result<T> {
    rx.recv().map_err(|_| StoreError::Closed)?
}

fn receipt_of(c: Committed) -> Result<Receipt> {
    let (log, seq, leaf_hash) = *c
        .events
        .first()
        .ok_or_else(|| internal("a commit of one event holds none"))?;
    let (_, size, root) = *c
        .heads
        .first()
        .ok_or_else(|| internal("a commit of one event has no head"))?;
    Ok(Receipt {
        log,
        seq,
        leaf_hash,
        size,
        root,
    })
}

impl Store {
    fn send_append(&self, events: Vec<NewEvent>) -> Result<Receiver<Result<Committed>>> {
        self.shared.check_events(&events)?;
        let (tx, rx) = bounded(1);
        self.request(Request::Append {
            events,
            reply: Reply::Chan(tx),
        })?;
        Ok(rx)
    }

    /// Appends one event to the store's own log in its topic; returns once
    /// it is durable (or, in the fast mode, written). Reads started after
    /// it returns see the event.
    pub fn append(&self, event: NewEvent) -> Result<Receipt> {
        self.submit(event)?.wait()
    }

    /// Hands an event to the writer and returns at once; `wait` on the
    /// result tells when it is committed. Events submitted together are
    /// group-committed.
    pub fn submit(&self, event: NewEvent) -> Result<PendingAppend> {
        Ok(PendingAppend {
            rx: self.send_append(vec![event])?,
        })
    }

    /// Appends many events in one group commit.
    pub fn append_batch(&self, events: Vec<NewEvent>) -> Result<BatchReceipt> {
        if events.is_empty() {
            return Ok(BatchReceipt::default());
        }
        let c = wait(&self.send_append(events)?)?;
        Ok(BatchReceipt {
            events: c
                .events
                .into_iter()
                .map(|(log, seq, leaf_hash)| EventReceipt {
                    log,
                    seq,
                    leaf_hash,
                })
                .collect(),
            heads: c
                .heads
                .into_iter()
                .map(|(log, size, root)| LogHead { log, size, root })
                .collect(),
        })
    }

    /// Registers the sealer of a private topic: from now on, events
    /// appended there with flags bit 0 set are sealed by it in the writer,
    /// once their seq and timestamp are fixed.
    pub fn set_sealer(&self, topic: TopicId, sealer: std::sync::Arc<dyn crate::Sealer>) {
        self.shared.sealers.set(topic, Some(sealer));
    }

    /// Forgets the sealer of `topic`: appends to seal there are refused.
    pub fn remove_sealer(&self, topic: &TopicId) {
        self.shared.sealers.set(*topic, None);
    }

    /// Makes everything appended so far durable (useful in the fast mode).
    pub fn sync(&self) -> Result<()> {
        let (tx, rx) = bounded(1);
        self.request(Request::Sync {
            reply: Reply::Chan(tx),
        })?;
        wait(&rx)
    }

    /// Stops the writer after it has committed everything queued, and
    /// syncs. Reports why it could not, if the writer had stopped after an
    /// error.
    pub fn close(mut self) -> Result<()> {
        self.stop_writer()
    }

    pub(super) fn stop_writer(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            drop(w.tx);
            w.thread
                .join()
                .map_err(|_| internal("the writer thread panicked"))?;
            if let Some(why) = self.shared.stopped.reason() {
                return Err(StoreError::WriterStopped(why));
            }
        }
        Ok(())
    }
}
