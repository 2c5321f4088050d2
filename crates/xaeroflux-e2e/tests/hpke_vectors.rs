// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! RFC 9180, appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20Poly1305, base mode: the suite the wraps use, through the same
//! calls (the ephemeral key drawn from `ikmE`).

use xaeroflux_e2e::testing::{hpke_open, hpke_seal_with_ikm};
use xaeroflux_e2e::{MemberKey, MemberSecret};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn a32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
const PK_EM: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
/// Sequence number 0: the single-shot seal is the context's first.
const AAD_0: &str = "436f756e742d30";
const CT_0: &str =
    "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28";

#[test]
fn the_receivers_key_pair_matches() {
    let sk = MemberSecret::from_bytes(a32(SK_RM));
    assert_eq!(sk.public().unwrap(), MemberKey(a32(PK_RM)));
}

#[test]
fn seal_gives_the_vectors_enc_and_ciphertext() {
    let (enc, ct) = hpke_seal_with_ikm(
        &MemberKey(a32(PK_RM)),
        &h(INFO),
        &h(AAD_0),
        &h(PT),
        a32(IKM_E),
    )
    .unwrap();
    assert_eq!(hex::encode(enc), PK_EM, "enc is the ephemeral public key");
    assert_eq!(hex::encode(ct), CT_0);
}

#[test]
fn open_reads_the_vectors_ciphertext_and_refuses_changes() {
    let sk = MemberSecret::from_bytes(a32(SK_RM));
    let pt = hpke_open(&sk, &h(PK_EM), &h(INFO), &h(AAD_0), &h(CT_0)).unwrap();
    assert_eq!(hex::encode(pt), PT);
    // Another aad, info, enc or ciphertext: nothing opens.
    assert!(hpke_open(&sk, &h(PK_EM), &h(INFO), b"Count-1", &h(CT_0)).is_none());
    assert!(hpke_open(&sk, &h(PK_EM), b"other", &h(AAD_0), &h(CT_0)).is_none());
    let mut enc = h(PK_EM);
    enc[0] ^= 1;
    assert!(hpke_open(&sk, &enc, &h(INFO), &h(AAD_0), &h(CT_0)).is_none());
    let mut ct = h(CT_0);
    ct[5] ^= 0x40;
    assert!(hpke_open(&sk, &h(PK_EM), &h(INFO), &h(AAD_0), &ct).is_none());
}
