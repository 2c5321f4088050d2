//! A pull-based subscriber: a bounded priority queue the caller drains.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::queue::{Popped, PriorityQueue};
use crate::{Observer, Overflow, Prioritized};

/// What [`Inbox::recv_into`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// At least one event was moved out.
    Items,
    /// Events were lost (dropped by this full inbox or upstream) since the
    /// last call; the caller should catch up from elsewhere.
    Lagged(u64),
    /// The deadline passed with nothing to receive.
    TimedOut,
    /// The stream completed (or the inbox was closed) and everything has
    /// been received.
    Closed,
}

/// A subscriber whose owner pulls events instead of running a worker: a
/// bounded priority queue (see the crate docs for the order) that records
/// what it had to drop, so a caller that can replay the stream knows when
/// to. Attach it with [`crate::Observable::subscribe_observer`].
pub struct Inbox<T> {
    queue: PriorityQueue<T>,
    overflow: Overflow,
    missed: AtomicU64,
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.queue.len())
            .field("missed", &self.missed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T: Prioritized + Send> Inbox<T> {
    /// An inbox bounded to `capacity` events per priority class.
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        Self {
            queue: PriorityQueue::new(capacity),
            overflow,
            missed: AtomicU64::new(0),
        }
    }

    /// Moves up to `max` events into `out`, most urgent first, waiting
    /// until `deadline` (for ever if `None`) for one. A loss is reported
    /// before the events that followed it.
    pub fn recv_into(&self, out: &mut Vec<T>, max: usize, deadline: Option<Instant>) -> Received {
        loop {
            let missed = self.missed.swap(0, Ordering::AcqRel);
            if missed > 0 {
                return Received::Lagged(missed);
            }
            match self.queue.pop_into(out, max, deadline) {
                Popped::Items => return Received::Items,
                Popped::Closed => return Received::Closed,
                // Woken early by a loss (reported at the top of the loop),
                // or the deadline passed.
                Popped::TimedOut => {
                    if self.missed.load(Ordering::Acquire) == 0
                        && deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        return Received::TimedOut;
                    }
                }
            }
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes nothing more; a receiver gets what is queued, then
    /// [`Received::Closed`].
    pub fn close(&self) {
        self.queue.close();
    }
}

impl<T: Prioritized + Send> Observer<T> for Inbox<T> {
    fn on_next(&self, item: T) {
        self.on_batch(vec![item])
    }
    fn on_batch(&self, items: Vec<T>) {
        let r = self.queue.push_all(items, self.overflow);
        if r.dropped > 0 {
            self.missed.fetch_add(r.dropped as u64, Ordering::AcqRel);
            // Wake a receiver waiting on an empty class so it learns of the loss.
            self.queue.wake();
        }
    }
    fn on_lagged(&self, missed: u64) {
        self.missed.fetch_add(missed, Ordering::AcqRel);
        self.queue.wake();
    }
    fn on_complete(&self) {
        self.queue.close();
    }
}
