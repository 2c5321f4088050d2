//! The types Xaeroflux's store and its sync protocol share, so that the
//! protocol (and any tool that reads what a store hands out) builds without
//! the store: topics, logs, events and their canonical encoding, pages of
//! a log in transit with the checks a receiver applies, bounds-checked byte
//! reads, atomic file writes, and the error shapes of files and formats.
//!
//! ```
//! use xaeroflux_types::{EventKind, EventRef, LogId, Topic, decode_event, encode_event};
//!
//! let topic = Topic::new("chat")?;
//! let bytes = encode_event(0, 1_700_000_000_000, EventKind::Application, 0, b"hello");
//! assert_eq!(decode_event(&bytes)?.seq(), 0);
//! let log = LogId { author: [1; 32], topic: topic.id() };
//! let log_bytes = log.to_bytes();
//! let view = EventRef::new(&log_bytes, &bytes)?;
//! assert_eq!(view.payload(), b"hello");
//! assert_eq!(log.to_string().parse::<LogId>()?, log);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
mod error;
mod event;
pub mod fs;
mod log;
mod page;
mod topic;

pub use error::{Corruption, InvalidInput, IoError, UnsupportedVersion};
pub use event::{
    EVENT_HEADER_LEN, EVENT_VERSION, EncodingError, Event, EventHeader, EventKind, EventRef,
    FLAG_ENCRYPTED, NewEvent, Place, decode_event, encode_event, encode_event_into,
};
pub use log::{LOG_ID_LEN, LogId};
pub use page::{CheckedPage, ForkSide, ImportPage, Rejection};
pub use topic::{MAX_TOPIC_LEN, PRIVATE_PREFIX, TOPIC_DOMAIN, Topic, TopicId, is_private_name};
