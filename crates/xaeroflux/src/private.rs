//! Private topics in the facade: the key store, each private topic's
//! group replayed from its controller's log, and the sealer the writer
//! calls.
//!
//! The key store is `keys/member.key` in the store directory (mode 0600,
//! written atomically): magic `XFMK`, version 1, a count, the member
//! secrets (the current one first, then those rotated away, kept to read
//! history), and the first 8 bytes of their SHA-256. The private topics the
//! store takes part in are named in `keys/private-topics` (magic line
//! `xfpt 1`, then one name a line; mode 0600: a name is what lets one ask
//! for the topic). Epoch secrets are never stored: they are recovered by
//! replaying the controller's key changes, so no key byte reaches a
//! segment or LMDB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};
use xaeroflux_e2e::{
    ContentKey, E2eError, Group, MemberKey, MemberSecret, Nonces, control, is_controller,
    parse_topic_name, sealed_len,
};
use xaeroflux_store::{
    Corruption, EventKind, IoError, LogId, SealPlace, Sealer, Store, StoreError, TopicId,
};

use crate::Error;

const KEYS_DIR: &str = "keys";
const MEMBER_FILE: &str = "member.key";
const TOPICS_FILE: &str = "private-topics";
const MEMBER_MAGIC: &[u8; 4] = b"XFMK";
const MEMBER_VERSION: u8 = 1;
const TOPICS_HEADER: &str = "xfpt 1";
/// Most member secrets kept (the current one and rotated ones).
const MAX_SECRETS: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The store's member secrets, current first.
pub(crate) struct KeyStore {
    dir: PathBuf,
    secrets: Vec<MemberSecret>,
}

impl KeyStore {
    fn path(dir: &Path) -> PathBuf {
        dir.join(KEYS_DIR).join(MEMBER_FILE)
    }

    /// Loads the key store; a store that never used private topics has
    /// none yet (see [`KeyStore::ensure`]).
    pub fn open(store_dir: &Path) -> Result<Self, Error> {
        let path = Self::path(store_dir);
        let mut ks = Self {
            dir: store_dir.to_path_buf(),
            secrets: Vec::new(),
        };
        match std::fs::read(&path) {
            Ok(bytes) => ks.secrets = decode_secrets(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::from(IoError::new(&path, e)).into()),
        }
        Ok(ks)
    }

    /// Makes the first member key when there is none (a writable store).
    pub fn ensure(&mut self, writable: bool) -> Result<(), Error> {
        if self.secrets.is_empty() && writable {
            self.secrets.push(MemberSecret::generate()?);
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), Error> {
        let keys = self.dir.join(KEYS_DIR);
        create_private_dir(&keys)?;
        let mut b = Vec::with_capacity(7 + 32 * self.secrets.len() + 8);
        b.extend_from_slice(MEMBER_MAGIC);
        b.push(MEMBER_VERSION);
        b.extend_from_slice(&(self.secrets.len() as u16).to_le_bytes());
        for s in &self.secrets {
            b.extend_from_slice(&s.to_bytes());
        }
        let sum: [u8; 32] = Sha256::digest(&b).into();
        b.extend_from_slice(sum.get(..8).unwrap_or_default());
        let path = Self::path(&self.dir);
        xaeroflux_types::fs::write_atomic(&path, &b, Some(0o600)).map_err(StoreError::from)?;
        zeroize::Zeroize::zeroize(&mut b);
        Ok(())
    }

    pub fn secrets(&self) -> &[MemberSecret] {
        &self.secrets
    }

    /// A new current secret; the old ones are kept to read history.
    pub fn rotate(&mut self) -> Result<MemberSecret, Error> {
        if self.secrets.len() >= MAX_SECRETS {
            return Err(E2eError::NotAllowed(format!(
                "{MAX_SECRETS} member keys already; no more rotations"
            ))
            .into());
        }
        let s = MemberSecret::generate()?;
        self.secrets.insert(0, s.clone());
        self.save()?;
        Ok(s)
    }
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::from(IoError::new(dir, e)))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StoreError::from(IoError::new(dir, e)))?;
    }
    Ok(())
}

fn decode_secrets(path: &Path, b: &[u8]) -> Result<Vec<MemberSecret>, Error> {
    let corrupt = |offset: u64, why: &str| -> Error {
        StoreError::from(Corruption::new(path, offset, why)).into()
    };
    if b.get(..4) != Some(MEMBER_MAGIC.as_slice()) {
        return Err(corrupt(0, "not a member key file (bad magic)"));
    }
    match b.get(4) {
        Some(&MEMBER_VERSION) => {}
        Some(&v) => {
            return Err(StoreError::from(xaeroflux_store::UnsupportedVersion {
                what: format!("member key file {}", path.display()),
                found: u32::from(v),
                supported: u32::from(MEMBER_VERSION),
            })
            .into());
        }
        None => return Err(corrupt(4, "truncated")),
    }
    let count = b
        .get(5..7)
        .and_then(|c| <[u8; 2]>::try_from(c).ok())
        .map(|c| u16::from_le_bytes(c) as usize)
        .ok_or_else(|| corrupt(5, "truncated"))?;
    let body_end = 7 + 32 * count;
    if count == 0 || count > MAX_SECRETS || b.len() != body_end + 8 {
        return Err(corrupt(5, "wrong length for its count"));
    }
    let sum: [u8; 32] = Sha256::digest(b.get(..body_end).unwrap_or_default()).into();
    if b.get(body_end..) != sum.get(..8) {
        return Err(corrupt(body_end as u64, "checksum mismatch"));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let k: [u8; 32] = b
            .get(7 + 32 * i..7 + 32 * (i + 1))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt(7, "truncated"))?;
        out.push(MemberSecret::from_bytes(k));
    }
    Ok(out)
}

/// One private topic this store takes part in (as a member, or as a relay
/// that knows its name).
pub(crate) struct PrivateTopic {
    pub name: String,
    pub id: TopicId,
    state: Mutex<TopicState>,
    store: Weak<Store>,
}

struct TopicState {
    group: Option<Group>,
    /// Seqs of the controller's log applied.
    applied: u64,
    /// The content key this store seals with, and its epoch.
    sealing: Option<ContentKey>,
    secrets: Vec<MemberSecret>,
    /// When the controller's log was last looked at.
    refreshed: Option<std::time::Instant>,
    /// Content keys derived for opening, by epoch and author.
    opening: HashMap<(u64, [u8; 32]), ContentKey>,
    /// The nonces this store seals with.
    nonces: Nonces,
}

/// Content keys kept for opening, at most (then the cache starts over).
const OPENING_KEYS: usize = 4096;

/// How stale the group may be when the writer seals (appends handed over
/// by another process reach the writer without the facade's refresh).
const SEAL_REFRESH: std::time::Duration = std::time::Duration::from_millis(50);

impl PrivateTopic {
    fn new(name: String, store: &Arc<Store>, secrets: Vec<MemberSecret>) -> Self {
        Self {
            id: xaeroflux_store::Topic::id_of(&name),
            name,
            state: Mutex::new(TopicState {
                group: None,
                applied: 0,
                sealing: None,
                secrets,
                refreshed: None,
                opening: HashMap::new(),
                nonces: Nonces::new(),
            }),
            store: Arc::downgrade(store),
        }
    }

    /// Replays what is new in the controller's log (finding the controller
    /// first: the author whose first key change the name binds).
    pub fn refresh(&self) -> Result<(), Error> {
        let Some(store) = self.store.upgrade() else {
            return Ok(());
        };
        let mut st = lock(&self.state);
        st.refreshed = Some(std::time::Instant::now());
        if st.group.is_none() {
            for info in store.topic_logs(&self.id)? {
                let first = store.iter_log(&info.log, 0)?.next();
                let Some(Ok(ev)) = first else { continue };
                if ev.kind() == EventKind::Identity
                    && is_controller(&self.name, &info.log.author, ev.payload())
                {
                    let mut g = Group::new(
                        self.id,
                        Some(&self.name),
                        info.log.author,
                        st.secrets.clone(),
                    )?;
                    g.set_max_record_len(store.max_payload_len());
                    st.group = Some(g);
                    break;
                }
            }
        }
        let TopicState {
            group,
            applied,
            sealing,
            ..
        } = &mut *st;
        let Some(group) = group.as_mut() else {
            return Ok(());
        };
        let log = LogId {
            author: *group.controller(),
            topic: self.id,
        };
        if store.log_size(&log)? <= *applied {
            return Ok(());
        }
        for ev in store.iter_log(&log, *applied)? {
            let ev = ev?;
            *applied = ev.seq() + 1;
            if ev.kind() != EventKind::Identity || !control::is_record(ev.payload()) {
                continue;
            }
            // A record the controller signed but that does not apply
            // (malformed, out of order) changes nothing; the next go on.
            let _ = group.apply(&log.author, ev.payload());
        }
        // A new epoch: seal with its key from now on.
        if sealing.as_ref().map(|k| k.epoch()) != group.epoch() {
            *sealing = None;
        }
        Ok(())
    }

    /// Runs `f` on the group, after a refresh.
    pub fn with_group<T>(
        &self,
        f: impl FnOnce(&mut Group) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.refresh()?;
        let mut st = lock(&self.state);
        match st.group.as_mut() {
            Some(g) => f(g),
            None => Err(E2eError::NotAllowed(format!(
                "private topic {}: its controller's first key change is not here yet",
                self.name
            ))
            .into()),
        }
    }

    /// Applies a record the controller (this store) just appended, at once.
    pub fn applied_own(&self, seq: u64, record: &[u8]) -> Result<(), Error> {
        let mut st = lock(&self.state);
        let TopicState {
            group,
            applied,
            sealing,
            ..
        } = &mut *st;
        if let Some(g) = group.as_mut()
            && *applied == seq
        {
            let controller = *g.controller();
            g.apply(&controller, record)?;
            *applied = seq + 1;
            if sealing.as_ref().map(|k| k.epoch()) != g.epoch() {
                *sealing = None;
            }
        }
        Ok(())
    }

    /// Whether this store can seal here now (it holds the current epoch).
    pub fn can_seal(&self) -> Result<bool, Error> {
        self.refresh()?;
        Ok(self.holds_current())
    }

    /// The content key that opens `author`'s events of `epoch`: `Ok(None)`
    /// when this store holds no key for that epoch. Keys are derived once
    /// and kept.
    pub fn opening_key(&self, epoch: u64, author: &[u8; 32]) -> Result<Option<ContentKey>, Error> {
        let readable = {
            let st = lock(&self.state);
            st.group.as_ref().is_some_and(|g| g.can_read(epoch))
        };
        if !readable {
            // Perhaps a key change arrived since.
            self.refresh()?;
        }
        let mut st = lock(&self.state);
        let TopicState { group, opening, .. } = &mut *st;
        let Some(g) = group.as_ref() else {
            return Ok(None);
        };
        let slot = (epoch, *author);
        if let Some(k) = opening.get(&slot) {
            return Ok(Some(k.clone()));
        }
        let key = match g.content_key(epoch, author) {
            Ok(k) => k,
            Err(E2eError::NoKey { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if opening.len() >= OPENING_KEYS {
            opening.clear();
        }
        opening.insert(slot, key.clone());
        Ok(Some(key))
    }

    /// Refreshes only when the group was last looked at over
    /// [`SEAL_REFRESH`] ago: the writer's path, which the facade's own
    /// appends reach just after refreshing.
    fn refresh_if_stale(&self) -> Result<(), Error> {
        let stale = lock(&self.state)
            .refreshed
            .is_none_or(|t| t.elapsed() > SEAL_REFRESH);
        if stale {
            self.refresh()?;
        }
        Ok(())
    }

    /// Whether the group's current epoch is readable, as last refreshed.
    fn holds_current(&self) -> bool {
        let st = lock(&self.state);
        st.group
            .as_ref()
            .and_then(|g| g.epoch().map(|e| g.can_read(e)))
            .unwrap_or(false)
    }

    fn seal_into(
        &self,
        place: &SealPlace,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        // `Sealer::check`, asked for each batch before the writer takes
        // it, has refreshed the group if it was stale.
        let mut st = lock(&self.state);
        let TopicState {
            group,
            sealing,
            nonces,
            ..
        } = &mut *st;
        let g = group.as_ref().ok_or_else(|| {
            E2eError::NotAllowed(format!("private topic {}: no key change yet", self.name))
        })?;
        let epoch = g.epoch().ok_or(E2eError::NoKey { epoch: 0 })?;
        if sealing.as_ref().map(|k| k.epoch()) != Some(epoch) {
            *sealing = Some(g.content_key(epoch, &place.author)?);
        }
        let key = sealing.as_ref().ok_or(E2eError::NoKey { epoch })?;
        Ok(key.seal_into(place, plaintext, nonces, out)?)
    }
}

/// What the writer calls for a private topic's events.
struct TopicSealer(Arc<PrivateTopic>);

impl Sealer for TopicSealer {
    fn sealed_len(&self, plaintext_len: usize) -> usize {
        sealed_len(plaintext_len)
    }

    fn check(&self) -> Result<(), String> {
        self.0.refresh_if_stale().map_err(|e| e.report())?;
        // Not a member as last seen: look once more before refusing.
        if self.0.holds_current() || self.0.can_seal().map_err(|e| e.report())? {
            Ok(())
        } else {
            Err("this store holds no key for the topic's current epoch".into())
        }
    }

    fn seal_into(
        &self,
        place: &SealPlace,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        self.0
            .seal_into(place, plaintext, out)
            .map_err(|e| e.report())
    }
}

/// The private topics of one store.
pub(crate) struct Private {
    dir: PathBuf,
    writable: bool,
    keys: Mutex<KeyStore>,
    topics: Mutex<HashMap<TopicId, Arc<PrivateTopic>>>,
}

impl Private {
    /// Loads the key store and the private topics named in the store
    /// directory, and registers their sealers.
    pub fn open(store: &Arc<Store>) -> Result<Self, Error> {
        let dir = store.dir().to_path_buf();
        let writable = !store.is_read_only();
        let keys = KeyStore::open(&dir)?;
        let p = Self {
            dir,
            writable,
            keys: Mutex::new(keys),
            topics: Mutex::new(HashMap::new()),
        };
        for name in p.saved_names()? {
            p.register(store, &name, false)?;
        }
        Ok(p)
    }

    fn topics_path(&self) -> PathBuf {
        self.dir.join(KEYS_DIR).join(TOPICS_FILE)
    }

    fn saved_names(&self) -> Result<Vec<String>, Error> {
        let path = self.topics_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::from(IoError::new(&path, e)).into()),
        };
        let mut lines = text.lines();
        if lines.next() != Some(TOPICS_HEADER) {
            return Err(
                StoreError::from(Corruption::new(&path, 0, "not a private-topics file")).into(),
            );
        }
        Ok(lines
            .filter(|l| parse_topic_name(l).is_some())
            .map(str::to_string)
            .collect())
    }

    fn save_names(&self) -> Result<(), Error> {
        let mut text = String::from(TOPICS_HEADER);
        text.push('\n');
        let topics = lock(&self.topics);
        let mut names: Vec<&str> = topics.values().map(|t| t.name.as_str()).collect();
        names.sort();
        for n in names {
            text.push_str(n);
            text.push('\n');
        }
        create_private_dir(&self.dir.join(KEYS_DIR))?;
        xaeroflux_types::fs::write_atomic(&self.topics_path(), text.as_bytes(), Some(0o600))
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// The private topic `name`, registered (sealer, group) if it was not.
    pub fn register(
        &self,
        store: &Arc<Store>,
        name: &str,
        save: bool,
    ) -> Result<Arc<PrivateTopic>, Error> {
        if parse_topic_name(name).is_none() {
            return Err(E2eError::Malformed {
                what: "private topic name",
                why: format!("`{name}` is not xfe1. and 26 base32 characters"),
            }
            .into());
        }
        let id = xaeroflux_store::Topic::id_of(name);
        let topic = {
            let mut topics = lock(&self.topics);
            if let Some(t) = topics.get(&id) {
                return Ok(t.clone());
            }
            let secrets = lock(&self.keys).secrets().to_vec();
            let t = Arc::new(PrivateTopic::new(name.to_string(), store, secrets));
            topics.insert(id, t.clone());
            t
        };
        if self.writable {
            store.set_sealer(id, Arc::new(TopicSealer(topic.clone())));
            if save {
                self.save_names()?;
            }
        }
        Ok(topic)
    }

    /// The private topic with this id, if registered.
    pub fn get(&self, id: &TopicId) -> Option<Arc<PrivateTopic>> {
        lock(&self.topics).get(id).cloned()
    }

    /// The current member key (made on first use in a writable store).
    pub fn member_key(&self) -> Result<MemberKey, Error> {
        Ok(self.member_secret()?.public()?)
    }

    /// The current member secret (made on first use in a writable store).
    pub fn member_secret(&self) -> Result<MemberSecret, Error> {
        let (secret, made) = {
            let mut keys = lock(&self.keys);
            let made = keys.secrets().is_empty();
            keys.ensure(self.writable)?;
            let secret = keys.secrets().first().cloned().ok_or_else(|| {
                E2eError::NotAllowed(
                    "this store has no member key yet (open it for writing once)".into(),
                )
            })?;
            (secret, made)
        };
        if made {
            self.learn_secret(&secret)?;
        }
        Ok(secret)
    }

    /// Gives every registered topic's group a new member secret of ours.
    fn learn_secret(&self, s: &MemberSecret) -> Result<(), Error> {
        for t in lock(&self.topics).values() {
            let mut st = lock(&t.state);
            st.secrets.insert(0, s.clone());
            if let Some(g) = st.group.as_mut() {
                g.add_member_secret(s.clone())?;
            }
        }
        Ok(())
    }

    /// Rotates the member key; every group learns the new secret.
    pub fn rotate(&self) -> Result<MemberKey, Error> {
        let s = {
            let mut keys = lock(&self.keys);
            keys.ensure(self.writable)?;
            keys.rotate()?
        };
        self.learn_secret(&s)?;
        Ok(s.public()?)
    }

    /// Starts the group of a topic this store just created.
    pub fn adopt(&self, topic: &PrivateTopic, mut group: Group, genesis_seq: u64) {
        if let Some(store) = topic.store.upgrade() {
            group.set_max_record_len(store.max_payload_len());
        }
        let mut st = lock(&topic.state);
        st.group = Some(group);
        st.applied = genesis_seq + 1;
        st.sealing = None;
    }
}

impl std::fmt::Debug for Private {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Private")
            .field("topics", &lock(&self.topics).len())
            .finish()
    }
}
