//! A private topic's group: who its controller is, its epochs and their
//! secrets (as far as this store may know them), its members, and sealing
//! and opening events with that knowledge.
//!
//! Everyone replays the controller's key-change records in log order with
//! [`Group::apply`]: a member learns each epoch's secret from its wrap
//! (or, joining late, from its welcome and then the back-links to every
//! earlier epoch); a relay, holding no member secret, learns nothing and
//! still checks each record's structure. Records written by anyone but
//! the controller change nothing and are counted ([`Group::ignored`]).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use xaeroflux_types::{Topic, TopicId};

use crate::control::{
    self, BACK_LINK_LEN, Link, MAX_WRAPS, Op, Record, commitment, open_back_link, open_body,
    seal_back_link, write_key_change, write_more_wraps, write_welcome,
};
use crate::envelope::{ContentKey, Place, check_envelope};
use crate::error::{E2eError, Result, malformed};
use crate::keys::{EpochSecret, MemberKey, MemberSecret, random_array};
use crate::wrap::{WRAP_LEN, filler, unwrap, wrap};

/// The prefix of private topic names.
pub const NAME_PREFIX: &str = "xfe1.";
const NAME_LABEL: &[u8] = b"xf/e2e/v1/name";

/// The 16 bytes a private topic's name encodes: a hash of its controller
/// and the salt of its first key change, so the name alone tells a member
/// which log holds the key changes, and no one else can pose as it.
pub fn name_binding(controller: &[u8; 32], salt: &[u8; 16]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(NAME_LABEL);
    h.update(controller);
    h.update(salt);
    let d: [u8; 32] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
    out
}

/// The name of the private topic bound to these 16 bytes:
/// `xfe1.` and 26 lowercase base32 characters.
pub fn topic_name(binding: &[u8; 16]) -> String {
    let mut s = String::from(NAME_PREFIX);
    s.push_str(
        &data_encoding::BASE32_NOPAD
            .encode(binding)
            .to_ascii_lowercase(),
    );
    s
}

/// The 16 bytes a private topic's name encodes, or `None` for a name that
/// is not one.
pub fn parse_topic_name(name: &str) -> Option<[u8; 16]> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    if rest.len() != 26 {
        return None;
    }
    let b = data_encoding::BASE32_NOPAD
        .decode(rest.to_ascii_uppercase().as_bytes())
        .ok()?;
    // Canonical form only: one name per topic.
    let out: [u8; 16] = b.try_into().ok()?;
    (topic_name(&out) == name).then_some(out)
}

/// Whether `author`'s first key change (`genesis`) makes it the
/// controller of the private topic `name`.
pub fn is_controller(name: &str, author: &[u8; 32], genesis: &[u8]) -> bool {
    let Some(binding) = parse_topic_name(name) else {
        return false;
    };
    matches!(
        control::parse(genesis),
        Ok(Record::KeyChange { epoch: 0, name_salt: Some(salt), .. })
            if name_binding(author, &salt) == binding
    )
}

#[derive(Debug)]
struct Epoch {
    commitment: [u8; 32],
    back_link: Option<[u8; BACK_LINK_LEN]>,
    secret: Option<EpochSecret>,
    /// Wraps the key change announced, and those seen so far.
    total: u16,
    seen: u16,
}

/// Wraps a record carries when the caller says nothing of its size: 64
/// wraps make about 5 KiB, which fits a page of 8 KiB.
const DEFAULT_WRAPS_PER_RECORD: usize = 64;

/// What applying a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// Written by someone other than the controller: ignored.
    Ignored,
    /// The record was applied before.
    Duplicate,
    /// A key change started `epoch`; `readable` when this store holds its
    /// secret.
    Epoch {
        /// The epoch started.
        epoch: u64,
        /// Whether this store can read it.
        readable: bool,
    },
    /// A welcome at `epoch`; `for_us` when it was for this store.
    Welcome {
        /// Its epoch.
        epoch: u64,
        /// Whether it gave this store the epoch's secret.
        for_us: bool,
    },
}

/// What the controller gets from creating a private topic.
#[derive(Debug)]
pub struct Created {
    /// The group, with the first key change applied.
    pub group: Group,
    /// The topic's name, `xfe1.` and 26 base32 characters.
    pub name: String,
    /// The first key change, to append as an `Identity` event of the
    /// controller's log of the topic.
    pub genesis: Vec<u8>,
}

/// A private topic as this store knows it.
#[derive(Debug)]
pub struct Group {
    topic: TopicId,
    binding: Option<[u8; 16]>,
    controller: [u8; 32],
    epochs: Vec<Epoch>,
    /// The controller's records applied, with their bytes, in order.
    records: Vec<(Vec<u8>, Record)>,
    mine: Vec<MemberSecret>,
    members: BTreeMap<MemberKey, u64>,
    title: Option<String>,
    ignored: u64,
    wraps_per_record: usize,
    /// Secrets of key changes this group wrote and has not applied yet, by
    /// epoch and commitment: the controller applying its own key change
    /// need not try every wrap for its own.
    written: std::sync::Mutex<Vec<(u64, [u8; 32], EpochSecret)>>,
}

impl Group {
    /// Creates a private topic controlled by `controller` (the store's
    /// author key), with `me` its first member.
    pub fn create(controller: [u8; 32], me: &MemberSecret, title: Option<&str>) -> Result<Created> {
        let salt: [u8; 16] = random_array()?;
        let binding = name_binding(&controller, &salt);
        let name = topic_name(&binding);
        let topic = Topic::id_of(&name);
        let secret = EpochSecret::generate()?;
        let key = me.public()?;
        let commit = commitment(&topic, 0, &secret);
        let wraps = pad_wraps(vec![wrap(&key, &topic, 0, &commit, &secret)?])?;
        let mut ops = vec![Op::Add(key)];
        if let Some(t) = title {
            ops.push(Op::Title(t.to_string()));
        }
        let total = wraps.len() as u16;
        let genesis = write_key_change(&topic, 0, &secret, Link::Salt(salt), total, &wraps, &ops)?;
        let mut group = Group::new(topic, Some(&name), controller, vec![me.clone()])?;
        group.apply(&controller, &genesis)?;
        Ok(Created {
            group,
            name,
            genesis,
        })
    }

    /// A group to replay records into: the topic, its name when known
    /// (so the controller's first record is checked against it), the
    /// controller's author key, and this store's member secrets (none for
    /// a relay; a member that rotated keeps its old ones to read history).
    pub fn new(
        topic: TopicId,
        name: Option<&str>,
        controller: [u8; 32],
        mine: Vec<MemberSecret>,
    ) -> Result<Self> {
        let binding = match name {
            Some(n) => Some(
                parse_topic_name(n)
                    .ok_or_else(|| malformed("private topic name", format!("`{n}`")))?,
            ),
            None => None,
        };
        if let Some(n) = name
            && Topic::id_of(n) != topic
        {
            return Err(malformed("private topic name", "not the topic's name"));
        }
        Ok(Self {
            topic,
            binding,
            controller,
            epochs: Vec::new(),
            records: Vec::new(),
            mine,
            members: BTreeMap::new(),
            title: None,
            ignored: 0,
            wraps_per_record: DEFAULT_WRAPS_PER_RECORD,
            written: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Keeps each record this group writes within `len` bytes (an event's
    /// largest payload in the store): a key change for many members is
    /// split into a key change and records of more wraps.
    pub fn set_max_record_len(&mut self, len: usize) {
        self.wraps_per_record = (len.saturating_sub(512) / WRAP_LEN).clamp(1, MAX_WRAPS);
    }

    /// The topic.
    pub fn topic(&self) -> &TopicId {
        &self.topic
    }

    /// The controller's author key.
    pub fn controller(&self) -> &[u8; 32] {
        &self.controller
    }

    /// The current epoch (`None` before the first key change).
    pub fn epoch(&self) -> Option<u64> {
        (self.epochs.len() as u64).checked_sub(1)
    }

    /// Whether this store holds the secret of `epoch`.
    pub fn can_read(&self, epoch: u64) -> bool {
        self.epoch_state(epoch).is_some_and(|e| e.secret.is_some())
    }

    /// The members as far as this store can read: each key and the epoch
    /// it joined at.
    pub fn members(&self) -> Vec<(MemberKey, u64)> {
        self.members.iter().map(|(k, e)| (*k, *e)).collect()
    }

    /// The title, when readable.
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// Key changes from others than the controller, ignored.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Adds a member secret of this store (after a rotation).
    pub fn add_member_secret(&mut self, secret: MemberSecret) -> Result<()> {
        self.mine.push(secret);
        let records = std::mem::take(&mut self.records);
        // Wraps seen before may open with the new secret.
        for (bytes, record) in &records {
            self.learn_from(record)?;
            let _ = bytes;
        }
        self.records = records;
        self.walk_back()?;
        self.rebuild();
        Ok(())
    }

    fn epoch_state(&self, epoch: u64) -> Option<&Epoch> {
        usize::try_from(epoch).ok().and_then(|i| self.epochs.get(i))
    }

    fn secret(&self, epoch: u64) -> Result<&EpochSecret> {
        self.epoch_state(epoch)
            .and_then(|e| e.secret.as_ref())
            .ok_or(E2eError::NoKey { epoch })
    }

    /// Applies one record of `author`'s log of the topic, in log order.
    pub fn apply(&mut self, author: &[u8; 32], bytes: &[u8]) -> Result<Applied> {
        if author != &self.controller {
            // Structure is still checked: a malformed one is reported.
            control::parse(bytes)?;
            self.ignored += 1;
            return Ok(Applied::Ignored);
        }
        let record = control::parse(bytes)?;
        let applied = match &record {
            Record::KeyChange {
                epoch,
                commitment,
                name_salt,
                back_link,
                total,
                wraps,
                ..
            } => {
                let next = self.epochs.len() as u64;
                if *epoch < next {
                    return if self.epoch_state(*epoch).map(|e| &e.commitment) == Some(commitment) {
                        Ok(Applied::Duplicate)
                    } else {
                        Err(E2eError::KeyChange(format!(
                            "a second, different key change for epoch {epoch}"
                        )))
                    };
                }
                if *epoch > next {
                    return Err(E2eError::KeyChange(format!(
                        "epoch {epoch} after epoch {}: a key change is missing",
                        next.wrapping_sub(1)
                    )));
                }
                if let (Some(binding), Some(salt)) = (self.binding, name_salt)
                    && name_binding(author, salt) != binding
                {
                    return Err(E2eError::KeyChange(
                        "the first key change is not the topic name's controller's".into(),
                    ));
                }
                self.epochs.push(Epoch {
                    commitment: *commitment,
                    back_link: *back_link,
                    secret: None,
                    total: *total,
                    seen: wraps.len() as u16,
                });
                if let Err(e) = self.learn_checked(&record, bytes) {
                    self.epochs.pop();
                    return Err(e);
                }
                Applied::Epoch {
                    epoch: *epoch,
                    readable: self.can_read(*epoch),
                }
            }
            Record::MoreWraps {
                epoch,
                commitment,
                first,
                wraps,
            } => {
                let latest = self.epoch();
                let Some(state) = self.epoch_state(*epoch) else {
                    return Err(E2eError::KeyChange(format!(
                        "wraps for epoch {epoch}, which has not started"
                    )));
                };
                if latest != Some(*epoch) || state.commitment != *commitment {
                    return Err(E2eError::KeyChange(format!(
                        "wraps for epoch {epoch} after a later key change, or for another one"
                    )));
                }
                if *first != state.seen
                    || u32::from(*first) + wraps.len() as u32 > u32::from(state.total)
                {
                    return Err(E2eError::KeyChange(format!(
                        "wraps {first}.. of epoch {epoch} out of order or past its {}",
                        state.total
                    )));
                }
                let before = self.can_read(*epoch);
                if let Some(e) = usize::try_from(*epoch)
                    .ok()
                    .and_then(|i| self.epochs.get_mut(i))
                {
                    e.seen += wraps.len() as u16;
                }
                if let Err(e) = self.learn_checked(&record, bytes) {
                    if let Some(e) = usize::try_from(*epoch)
                        .ok()
                        .and_then(|i| self.epochs.get_mut(i))
                    {
                        e.seen -= wraps.len() as u16;
                        if !before {
                            e.secret = None;
                        }
                    }
                    return Err(e);
                }
                Applied::Epoch {
                    epoch: *epoch,
                    readable: self.can_read(*epoch),
                }
            }
            Record::Welcome { epoch, .. } => {
                if self.epoch_state(*epoch).is_none() {
                    return Err(E2eError::KeyChange(format!(
                        "a welcome for epoch {epoch}, which has not started"
                    )));
                }
                let before = self.can_read(*epoch);
                if let Err(e) = self.learn_checked(&record, bytes) {
                    if !before
                        && let Some(e) = usize::try_from(*epoch)
                            .ok()
                            .and_then(|i| self.epochs.get_mut(i))
                    {
                        e.secret = None;
                    }
                    return Err(e);
                }
                Applied::Welcome {
                    epoch: *epoch,
                    for_us: !before && self.can_read(*epoch),
                }
            }
        };
        self.records.push((bytes.to_vec(), record));
        self.walk_back()?;
        self.rebuild();
        Ok(applied)
    }

    /// Learns from the record, then checks that its body opens with what
    /// was learned: a record whose wrap gives the secret but whose body
    /// does not authenticate was tampered with.
    fn learn_checked(&mut self, record: &Record, bytes: &[u8]) -> Result<()> {
        self.learn_from(record)?;
        if let Ok(secret) = self.secret(record.epoch()) {
            // More wraps carry no body: the key change's is checked.
            let (rec_bytes, rec) = match record.body() {
                Some(_) => (bytes, record),
                None => match self.records.iter().rev().find(|(_, r)| {
                    matches!(r, Record::KeyChange { epoch, .. } if *epoch == record.epoch())
                }) {
                    Some((b, r)) => (b.as_slice(), r),
                    None => return Ok(()),
                },
            };
            if let Some((body, prefix_len)) = rec.body() {
                open_body(&self.topic, secret, rec_bytes, prefix_len, body)?;
            }
        }
        Ok(())
    }

    /// Opens the record's wrap(s) with this store's secrets.
    fn learn_from(&mut self, record: &Record) -> Result<()> {
        let epoch = record.epoch();
        if self.can_read(epoch) {
            return Ok(());
        }
        let Some(state) = self.epoch_state(epoch) else {
            return Ok(());
        };
        let commit = state.commitment;
        let wraps: &[[u8; WRAP_LEN]] = match record {
            Record::KeyChange { wraps, .. } | Record::MoreWraps { wraps, .. } => wraps,
            Record::Welcome { wrap, .. } => std::slice::from_ref(wrap),
        };
        let own = {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            let own = written
                .iter()
                .find(|(e, c, _)| *e == epoch && *c == commit)
                .map(|(_, _, s)| s.clone());
            written.retain(|(e, _, _)| *e > epoch);
            own
        };
        // The controller knows the secret it wrote; it still must be one of
        // the wraps' recipients to count as a member, which the members
        // list (from the sealed body) says, not the wraps.
        let found = own.or_else(|| {
            wraps.iter().find_map(|w| {
                self.mine
                    .iter()
                    .find_map(|s| unwrap(w, s, &self.topic, epoch, &commit))
            })
        });
        if let Some(secret) = found {
            if commitment(&self.topic, epoch, &secret) != commit {
                return Err(E2eError::KeyChange(format!(
                    "the secret wrapped for epoch {epoch} does not match its commitment"
                )));
            }
            if let Some(e) = usize::try_from(epoch)
                .ok()
                .and_then(|i| self.epochs.get_mut(i))
            {
                e.secret = Some(secret);
            }
        }
        Ok(())
    }

    /// From each known secret, the back-links give every earlier one.
    fn walk_back(&mut self) -> Result<()> {
        for i in (1..self.epochs.len()).rev() {
            let (earlier, later) = self.epochs.split_at_mut(i);
            let (Some(prev), Some(cur)) = (earlier.last_mut(), later.first()) else {
                continue;
            };
            if prev.secret.is_some() {
                continue;
            }
            let (Some(secret), Some(link)) = (&cur.secret, &cur.back_link) else {
                continue;
            };
            let epoch = i as u64;
            let k = open_back_link(&self.topic, epoch, secret, link)?;
            if commitment(&self.topic, epoch - 1, &k) != prev.commitment {
                return Err(E2eError::KeyChange(format!(
                    "the back-link of epoch {epoch} does not match epoch {}'s commitment",
                    epoch - 1
                )));
            }
            prev.secret = Some(k);
        }
        Ok(())
    }

    /// Members and title from every readable body, in order.
    fn rebuild(&mut self) {
        let mut members = BTreeMap::new();
        let mut title = None;
        for (bytes, record) in &self.records {
            let Some((body, prefix_len)) = record.body() else {
                continue;
            };
            let epoch = record.epoch();
            let Ok(secret) = self.secret(epoch) else {
                continue;
            };
            let Ok(ops) = open_body(&self.topic, secret, bytes, prefix_len, body) else {
                continue;
            };
            for op in ops {
                match op {
                    Op::Add(k) => {
                        members.entry(k).or_insert(epoch);
                    }
                    Op::Remove(k) => {
                        members.remove(&k);
                    }
                    Op::Title(t) => title = Some(t),
                }
            }
        }
        self.members = members;
        self.title = title;
    }

    fn current(&self) -> Result<(u64, &EpochSecret)> {
        let epoch = self
            .epoch()
            .ok_or_else(|| E2eError::NotAllowed("the topic has no key change yet".into()))?;
        Ok((epoch, self.secret(epoch)?))
    }

    /// A welcome for `key` at the current epoch (one wrap, whatever the
    /// number of past epochs). The controller appends it and applies it.
    pub fn add(&self, key: &MemberKey) -> Result<Vec<u8>> {
        if self.members.contains_key(key) {
            return Err(E2eError::NotAllowed(format!("{key} is a member already")));
        }
        let (epoch, secret) = self.current()?;
        let commit = commitment(&self.topic, epoch, secret);
        let w = wrap(key, &self.topic, epoch, &commit, secret)?;
        write_welcome(&self.topic, epoch, secret, &w, &[Op::Add(*key)])
    }

    /// A key change removing `key`: a new epoch wrapped to the other
    /// members only. The records (a key change, then records of more wraps
    /// for a large group) are appended in order, together.
    pub fn remove(&self, key: &MemberKey) -> Result<Vec<Vec<u8>>> {
        if !self.members.contains_key(key) {
            return Err(E2eError::NotAllowed(format!("{key} is not a member")));
        }
        self.key_change(&[Op::Remove(*key)])
    }

    /// A key change replacing a member's key with its new one (after the
    /// member rotated it): the old secret opens nothing from then on.
    pub fn replace(&self, old: &MemberKey, new: &MemberKey) -> Result<Vec<Vec<u8>>> {
        if !self.members.contains_key(old) {
            return Err(E2eError::NotAllowed(format!("{old} is not a member")));
        }
        self.key_change(&[Op::Remove(*old), Op::Add(*new)])
    }

    /// A key change to a fresh secret for the same members.
    pub fn rekey(&self) -> Result<Vec<Vec<u8>>> {
        self.key_change(&[])
    }

    fn key_change(&self, ops: &[Op]) -> Result<Vec<Vec<u8>>> {
        let (epoch, prev) = self.current()?;
        let next = epoch + 1;
        let secret = EpochSecret::generate()?;
        let commit = commitment(&self.topic, next, &secret);
        let mut members = self.members.clone();
        for op in ops {
            match op {
                Op::Add(k) => {
                    members.insert(*k, next);
                }
                Op::Remove(k) => {
                    members.remove(k);
                }
                Op::Title(_) => {}
            }
        }
        if members.len() > MAX_WRAPS {
            return Err(E2eError::NotAllowed(format!(
                "{} members; a key change wraps to at most {MAX_WRAPS}",
                members.len()
            )));
        }
        let keys: Vec<&MemberKey> = members.keys().collect();
        let wraps = wrap_all(&keys, &self.topic, next, &commit, &secret)?;
        let wraps = pad_wraps(wraps)?;
        let total = wraps.len() as u16;
        let link = seal_back_link(&self.topic, next, &secret, prev)?;
        let mut chunks = wraps.chunks(self.wraps_per_record);
        let first = chunks.next().unwrap_or_default();
        let mut records = vec![write_key_change(
            &self.topic,
            next,
            &secret,
            Link::Back(link),
            total,
            first,
            ops,
        )?];
        let mut at = first.len();
        for chunk in chunks {
            records.push(write_more_wraps(next, &commit, at as u16, chunk));
            at += chunk.len();
        }
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        // Only the latest few matter: one is applied before the next is
        // written.
        if written.len() >= 4 {
            written.remove(0);
        }
        written.push((next, commit, secret));
        Ok(records)
    }

    /// The content key of `author` at `epoch`, for sealing or opening many
    /// events (callers keep it).
    pub fn content_key(&self, epoch: u64, author: &[u8; 32]) -> Result<ContentKey> {
        Ok(ContentKey::derive(
            &self.topic,
            epoch,
            self.secret(epoch)?,
            author,
        ))
    }

    /// Seals a payload for `place` at the current epoch.
    pub fn seal(&self, place: &Place, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (epoch, _) = self.current()?;
        self.content_key(epoch, &place.author)?
            .seal(place, plaintext)
    }

    /// Opens an envelope at `place`.
    pub fn open(&self, place: &Place, envelope: &[u8]) -> Result<Vec<u8>> {
        let header = check_envelope(envelope)?;
        self.content_key(header.epoch, &place.author)?
            .open(place, envelope)
    }
}

/// Wraps `secret` to every key, on two threads when there are many (a
/// wrap is two X25519 multiplications, about 0.1 ms).
fn wrap_all(
    keys: &[&MemberKey],
    topic: &TopicId,
    epoch: u64,
    commit: &[u8; 32],
    secret: &EpochSecret,
) -> Result<Vec<[u8; WRAP_LEN]>> {
    let one = |ks: &[&MemberKey]| {
        ks.iter()
            .map(|k| wrap(k, topic, epoch, commit, secret))
            .collect::<Result<Vec<_>>>()
    };
    // The caller and one helper thread, whatever the number of CPUs: the
    // node's thread budget (docs/mobile.md) leaves room for one more.
    if keys.len() < 64 {
        return one(keys);
    }
    let (mine, theirs) = keys.split_at(keys.len() / 2);
    std::thread::scope(|s| {
        let helper = s.spawn(move || one(theirs));
        let mut out = one(mine)?;
        let part = helper
            .join()
            .map_err(|_| E2eError::NotAllowed("a wrapping thread panicked".into()))??;
        out.extend(part);
        Ok(out)
    })
}

/// Pads a list of wraps with fillers to a power of two, and shuffles them
/// so a wrap's position says nothing of whose it is.
fn pad_wraps(mut wraps: Vec<[u8; WRAP_LEN]>) -> Result<Vec<[u8; WRAP_LEN]>> {
    let n = wraps.len().max(1).next_power_of_two();
    while wraps.len() < n {
        wraps.push(filler()?);
    }
    // Fisher-Yates with OS randomness.
    for i in (1..wraps.len()).rev() {
        let r = u64::from_le_bytes(random_array()?);
        let j = (r % (i as u64 + 1)) as usize;
        wraps.swap(i, j);
    }
    Ok(wraps)
}
