//! Reading payloads as this store can: plain topics as stored, private
//! topics opened with this store's keys, or shown as encrypted.

use std::collections::HashMap;
use std::sync::Arc;

use xaeroflux_e2e::Place;
use xaeroflux_e2e::{ContentKey, SubkeyCache, check_envelope};
use xaeroflux_store::{Event, EventRef, FLAG_ENCRYPTED, Topic, TopicId};

use crate::private::PrivateTopic;
use crate::private_api::Payload;
use crate::{Core, Error, Events};

/// Keys kept by one reader, at most (then it starts over).
const READER_KEYS: usize = 256;

/// Opens sealed payloads with keys it fetched once from the store's
/// private topics: a reader that opens a whole topic locks nothing per
/// event.
#[derive(Default)]
struct Opener {
    topics: HashMap<TopicId, Option<Arc<PrivateTopic>>>,
    keys: HashMap<Slot, ContentKey>,
    last: Option<(Slot, ContentKey)>,
    /// The HChaCha20 subkey of the last run of nonces.
    subkeys: SubkeyCache,
}

/// A content key's place: topic, epoch, author.
type Slot = (TopicId, u64, [u8; 32]);

impl Opener {
    fn read<'a>(
        &mut self,
        core: &Core,
        place: &Place,
        payload: &'a [u8],
    ) -> Result<Payload<'a>, Error> {
        if place.flags & FLAG_ENCRYPTED == 0 {
            return Ok(Payload::Plain(payload));
        }
        let header = check_envelope(payload)?;
        let encrypted = Payload::Encrypted {
            epoch: header.epoch,
            len: payload.len(),
        };
        let slot = (place.topic, header.epoch, place.author);
        // Runs of one author and epoch are the common case.
        if let Some((last, key)) = &self.last
            && *last == slot
        {
            return Ok(Payload::Decrypted(key.open_cached(
                place,
                payload,
                &mut self.subkeys,
            )?));
        }
        if !self.keys.contains_key(&slot) {
            let topic = self
                .topics
                .entry(place.topic)
                .or_insert_with(|| core.private.get(&place.topic));
            let Some(topic) = topic else {
                return Ok(encrypted);
            };
            let Some(key) = topic.opening_key(header.epoch, &place.author)? else {
                // Not cached: a key change may yet bring the epoch.
                return Ok(encrypted);
            };
            if self.keys.len() >= READER_KEYS {
                self.keys.clear();
            }
            self.keys.insert(slot, key);
        }
        match self.keys.get(&slot) {
            Some(key) => {
                self.last = Some((slot, key.clone()));
                Ok(Payload::Decrypted(key.open_cached(
                    place,
                    payload,
                    &mut self.subkeys,
                )?))
            }
            None => Ok(encrypted),
        }
    }
}

fn place_of(ev: &EventRef<'_>) -> Place {
    Place {
        author: *ev.author(),
        topic: ev.log_id().topic,
        kind: ev.kind(),
        flags: ev.flags(),
        seq: ev.seq(),
        timestamp_ms: ev.timestamp_ms(),
    }
}

/// An event with its payload as this store can read it.
#[derive(Debug)]
pub struct ReadEvent<'a> {
    /// The event as stored (in a private topic, its payload is the sealed
    /// envelope the leaf hash covers).
    pub event: EventRef<'a>,
    /// Its payload as this store reads it.
    pub payload: Payload<'a>,
}

impl ReadEvent<'_> {
    /// The plaintext, unless this store holds no key for it.
    pub fn plaintext(&self) -> Option<&[u8]> {
        self.payload.plaintext()
    }
}

impl Payload<'_> {
    /// The plaintext: a plain topic's payload or a private topic's opened
    /// one; `None` when this store holds no key for it.
    pub fn plaintext(&self) -> Option<&[u8]> {
        match self {
            Payload::Plain(p) => Some(p),
            Payload::Decrypted(p) => Some(p),
            Payload::Encrypted { .. } => None,
        }
    }
}

/// Events with their payloads as this store reads them; see
/// [`Core::read_topic`].
pub struct ReadEvents<'a> {
    core: &'a Core,
    events: Events<'a>,
    opener: Opener,
}

impl std::fmt::Debug for ReadEvents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadEvents")
    }
}

impl<'a> Iterator for ReadEvents<'a> {
    type Item = Result<ReadEvent<'a>, Error>;

    /// The next event; an envelope that does not authenticate is an error
    /// item, and the reading goes on after it.
    fn next(&mut self) -> Option<Self::Item> {
        let event = match self.events.next()? {
            Ok(ev) => ev,
            Err(e) => return Some(Err(e)),
        };
        let place = place_of(&event);
        Some(
            self.opener
                .read(self.core, &place, event.payload())
                .map(|payload| ReadEvent { event, payload }),
        )
    }
}

impl Core {
    /// An event's payload as this store can read it: a plain topic's as
    /// stored; a private topic's opened, or `Encrypted` without the key. A
    /// sealed payload that does not authenticate (tampered with, or moved
    /// to another place) is an error.
    pub fn read_payload<'a>(&self, ev: &EventRef<'a>) -> Result<Payload<'a>, Error> {
        Opener::default().read(self, &place_of(ev), ev.payload())
    }

    /// [`Core::read_payload`] for an owned event, as a subscription
    /// delivers it.
    pub fn read_event_payload<'a>(&self, ev: &'a Event) -> Result<Payload<'a>, Error> {
        let place = Place {
            author: ev.log.author,
            topic: ev.log.topic,
            kind: ev.kind,
            flags: ev.flags,
            seq: ev.seq,
            timestamp_ms: ev.timestamp_ms,
        };
        Opener::default().read(self, &place, &ev.payload)
    }

    /// The topic view of [`Core::iter_topic`] with each payload as this
    /// store reads it: members get plaintext, and an event this store
    /// cannot open is shown as [`Payload::Encrypted`], not hidden. Keys
    /// are looked up once per epoch and author, not per event.
    pub fn read_topic(&self, topic: &Topic) -> ReadEvents<'_> {
        self.read_events(self.iter_topic(topic))
    }

    /// Any events (a log, the store, a topic from a cursor) with their
    /// payloads as this store reads them.
    pub fn read_events<'a>(&'a self, events: Events<'a>) -> ReadEvents<'a> {
        ReadEvents {
            core: self,
            events,
            opener: Opener::default(),
        }
    }
}
