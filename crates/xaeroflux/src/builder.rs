//! Configuring a [`Core`] before opening it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use xaeroflux_net::{Backend, Backends, NetConfig, NetMode};
use xaeroflux_store::{Durability, Store, StoreOptions, Topic};

use crate::{Core, Error};

/// The topic [`Core::new_event`] writes to unless the builder names another.
pub const DEFAULT_TOPIC: &str = "default";

/// Configures and opens a [`Core`]. Every method returns the builder, so
/// calls chain; what is wrong with them (an unknown backend name, a bad
/// default topic) is reported by [`CoreBuilder::open`].
#[derive(Debug, Clone)]
pub struct CoreBuilder {
    options: StoreOptions,
    backend_names: Vec<String>,
    backends: Backends,
    mode: Option<NetMode>,
    sync_interval: Option<Duration>,
    default_topic: String,
}

impl Default for CoreBuilder {
    fn default() -> Self {
        Self {
            options: StoreOptions::default(),
            backend_names: Vec::new(),
            backends: Backends::default(),
            mode: None,
            sync_interval: None,
            default_topic: DEFAULT_TOPIC.to_string(),
        }
    }
}

impl CoreBuilder {
    /// Page size of a new store (default 16 KiB; a power of two).
    pub fn with_page_size(mut self, bytes: u32) -> Self {
        self.options.page_size = Some(bytes);
        self
    }

    /// Pages per segment file of a new store (default 1024).
    pub fn with_segment_pages(mut self, pages: u32) -> Self {
        self.options.segment_pages = Some(pages);
        self
    }

    /// When appends return: durable (the default) or fast.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    /// Opens for reading only, beside a writer in another process.
    pub fn read_only(mut self) -> Self {
        self.options.read_only = true;
        self
    }

    /// Runs these sync backends, by name: `"iroh"` (an endpoint accepting
    /// XSP), `"iroh-gossip"` (announcements of new checkpoints) and
    /// `"iroh-blob"` (large payloads). [`CoreBuilder::open`] refuses any
    /// other name with an error that lists the valid ones.
    pub fn with_sync_backends<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.backend_names
            .extend(names.iter().map(|n| n.as_ref().to_string()));
        self
    }

    /// Runs one more sync backend (the typed form of
    /// [`CoreBuilder::with_sync_backends`]).
    pub fn with_backend(mut self, backend: Backend) -> Self {
        match backend {
            Backend::Iroh => self.backends.iroh = true,
            Backend::IrohGossip => self.backends.gossip = true,
            Backend::IrohBlob => self.backends.blob = true,
        }
        self
    }

    /// Runs exactly these sync backends, replacing any chosen before.
    pub fn with_backends(mut self, backends: Backends) -> Self {
        self.backends = backends;
        self.backend_names.clear();
        self
    }

    /// How the endpoint meets the network (default: [`NetMode::Default`],
    /// relays and address lookup as iroh recommends).
    pub fn with_network(mut self, mode: NetMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// How often to sync with known peers besides what gossip triggers
    /// (default 30 s).
    pub fn with_sync_interval(mut self, every: Duration) -> Self {
        self.sync_interval = Some(every);
        self
    }

    /// The topic [`Core::new_event`] writes to and [`Core::mmr_root`]
    /// reports on (default [`DEFAULT_TOPIC`]).
    pub fn with_default_topic(mut self, name: &str) -> Self {
        self.default_topic = name.to_string();
        self
    }

    /// The backends asked for, by name and by type together.
    fn chosen_backends(&self) -> Result<Backends, Error> {
        let named = Backends::parse(&self.backend_names)?;
        let all = Backends {
            iroh: named.iroh || self.backends.iroh,
            gossip: named.gossip || self.backends.gossip,
            blob: named.blob || self.backends.blob,
        };
        // The same rule as for names: gossip and blobs ride on the endpoint.
        Backends::check(all)?;
        Ok(all)
    }

    /// Opens (or creates) the store in `dir`, and starts the sync backends.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Core, Error> {
        let backends = self.chosen_backends()?;
        let default_topic = Topic::new(&self.default_topic)?;
        let store = Arc::new(Store::open(dir, self.options)?);
        // Private topics' sealers are in place before any append arrives.
        let private = crate::private::Private::open(&store)?;
        let net = if backends.any() {
            let mut config = NetConfig::new(backends);
            if let Some(m) = self.mode {
                config = config.with_mode(m);
            }
            if let Some(i) = self.sync_interval {
                config = config.with_sync_interval(i);
            }
            Some(crate::netslot::NetSlot::start(store.clone(), config)?)
        } else {
            None
        };
        Ok(Core::new(store, net, default_topic, private))
    }
}
