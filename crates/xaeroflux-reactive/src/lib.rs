//! Reactive streams for Xaeroflux: hot multicast [`Subject`]s, composable
//! [`Observable`]s, and [`EventListener`]s with bounded priority inboxes and
//! their own workers. Knows nothing of storage.
//!
//! ```
//! use std::time::Duration;
//! use xaeroflux_reactive::{EventListener, Subject};
//!
//! let (subject, observable) = Subject::<u64>::new();
//! // Operators compose on the observable and run on the dispatch thread.
//! let evens = observable.filter(|n| n % 2 == 0).map(|n| n * 10);
//! // A listener runs its handler on its own worker, fed by a bounded inbox.
//! let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let t = total.clone();
//! let listener = EventListener::new(
//!     "sum",
//!     move |n: u64| {
//!         t.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
//!     },
//!     1024, // inbox capacity per priority class
//!     1,    // workers
//! );
//! let _sub = evens.subscribe(&listener);
//! for n in 0..10 {
//!     subject.on_next(n);
//! }
//! assert!(listener.wait_until(|s| s.processed == 5, Duration::from_secs(10)));
//! assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 200);
//! subject.close();
//! ```
//!
//! # Ordering and priority
//!
//! Every subscriber of a subject receives every event it publishes after the
//! subscription, exactly once and in publish order, except that wherever
//! events wait in a queue (the subject's input, a listener's inbox) a
//! [`Priority::System`] event goes before [`Priority::Identity`] events,
//! which go before [`Priority::Application`] events. Within a class, order
//! is kept. Each class has its own bound, so a queue full of application
//! events never keeps a system event out.
//!
//! # Slow subscribers
//!
//! A listener's inbox is bounded. With [`Overflow::Block`] (the default) a
//! full inbox makes the dispatch thread wait, which slows the publisher to
//! that listener's pace: nothing is lost. With [`Overflow::DropNewest`] the
//! events that do not fit are dropped and counted, and nobody waits.
//! Sources that can replay (the store does, from disk) use the drop policy
//! and catch up, so a slow subscriber neither stalls anyone nor misses
//! anything; see `xaeroflux_store::Subscription`.
#![warn(missing_docs)]

mod inbox;
mod listener;
mod observable;
mod queue;
mod subject;

use std::sync::Arc;

pub use inbox::{Inbox, Received};
pub use listener::{EventListener, ListenerBuilder, ListenerStats};
pub use observable::{Observable, SubscriptionGuard};
pub use subject::{Subject, SubjectBuilder, SubjectStats};

/// Delivery class of an event. Lower is more urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// System events (sync state, store health): first.
    System = 0,
    /// Identity events (keys, profiles): after system events.
    Identity = 1,
    /// Application events: last.
    Application = 2,
}

/// What a queue needs to know about an item: its class, and the key whose
/// items a pool of workers keeps in order.
pub trait Prioritized {
    /// The item's delivery class.
    fn priority(&self) -> Priority;
    /// Items with equal keys are handled by one worker of a pool, in order.
    /// The default puts every item on one worker.
    fn route_key(&self) -> u64 {
        0
    }
}

macro_rules! application_class {
    ($($t:ty),*) => {$(
        impl Prioritized for $t {
            fn priority(&self) -> Priority {
                Priority::Application
            }
        }
    )*};
}
application_class!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    bool,
    char,
    (),
    String,
    &'static str
);

/// An item paired with its class explicitly.
impl<T> Prioritized for (Priority, T) {
    fn priority(&self) -> Priority {
        self.0
    }
}

/// A buffer (from [`Observable::buffer`]) is as urgent as its most urgent item.
impl<T: Prioritized> Prioritized for Vec<T> {
    fn priority(&self) -> Priority {
        self.iter()
            .map(Prioritized::priority)
            .min()
            .unwrap_or(Priority::Application)
    }
    fn route_key(&self) -> u64 {
        self.first().map_or(0, Prioritized::route_key)
    }
}

impl<T: Prioritized + ?Sized> Prioritized for Arc<T> {
    fn priority(&self) -> Priority {
        (**self).priority()
    }
    fn route_key(&self) -> u64 {
        (**self).route_key()
    }
}

impl<T: Prioritized + ?Sized> Prioritized for Box<T> {
    fn priority(&self) -> Priority {
        (**self).priority()
    }
    fn route_key(&self) -> u64 {
        (**self).route_key()
    }
}

/// What a bounded queue does with an item that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for room (back-pressure on whoever pushes).
    #[default]
    Block,
    /// Drop the item and count it; nobody waits.
    DropNewest,
}

/// Receives a stream's events. Implemented by [`EventListener`]s and by the
/// operators; implement it to plug anything else in. Called from the
/// dispatch thread of the subject upstream, so it must not block for long.
pub trait Observer<T>: Send + Sync {
    /// One event.
    fn on_next(&self, item: T);
    /// Several events, in order (the dispatch loop hands events over in
    /// batches; override this to take a batch under one lock).
    fn on_batch(&self, items: Vec<T>) {
        for item in items {
            self.on_next(item);
        }
    }
    /// `missed` events were dropped upstream before reaching this observer.
    fn on_lagged(&self, missed: u64) {
        let _ = missed;
    }
    /// The stream has ended: nothing follows.
    fn on_complete(&self) {}
}
