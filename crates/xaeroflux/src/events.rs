//! Iterators over events that can be looped over directly: a read that
//! fails to start is the first (and last) item, not a `Result` to unwrap
//! before the loop.

use xaeroflux_store::{EventIter, EventRef, LogIter, StoreError, TopicIter};

use crate::Error;

enum Inner<'a> {
    All(EventIter<'a>),
    Log(LogIter<'a>),
    Topic(TopicIter<'a>),
    Failed(Option<StoreError>),
}

/// Events of the store, a log or a topic view, as zero-copy views of the
/// mapped pages; each item is an event or the error that ended the read.
pub struct Events<'a>(Inner<'a>);

impl<'a> Events<'a> {
    pub(crate) fn all(r: Result<EventIter<'a>, StoreError>) -> Self {
        Self(r.map_or_else(|e| Inner::Failed(Some(e)), Inner::All))
    }

    pub(crate) fn log(r: Result<LogIter<'a>, StoreError>) -> Self {
        Self(r.map_or_else(|e| Inner::Failed(Some(e)), Inner::Log))
    }

    pub(crate) fn topic(r: Result<TopicIter<'a>, StoreError>) -> Self {
        Self(r.map_or_else(|e| Inner::Failed(Some(e)), Inner::Topic))
    }
}

impl std::fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<EventRef<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = match &mut self.0 {
            Inner::All(i) => i.next(),
            Inner::Log(i) => i.next(),
            Inner::Topic(i) => i.next(),
            Inner::Failed(e) => e.take().map(Err),
        };
        r.map(|r| r.map_err(Error::from))
    }
}
