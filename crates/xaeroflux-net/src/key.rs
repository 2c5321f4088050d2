//! The endpoint's secret key, kept in the store directory so the node's
//! endpoint id survives restarts.
//!
//! File `net/endpoint.key`, 41 bytes, written once (atomically, mode 0600):
//!
//! ```text
//!  0  magic "XFNK"             4
//!  4  version (1)              1
//!  5  Ed25519 secret key       32
//! 37  SHA-256 of 0..37, first  4
//! ```

use std::path::{Path, PathBuf};

use iroh::SecretKey;
use xaeroflux_merkle::sha256;
use xaeroflux_types::fs::write_atomic;
use xaeroflux_types::{Corruption, UnsupportedVersion};

use crate::error::{NetError, io_err};

const MAGIC: [u8; 4] = *b"XFNK";
const VERSION: u8 = 1;

/// The file, field by field (alignment 1, no padding): its offsets are
/// the fields'.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct KeyFile {
    magic: [u8; 4],
    version: u8,
    secret: [u8; 32],
    sum: [u8; 4],
}

const LEN: usize = std::mem::size_of::<KeyFile>();
const VERSION_OFFSET: usize = std::mem::offset_of!(KeyFile, version);
const SECRET_OFFSET: usize = std::mem::offset_of!(KeyFile, secret);
const SUM_OFFSET: usize = std::mem::offset_of!(KeyFile, sum);

/// Where the key lives under a store directory.
pub fn key_path(store_dir: &Path) -> PathBuf {
    store_dir.join("net").join("endpoint.key")
}

/// Loads the key, or makes and keeps a new one on first use.
pub fn load_or_create(store_dir: &Path) -> Result<SecretKey, NetError> {
    let path = key_path(store_dir);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let dir = store_dir.join("net");
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            write_atomic(&path, &encode(&key), Some(0o600))?;
            Ok(key)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The first 4 bytes of the SHA-256 of everything before the sum.
fn checksum(f: &KeyFile) -> [u8; 4] {
    let bytes = bytemuck::bytes_of(f);
    let sum = sha256(&[bytes.get(..SUM_OFFSET).unwrap_or_default()]);
    [sum[0], sum[1], sum[2], sum[3]]
}

fn encode(key: &SecretKey) -> [u8; LEN] {
    let mut f = KeyFile {
        magic: MAGIC,
        version: VERSION,
        secret: key.to_bytes(),
        sum: [0; 4],
    };
    f.sum = checksum(&f);
    let mut out = [0u8; LEN];
    out.copy_from_slice(bytemuck::bytes_of(&f));
    out
}

fn decode(path: &Path, bytes: &[u8]) -> Result<SecretKey, NetError> {
    let corrupt = |offset: usize, reason: &str| Corruption::new(path, offset as u64, reason);
    if bytes.get(..VERSION_OFFSET) != Some(&MAGIC[..]) {
        return Err(corrupt(0, "not an endpoint key file (bad magic)").into());
    }
    match bytes.get(VERSION_OFFSET) {
        Some(&VERSION) => {}
        found => {
            return Err(UnsupportedVersion {
                what: path.display().to_string(),
                found: found.copied().unwrap_or(0) as u32,
                supported: VERSION as u32,
            }
            .into());
        }
    }
    let f: KeyFile = bytemuck::try_pod_read_unaligned(bytes).map_err(|_| {
        corrupt(
            SECRET_OFFSET,
            &format!("{} bytes, expected {LEN}", bytes.len()),
        )
    })?;
    if f.sum != checksum(&f) {
        return Err(corrupt(SUM_OFFSET, "checksum does not match the key").into());
    }
    Ok(SecretKey::from_bytes(&f.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        let path = key_path(dir.path());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert!(
                load_or_create(dir.path()).is_err(),
                "flipped byte {i} accepted"
            );
        }
        std::fs::write(&path, &good[..20]).unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(NetError::Corrupt(_))
        ));
    }
}
