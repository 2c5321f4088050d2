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

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use xaeroflux_types::TopicId;
use zeroize::Zeroizing;

use crate::error::{E2eError, Result, malformed};
use crate::keys::{EpochSecret, random_array};

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
pub struct ContentKey {
    cipher: XChaCha20Poly1305,
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

impl ContentKey {
    /// The content key of `author` in `topic` at `epoch`.
    pub fn derive(topic: &TopicId, epoch: u64, secret: &EpochSecret, author: &[u8; 32]) -> Self {
        let key = derive(&topic.0, &secret.0, &[CONTENT_INFO, author]);
        Self {
            cipher: cipher(&key),
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

    /// Seals with a given nonce: for known-answer tests only; a nonce must
    /// never be used twice.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        place: &Place,
        plaintext: &[u8],
        nonce: [u8; 24],
    ) -> Result<Vec<u8>> {
        let padded_len = padme(plaintext.len() + 1);
        let mut padded = Zeroizing::new(Vec::with_capacity(padded_len));
        padded.extend_from_slice(plaintext);
        padded.push(0x80);
        padded.resize(padded_len, 0);
        let mut out = Vec::with_capacity(padded_len + ENVELOPE_OVERHEAD);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&nonce);
        let aad = aad(place, self.epoch);
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &padded,
                    aad: &aad,
                },
            )
            .map_err(|_| malformed("plaintext", "too long to seal"))?;
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens an envelope sealed for `place`.
    pub fn open(&self, place: &Place, envelope: &[u8]) -> Result<Vec<u8>> {
        let header = check_envelope(envelope)?;
        if header.epoch != self.epoch {
            return Err(E2eError::NoKey {
                epoch: header.epoch,
            });
        }
        let nonce = envelope
            .get(9..ENVELOPE_HEADER_LEN)
            .and_then(|n| <[u8; 24]>::try_from(n).ok())
            .ok_or_else(|| malformed("envelope", "shorter than its header"))?;
        let body = envelope.get(ENVELOPE_HEADER_LEN..).unwrap_or_default();
        let aad = aad(place, self.epoch);
        let padded = Zeroizing::new(
            self.cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: body,
                        aad: &aad,
                    },
                )
                .map_err(|_| E2eError::Refused { what: "envelope" })?,
        );
        unpad(&padded)
    }
}

fn unpad(padded: &[u8]) -> Result<Vec<u8>> {
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .ok_or_else(|| malformed("sealed plaintext", "no padding marker"))?;
    if padded.get(end) != Some(&0x80) || padme(end + 1) != padded.len() {
        return Err(malformed("sealed plaintext", "bad padding"));
    }
    Ok(padded.get(..end).unwrap_or_default().to_vec())
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
