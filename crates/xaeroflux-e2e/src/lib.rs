//! End-to-end encryption of Xaeroflux private topics: XFE v1.
//!
//! A private topic has a random name (`xfe1.` and 26 base32 characters)
//! that binds its *controller*, its creator, who alone changes keys, in its
//! own log of the topic. Each epoch has a 32-byte secret; a key change
//! commits to it, wraps it with HPKE (RFC 9180) to each member's X25519
//! key, and seals the previous epoch's secret under it (a back-link), so
//! a member added late is given one wrap and reads all history. Events
//! are sealed with XChaCha20-Poly1305 into an envelope bound to their
//! place (author, topic, kind, flags, seq, timestamp). The crate does no
//! I/O; the store seals, keeps keys and replays key changes. The formats
//! are in `docs/private-topics.md`.
//!
//! ```
//! use xaeroflux_e2e::{Group, MemberSecret, Place};
//! use xaeroflux_types::EventKind;
//!
//! # fn main() -> Result<(), xaeroflux_e2e::E2eError> {
//! let controller = [7u8; 32]; // the creator's ed25519 author key
//! let alice = MemberSecret::generate()?;
//! let created = Group::create(controller, &alice, Some("book club"))?;
//! let mut group = created.group;
//!
//! // Bob joins: one welcome record, appended to the controller's log.
//! let bob = MemberSecret::generate()?;
//! let welcome = group.add(&bob.public()?)?;
//! group.apply(&controller, &welcome)?;
//!
//! // Bob replays the controller's log and reads what alice seals.
//! let mut bobs = Group::new(*group.topic(), Some(&created.name), controller, vec![bob])?;
//! bobs.apply(&controller, &created.genesis)?;
//! bobs.apply(&controller, &welcome)?;
//! let place = Place {
//!     author: controller,
//!     topic: *group.topic(),
//!     kind: EventKind::Application,
//!     flags: 1,
//!     seq: 0,
//!     timestamp_ms: 1_700_000_000_000,
//! };
//! let sealed = group.seal(&place, b"meet at eight")?;
//! assert_eq!(bobs.open(&place, &sealed)?, b"meet at eight");
//! assert_eq!(bobs.title(), Some("book club"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod blob;
pub mod control;
mod envelope;
mod error;
mod group;
mod keys;
mod wrap;
mod xchacha;

pub use blob::{
    BLOB_CHUNK, BLOB_HEADER_LEN, BLOB_MAGIC, BLOB_REF_LEN, BLOB_REF_MAGIC, BLOB_VERSION, BlobKey,
    BlobSealer, PrivateBlobRef, open_blob, seal_blob, sealed_blob_len,
};
pub use envelope::{
    ContentKey, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD, ENVELOPE_VERSION, EnvelopeHeader, Nonces,
    Place, TAG_LEN, check_envelope, padme, sealed_len,
};
pub use error::{E2eError, Result};
pub use group::{
    Applied, Created, Group, NAME_PREFIX, is_controller, name_binding, parse_topic_name, topic_name,
};
pub use keys::{EpochSecret, MEMBER_KEY_MAGIC, MEMBER_KEY_VERSION, MemberKey, MemberSecret};
pub use wrap::WRAP_LEN;
pub use xchacha::SubkeyCache;

/// The concatenation of `parts` into an array of exactly their length
/// (the callers' lengths are constants; a mismatch leaves zeros, and the
/// unit tests pin every layout).
pub(crate) fn cat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for p in parts {
        if let Some(dst) = out.get_mut(at..at + p.len()) {
            dst.copy_from_slice(p);
        }
        at += p.len();
    }
    debug_assert_eq!(at, N, "cat: parts of {at} bytes into {N}");
    out
}

/// For tests: the HPKE calls the wraps make, with a given ephemeral key,
/// to compare with RFC 9180's vectors.
#[doc(hidden)]
pub mod testing {
    pub use crate::wrap::{hpke_open, hpke_seal_with_ikm};
}
