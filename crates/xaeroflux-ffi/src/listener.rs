//! Subscriptions delivered to a listener the application implements.
//!
//! One long-lived thread per subscription calls the listener with batches
//! of events (up to [`MAX_BATCH`]): a JVM attaches a thread per call from
//! a thread it does not know, and a callback per event would exhaust its
//! local reference table under load. The thread blocks on the store's
//! commit notices (no timer), so an idle subscription never wakes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use xaeroflux::{Filter, Payload, SubscriptionCloser};

use crate::convert::{Event, topic_of};
use crate::{Shared, XaerofluxError};

/// The most events one `on_events` call gets.
pub const MAX_BATCH: usize = 1024;

/// What the application implements to receive a subscription's events.
#[uniffi::export(foreign)]
pub trait EventListener: Send + Sync {
    /// A batch of events, in order, with no gap after the last batch. An
    /// exception raised here is kept (see `Subscription.last_error`) and
    /// delivery goes on with the next batch.
    fn on_events(&self, events: Vec<Event>) -> Result<(), XaerofluxError>;
}

/// The running side of a subscription.
pub(crate) struct Running {
    stop: AtomicBool,
    closer: SubscriptionCloser,
    thread: Mutex<Option<JoinHandle<()>>>,
    delivered: AtomicU64,
    last_error: Mutex<Option<XaerofluxError>>,
}

impl Running {
    /// Ends delivery and waits for the thread, unless called from it (a
    /// listener that closes its own subscription).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.closer.close();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }

    fn record(&self, e: XaerofluxError) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }
}

/// A subscription: close it to stop delivery (the store closing ends it
/// too).
#[derive(uniffi::Object)]
pub struct Subscription {
    running: Arc<Running>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("delivered", &self.running.delivered.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops delivery: when it returns, the listener is not called again
    /// (unless it is the listener itself that closes). A second close does
    /// nothing.
    pub fn close(&self) {
        self.running.stop();
    }

    /// Whether the subscription has been closed (by `close`, or because
    /// the store closed).
    pub fn is_closed(&self) -> bool {
        self.running.stop.load(Ordering::Acquire)
    }

    /// How many events the listener has been given.
    pub fn delivered(&self) -> u64 {
        self.running.delivered.load(Ordering::Relaxed)
    }

    /// The last failure: an exception the listener raised, or a read that
    /// failed.
    pub fn last_error(&self) -> Option<XaerofluxError> {
        self.running
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.running.stop();
    }
}

/// Subscribes and starts the delivering thread.
pub(crate) fn start(
    shared: &Arc<Shared>,
    topic: &str,
    from_seq: u64,
    listener: Arc<dyn EventListener>,
) -> Result<Arc<Subscription>, XaerofluxError> {
    let sub = shared.with(|c| {
        let t = topic_of(c, topic)?;
        Ok(c.subscribe(Filter::topic(&t), from_seq)?)
    })?;
    let running = Arc::new(Running {
        stop: AtomicBool::new(false),
        closer: sub.closer(),
        thread: Mutex::new(None),
        delivered: AtomicU64::new(0),
        last_error: Mutex::new(None),
    });
    let (r2, s2) = (running.clone(), shared.clone());
    let thread = std::thread::Builder::new()
        .name("xf-listener".into())
        .spawn(move || deliver(sub, &s2, &r2, &*listener))
        .map_err(|e| XaerofluxError::Io {
            reason: format!("could not start the listener thread: {e}"),
        })?;
    *running.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    shared
        .subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&running));
    Ok(Arc::new(Subscription { running }))
}

fn deliver(
    mut sub: xaeroflux::Subscription,
    shared: &Shared,
    running: &Running,
    listener: &dyn EventListener,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while !running.stop.load(Ordering::Acquire) {
        match sub.recv() {
            Some(Ok(ev)) => batch.push(ev),
            Some(Err(e)) => {
                // A read that failed (damage): say so, and try again later
                // rather than spin.
                running.record(e.into());
                std::thread::park_timeout(Duration::from_millis(200));
                continue;
            }
            None => break,
        }
        while batch.len() < MAX_BATCH {
            match sub.try_recv() {
                Ok(Some(ev)) => batch.push(ev),
                _ => break,
            }
        }
        if running.stop.load(Ordering::Acquire) {
            break;
        }
        let events =
            match shared.with(|c| Ok(batch.drain(..).map(|e| owned(c, e)).collect::<Vec<_>>())) {
                Ok(events) => events,
                Err(_) => break, // the store closed
            };
        let n = events.len() as u64;
        match catch_unwind(AssertUnwindSafe(|| listener.on_events(events))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => running.record(e),
            Err(_) => running.record(XaerofluxError::Internal {
                reason: "the listener panicked".into(),
            }),
        }
        running.delivered.fetch_add(n, Ordering::Relaxed);
    }
    running.stop.store(true, Ordering::Release);
}

/// An owned event as the bindings give it, a private topic's payload
/// opened for a member.
fn owned(core: &xaeroflux::Core, ev: xaeroflux::Event) -> Event {
    let (payload, encrypted) = match core.read_event_payload(&ev) {
        Ok(Payload::Plain(p)) => (p.to_vec(), false),
        Ok(Payload::Decrypted(p)) => (p, false),
        Ok(Payload::Encrypted { .. }) | Err(_) => (ev.payload.clone(), true),
    };
    Event {
        log: ev.log.to_string(),
        author: ev.log.author.to_vec(),
        seq: ev.seq,
        timestamp_ms: ev.timestamp_ms,
        kind: ev.kind.into(),
        payload,
        encrypted,
    }
}
