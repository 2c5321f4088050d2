//! State shared by the store's readers and its writer thread.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;

use crate::error::{Result, StoreError};
use crate::event::NewEvent;
use crate::format::{PAGE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::index::Index;
use crate::segments::Segments;

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub index: Index,
    pub segments: Segments,
    pub key: SigningKey,
    pub author: [u8; 32],
}

impl Shared {
    /// Largest canonical event a page holds.
    pub fn max_event_len(&self) -> usize {
        self.segments.page_size() - PAGE_HEADER_LEN - RECORD_HEADER_LEN
    }

    /// Refuses events that cannot be stored, before anything is written.
    pub fn check_events(&self, events: &[NewEvent]) -> Result<()> {
        let max = self.max_event_len();
        for ev in events {
            if ev.encoded_len() > max {
                return Err(StoreError::EventTooLarge {
                    size: ev.encoded_len(),
                    max,
                    page_size: self.segments.page_size(),
                });
            }
        }
        Ok(())
    }
}
