//! Typed events: application values archived with rkyv 0.8 and read in
//! place, as a validated `&Archived<T>` that borrows the mapped page.
//!
//! A typed payload is an 8-byte header and the archive:
//!
//! ```text
//! 0  type tag               4   EventType::TAG
//! 4  type version (u16 LE)  2   EventType::VERSION
//! 6  envelope version (u8)  1   1
//! 7  reserved               1   0
//! 8  rkyv archive           ..  root at the end, as rkyv writes it
//! ```
//!
//! Pages of format 2 start every payload 8-aligned in the mapping, so the
//! archive is too, and [`EventRefTyped::typed`] returns a reference into the
//! segment map, checked with bytecheck first: bytes from disk or from a peer
//! are never accessed unchecked. A payload that is not aligned enough (an
//! event on a page of format 1, a private topic's decrypted payload, an
//! owned [`Event`]) is copied into an aligned buffer and checked there.
//! Leaves hash the raw payload as always: typing changes no proof.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Portable, Serialize};
use xaeroflux_store::{Event, EventRef};

/// Bytes before the archive in a typed payload.
pub const TYPED_HEADER_LEN: usize = 8;
/// Version of the typed-payload envelope.
pub const TYPED_ENVELOPE_VERSION: u8 = 1;

/// A type whose values are stored as typed events: a 4-byte tag naming the
/// type and a version of its layout, over rkyv's `Archive` and `Serialize`
/// (derive them with `#[derive(rkyv::Archive, rkyv::Serialize)]`).
///
/// ```
/// use xaeroflux::EventType;
///
/// #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// struct Profile {
///     name: String,
///     age: u32,
/// }
///
/// impl EventType for Profile {
///     const TAG: [u8; 4] = *b"prof";
///     const VERSION: u16 = 1;
/// }
/// ```
pub trait EventType:
    'static
    + Archive<Archived: 'static + Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>>
    + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
    /// Names the type in each of its events.
    const TAG: [u8; 4];
    /// The version of its archived layout; a reader refuses another.
    const VERSION: u16;
}

/// Why an event could not be read as a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypedError {
    /// The payload is shorter than a typed header, or its envelope version
    /// is not one this build reads.
    #[error("event {event}: not a typed event ({reason})")]
    NotTyped {
        /// `author/topic@seq`.
        event: String,
        /// What is wrong.
        reason: String,
    },
    /// The event holds another type.
    #[error("event {event}: type tag {found:?}, expected {want:?}")]
    WrongTag {
        /// `author/topic@seq`.
        event: String,
        /// The tag found.
        found: String,
        /// The tag asked for.
        want: String,
    },
    /// The event holds another version of the type.
    #[error("event {event}: type version {found}, this reader reads {want}")]
    WrongVersion {
        /// `author/topic@seq`.
        event: String,
        /// The version found.
        found: u16,
        /// The version asked for.
        want: u16,
    },
    /// The archive failed validation (bytecheck).
    #[error("event {event}: the archive does not validate: {reason}")]
    Invalid {
        /// `author/topic@seq`.
        event: String,
        /// What bytecheck reported.
        reason: String,
    },
    /// The value could not be archived.
    #[error("cannot archive the value: {0}")]
    Serialize(String),
}

/// The payload of a typed event holding `value`.
pub fn encode_typed<T: EventType>(value: &T) -> Result<Vec<u8>, TypedError> {
    let archive =
        rkyv::to_bytes::<rancor::Error>(value).map_err(|e| TypedError::Serialize(e.to_string()))?;
    let mut payload = Vec::with_capacity(TYPED_HEADER_LEN + archive.len());
    payload.extend_from_slice(&T::TAG);
    payload.extend_from_slice(&T::VERSION.to_le_bytes());
    payload.push(TYPED_ENVELOPE_VERSION);
    payload.push(0);
    payload.extend_from_slice(&archive);
    Ok(payload)
}

/// The type tag of a typed payload, if it is one (for dispatching on the
/// type of an event before reading it).
pub fn typed_tag(payload: &[u8]) -> Option<[u8; 4]> {
    let head: &[u8; TYPED_HEADER_LEN] = payload.first_chunk()?;
    (head[6] == TYPED_ENVELOPE_VERSION && head[7] == 0)
        .then(|| [head[0], head[1], head[2], head[3]])
}

fn tag_text(t: &[u8]) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// Checks the header; returns the archive's bytes.
fn archive_of<'p, T: EventType>(
    event: &dyn Fn() -> String,
    payload: &'p [u8],
) -> Result<&'p [u8], TypedError> {
    let Some((head, archive)) = payload.split_first_chunk::<TYPED_HEADER_LEN>() else {
        return Err(TypedError::NotTyped {
            event: event(),
            reason: format!("{} bytes, shorter than the header", payload.len()),
        });
    };
    if head[6] != TYPED_ENVELOPE_VERSION || head[7] != 0 {
        return Err(TypedError::NotTyped {
            event: event(),
            reason: format!(
                "envelope version {} (reads {TYPED_ENVELOPE_VERSION})",
                head[6]
            ),
        });
    }
    if head[..4] != T::TAG {
        return Err(TypedError::WrongTag {
            event: event(),
            found: tag_text(&head[..4]),
            want: tag_text(&T::TAG),
        });
    }
    let version = u16::from_le_bytes([head[4], head[5]]);
    if version != T::VERSION {
        return Err(TypedError::WrongVersion {
            event: event(),
            found: version,
            want: T::VERSION,
        });
    }
    Ok(archive)
}

/// A validated archived value: borrowed from the mapped page (zero copy)
/// or, when the payload was not aligned enough, from an aligned copy it
/// owns. Dereferences to `T::Archived`.
pub struct Typed<'a, T: EventType> {
    inner: Inner<'a, T>,
}

enum Inner<'a, T: EventType> {
    Borrowed(&'a T::Archived),
    Owned {
        /// Never read again after validation, only kept alive: `ptr` points
        /// into its heap buffer, which does not move when the vector does.
        _buf: AlignedVec,
        ptr: NonNull<T::Archived>,
        _life: PhantomData<&'a ()>,
    },
}

// SAFETY: an owned `Typed` is a validated, immutable archive in a buffer it
// owns; sharing or sending it is as safe as sharing `&T::Archived`.
unsafe impl<T: EventType> Send for Typed<'_, T> where T::Archived: Sync {}
// SAFETY: as above.
unsafe impl<T: EventType> Sync for Typed<'_, T> where T::Archived: Sync {}

impl<T: EventType> Typed<'_, T> {
    /// Whether the value is read in place, in the mapped page.
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.inner, Inner::Borrowed(_))
    }
}

impl<T: EventType> Deref for Typed<'_, T> {
    type Target = T::Archived;

    fn deref(&self) -> &T::Archived {
        match &self.inner {
            Inner::Borrowed(r) => r,
            // SAFETY: `ptr` came from `rkyv::access` over `_buf`'s bytes,
            // which this value owns and never changes; the reference lives
            // no longer than `self`.
            Inner::Owned { ptr, .. } => unsafe { ptr.as_ref() },
        }
    }
}

impl<T: EventType> std::fmt::Debug for Typed<'_, T>
where
    T::Archived: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// Reads a typed payload: in place when it is aligned for `T::Archived`,
/// else through an aligned copy. `event` names the event in errors.
pub fn read_typed<'a, T: EventType>(
    event: &dyn Fn() -> String,
    payload: &'a [u8],
) -> Result<Typed<'a, T>, TypedError> {
    let archive = archive_of::<T>(event, payload)?;
    let invalid = |e: rancor::Error| TypedError::Invalid {
        event: event(),
        reason: e.to_string(),
    };
    let align = std::mem::align_of::<T::Archived>();
    if (archive.as_ptr() as usize).is_multiple_of(align) {
        let r = rkyv::access::<T::Archived, rancor::Error>(archive).map_err(invalid)?;
        return Ok(Typed {
            inner: Inner::Borrowed(r),
        });
    }
    copy_typed(event, archive)
}

/// Reads a typed payload through an aligned copy, whatever its alignment
/// (for payloads that do not outlive the call, such as decrypted ones).
pub fn read_typed_copy<T: EventType>(
    event: &dyn Fn() -> String,
    payload: &[u8],
) -> Result<Typed<'static, T>, TypedError> {
    copy_typed(event, archive_of::<T>(event, payload)?)
}

fn copy_typed<T: EventType>(
    event: &dyn Fn() -> String,
    archive: &[u8],
) -> Result<Typed<'static, T>, TypedError> {
    let invalid = |e: rancor::Error| TypedError::Invalid {
        event: event(),
        reason: e.to_string(),
    };
    let align = std::mem::align_of::<T::Archived>();
    if align > 16 {
        return Err(TypedError::Invalid {
            event: event(),
            reason: format!("archived type aligned to {align} bytes, at most 16 are supported"),
        });
    }
    let mut buf = AlignedVec::<16>::with_capacity(archive.len());
    buf.extend_from_slice(archive);
    let ptr = NonNull::from(rkyv::access::<T::Archived, rancor::Error>(&buf).map_err(invalid)?);
    Ok(Typed {
        inner: Inner::Owned {
            _buf: buf,
            ptr,
            _life: PhantomData,
        },
    })
}

/// Typed reads of an event.
pub trait EventRefTyped<'a> {
    /// The event's payload as a validated `&Archived<T>`: a wrong tag or
    /// version, a payload that is not a typed event, or an archive that
    /// fails validation is an error naming the event.
    fn typed<T: EventType>(&self) -> Result<Typed<'a, T>, TypedError>;
}

fn name(log: &xaeroflux_store::LogId, seq: u64) -> String {
    format!("{log}@{seq}")
}

impl<'a> EventRefTyped<'a> for EventRef<'a> {
    fn typed<T: EventType>(&self) -> Result<Typed<'a, T>, TypedError> {
        let (log, seq) = (self.log_id(), self.seq());
        read_typed::<T>(&|| name(&log, seq), self.payload())
    }
}

/// Typed reads of an owned event (as a subscription delivers it): in its
/// payload vector when that is aligned enough, else through an aligned copy.
pub trait EventTyped {
    /// See [`EventRefTyped::typed`].
    fn typed<T: EventType>(&self) -> Result<Typed<'_, T>, TypedError>;
}

impl EventTyped for Event {
    fn typed<T: EventType>(&self) -> Result<Typed<'_, T>, TypedError> {
        let (log, seq) = (self.log, self.seq);
        read_typed::<T>(&|| name(&log, seq), &self.payload)
    }
}
