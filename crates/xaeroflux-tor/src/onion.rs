//! Version 3 onion addresses (Tor's rend-spec-v3, "Encoding onion
//! addresses"): base32 of the service's ed25519 identity key, a two-byte
//! checksum and the version byte 3, in lowercase, then `.onion`.

use sha3::{Digest, Sha3_256};

use crate::TorError;

/// The version byte of a v3 address.
const VERSION: u8 = 3;
/// Base32 characters of a v3 address before `.onion`: 35 bytes.
const ADDRESS_CHARS: usize = 56;

/// The two checksum bytes: the first two of
/// SHA3-256(".onion checksum" || key || version).
fn checksum(key: &[u8; 32]) -> [u8; 2] {
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(key);
    h.update([VERSION]);
    let d: [u8; 32] = h.finalize().into();
    [d[0], d[1]]
}

/// The onion address (`<56 characters>.onion`) of a service's identity
/// key.
pub fn onion_address(key: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(35);
    raw.extend_from_slice(key);
    raw.extend_from_slice(&checksum(key));
    raw.push(VERSION);
    let mut s = data_encoding::BASE32_NOPAD
        .encode(&raw)
        .to_ascii_lowercase();
    s.push_str(".onion");
    s
}

/// The identity key of a v3 onion address (with or without `.onion`, in
/// either case); the version and checksum must be right.
pub fn parse_onion_address(addr: &str) -> Result<[u8; 32], TorError> {
    let bad = |why: &str| TorError::BadOnionAddress(format!("{addr:?}: {why}"));
    let lower = addr.to_ascii_lowercase();
    let name = lower.strip_suffix(".onion").unwrap_or(&lower);
    if name.len() != ADDRESS_CHARS {
        return Err(bad("a v3 address has 56 characters before .onion"));
    }
    let raw = data_encoding::BASE32_NOPAD
        .decode(name.to_ascii_uppercase().as_bytes())
        .map_err(|e| bad(&format!("base32: {e}")))?;
    let raw: [u8; 35] = raw
        .try_into()
        .map_err(|_| bad("a v3 address decodes to 35 bytes"))?;
    let (key, rest) = raw.split_at(32);
    let key: [u8; 32] = key.try_into().map_err(|_| bad("key"))?;
    if rest.get(2) != Some(&VERSION) {
        return Err(bad("version is not 3"));
    }
    if rest.get(..2) != Some(&checksum(&key)[..]) {
        return Err(bad("checksum does not match"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_addresses_parse_and_encode_back() {
        // Public v3 addresses (the Tor Project's and a search engine's):
        // their checksums were made by Tor, not by this code.
        for addr in [
            "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
            "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion",
        ] {
            let key = parse_onion_address(addr).unwrap();
            assert_eq!(onion_address(&key), addr);
            let upper = addr.to_ascii_uppercase();
            assert_eq!(parse_onion_address(&upper).unwrap(), key);
        }
    }

    #[test]
    fn a_changed_character_or_version_is_refused() {
        let addr = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
        let mut changed = addr.to_string();
        changed.replace_range(5..6, "b");
        assert!(parse_onion_address(&changed).is_err());
        assert!(parse_onion_address("facebookcorewwwi.onion").is_err(), "v2");
        assert!(parse_onion_address("").is_err());
        let key = parse_onion_address(addr).unwrap();
        let mut raw = [0u8; 35];
        raw[..32].copy_from_slice(&key);
        raw[32..34].copy_from_slice(&checksum(&key));
        raw[34] = 4;
        let v4 = data_encoding::BASE32_NOPAD
            .encode(&raw)
            .to_ascii_lowercase();
        assert!(parse_onion_address(&v4).is_err());
    }
}
