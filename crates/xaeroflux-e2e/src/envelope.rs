//! The sealed payload of an event in a private topic (flags bit 0 set).
//!
//! ```text
//! offset  size  field
//!      0     1  version (1)
//!      1     8  epoch, u64 little-endian
//!      9    24  nonce, random
//!     33     n  ciphertext of the padded plaintext
//!   33+n    16  Poly1305 tag
//! ```
//!
//! XChaCha20-Poly1305 under the content key
//! `HKDF-SHA256(salt = topic id, ikm = K_e, info = "xf/e2e/v1/content" || author)`.
//! The associated data binds the ciphertext to its place: the label
//! `"xf/e2e/v1/event"`, the author, the topic id, the event's kind, flags,
//! seq and timestamp, and the envelope's own version and epoch. Moved to
//! another seq, log, topic or kind, it no longer opens.
//!
//! The plaintext is padded before sealing: a `0x80` byte, then zeros, to
//! the Padmé length of `len + 1`, so a size leaks at most about
//! `log2(log2(len))` bits.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use hkdf::Hkdf;
use sha2::Sha256;
use xaeroflux_types::TopicId;
use zeroize::Zeroizing;

use crate::error::{E2eError, Result, malformed};
use crate::keys::{EpochSecret, random_array};
use crate::xchacha::{self, SubkeyCache};

/// Version byte of the envelope.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes before the ciphertext: version, epoch, nonce.
pub const ENVELOPE_HEADER_LEN: usize = 1 + 8 + 24;
/// The Poly1305 tag's length.
pub const TAG_LEN: usize = 16;
/// The fixed overhead of an envelope over its padded plaintext.
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_HEADER_LEN + TAG_LEN;

const CONTENT_INFO: &[u8] = b"xf/e2e/v1/content";
const AAD_LABEL: &[u8] = b"xf/e2e/v1/event";

pub use xaeroflux_types::Place;

/// The envelope's clear header, which a relay checks without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The epoch whose key sealed it.
    pub epoch: u64,
    /// The length of the padded plaintext.
    pub padded_len: usize,
}

/// Checks an envelope's structure (version, length) without opening it:
/// what a blind relay can check.
pub fn check_envelope(bytes: &[u8]) -> Result<EnvelopeHeader> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or_else(|| malformed("envelope", "empty"))?;
    if version != ENVELOPE_VERSION {
        return Err(E2eError::UnsupportedVersion {
            what: "envelope",
            found: version,
            supported: ENVELOPE_VERSION,
        });
    }
    let (epoch, _) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| malformed("envelope", "shorter than its header"))?;
    // At least the padding marker is sealed.
    if bytes.len() < ENVELOPE_OVERHEAD + 1 {
        return Err(malformed(
            "envelope",
            format!(
                "{} bytes, fewer than {}",
                bytes.len(),
                ENVELOPE_OVERHEAD + 1
            ),
        ));
    }
    Ok(EnvelopeHeader {
        epoch: u64::from_le_bytes(*epoch),
        padded_len: bytes.len() - ENVELOPE_OVERHEAD,
    })
}

/// Padmé: the padded length of `len` (Nikitin et al., "Reducing metadata
/// leakage from encrypted files and communication with PURBs").
pub fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let low = e.saturating_sub(s);
    let mask = (1usize << low) - 1;
    len.saturating_add(mask) & !mask
}

/// The length of an envelope sealing `len` bytes of plaintext.
pub fn sealed_len(len: usize) -> usize {
    padme(len + 1) + ENVELOPE_OVERHEAD
}

/// An epoch's content key for one author, derived once and kept.
#[derive(Clone)]
pub struct ContentKey {
    key: Zeroizing<[u8; 32]>,
    epoch: u64,
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentKey(epoch {})", self.epoch)
    }
}

/// HKDF-SHA256 expanding to 32 bytes, with `info` the concatenation of
/// the parts.
pub(crate) fn derive(salt: &[u8], ikm: &[u8; 32], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes are always within HKDF-SHA256's bound (8,160).
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand_multi_info(info, okm.as_mut());
    okm
}

pub(crate) fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.into())
}

/// The nonces a writer seals with: 24 bytes each, the first 16 random and
/// shared by a run of up to [`NONCE_RUN`] nonces, the last 8 counting up
/// from a random start. Unique as random 24-byte nonces are (a run's
/// prefix alone is 128 fresh random bits; within a run the counter never
/// repeats), and a run costs one `getrandom` call and one HChaCha20 subkey
/// instead of one each. Keep one per writer (not across a `fork`: a forked
/// child would continue the parent's run).
pub struct Nonces {
    prefix: [u8; 16],
    counter: u64,
    left: u32,
    subkeys: SubkeyCache,
}

/// Nonces drawn with one random prefix, at most.
pub const NONCE_RUN: u32 = 1 << 16;

impl Default for Nonces {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonces({} left in this run)", self.left)
    }
}

impl Nonces {
    /// An empty source; the first draw starts a run.
    pub fn new() -> Self {
        Self {
            prefix: [0; 16],
            counter: 0,
            left: 0,
            subkeys: SubkeyCache::default(),
        }
    }

    /// A fresh nonce: never handed out twice.
    pub fn draw(&mut self) -> Result<[u8; 24]> {
        if self.left == 0 {
            let fresh: [u8; 24] = random_array()?;
            let (prefix, start) = fresh
                .split_first_chunk::<16>()
                .ok_or_else(|| malformed("nonce", "short"))?;
            self.prefix = *prefix;
            self.counter =
                u64::from_le_bytes(start.try_into().map_err(|_| malformed("nonce", "short"))?);
            self.left = NONCE_RUN;
        }
        let n = crate::cat(&[&self.prefix, &self.counter.to_le_bytes()]);
        self.counter = self.counter.wrapping_add(1);
        self.left -= 1;
        Ok(n)
    }
}

impl ContentKey {
    /// The content key of `author` in `topic` at `epoch`.
    pub fn derive(topic: &TopicId, epoch: u64, secret: &EpochSecret, author: &[u8; 32]) -> Self {
        Self {
            key: derive(&topic.0, &secret.0, &[CONTENT_INFO, author]),
            epoch,
        }
    }

    /// The epoch it belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Seals `plaintext` for `place` with a fresh random nonce.
    pub fn seal(&self, place: &Place, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.seal_with_nonce(place, plaintext, random_array()?)
    }

    /// Seals `plaintext` for `place` into `out` (cleared first), with a
    /// nonce from `nonces`: the writer's path, which allocates nothing once
    /// `out` has grown.
    pub fn seal_into(
        &self,
        place: &Place,
        plaintext: &[u8],
        nonces: &mut Nonces,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let nonce = nonces.draw()?;
        self.seal_nonce_into(place, plaintext, nonce, out, Some(&mut nonces.subkeys))
    }

    /// Seals with a given nonce: for known-answer tests only; a nonce must
    /// never be used twice.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        place: &Place,
        plaintext: &[u8],
        nonce: [u8; 24],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(sealed_len(plaintext.len()));
        self.seal_nonce_into(place, plaintext, nonce, &mut out, None)?;
        Ok(out)
    }

    fn seal_nonce_into(
        &self,
        place: &Place,
        plaintext: &[u8],
        nonce: [u8; 24],
        out: &mut Vec<u8>,
        subkeys: Option<&mut SubkeyCache>,
    ) -> Result<()> {
        let padded_len = padme(plaintext.len() + 1);
        out.clear();
        out.reserve(padded_len + ENVELOPE_OVERHEAD);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        out.push(0x80);
        out.resize(ENVELOPE_HEADER_LEN + padded_len, 0);
        let aad = aad(place, self.epoch);
        let body = out
            .get_mut(ENVELOPE_HEADER_LEN..)
            .ok_or_else(|| malformed("envelope", "shorter than its header"))?;
        let tag = match subkeys {
            Some(c) => xchacha::seal_cached(c, &self.key, &nonce, &aad, body),
            None => xchacha::seal_in_place(&self.key, &nonce, &aad, body),
        };
        let Some(tag) = tag else {
            // Never leave plaintext in the buffer.
            out.fill(0);
            out.clear();
            return Err(malformed("plaintext", "too long to seal"));
        };
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens an envelope sealed for `place`.
    pub fn open(&self, place: &Place, envelope: &[u8]) -> Result<Vec<u8>> {
        self.open_cached(place, envelope, &mut SubkeyCache::default())
    }

    /// [`ContentKey::open`] keeping the last subkey in `cache`: a reader of
    /// many events from one writer computes HChaCha20 once per run of
    /// nonces.
    pub fn open_cached(
        &self,
        place: &Place,
        envelope: &[u8],
        cache: &mut SubkeyCache,
    ) -> Result<Vec<u8>> {
        let mut buf = Zeroizing::new(Vec::new());
        let len = self
            .open_into_cached(place, envelope, &mut buf, cache)?
            .len();
        let mut out = std::mem::take(&mut *buf);
        out.truncate(len);
        Ok(out)
    }

    /// Opens into `buf` (which then holds the padded plaintext) and returns
    /// the plaintext, a prefix of it.
    fn open_into_cached<'b>(
        &self,
        place: &Place,
        envelope: &[u8],
        buf: &'b mut Vec<u8>,
        cache: &mut SubkeyCache,
    ) -> Result<&'b [u8]> {
        let header = check_envelope(envelope)?;
        if header.epoch != self.epoch {
            return Err(E2eError::NoKey {
                epoch: header.epoch,
            });
        }
        let (head, body) = envelope
            .split_at_checked(ENVELOPE_HEADER_LEN)
            .ok_or_else(|| malformed("envelope", "shorter than its header"))?;
        let nonce: [u8; 24] = head
            .get(9..)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| malformed("envelope", "shorter than its header"))?;
        let aad = aad(place, self.epoch);
        buf.clear();
        buf.extend_from_slice(body);
        let padded = xchacha::open_cached(cache, &self.key, &nonce, &aad, buf)
            .ok_or(E2eError::Refused { what: "envelope" })?;
        let len = unpad(padded)?;
        buf.truncate(len);
        Ok(buf.as_slice())
    }
}

/// The plaintext's length in a padded plaintext.
fn unpad(padded: &[u8]) -> Result<usize> {
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .ok_or_else(|| malformed("sealed plaintext", "no padding marker"))?;
    if padded.get(end) != Some(&0x80) || padme(end + 1) != padded.len() {
        return Err(malformed("sealed plaintext", "bad padding"));
    }
    Ok(end)
}

fn aad(place: &Place, epoch: u64) -> [u8; 15 + 32 + 32 + 1 + 2 + 8 + 8 + 1 + 8] {
    crate::cat(&[
        AAD_LABEL,
        &place.author,
        &place.topic.0,
        &[place.kind as u8],
        &place.flags.to_le_bytes(),
        &place.seq.to_le_bytes(),
        &place.timestamp_ms.to_le_bytes(),
        &[ENVELOPE_VERSION],
        &epoch.to_le_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_matches_the_papers_table() {
        // Small lengths are not padded; then at most ~12% overhead.
        for (l, p) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (9, 10),
            (100, 104),
            (1000, 1024),
            (1025, 1088),
        ] {
            assert_eq!(padme(l), p, "padme({l})");
        }
        for l in 2..20_000usize {
            let p = padme(l);
            assert!(p >= l && (p - l) * 100 <= l * 12 + 100, "padme({l}) = {p}");
        }
    }
}
