//! Loading the iroh-blobs file store with a thread count that does not
//! follow the number of CPUs.
//!
//! `FsStore::load` builds a multi-threaded tokio runtime of its own with
//! tokio's default worker count, which is `available_parallelism()`: one
//! worker per CPU, so an 8-core phone would run eight of them for a store
//! that mostly waits on files. iroh-blobs 0.104 offers no way to size that
//! runtime. On Linux (and so Android) `available_parallelism()` reads the
//! calling thread's CPU affinity, and threads inherit it: the store is
//! loaded on a short-lived thread pinned to one CPU, so its runtime gets
//! one worker, and the pin is then lifted from the store's threads so they
//! run on any CPU, as before. Elsewhere the store is loaded as it is
//! (docs/mobile.md says what that costs on Apple platforms).
//!
//! `TOKIO_WORKER_THREADS`, when the application sets it, still wins: tokio
//! reads it before the CPU count.

use std::path::PathBuf;

use iroh_blobs::store::fs::FsStore;

use crate::NetError;
use crate::error::{iroh_err, start_err};

/// Loads (or creates) the blob store in `dir`, with a runtime of one
/// worker thread where the OS lets us say so.
pub(crate) async fn load(dir: PathBuf) -> Result<FsStore, NetError> {
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("xf-blob-load".into())
        .spawn(move || {
            let saved = affinity::pin_to_one_cpu();
            let loaded = handle.block_on(FsStore::load(&dir));
            if let Some(mask) = saved {
                affinity::restore(&mask, "iroh-blob-store");
            }
            let _ = tx.send(loaded);
        })
        .map_err(start_err("the blob store loader thread"))?;
    match rx.await {
        Ok(loaded) => loaded.map_err(iroh_err),
        Err(_) => Err(NetError::Iroh("the blob store loader stopped".into())),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod affinity {
    //! `sched_getaffinity` / `sched_setaffinity` on the calling thread and
    //! on the process's other threads, by name.

    /// A CPU set.
    pub(super) struct Mask(libc::cpu_set_t);

    /// Pins the calling thread to the first CPU it may run on; returns the
    /// mask it had, or `None` when the OS refused (then nothing changed).
    pub(super) fn pin_to_one_cpu() -> Option<Mask> {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
        let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `old` is a valid, writable cpu_set_t of `size` bytes; 0 is
        // the calling thread.
        if unsafe { libc::sched_getaffinity(0, size, &mut old) } != 0 {
            return None;
        }
        let first = (0..libc::CPU_SETSIZE as usize).find(|&c| {
            // SAFETY: `c` is below CPU_SETSIZE, within the set.
            unsafe { libc::CPU_ISSET(c, &old) }
        })?;
        // SAFETY: as above.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `first` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(first, &mut one) };
        // SAFETY: `one` is a valid cpu_set_t of `size` bytes.
        if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
            return None;
        }
        Some(Mask(old))
    }

    /// Gives `mask` back to every thread of this process whose name starts
    /// with `prefix` (names are cut to 15 bytes by the kernel).
    pub(super) fn restore(mask: &Mask, prefix: &str) {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if name.trim_end().starts_with(prefix) {
                // SAFETY: `mask.0` is a valid cpu_set_t of `size` bytes; a
                // thread that has exited makes this fail, which is harmless.
                unsafe { libc::sched_setaffinity(tid, size, &mask.0) };
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod affinity {
    //! No per-thread CPU affinity here: the store loads as iroh-blobs does.

    /// Nothing to restore.
    pub(super) struct Mask;

    pub(super) fn pin_to_one_cpu() -> Option<Mask> {
        None
    }

    pub(super) fn restore(_: &Mask, _: &str) {}
}
