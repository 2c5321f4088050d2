//! An epoch secret wrapped to one member key with HPKE (RFC 9180, base
//! mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305).
//!
//! A wrap is `enc (32) || ciphertext of K_e (32) || tag (16)`: 80 bytes,
//! naming no recipient. `info` is `"xf/e2e/v1/wrap" || topic id || epoch`
//! and the associated data the epoch's commitment, so a wrap opens only
//! for its own key change.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use xaeroflux_types::TopicId;
use zeroize::Zeroizing;

use crate::error::{E2eError, Result, malformed};
use crate::keys::{Drawn, EpochSecret, Kem, MemberKey, MemberSecret, random_array};

/// Length of one wrap.
pub const WRAP_LEN: usize = 32 + 32 + 16;
const WRAP_INFO: &[u8] = b"xf/e2e/v1/wrap";

fn info(topic: &TopicId, epoch: u64) -> [u8; 14 + 32 + 8] {
    crate::cat(&[WRAP_INFO, &topic.0, &epoch.to_le_bytes()])
}

/// HPKE single-shot seal (base mode) to `to`, the ephemeral key derived
/// from `ikm`: `(enc, ciphertext)`.
pub fn hpke_seal_with_ikm(
    to: &MemberKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    ikm: [u8; 32],
) -> Result<([u8; 32], Vec<u8>)> {
    let pk = to.hpke()?;
    let mut rng = Drawn::new(ikm);
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut rng,
    )
    .map_err(|e| E2eError::NotAllowed(format!("HPKE seal: {e}")))?;
    if rng.used() != 32 {
        return Err(E2eError::NotAllowed(
            "HPKE drew more randomness than one key".into(),
        ));
    }
    let enc: [u8; 32] = enc
        .to_bytes()
        .as_slice()
        .try_into()
        .map_err(|_| malformed("wrap", "unexpected HPKE sizes"))?;
    Ok((enc, ct))
}

/// HPKE single-shot open (base mode) with `with`.
pub fn hpke_open(
    with: &MemberSecret,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let sk = with.hpke().ok()?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .ok()
}

/// Wraps `secret` to `to`, drawing the ephemeral key from `ikm`.
pub(crate) fn wrap_with(
    to: &MemberKey,
    topic: &TopicId,
    epoch: u64,
    commitment: &[u8; 32],
    secret: &EpochSecret,
    ikm: [u8; 32],
) -> Result<[u8; WRAP_LEN]> {
    let (enc, ct) = hpke_seal_with_ikm(to, &info(topic, epoch), commitment, &secret.0, ikm)?;
    if ct.len() != 48 {
        return Err(malformed("wrap", "unexpected HPKE sizes"));
    }
    Ok(crate::cat(&[&enc, &ct]))
}

/// Wraps `secret` to `to` with a fresh ephemeral key.
pub(crate) fn wrap(
    to: &MemberKey,
    topic: &TopicId,
    epoch: u64,
    commitment: &[u8; 32],
    secret: &EpochSecret,
) -> Result<[u8; WRAP_LEN]> {
    wrap_with(to, topic, epoch, commitment, secret, random_array()?)
}

/// A filler wrap: random bytes, which no key opens and which look like a
/// wrap (any 32 bytes are an X25519 point encoding).
pub(crate) fn filler() -> Result<[u8; WRAP_LEN]> {
    random_array()
}

/// Tries to open a wrap with `secret`.
pub(crate) fn unwrap(
    wrap: &[u8; WRAP_LEN],
    with: &MemberSecret,
    topic: &TopicId,
    epoch: u64,
    commitment: &[u8; 32],
) -> Option<EpochSecret> {
    let pt = Zeroizing::new(hpke_open(
        with,
        wrap.get(..32)?,
        &info(topic, epoch),
        commitment,
        wrap.get(32..)?,
    )?);
    let k: [u8; 32] = pt.as_slice().try_into().ok()?;
    Some(EpochSecret(k))
}
