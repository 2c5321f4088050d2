//! How a store is opened.

use crate::error::{Result, StoreError};

/// Default page size: 16 KiB.
pub const DEFAULT_PAGE_SIZE: u32 = 16 * 1024;
/// Default pages per segment: 1024 (16 MiB segments).
pub const DEFAULT_SEGMENT_PAGES: u32 = 1024;

/// When an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once the event is on stable storage (one data sync per group commit).
    #[default]
    Durable,
    /// Once the event is written (its index commit follows, and reads wait
    /// for it); the writer syncs after 2 ms without new work and at least
    /// once a second, so a power loss may take the last moments' events (a
    /// process crash does not).
    Fast,
}

/// Where the writer reads the time each event is stamped with, in
/// milliseconds since the Unix epoch: the system clock unless set (tests
/// and simulations give their own, for instance one that goes back). A
/// clock that goes back does not make a log's timestamps go back: the store
/// raises an event's timestamp to its predecessor's.
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(std::sync::Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        }))
    }

    /// A clock that reads `f`.
    pub fn from_fn(f: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    /// The time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Page size for a new store (a power of two, 1 KiB to 16 MiB). An
    /// existing store keeps its own; asking for another is an error.
    pub page_size: Option<u32>,
    /// Pages per segment for a new store.
    pub segment_pages: Option<u32>,
    /// When appends return.
    pub durability: Durability,
    /// Open for reading only: no writer, no lock, works beside a writer process.
    pub read_only: bool,
    /// Largest size the index may grow to (virtual address space, not disk).
    pub index_map_size: usize,
    /// Logs whose state (open page, tree frontier) the writer keeps in
    /// memory between commits; others reload from the index when appended
    /// to. About one page of memory each.
    pub writer_log_cache: usize,
    /// The clock events are stamped with (the system clock by default).
    pub clock: Clock,
    /// Failpoints the write path checks (tests only: the cargo feature
    /// `failpoints`); none by default.
    #[cfg(feature = "failpoints")]
    pub failpoints: Option<crate::failpoints::Failpoints>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            page_size: None,
            segment_pages: None,
            durability: Durability::Durable,
            read_only: false,
            index_map_size: if cfg!(target_pointer_width = "64") {
                64 << 30
            } else {
                1 << 30
            },
            writer_log_cache: 1024,
            clock: Clock::system(),
            #[cfg(feature = "failpoints")]
            failpoints: None,
        }
    }
}

/// Checks a page geometry: pages a power of two from 1 KiB to 16 MiB, 1 to
/// 2^20 pages per segment.
pub(crate) fn check_geometry(page_size: u32, segment_pages: u32) -> Result<()> {
    if !page_size.is_power_of_two() || !(1024..=16 << 20).contains(&page_size) {
        return Err(StoreError::InvalidArgument(format!(
            "page size {page_size} must be a power of two from 1 KiB to 16 MiB"
        )));
    }
    if !(1..=1 << 20).contains(&segment_pages) {
        return Err(StoreError::InvalidArgument(format!(
            "segment pages {segment_pages} must be from 1 to 1048576"
        )));
    }
    Ok(())
}
