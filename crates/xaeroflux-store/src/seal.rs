//! Sealing events of private topics in the writer.
//!
//! An event appended with flags bit 0 set carries its plaintext "to
//! seal": the writer, which alone fixes its seq and timestamp, hands it to
//! the topic's [`Sealer`] with its place and writes only what comes back
//! into the page. The store knows no cryptography: the application (the
//! facade, with `xaeroflux-e2e`) registers a sealer per private topic. An
//! event to seal in a topic with no sealer is refused before anything is
//! written, so plaintext flagged as sealed never reaches a page.

use std::sync::{Arc, RwLock};

use xaeroflux_types::TopicId;

use crate::shared::FastMap;

/// Where an event sits, as its seal binds it (the shared type).
pub use xaeroflux_types::Place as SealPlace;

/// Seals plaintexts of one private topic.
pub trait Sealer: Send + Sync {
    /// The length of the sealed payload of `plaintext_len` bytes (fixed:
    /// the writer makes room before sealing).
    fn sealed_len(&self, plaintext_len: usize) -> usize;

    /// Whether it can seal now (say, the store holds the topic's current
    /// key); asked before an append is taken, so a refusal reaches the
    /// caller and stops nothing.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Seals `plaintext` for `place` into `out` (which it clears first:
    /// the writer reuses one buffer); the result is exactly
    /// `sealed_len(plaintext.len())` bytes.
    fn seal_into(
        &self,
        place: &SealPlace,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String>;
}

/// The sealers of a store's private topics.
#[derive(Default)]
pub(crate) struct Sealers(RwLock<FastMap<TopicId, Arc<dyn Sealer>>>);

impl Sealers {
    pub fn get(&self, topic: &TopicId) -> Option<Arc<dyn Sealer>> {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        m.get(topic).cloned()
    }

    pub fn set(&self, topic: TopicId, sealer: Option<Arc<dyn Sealer>>) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        match sealer {
            Some(s) => m.insert(topic, s),
            None => m.remove(&topic),
        };
    }
}
