//! The identity file, `identity.key`: the store's Ed25519 key pair.
//!
//! ```text
//!  0  magic "XFID"          4
//!  4  version (u16 LE)      2
//!  6  reserved              2
//!  8  secret key            32
//! 40  public key            32
//! 72  CRC-32C of 0..72      4
//! ```

use super::crc_of;

const IDENTITY_MAGIC: [u8; 4] = *b"XFID";
const IDENTITY_VERSION: u16 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 4;
const RESERVED_OFFSET: usize = VERSION_OFFSET + 2;
const SECRET_OFFSET: usize = RESERVED_OFFSET + 2;
/// Offset of the public key.
pub(crate) const PUBLIC_OFFSET: usize = SECRET_OFFSET + 32;
const CRC_OFFSET: usize = PUBLIC_OFFSET + 32;
/// Size of the identity file.
pub(crate) const IDENTITY_LEN: usize = CRC_OFFSET + 4;

/// Encodes the identity file.
pub(crate) fn encode_identity(secret: &[u8; 32], public: &[u8; 32]) -> [u8; IDENTITY_LEN] {
    let mut b = [0u8; IDENTITY_LEN];
    b[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&IDENTITY_MAGIC);
    b[VERSION_OFFSET..RESERVED_OFFSET].copy_from_slice(&IDENTITY_VERSION.to_le_bytes());
    b[SECRET_OFFSET..PUBLIC_OFFSET].copy_from_slice(secret);
    b[PUBLIC_OFFSET..CRC_OFFSET].copy_from_slice(public);
    let c = crc_of(&[&b[..CRC_OFFSET]]);
    b[CRC_OFFSET..].copy_from_slice(&c.to_le_bytes());
    b
}

/// Decodes the identity file: `(secret, public)`, or the offset and reason
/// of what is wrong.
pub(crate) fn decode_identity(bytes: &[u8]) -> Result<([u8; 32], [u8; 32]), (u64, String)> {
    let b: &[u8; IDENTITY_LEN] = bytes.try_into().map_err(|_| {
        (
            bytes.len().min(IDENTITY_LEN) as u64,
            format!("identity file is {} bytes, not {IDENTITY_LEN}", bytes.len()),
        )
    })?;
    if b[MAGIC_OFFSET..VERSION_OFFSET] != IDENTITY_MAGIC {
        return Err((MAGIC_OFFSET as u64, "bad identity magic".into()));
    }
    let version = u16::from_le_bytes([b[VERSION_OFFSET], b[VERSION_OFFSET + 1]]);
    if version != IDENTITY_VERSION {
        return Err((
            VERSION_OFFSET as u64,
            format!("unknown identity format version {version}"),
        ));
    }
    let crc = u32::from_le_bytes([
        b[CRC_OFFSET],
        b[CRC_OFFSET + 1],
        b[CRC_OFFSET + 2],
        b[CRC_OFFSET + 3],
    ]);
    if crc != crc_of(&[&b[..CRC_OFFSET]]) {
        return Err((CRC_OFFSET as u64, "identity checksum mismatch".into()));
    }
    let mut secret = [0u8; 32];
    let mut public = [0u8; 32];
    secret.copy_from_slice(&b[SECRET_OFFSET..PUBLIC_OFFSET]);
    public.copy_from_slice(&b[PUBLIC_OFFSET..CRC_OFFSET]);
    Ok((secret, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_every_flip_is_caught() {
        let b = encode_identity(&[1; 32], &[2; 32]);
        assert_eq!(decode_identity(&b).unwrap(), ([1; 32], [2; 32]));
        for i in 0..IDENTITY_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(decode_identity(&c).is_err(), "flip at {i}");
        }
        assert!(decode_identity(&b[..70]).is_err());
    }
}
