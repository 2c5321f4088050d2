//! Failpoints: named places on the write path that a test makes fail with
//! an OS error of its choosing (`EIO`, `ENOSPC`, ...) at a chosen moment,
//! so that every failure path is exercised rather than hoped for.
//!
//! The places are always named ([`Point`]); the switch that arms them
//! ([`Failpoints`], given to a store through `StoreOptions::failpoints`)
//! exists only with the cargo feature `failpoints`, which only tests
//! enable. Without it a check is an empty inline function.
//!
//! Failpoints belong to one store (not to the process), so tests that
//! arm them run in parallel with any others.

/// A place on the write path that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Point {
    /// Writing a page (its records, then its header) into a segment.
    SegmentWrite,
    /// Creating the next segment file (where a full disk is most likely
    /// met: a segment is sized in full when it is created).
    SegmentCreate,
    /// The data sync of a segment (`fdatasync`) that makes a group commit
    /// durable.
    Fsync,
    /// The commit of the LMDB index transaction of a group commit.
    IndexCommit,
    /// Adding content to the blob store (checked by the network layer
    /// before it hands a blob to iroh-blobs).
    BlobWrite,
}

#[cfg(feature = "failpoints")]
pub use armed::{Failpoints, Fault};

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::Point;

    /// How an armed point fails.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Fault {
        /// The OS error number the point fails with (`libc::ENOSPC`, ...).
        pub errno: i32,
        /// Times the point still passes before it starts failing.
        pub after: u64,
        /// Times it fails before passing again (`None`: until disarmed).
        pub times: Option<u64>,
    }

    impl Fault {
        /// Fails with `errno` from the next time on, until disarmed.
        pub fn now(errno: i32) -> Self {
            Self {
                errno,
                after: 0,
                times: None,
            }
        }

        /// Passes `n` more times first.
        pub fn after(mut self, n: u64) -> Self {
            self.after = n;
            self
        }

        /// Fails `n` times, then passes again.
        pub fn times(mut self, n: u64) -> Self {
            self.times = Some(n);
            self
        }
    }

    #[derive(Debug, Default)]
    struct State {
        fault: Option<Fault>,
        hits: u64,
        failures: u64,
    }

    /// The failpoints of one store: a test keeps a clone, arms and
    /// disarms points, and counts how often each was reached.
    #[derive(Debug, Clone, Default)]
    pub struct Failpoints(Arc<Mutex<HashMap<Point, State>>>);

    impl Failpoints {
        /// No point armed.
        pub fn new() -> Self {
            Self::default()
        }

        fn with<T>(&self, point: Point, f: impl FnOnce(&mut State) -> T) -> T {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            f(g.entry(point).or_default())
        }

        /// Arms `point` with `fault`.
        pub fn arm(&self, point: Point, fault: Fault) {
            self.with(point, |s| s.fault = Some(fault));
        }

        /// Disarms `point`: it passes from now on.
        pub fn disarm(&self, point: Point) {
            self.with(point, |s| s.fault = None);
        }

        /// Times `point` was reached (failing or not).
        pub fn hits(&self, point: Point) -> u64 {
            self.with(point, |s| s.hits)
        }

        /// Times `point` failed.
        pub fn failures(&self, point: Point) -> u64 {
            self.with(point, |s| s.failures)
        }

        /// Passes, or fails as the point is armed to.
        pub fn check(&self, point: Point) -> std::io::Result<()> {
            self.with(point, |s| {
                s.hits += 1;
                let Some(f) = s.fault.as_mut() else {
                    return Ok(());
                };
                if f.after > 0 {
                    f.after -= 1;
                    return Ok(());
                }
                let errno = f.errno;
                match f.times.as_mut() {
                    Some(0) => return Ok(()),
                    Some(n) => *n -= 1,
                    None => {}
                }
                s.failures += 1;
                Err(std::io::Error::from_raw_os_error(errno))
            })
        }
    }
}

/// The failpoints a store checks: armed ones with the feature, none
/// without.
#[derive(Debug, Clone, Default)]
pub(crate) struct Checks {
    #[cfg(feature = "failpoints")]
    points: Option<Failpoints>,
}

impl Checks {
    #[cfg(feature = "failpoints")]
    pub fn new(points: Option<Failpoints>) -> Self {
        Self { points }
    }

    /// Passes, or fails with the armed OS error.
    #[inline]
    pub fn check(&self, point: Point) -> std::io::Result<()> {
        #[cfg(feature = "failpoints")]
        if let Some(p) = &self.points {
            return p.check(point);
        }
        let _ = point;
        Ok(())
    }
}
