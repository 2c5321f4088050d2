//! Files written whole: the one way Xaeroflux replaces a small file (a key,
//! a fork proof, a segment's first bytes), so that a crash leaves either
//! the old file or the new one, and two writers never share a temporary.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::IoError;

/// Writes `bytes` to `path` atomically and durably: into a temporary file
/// of a name no other writer uses (process id, a counter and random bits),
/// synced, renamed over `path`, and the directory synced. `mode` sets the
/// Unix permissions of the new file (such as `0o600` for keys).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), IoError> {
    write_atomic_with(path, mode, |f| f.write_all(bytes))
}

/// [`write_atomic`] for content that `fill` writes into the temporary file
/// (a segment's header and its full length, say).
pub fn write_atomic_with(
    path: &Path,
    mode: Option<u32>,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let dir = parent(path);
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = create_new(&tmp, mode)?;
        fill(&mut f).map_err(IoError::on(&tmp))?;
        f.sync_all().map_err(IoError::on(&tmp))?;
        std::fs::rename(&tmp, path).map_err(IoError::on(path))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `path` only if it does not exist yet (atomically and durably, as
/// [`write_atomic`]); `false` if it was there already.
pub fn write_new_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<bool, IoError> {
    if path.exists() {
        return Ok(false);
    }
    let dir = parent(path);
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = create_new(&tmp, mode)?;
        f.write_all(bytes).map_err(IoError::on(&tmp))?;
        f.sync_all().map_err(IoError::on(&tmp))?;
        // A hard link fails if the name exists: two writers of the same new
        // file cannot overwrite each other's.
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(IoError::new(path, e)),
        }
        sync_dir(&dir)?;
        Ok(true)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Fsyncs a directory so that a new entry in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(IoError::on(dir))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut salt = [0u8; 8];
    // Without randomness the pid and counter still keep this process's
    // writers apart.
    let _ = getrandom::fill(&mut salt);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(
        ".{name}.{}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        u64::from_le_bytes(salt)
    ))
}

fn create_new(tmp: &Path, mode: Option<u32>) -> Result<File, IoError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(m);
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(tmp).map_err(IoError::on(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_atomic(&p, b"one", Some(0o600)).unwrap();
        write_atomic(&p, b"two", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!write_new_atomic(&p, b"three", None).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(write_new_atomic(&dir.path().join("new"), b"x", None).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn concurrent_writers_of_one_new_file_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fork");
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let p = &p;
                    s.spawn(move || write_new_atomic(p, format!("{i}").as_bytes(), None).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap() as usize).sum()
        });
        assert_eq!(wins, 1);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/file");
        let e = write_atomic(&p, b"x", None).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("No such file"), "{e}");
    }
}
