//! Kotlin, Swift and Python bindings of Xaeroflux, generated with uniffi
//! from this crate (`scripts/bindings.sh python|kotlin|swift`).
//!
//! The API is synchronous and small, and mirrors [`xaeroflux::Core`]:
//! records carry the Rust types' fields (hashes as bytes, logs as
//! `AUTHOR_HEX/TOPIC_ID_HEX`), every error is a [`XaerofluxError`] (a panic
//! inside Rust included), and a subscription delivers events in batches,
//! in order and with no gap, from one long-lived thread to an
//! [`EventListener`] the application implements. Used from Rust it reads
//! the same way:
//!
//! ```
//! use xaeroflux_ffi::{Core, CoreOptions, verify_inclusion};
//!
//! # fn main() -> Result<(), xaeroflux_ffi::XaerofluxError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::open(dir.path().to_string_lossy().into_owned())?;
//! let r = core.append("chat".into(), b"hello".to_vec())?;
//! core.append_batch("chat".into(), vec![b"a".to_vec(), b"b".to_vec()])?;
//! let events = core.read_topic("chat".into(), 0, 10)?;
//! assert_eq!(events.len(), 3);
//! let proof = core.prove_inclusion(r.log.clone(), r.seq, 3)?;
//! assert!(verify_inclusion(proof.leaf_hash, proof.index, proof.size, proof.path, proof.root)?);
//! println!("{}", core.checkpoint(r.log)?);
//! core.close()?;
//! # let _ = CoreOptions::default();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod convert;
mod error;
mod listener;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use xaeroflux::{Backends, Durability, NetMode, Topic};

pub use convert::{
    ConsistencyProof, Event, EventKind, InclusionProof, LogInfo, Member, PrivateTopic, Receipt,
};
pub use error::XaerofluxError;
pub use listener::{EventListener, Subscription};

use convert::{hash_of, hashes_of, log_of, topic_of};
use error::guarded;

uniffi::setup_scaffolding!("xaeroflux");

/// When appends return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum DurabilityMode {
    /// On return the events are on disk (fdatasync).
    #[default]
    Durable,
    /// On return the events are committed and readable; the disk catches
    /// up within moments (a crash may lose the last ones, never a middle).
    Fast,
}

/// How to open a store: [`Core::open_with`].
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct CoreOptions {
    /// Page size of a new store in bytes (a power of two; default 16 KiB).
    #[uniffi(default = None)]
    pub page_size: Option<u32>,
    /// Pages per segment file of a new store (default 1024).
    #[uniffi(default = None)]
    pub segment_pages: Option<u32>,
    /// When appends return (default `Durable`).
    #[uniffi(default = None)]
    pub durability: Option<DurabilityMode>,
    /// Sync backends by name: `iroh`, `iroh-gossip`, `iroh-blob` (none:
    /// a local store with no network).
    #[uniffi(default = [])]
    pub sync_backends: Vec<String>,
    /// Only the listen address (127.0.0.1 unless given): no relays, no
    /// address lookup, no port mapping. For tests and LANs.
    #[uniffi(default = false)]
    pub local_only: bool,
    /// Where to bind when `local_only` (`IP:PORT`; default `127.0.0.1:0`).
    #[uniffi(default = None)]
    pub listen_address: Option<String>,
    /// How often to sync with known peers besides what gossip triggers, in
    /// milliseconds (default 30 000).
    #[uniffi(default = None)]
    pub sync_interval_ms: Option<u64>,
    /// Opens an existing store for reading only, beside a writer in
    /// another process (a missing store raises `NotFound`).
    #[uniffi(default = false)]
    pub read_only: bool,
}

/// An open store, and its network when sync backends were asked for.
#[derive(uniffi::Object)]
pub struct Core {
    inner: Arc<Shared>,
}

/// What a [`Core`] and its subscriptions share.
pub(crate) struct Shared {
    /// `None` once closed.
    core: RwLock<Option<xaeroflux::Core>>,
    /// Subscriptions to end before the store closes.
    subs: Mutex<Vec<std::sync::Weak<listener::Running>>>,
}

impl Shared {
    /// Runs `f` on the open core; a closed one is an error.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&xaeroflux::Core) -> Result<T, XaerofluxError>,
    ) -> Result<T, XaerofluxError> {
        let guard = self.core.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(c) => f(c),
            None => Err(XaerofluxError::Closed {
                reason: "the store has been closed".into(),
            }),
        }
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Core {
    /// Opens (or creates) the store in the directory `path`, with no
    /// network.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Core>, XaerofluxError> {
        Core::open_with(path, CoreOptions::default())
    }

    /// Opens (or creates) the store in `path` with these options.
    #[uniffi::constructor]
    pub fn open_with(path: String, options: CoreOptions) -> Result<Arc<Core>, XaerofluxError> {
        guarded(|| {
            let mut b = xaeroflux::Core::builder()
                .with_durability(match options.durability.unwrap_or_default() {
                    DurabilityMode::Durable => Durability::Durable,
                    DurabilityMode::Fast => Durability::Fast,
                })
                .with_backends(Backends::parse(&options.sync_backends)?);
            if let Some(p) = options.page_size {
                b = b.with_page_size(p);
            }
            if let Some(p) = options.segment_pages {
                b = b.with_segment_pages(p);
            }
            if options.read_only {
                b = b.read_only();
            }
            if let Some(ms) = options.sync_interval_ms {
                b = b.with_sync_interval(Duration::from_millis(ms.max(1)));
            }
            if options.local_only {
                let mode = match &options.listen_address {
                    Some(a) => NetMode::LocalOnly {
                        listen: a.parse().map_err(|e| XaerofluxError::InvalidInput {
                            reason: format!("listen address {a:?}: {e}"),
                        })?,
                    },
                    None => NetMode::local_only(),
                };
                b = b.with_network(mode);
            }
            let core = b.open(&path)?;
            Ok(Arc::new(Core {
                inner: Arc::new(Shared {
                    core: RwLock::new(Some(core)),
                    subs: Mutex::new(Vec::new()),
                }),
            }))
        })
    }

    /// Appends `payload` to this store's log in `topic`; durable on return
    /// (unless opened fast).
    pub fn append(&self, topic: String, payload: Vec<u8>) -> Result<Receipt, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                Ok(c.append(c.new_event_in(&t, payload))?.into())
            })
        })
    }

    /// Appends every payload to `topic` in one batch (one commit, one sync):
    /// what crossing the boundary once per batch is for.
    pub fn append_batch(
        &self,
        topic: String,
        payloads: Vec<Vec<u8>>,
    ) -> Result<Vec<Receipt>, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                let events = payloads
                    .into_iter()
                    .map(|p| c.new_event_in(&t, p))
                    .collect();
                let batch = c.append_batch(events)?;
                convert::batch_receipts(batch)
            })
        })
    }

    /// Up to `limit` events of `topic`, every author's log from `from_seq`
    /// on, in the store's order. A private topic's payloads are plaintext
    /// for a member; for anyone else they stay sealed (`encrypted`).
    pub fn read_topic(
        &self,
        topic: String,
        from_seq: u64,
        limit: u64,
    ) -> Result<Vec<Event>, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let events = c.iter_topic_from(&t.id(), |_| from_seq);
                c.read_events(events)
                    .take(limit)
                    .map(|r| Ok(convert::read_event(&r?)))
                    .collect()
            })
        })
    }

    /// Every log the store holds.
    pub fn logs(&self) -> Result<Vec<LogInfo>, XaerofluxError> {
        guarded(|| {
            self.inner
                .with(|c| Ok(c.logs()?.into_iter().map(Into::into).collect()))
        })
    }

    /// This store's own log in `topic` (`AUTHOR_HEX/TOPIC_ID_HEX`).
    pub fn own_log(&self, topic: String) -> Result<String, XaerofluxError> {
        guarded(|| {
            self.inner
                .with(|c| Ok(c.own_log(&topic_of(c, &topic)?).to_string()))
        })
    }

    /// This store's author key (32 bytes).
    pub fn author(&self) -> Result<Vec<u8>, XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.author().to_vec())))
    }

    /// Proves event `seq` of `log` is in the log's first `size` events.
    pub fn prove_inclusion(
        &self,
        log: String,
        seq: u64,
        size: u64,
    ) -> Result<InclusionProof, XaerofluxError> {
        guarded(|| {
            self.inner
                .with(|c| Ok(c.prove_inclusion(&log_of(&log)?, seq, size)?.into()))
        })
    }

    /// Proves the log's first `old` events are a prefix of its first `new`.
    pub fn prove_consistency(
        &self,
        log: String,
        old: u64,
        new: u64,
    ) -> Result<ConsistencyProof, XaerofluxError> {
        guarded(|| {
            self.inner
                .with(|c| Ok(c.prove_consistency(&log_of(&log)?, old, new)?.into()))
        })
    }

    /// The log's latest signed checkpoint, as a C2SP signed note.
    pub fn checkpoint(&self, log: String) -> Result<String, XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.checkpoint(&log_of(&log)?)?.note)))
    }

    /// Delivers `topic`'s events from `from_seq` (every author's log), then
    /// each one as it is committed, local or replicated, to `listener`: in
    /// batches, in order, with no gap, from one thread that lives as long as
    /// the subscription. Close it with [`Subscription::close`].
    pub fn subscribe(
        &self,
        topic: String,
        from_seq: u64,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<Subscription>, XaerofluxError> {
        guarded(|| listener::start(&self.inner, &topic, from_seq, listener))
    }

    /// This node's address as an iroh ticket, for peers to dial.
    pub fn node_ticket(&self) -> Result<String, XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.node_ticket()?)))
    }

    /// Joins `topic` with `peers` (tickets or `ID@IP:PORT`): from then on
    /// its logs converge in the background.
    pub fn join(&self, topic: String, peers: Vec<String>) -> Result<(), XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                Ok(c.join(&t, &peers)?)
            })
        })
    }

    /// Closes the network (no socket, no timer, no thread of it) for a
    /// suspended app; appends and reads go on.
    pub fn pause(&self) -> Result<(), XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.pause()?)))
    }

    /// Reconnects after [`Core::pause`] and catches up with the peers.
    pub fn resume(&self) -> Result<(), XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.resume()?)))
    }

    /// Whether the network is paused.
    pub fn is_paused(&self) -> Result<bool, XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.is_paused())))
    }

    /// The largest payload an append takes, in bytes.
    pub fn max_payload_len(&self) -> Result<u64, XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.max_payload_len() as u64)))
    }

    /// Ends every subscription, stops the network, and closes the store.
    /// Every later call raises `Closed`; a second close does nothing.
    pub fn close(&self) -> Result<(), XaerofluxError> {
        guarded(|| {
            let subs =
                std::mem::take(&mut *self.inner.subs.lock().unwrap_or_else(|e| e.into_inner()));
            for s in subs.iter().filter_map(std::sync::Weak::upgrade) {
                s.stop();
            }
            let core = self
                .inner
                .core
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            match core {
                Some(c) => Ok(c.close()?),
                None => Ok(()),
            }
        })
    }

    // ------------------------------------------------------ private topics

    /// This store's member key, to give to a private topic's controller.
    pub fn member_key(&self) -> Result<String, XaerofluxError> {
        guarded(|| self.inner.with(|c| Ok(c.member_key()?.to_string())))
    }

    /// Creates a private topic controlled by this store; its name (`xfe1.`
    /// and 26 characters) is what members are given.
    pub fn create_private_topic(
        &self,
        title: Option<String>,
    ) -> Result<PrivateTopic, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let info = c.create_private_topic(title.as_deref())?;
                Ok(PrivateTopic {
                    name: info.name,
                    topic_id: info.topic_id.to_string(),
                    epoch: info.epoch,
                })
            })
        })
    }

    /// Adds the member with `member_key` (controller only).
    pub fn add_member(&self, topic: String, member_key: String) -> Result<Receipt, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                Ok(c.add_member(&t, &convert::member_key(&member_key)?)?.into())
            })
        })
    }

    /// Removes a member and rekeys (controller only).
    pub fn remove_member(
        &self,
        topic: String,
        member_key: String,
    ) -> Result<Receipt, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                Ok(c.remove_member(&t, &convert::member_key(&member_key)?)?
                    .into())
            })
        })
    }

    /// The members of a private topic as this store knows them.
    pub fn members(&self, topic: String) -> Result<Vec<Member>, XaerofluxError> {
        guarded(|| {
            self.inner.with(|c| {
                let t = topic_of(c, &topic)?;
                Ok(c.members(&t)?
                    .into_iter()
                    .map(|m| Member {
                        member_key: m.member_key.to_string(),
                        since_epoch: m.since_epoch,
                    })
                    .collect())
            })
        })
    }
}

impl Drop for Core {
    /// Freed without `close` (garbage collected, or a Kotlin `close()`,
    /// which frees the object): closes all the same.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Checks an inclusion proof: event `index` with `leaf_hash` is in a log of
/// `size` events whose root is `root`. Returns `true`; a proof that does
/// not verify raises `Verification`.
#[uniffi::export]
pub fn verify_inclusion(
    leaf_hash: Vec<u8>,
    index: u64,
    size: u64,
    path: Vec<Vec<u8>>,
    root: Vec<u8>,
) -> Result<bool, XaerofluxError> {
    guarded(|| {
        let path = hashes_of("path", &path)?;
        xaeroflux::verify_inclusion(
            &hash_of("leaf_hash", &leaf_hash)?,
            index,
            size,
            &path,
            &hash_of("root", &root)?,
        )?;
        Ok(true)
    })
}

/// Checks a consistency proof: the log of `old_size` events with root
/// `old_root` is a prefix of the one of `new_size` with `new_root`.
/// Returns `true`; a proof that does not verify raises `Verification`.
#[uniffi::export]
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: Vec<u8>,
    new_root: Vec<u8>,
    proof: Vec<Vec<u8>>,
) -> Result<bool, XaerofluxError> {
    guarded(|| {
        let proof = hashes_of("proof", &proof)?;
        xaeroflux::verify_consistency(
            old_size,
            new_size,
            &hash_of("old_root", &old_root)?,
            &hash_of("new_root", &new_root)?,
            &proof,
        )?;
        Ok(true)
    })
}

/// Whether `name` is a valid topic name (what `append` accepts).
#[uniffi::export]
pub fn is_valid_topic(name: String) -> bool {
    Topic::new(&name).is_ok()
}
