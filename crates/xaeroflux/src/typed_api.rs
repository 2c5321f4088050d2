//! Typed appends and reads, and reads by time, on [`Core`].

use xaeroflux_store::{EventRef, Topic};

use crate::private_api::Payload;
use crate::reads::ReadEvents;
use crate::typed::{EventRefTyped, EventType, Typed, encode_typed, read_typed_copy, typed_tag};
use crate::{Core, Error, Events, Receipt};

impl Core {
    /// Appends `value` as a typed event of `topic` (its tag, version and
    /// rkyv archive; see [`crate::typed`]). Durable on return, like
    /// [`Core::append`]; in a private topic it is sealed like any payload.
    ///
    /// ```
    /// use xaeroflux::{Core, EventRefTyped, EventType, Topic};
    ///
    /// #[derive(rkyv::Archive, rkyv::Serialize)]
    /// struct Like { post: u64 }
    /// impl EventType for Like {
    ///     const TAG: [u8; 4] = *b"like";
    ///     const VERSION: u16 = 1;
    /// }
    ///
    /// # fn main() -> Result<(), xaeroflux::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let core = Core::builder().open(dir.path())?;
    /// let likes = Topic::new("likes")?;
    /// core.append_typed(&likes, &Like { post: 7 })?;
    /// for ev in core.iter_typed::<Like>(&likes) {
    ///     let (_event, like) = ev?;
    ///     assert_eq!(like.post, 7); // read in place, in the mapped page
    ///     assert!(like.is_zero_copy());
    /// }
    /// let ev = core.iter_topic(&likes).next().unwrap()?;
    /// assert_eq!(ev.typed::<Like>()?.post, 7);
    /// # Ok(()) }
    /// ```
    pub fn append_typed<T: EventType>(&self, topic: &Topic, value: &T) -> Result<Receipt, Error> {
        let payload = encode_typed(value)?;
        self.append(self.new_event_in(topic, payload))
    }

    /// The events of a topic view that hold a `T` (by tag), each with its
    /// validated archived value; other events of the topic are passed
    /// over. On a plain topic the value borrows the mapped page; on a
    /// private topic it is read from the decrypted payload (a copy), and
    /// an event this store cannot open is an error item. An event with
    /// `T`'s tag that fails validation, or of another version, is an error
    /// item naming it, and the reading goes on after it.
    pub fn iter_typed<T: EventType>(&self, topic: &Topic) -> TypedEvents<'_, T> {
        TypedEvents {
            events: self.read_topic(topic),
            _t: std::marker::PhantomData,
        }
    }

    /// The topic view between two moments: the events with
    /// `from_ms <= timestamp_ms < to_ms`, in the view's order, found through
    /// the store's index by time (O(log n + k), never a scan from the start).
    pub fn iter_topic_range(&self, topic: &Topic, from_ms: u64, to_ms: u64) -> Events<'_> {
        Events::topic(self.store.iter_topic_range(&topic.id(), from_ms, to_ms))
    }

    /// The last `n` events of a topic view, in the view's order.
    pub fn iter_topic_last(&self, topic: &Topic, n: u64) -> Events<'_> {
        Events::topic(self.store.iter_topic_last(&topic.id(), n))
    }
}

/// Typed events of a topic; see [`Core::iter_typed`].
pub struct TypedEvents<'a, T: EventType> {
    events: ReadEvents<'a>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: EventType> std::fmt::Debug for TypedEvents<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TypedEvents")
    }
}

impl<'a, T: EventType> Iterator for TypedEvents<'a, T> {
    type Item = Result<(EventRef<'a>, Typed<'a, T>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let read = match self.events.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let ev = read.event;
            let value = match &read.payload {
                Payload::Plain(p) => {
                    if typed_tag(p) != Some(T::TAG) {
                        continue;
                    }
                    ev.typed::<T>()
                }
                Payload::Decrypted(p) => {
                    if typed_tag(p) != Some(T::TAG) {
                        continue;
                    }
                    let (log, seq) = (ev.log_id(), ev.seq());
                    read_typed_copy::<T>(&|| format!("{log}@{seq}"), p)
                }
                Payload::Encrypted { epoch, .. } => {
                    return Some(Err(Error::Typed(crate::typed::TypedError::NotTyped {
                        event: format!("{}@{}", ev.log_id(), ev.seq()),
                        reason: format!(
                            "sealed with epoch {epoch}, which this store holds no key for"
                        ),
                    })));
                }
            };
            return Some(value.map(|v| (ev, v)).map_err(Error::from));
        }
    }
}
