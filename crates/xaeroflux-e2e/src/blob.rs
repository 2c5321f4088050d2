//! Blobs of private topics: encrypted with a key of their own, which
//! travels inside the sealed event that references the blob.
//!
//! The blob store holds only the ciphertext:
//!
//! ```text
//! offset  size  field
//!      0     4  magic "XFEB"
//!      4     1  version (1)
//!      5     4  chunk size, u32 (65,536)
//!      9     8  plaintext length, u64
//!     17        chunks: each min(chunk size, what is left) bytes of
//!               XChaCha20-Poly1305 ciphertext, then its 16-byte tag;
//!               an empty blob has one empty chunk (its tag)
//! ```
//!
//! The key is 32 random bytes drawn for this blob alone, so the nonce of
//! chunk `i` is `i` (u64) then zeros. Each chunk's associated data is
//! `"xf/e2e/v1/blob" || header (17) || i (u64) || last (u8)`: a chunk
//! moved, dropped, repeated, or a blob cut short after a chunk, does not
//! open.
//!
//! The sealed event carries a [`PrivateBlobRef`]: magic `"XFPB"`, version
//! 1, the ciphertext's BLAKE3 hash (32), its length (u64), the
//! plaintext's length (u64) and the key (32): 85 bytes.

use zeroize::Zeroizing;

use crate::error::{E2eError, Result, malformed};
use crate::keys::random_array;
use crate::xchacha;

/// Magic of an encrypted blob.
pub const BLOB_MAGIC: &[u8; 4] = b"XFEB";
/// Version of an encrypted blob.
pub const BLOB_VERSION: u8 = 1;
/// Bytes of an encrypted blob's header.
pub const BLOB_HEADER_LEN: usize = 17;
/// Plaintext bytes per chunk.
pub const BLOB_CHUNK: usize = 64 * 1024;
/// Magic of a private blob reference.
pub const BLOB_REF_MAGIC: &[u8; 4] = b"XFPB";
/// Length of an encoded private blob reference.
pub const BLOB_REF_LEN: usize = 4 + 1 + 32 + 8 + 8 + 32;

const BLOB_LABEL: &[u8] = b"xf/e2e/v1/blob";

/// The key of one blob.
#[derive(Clone)]
pub struct BlobKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobKey(..)")
    }
}

impl PartialEq for BlobKey {
    fn eq(&self, other: &Self) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for BlobKey {}

impl BlobKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        Ok(Self(Zeroizing::new(random_array()?)))
    }
}

/// The length of the encrypted blob of `plain_len` bytes (saturating: no
/// blob is that long).
pub fn sealed_blob_len(plain_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(BLOB_CHUNK as u64).max(1);
    (BLOB_HEADER_LEN as u64)
        .saturating_add(plain_len)
        .saturating_add(chunks.saturating_mul(xchacha::TAG as u64))
}

fn header(plain_len: u64) -> [u8; BLOB_HEADER_LEN] {
    crate::cat(&[
        BLOB_MAGIC,
        &[BLOB_VERSION],
        &(BLOB_CHUNK as u32).to_le_bytes(),
        &plain_len.to_le_bytes(),
    ])
}

fn chunk_nonce(i: u64) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&i.to_le_bytes());
    n
}

fn chunk_aad(header: &[u8; BLOB_HEADER_LEN], i: u64, last: bool) -> [u8; 14 + 17 + 8 + 1] {
    crate::cat(&[BLOB_LABEL, header, &i.to_le_bytes(), &[u8::from(last)]])
}

/// Encrypts a blob chunk by chunk, so a large file need not be in memory.
pub struct BlobSealer {
    key: BlobKey,
    header: [u8; BLOB_HEADER_LEN],
    plain_len: u64,
    sealed: u64,
    next: u64,
}

impl std::fmt::Debug for BlobSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobSealer({} of {} bytes)", self.sealed, self.plain_len)
    }
}

impl BlobSealer {
    /// A sealer for a blob of `plain_len` bytes under `key`.
    pub fn new(key: &BlobKey, plain_len: u64) -> Self {
        Self {
            key: key.clone(),
            header: header(plain_len),
            plain_len,
            sealed: 0,
            next: 0,
        }
    }

    /// The encrypted blob's first bytes.
    pub fn header(&self) -> &[u8; BLOB_HEADER_LEN] {
        &self.header
    }

    /// How many plaintext bytes the next chunk takes (0 once all are
    /// sealed, except the single empty chunk of an empty blob).
    pub fn next_len(&self) -> usize {
        (self.plain_len - self.sealed).min(BLOB_CHUNK as u64) as usize
    }

    /// Whether every chunk is sealed.
    pub fn is_done(&self) -> bool {
        self.sealed == self.plain_len && (self.next > 0 || self.plain_len > 0)
    }

    /// Encrypts `chunk` (exactly [`BlobSealer::next_len`] bytes) in place
    /// and appends its tag.
    pub fn seal_chunk(&mut self, chunk: &mut Vec<u8>) -> Result<()> {
        if self.is_done() {
            return Err(E2eError::NotAllowed("every chunk is sealed".into()));
        }
        if chunk.len() != self.next_len() {
            return Err(malformed(
                "blob chunk",
                format!("{} bytes, not {}", chunk.len(), self.next_len()),
            ));
        }
        let i = self.next;
        let last = self.sealed + chunk.len() as u64 == self.plain_len;
        let aad = chunk_aad(&self.header, i, last);
        let tag = xchacha::seal_in_place(&self.key.0, &chunk_nonce(i), &aad, chunk)
            .ok_or_else(|| malformed("blob chunk", "too long"))?;
        chunk.extend_from_slice(&tag);
        self.sealed += (chunk.len() - xchacha::TAG) as u64;
        self.next += 1;
        Ok(())
    }
}

/// Encrypts a whole blob held in memory.
pub fn seal_blob(key: &BlobKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut s = BlobSealer::new(key, plaintext.len() as u64);
    let mut out = Vec::with_capacity(sealed_blob_len(plaintext.len() as u64) as usize);
    out.extend_from_slice(s.header());
    let mut at = 0usize;
    let mut chunk = Vec::with_capacity(BLOB_CHUNK + xchacha::TAG);
    while !s.is_done() {
        let n = s.next_len();
        chunk.clear();
        chunk.extend_from_slice(plaintext.get(at..at + n).unwrap_or_default());
        s.seal_chunk(&mut chunk)?;
        out.extend_from_slice(&chunk);
        at += n;
    }
    Ok(out)
}

/// Decrypts an encrypted blob: the plaintext, or an error if any byte of
/// it was changed, a chunk moved or dropped, or the key is not its own.
pub fn open_blob(key: &BlobKey, sealed: &[u8]) -> Result<Vec<u8>> {
    let (head, mut rest) = sealed
        .split_first_chunk::<BLOB_HEADER_LEN>()
        .ok_or_else(|| malformed("encrypted blob", "shorter than its header"))?;
    if &head[..4] != BLOB_MAGIC {
        return Err(malformed("encrypted blob", "bad magic"));
    }
    if head[4] != BLOB_VERSION {
        return Err(E2eError::UnsupportedVersion {
            what: "encrypted blob",
            found: head[4],
            supported: BLOB_VERSION,
        });
    }
    let chunk = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
    let plain_len = u64::from_le_bytes(
        head[9..17]
            .try_into()
            .map_err(|_| malformed("encrypted blob", "header"))?,
    );
    if chunk != BLOB_CHUNK {
        return Err(malformed("encrypted blob", format!("chunk size {chunk}")));
    }
    // The length is checked before anything is allocated for it.
    if sealed_blob_len(plain_len) != sealed.len() as u64 {
        return Err(malformed(
            "encrypted blob",
            format!(
                "{} bytes, not the {} its header gives",
                sealed.len(),
                sealed_blob_len(plain_len)
            ),
        ));
    }
    let mut out = Vec::with_capacity(plain_len as usize);
    let mut buf = Vec::with_capacity(BLOB_CHUNK + xchacha::TAG);
    let mut i = 0u64;
    loop {
        let left = plain_len - out.len() as u64;
        let n = left.min(BLOB_CHUNK as u64) as usize;
        let (ct, tail) = rest
            .split_at_checked(n + xchacha::TAG)
            .ok_or_else(|| malformed("encrypted blob", "cut short"))?;
        let last = n as u64 == left;
        buf.clear();
        buf.extend_from_slice(ct);
        let aad = chunk_aad(head, i, last);
        let pt = xchacha::open_in_place(&key.0, &chunk_nonce(i), &aad, &mut buf)
            .ok_or(E2eError::Refused { what: "blob chunk" })?;
        out.extend_from_slice(pt);
        rest = tail;
        i += 1;
        if last {
            return Ok(out);
        }
    }
}

/// What a sealed event says of the blob it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateBlobRef {
    /// The encrypted blob's BLAKE3 hash (what the blob store holds).
    pub hash: [u8; 32],
    /// The encrypted blob's length.
    pub size: u64,
    /// The plaintext's length.
    pub plain_size: u64,
    /// The blob's key.
    pub key: BlobKey,
}

impl PrivateBlobRef {
    /// The event's plaintext payload.
    pub fn encode(&self) -> Vec<u8> {
        crate::cat::<BLOB_REF_LEN>(&[
            BLOB_REF_MAGIC,
            &[BLOB_VERSION],
            &self.hash,
            &self.size.to_le_bytes(),
            &self.plain_size.to_le_bytes(),
            &self.key.0[..],
        ])
        .to_vec()
    }

    /// The reference an opened payload holds, if it is one (of this
    /// version, with lengths that agree).
    pub fn decode(payload: &[u8]) -> Option<Self> {
        let b: &[u8; BLOB_REF_LEN] = payload.try_into().ok()?;
        if &b[..4] != BLOB_REF_MAGIC || b[4] != BLOB_VERSION {
            return None;
        }
        let r = Self {
            hash: b[5..37].try_into().ok()?,
            size: u64::from_le_bytes(b[37..45].try_into().ok()?),
            plain_size: u64::from_le_bytes(b[45..53].try_into().ok()?),
            key: BlobKey(Zeroizing::new(b[53..85].try_into().ok()?)),
        };
        (sealed_blob_len(r.plain_size) == r.size).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_and_chunk_edges_round_trip() {
        let key = BlobKey::generate().unwrap();
        for len in [
            0,
            1,
            BLOB_CHUNK - 1,
            BLOB_CHUNK,
            BLOB_CHUNK + 1,
            3 * BLOB_CHUNK,
        ] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let ct = seal_blob(&key, &pt).unwrap();
            assert_eq!(ct.len() as u64, sealed_blob_len(len as u64), "{len}");
            assert_eq!(open_blob(&key, &ct).unwrap(), pt, "{len}");
            if len >= 16 {
                assert!(
                    !ct.windows(16).any(|w| w == &pt[..16]),
                    "plaintext shows in the blob"
                );
            }
        }
    }

    #[test]
    fn dropped_moved_or_cut_chunks_and_other_keys_are_refused() {
        let key = BlobKey::generate().unwrap();
        let pt = vec![5u8; 2 * BLOB_CHUNK + 10];
        let ct = seal_blob(&key, &pt).unwrap();
        let c = BLOB_CHUNK + 16;
        let (h, c0, c1, c2) = (
            &ct[..17],
            &ct[17..17 + c],
            &ct[17 + c..17 + 2 * c],
            &ct[17 + 2 * c..],
        );
        // Chunks swapped.
        let swapped = [h, c1, c0, c2].concat();
        assert!(matches!(
            open_blob(&key, &swapped),
            Err(E2eError::Refused { .. })
        ));
        // Cut after a whole chunk, with the header rewritten to match: the
        // last chunk is not marked last.
        let mut cut = [h, c0].concat();
        cut[9..17].copy_from_slice(&(BLOB_CHUNK as u64).to_le_bytes());
        assert!(open_blob(&key, &cut).is_err());
        // Another key.
        let other = BlobKey::generate().unwrap();
        assert!(matches!(
            open_blob(&other, &ct),
            Err(E2eError::Refused { .. })
        ));
        // Every prefix is refused, never a panic.
        for n in (0..ct.len()).step_by(997) {
            assert!(open_blob(&key, &ct[..n]).is_err());
        }
    }

    proptest! {
        #[test]
        fn a_flipped_byte_is_refused(len in 0usize..3000, at in any::<usize>(), bit in 0u8..8) {
            let key = BlobKey::generate().unwrap();
            let pt = vec![9u8; len];
            let mut ct = seal_blob(&key, &pt).unwrap();
            let i = at % ct.len();
            ct[i] ^= 1 << bit;
            prop_assert!(open_blob(&key, &ct).is_err());
        }

        #[test]
        fn refs_round_trip_and_bad_ones_are_none(h in any::<[u8; 32]>(), plain in 0u64..1 << 40, flip in 0usize..BLOB_REF_LEN) {
            let r = PrivateBlobRef { hash: h, size: sealed_blob_len(plain), plain_size: plain, key: BlobKey::generate().unwrap() };
            let b = r.encode();
            prop_assert_eq!(b.len(), BLOB_REF_LEN);
            prop_assert_eq!(PrivateBlobRef::decode(&b), Some(r.clone()));
            prop_assert_eq!(PrivateBlobRef::decode(&b[..BLOB_REF_LEN - 1]), None);
            let mut bad = b.clone();
            bad[flip] ^= 1;
            // A flipped magic, version or length is refused; a flipped hash
            // or key decodes (to a blob that will not be found or open).
            if flip < 5 || (37..53).contains(&flip) {
                prop_assert_eq!(PrivateBlobRef::decode(&bad), None);
            }
        }
    }
}
