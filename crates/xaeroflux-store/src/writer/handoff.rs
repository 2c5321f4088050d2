//! A one-slot hand-over from the writer to the flusher that blocks without
//! spinning: on a small machine, a thread spinning for the next job takes a
//! core from the threads (subscribers, the caller) that have work.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

struct Slot<T> {
    value: Option<T>,
    /// Either side has gone.
    closed: bool,
}

struct Handoff<T> {
    slot: Mutex<Slot<T>>,
    filled: Condvar,
    emptied: Condvar,
}

impl<T> Handoff<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer's end.
pub(crate) struct HandoffSender<T>(Arc<Handoff<T>>);
/// The flusher's end.
pub(crate) struct HandoffReceiver<T>(Arc<Handoff<T>>);

/// A connected pair.
pub(crate) fn handoff<T>() -> (HandoffSender<T>, HandoffReceiver<T>) {
    let h = Arc::new(Handoff {
        slot: Mutex::new(Slot {
            value: None,
            closed: false,
        }),
        filled: Condvar::new(),
        emptied: Condvar::new(),
    });
    (HandoffSender(h.clone()), HandoffReceiver(h))
}

impl<T> HandoffSender<T> {
    /// Waits for the slot to be free; gives the value back if the receiver
    /// has gone.
    pub fn send(&self, value: T) -> Result<(), T> {
        let h = &self.0;
        let mut g = h.lock();
        while g.value.is_some() && !g.closed {
            g = h.emptied.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        if g.closed {
            return Err(value);
        }
        g.value = Some(value);
        drop(g);
        h.filled.notify_one();
        Ok(())
    }
}

impl<T> Drop for HandoffSender<T> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.filled.notify_all();
    }
}

impl<T> HandoffReceiver<T> {
    /// The next value, waiting at most `timeout` (for ever if `None`).
    pub fn recv(&self, timeout: Option<Duration>) -> Result<T, RecvTimeoutError> {
        let h = &self.0;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = h.lock();
        loop {
            if let Some(v) = g.value.take() {
                drop(g);
                h.emptied.notify_one();
                return Ok(v);
            }
            if g.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            g = match deadline {
                None => h.filled.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    h.filled
                        .wait_timeout(g, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

impl<T> Drop for HandoffReceiver<T> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.emptied.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pass_in_order_and_either_side_leaving_ends_the_other() {
        let (tx, rx) = handoff::<u32>();
        let t = std::thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..100 {
            assert_eq!(rx.recv(None).unwrap(), i);
        }
        t.join().unwrap();
        assert_eq!(rx.recv(None), Err(RecvTimeoutError::Disconnected));
        let (tx, rx) = handoff::<u32>();
        assert_eq!(
            rx.recv(Some(Duration::from_millis(5))),
            Err(RecvTimeoutError::Timeout)
        );
        drop(rx);
        assert_eq!(tx.send(1), Err(1));
    }
}
