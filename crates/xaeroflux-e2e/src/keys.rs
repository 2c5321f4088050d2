//! Member keys (X25519, for HPKE) and epoch secrets, and the randomness
//! they come from.

use hpke::{Deserializable, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{E2eError, Result};

/// The KEM of XFE v1: DHKEM(X25519, HKDF-SHA256).
pub(crate) type Kem = hpke::kem::X25519HkdfSha256;

/// Fills `buf` from the operating system's generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| E2eError::Random(e.to_string()))
}

/// `N` random bytes.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    random(&mut b)?;
    Ok(b)
}

/// A member's public key: X25519, 32 bytes. Key changes wrap each epoch's
/// secret to it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberKey(pub [u8; 32]);

impl std::fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberKey({self})")
    }
}

impl std::fmt::Display for MemberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for MemberKey {
    type Err = E2eError;

    /// 64 hex digits.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return Err(crate::error::malformed(
                "member key",
                "expected 64 hex digits",
            ));
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2).unwrap_or("");
            *o = u8::from_str_radix(pair, 16)
                .map_err(|_| crate::error::malformed("member key", "expected 64 hex digits"))?;
        }
        Ok(Self(out))
    }
}

/// Magic of a member key published in an `Identity` event.
pub const MEMBER_KEY_MAGIC: &[u8; 4] = b"XFMA";
/// Version of a published member key.
pub const MEMBER_KEY_VERSION: u8 = 1;

impl MemberKey {
    pub(crate) fn hpke(&self) -> Result<<Kem as hpke::Kem>::PublicKey> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0)
            .map_err(|_| crate::error::malformed("member key", "not an X25519 public key"))
    }

    /// The payload of the `Identity` event that publishes this key in the
    /// member's own log, signed with the log: magic `"XFMA"`, version 1,
    /// the key (32 bytes).
    pub fn announcement(&self) -> Vec<u8> {
        crate::cat::<37>(&[MEMBER_KEY_MAGIC, &[MEMBER_KEY_VERSION], &self.0]).to_vec()
    }

    /// The key an announcement publishes, if the payload is one (of this
    /// version).
    pub fn from_announcement(payload: &[u8]) -> Option<Self> {
        let b: &[u8; 37] = payload.try_into().ok()?;
        if &b[..4] != MEMBER_KEY_MAGIC || b[4] != MEMBER_KEY_VERSION {
            return None;
        }
        Some(Self(b[5..].try_into().ok()?))
    }
}

/// A member's secret key. Kept by its store (mode 0600); never written to
/// a log. Wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MemberSecret([u8; 32]);

impl std::fmt::Debug for MemberSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberSecret(..)")
    }
}

impl MemberSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self> {
        // Any 32 bytes are an X25519 secret once clamped; HPKE's
        // DeriveKeyPair would do as well, this keeps the bytes as stored.
        Ok(Self(random_array()?))
    }

    /// The secret from its 32 stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes to store.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    pub(crate) fn hpke(&self) -> Result<<Kem as hpke::Kem>::PrivateKey> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.0)
            .map_err(|_| crate::error::malformed("member secret", "not an X25519 secret"))
    }

    /// Its public key.
    pub fn public(&self) -> Result<MemberKey> {
        let sk = self.hpke()?;
        let pk = <Kem as hpke::Kem>::sk_to_pk(&sk);
        let mut out = [0u8; 32];
        out.copy_from_slice(&pk.to_bytes());
        Ok(MemberKey(out))
    }
}

/// An epoch's 32-byte secret, `K_e`. Wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct EpochSecret(pub(crate) [u8; 32]);

impl std::fmt::Debug for EpochSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochSecret(..)")
    }
}

impl EpochSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self> {
        Ok(Self(random_array()?))
    }

    /// The secret from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its 32 bytes (for the key store).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// A generator that gives out bytes drawn beforehand: HPKE's sender draws
/// its ephemeral key from an infallible generator, so the bytes are taken
/// from the OS first, where failing is an error and not a panic (and a
/// test gives the RFC's vector instead).
pub(crate) struct Drawn {
    bytes: [u8; 32],
    used: usize,
}

impl Drawn {
    pub(crate) fn new(bytes: [u8; 32]) -> Self {
        Self { bytes, used: 0 }
    }

    /// How many bytes were taken.
    pub(crate) fn used(&self) -> usize {
        self.used
    }
}

impl Drop for Drawn {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl hpke::rand_core::TryRng for Drawn {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        // HPKE asks for exactly one X25519 ikm (32 bytes); the wrap checks
        // afterwards that no more was taken (`used`), and refuses if so.
        for d in dst.iter_mut() {
            let i = self.used % 32;
            *d = self.bytes.get(i).copied().unwrap_or(0);
            self.used += 1;
        }
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for Drawn {}
