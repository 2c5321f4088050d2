//! The endpoint's secret key, kept in the store directory so the node's
//! endpoint id survives restarts.
//!
//! File `net/endpoint.key`, 41 bytes: magic `XFNK`, version byte 1, the
//! 32-byte Ed25519 secret, and the first 4 bytes of the SHA-256 of the 37
//! bytes before them. Written once (to a temporary file, synced, renamed),
//! mode 0600 on Unix.

use std::io::Write;
use std::path::{Path, PathBuf};

use iroh::SecretKey;
use xaeroflux_merkle::sha256;

use crate::error::{NetError, io_err};

const MAGIC: &[u8; 4] = b"XFNK";
const VERSION: u8 = 1;
const LEN: usize = 41;

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
            write(&path, &key)?;
            Ok(key)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn encode(key: &SecretKey) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = VERSION;
    out[5..37].copy_from_slice(&key.to_bytes());
    let sum = sha256(&[&out[..37]]);
    out[37..].copy_from_slice(&sum[..4]);
    out
}

fn decode(path: &Path, bytes: &[u8]) -> Result<SecretKey, NetError> {
    let corrupt = |offset: u64, reason: &str| NetError::Corrupt {
        file: path.to_path_buf(),
        offset,
        reason: reason.into(),
    };
    if bytes.len() < 5 || &bytes[..4] != MAGIC {
        return Err(corrupt(0, "not an endpoint key file (bad magic)"));
    }
    if bytes[4] != VERSION {
        return Err(NetError::UnsupportedVersion {
            what: path.display().to_string(),
            found: bytes[4],
            supported: VERSION,
        });
    }
    if bytes.len() != LEN {
        return Err(corrupt(
            5,
            &format!("{} bytes, expected {LEN}", bytes.len()),
        ));
    }
    let sum = sha256(&[&bytes[..37]]);
    if bytes[37..] != sum[..4] {
        return Err(corrupt(37, "checksum does not match the key"));
    }
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&bytes[5..37]);
    Ok(SecretKey::from_bytes(&secret))
}

fn write(path: &Path, key: &SecretKey) -> Result<(), NetError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&encode(key)).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
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
            Err(NetError::Corrupt { .. })
        ));
    }
}
