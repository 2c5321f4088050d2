//! A bounded queue in three priority classes, shared by a subject's input and
//! a listener's inbox: `System` items leave before `Identity` items, which
//! leave before `Application` items; within a class, order is kept. Each
//! class has its own bound, so a class that is full never keeps a more
//! urgent one out.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::{Overflow, Prioritized};

struct State<T> {
    classes: [VecDeque<T>; 3],
    closed: bool,
    /// A consumer is waiting for items.
    consumer_waiting: bool,
    /// Producers waiting for room.
    producers_waiting: usize,
    /// [`PriorityQueue::wake`] was called: the next empty wait returns.
    woken: bool,
}

impl<T> State<T> {
    fn len(&self) -> usize {
        self.classes.iter().map(VecDeque::len).sum()
    }
}

/// What a push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pushed {
    pub accepted: usize,
    pub dropped: usize,
    /// The queue was closed: nothing was taken.
    pub closed: bool,
}

/// What a pop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Popped {
    /// At least one item was moved out.
    Items,
    /// The deadline passed with the queue empty.
    TimedOut,
    /// Closed and empty: nothing more will come.
    Closed,
}

pub(crate) struct PriorityQueue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl<T> PriorityQueue<T> {
    /// A queue holding at most `capacity` items of each class.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                classes: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
                closed: false,
                consumer_waiting: false,
                producers_waiting: 0,
                woken: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The queue's invariants hold between any two statements, so a
        // panic elsewhere while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Wakes a waiting consumer, which returns [`Popped::TimedOut`] if the
    /// queue is still empty (so it can look at other state).
    pub fn wake(&self) {
        let mut st = self.lock();
        st.woken = true;
        drop(st);
        self.not_empty.notify_all();
    }

    /// Takes no more items; what is queued can still be popped.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        drop(st);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Closes and empties the queue, returning how many items were discarded.
    pub fn close_and_clear(&self) -> usize {
        let mut st = self.lock();
        st.closed = true;
        let n = st.len();
        for c in st.classes.iter_mut() {
            c.clear();
        }
        drop(st);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        n
    }

    /// Moves up to `max` items into `out`, most urgent class first, waiting
    /// until `deadline` (or for ever) for the first one.
    pub fn pop_into(&self, out: &mut Vec<T>, max: usize, deadline: Option<Instant>) -> Popped {
        let mut st = self.lock();
        loop {
            if st.len() > 0 {
                let mut room = max.max(1);
                for class in st.classes.iter_mut() {
                    let n = class.len().min(room);
                    out.extend(class.drain(..n));
                    room -= n;
                    if room == 0 {
                        break;
                    }
                }
                if st.producers_waiting > 0 {
                    self.not_full.notify_all();
                }
                return Popped::Items;
            }
            if st.closed {
                return Popped::Closed;
            }
            if std::mem::take(&mut st.woken) {
                return Popped::TimedOut;
            }
            st.consumer_waiting = true;
            st = match deadline {
                None => self.not_empty.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        st.consumer_waiting = false;
                        return Popped::TimedOut;
                    }
                    self.not_empty
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            st.consumer_waiting = false;
        }
    }

    /// Items queued per class, most urgent first.
    #[cfg(test)]
    pub fn class_lens(&self) -> [usize; 3] {
        let st = self.lock();
        st.classes.each_ref().map(|q| q.len())
    }
}

/// The queue of one priority class.
fn class_mut<T>(classes: &mut [VecDeque<T>; 3], p: crate::Priority) -> &mut VecDeque<T> {
    let [system, identity, application] = classes;
    match p {
        crate::Priority::System => system,
        crate::Priority::Identity => identity,
        crate::Priority::Application => application,
    }
}

impl<T: Prioritized> PriorityQueue<T> {
    /// Queues items in order. With [`Overflow::Block`] a full class makes
    /// the caller wait for room; with [`Overflow::DropNewest`] the items that
    /// do not fit are dropped and counted.
    pub fn push_all(&self, items: impl IntoIterator<Item = T>, overflow: Overflow) -> Pushed {
        let mut out = Pushed::default();
        let mut st = self.lock();
        if st.closed {
            out.closed = true;
            return out;
        }
        for item in items {
            let class = item.priority();
            loop {
                if st.closed {
                    out.closed = true;
                    return out;
                }
                let q = class_mut(&mut st.classes, class);
                if q.len() < self.capacity {
                    q.push_back(item);
                    out.accepted += 1;
                    break;
                }
                match overflow {
                    Overflow::DropNewest => {
                        out.dropped += 1;
                        break;
                    }
                    Overflow::Block => {
                        if st.consumer_waiting {
                            self.not_empty.notify_one();
                        }
                        st.producers_waiting += 1;
                        st = self.not_full.wait(st).unwrap_or_else(|p| p.into_inner());
                        st.producers_waiting -= 1;
                    }
                }
            }
        }
        if out.accepted > 0 && st.consumer_waiting {
            self.not_empty.notify_one();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Priority;
    use std::time::Duration;

    #[test]
    fn urgent_classes_leave_first_and_keep_their_order() {
        let q = PriorityQueue::new(8);
        let items = [
            (Priority::Application, 1),
            (Priority::System, 2),
            (Priority::Identity, 3),
            (Priority::System, 4),
            (Priority::Application, 5),
        ];
        assert_eq!(q.push_all(items, Overflow::Block).accepted, 5);
        let mut out = Vec::new();
        assert_eq!(q.pop_into(&mut out, 10, None), Popped::Items);
        let order: Vec<i32> = out.iter().map(|(_, v)| *v).collect();
        assert_eq!(order, [2, 4, 3, 1, 5]);
    }

    #[test]
    fn a_full_class_drops_or_times_out_but_never_blocks_another() {
        let q = PriorityQueue::new(2);
        let app = (0..3).map(|i| (Priority::Application, i));
        let r = q.push_all(app, Overflow::DropNewest);
        assert_eq!((r.accepted, r.dropped), (2, 1));
        let r = q.push_all([(Priority::System, 9)], Overflow::Block);
        assert_eq!(r.accepted, 1);
        assert_eq!(q.class_lens(), [1, 0, 2]);
        let mut out = Vec::new();
        assert_eq!(q.pop_into(&mut out, 1, None), Popped::Items);
        assert_eq!(out, [(Priority::System, 9)]);
        out.clear();
        q.pop_into(&mut out, 10, None);
        let deadline = Instant::now() + Duration::from_millis(5);
        assert_eq!(q.pop_into(&mut out, 10, Some(deadline)), Popped::TimedOut);
        q.close();
        assert_eq!(q.pop_into(&mut out, 10, None), Popped::Closed);
        assert!(q.push_all([(Priority::System, 1)], Overflow::Block).closed);
    }

    #[test]
    fn a_blocked_producer_resumes_when_room_is_made() {
        let q = std::sync::Arc::new(PriorityQueue::new(1));
        q.push_all([(Priority::Application, 0)], Overflow::Block);
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            q2.push_all([(Priority::Application, 1)], Overflow::Block)
                .accepted
        });
        let mut out = Vec::new();
        let mut got = Vec::new();
        while got.len() < 2 {
            out.clear();
            let deadline = Instant::now() + Duration::from_secs(10);
            assert_eq!(q.pop_into(&mut out, 1, Some(deadline)), Popped::Items);
            got.extend(out.iter().map(|(_, v)| *v));
        }
        assert_eq!(t.join().ok(), Some(1));
        assert_eq!(got, [0, 1]);
    }
}
