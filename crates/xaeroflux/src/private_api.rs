//! The private-topic calls of [`Core`].

use xaeroflux_e2e::{E2eError, Group, MemberKey, parse_topic_name};
use xaeroflux_store::{EventKind, FLAG_ENCRYPTED, NewEvent, Receipt, Topic, TopicId};

use crate::{Core, Error};

/// A private topic just created.
#[derive(Debug, Clone)]
pub struct PrivateTopicInfo {
    /// The topic, to append to and read.
    pub topic: Topic,
    /// Its name, `xfe1.` and 26 base32 characters: give it to members.
    pub name: String,
    /// Its id (all a relay sees).
    pub topic_id: TopicId,
    /// The current epoch.
    pub epoch: u64,
}

/// A member of a private topic, as its members see the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The member's X25519 key.
    pub member_key: MemberKey,
    /// The epoch it joined at.
    pub since_epoch: u64,
}

/// A member key an author published in its own log of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedKey {
    /// The author whose signed log holds it.
    pub author: [u8; 32],
    /// The key.
    pub member_key: MemberKey,
    /// The seq of the event that published it.
    pub seq: u64,
}

/// An event's payload as this store can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A plain topic's payload, as stored.
    Plain(&'a [u8]),
    /// A private topic's payload, opened with this store's keys.
    Decrypted(Vec<u8>),
    /// A private topic's payload this store holds no key for.
    Encrypted {
        /// The epoch it was sealed in.
        epoch: u64,
        /// Its sealed length in bytes.
        len: usize,
    },
}

impl Core {
    /// This store's X25519 member key: what a controller adds to a private
    /// topic.
    pub fn member_key(&self) -> Result<MemberKey, Error> {
        self.private.member_key()
    }

    /// A new member key; the old secret is kept to read history. Ask the
    /// controllers of your private topics to add the new key and remove the
    /// old one: from their next key change, the old secret opens nothing.
    pub fn rotate_member_key(&self) -> Result<MemberKey, Error> {
        self.private.rotate()
    }

    /// Creates a private topic with a random, unguessable name that this
    /// store controls, this store its first member. The title travels
    /// encrypted.
    pub fn create_private_topic(&self, title: Option<&str>) -> Result<PrivateTopicInfo, Error> {
        let me = self.private.member_secret()?;
        let created = Group::create(self.store.author(), &me, title)?;
        let topic = Topic::new(&created.name)?;
        let registered = self.private.register(&self.store, &created.name, true)?;
        let r = self
            .store
            .append(NewEvent::identity(&topic, created.genesis.clone()))?;
        self.private.adopt(&registered, created.group, r.seq);
        Ok(PrivateTopicInfo {
            topic_id: topic.id(),
            topic,
            name: created.name,
            epoch: 0,
        })
    }

    /// Takes part in the private topic `name` (given by its controller):
    /// its events are sealed on append and opened on read with this
    /// store's keys; without a key (a relay), it is replicated, verified
    /// and served as it is.
    pub fn private_topic(&self, name: &str) -> Result<Topic, Error> {
        self.private.register(&self.store, name, true)?;
        Ok(Topic::new(name)?)
    }

    /// Whether `topic` is a private topic this store knows.
    pub fn is_private(&self, topic: &TopicId) -> bool {
        self.private.get(topic).is_some()
    }

    /// The current epoch of a private topic, as far as this store has its
    /// key changes.
    pub fn private_epoch(&self, topic: &Topic) -> Result<Option<u64>, Error> {
        let t = self.private_of(topic)?;
        t.with_group(|g| Ok(g.epoch()))
    }

    /// The private topic `topic` is, registering a private name seen for
    /// the first time; `None` for a plain topic.
    pub(crate) fn private_if_any(
        &self,
        topic: &Topic,
    ) -> Result<Option<std::sync::Arc<crate::private::PrivateTopic>>, Error> {
        match self.private.get(&topic.id()) {
            Some(t) => Ok(Some(t)),
            None if parse_topic_name(topic.name()).is_some() => self
                .private
                .register(&self.store, topic.name(), true)
                .map(Some),
            None => Ok(None),
        }
    }

    fn private_of(
        &self,
        topic: &Topic,
    ) -> Result<std::sync::Arc<crate::private::PrivateTopic>, Error> {
        self.private_if_any(topic)?.ok_or_else(|| {
            E2eError::NotAllowed(format!("`{}` is not a private topic", topic.name())).into()
        })
    }

    fn controlled(
        &self,
        topic: &Topic,
    ) -> Result<std::sync::Arc<crate::private::PrivateTopic>, Error> {
        let t = self.private_of(topic)?;
        let author = self.store.author();
        t.with_group(|g| {
            if *g.controller() == author {
                Ok(())
            } else {
                Err(E2eError::NotAllowed(format!(
                    "only the controller of {} changes its members",
                    topic.name()
                ))
                .into())
            }
        })?;
        Ok(t)
    }

    /// Appends the controller's records together (one group commit, so a
    /// key change and its wraps are never split) and applies them; the
    /// receipt of the last.
    fn append_records(
        &self,
        t: &crate::private::PrivateTopic,
        topic: &Topic,
        records: Vec<Vec<u8>>,
    ) -> Result<Receipt, Error> {
        let events = records
            .iter()
            .map(|r| NewEvent::identity(topic, r.clone()))
            .collect();
        let batch = self.store.append_batch(events)?;
        let mut last = None;
        for (r, record) in batch.events.iter().zip(&records) {
            t.applied_own(r.seq, record)?;
            last = Some(r.seq);
        }
        let seq = last.ok_or_else(|| E2eError::NotAllowed("no record to append".into()))?;
        let head = batch
            .heads
            .last()
            .ok_or_else(|| E2eError::NotAllowed("no head after appending".into()))?;
        let ev = batch
            .events
            .last()
            .ok_or_else(|| E2eError::NotAllowed("no record to append".into()))?;
        Ok(Receipt {
            log: ev.log,
            seq,
            leaf_hash: ev.leaf_hash,
            size: head.size,
            root: head.root,
        })
    }

    /// Adds a member (controller only): one welcome record, giving it the
    /// current epoch's key and through it all history.
    pub fn add_member(&self, topic: &Topic, key: &MemberKey) -> Result<Receipt, Error> {
        let t = self.controlled(topic)?;
        let record = t.with_group(|g| Ok(g.add(key)?))?;
        self.append_records(&t, topic, vec![record])
    }

    /// Removes a member (controller only): a new epoch whose key it never
    /// receives.
    pub fn remove_member(&self, topic: &Topic, key: &MemberKey) -> Result<Receipt, Error> {
        let t = self.controlled(topic)?;
        let records = t.with_group(|g| Ok(g.remove(key)?))?;
        self.append_records(&t, topic, records)
    }

    /// Starts a new epoch for the same members (controller only).
    pub fn rekey(&self, topic: &Topic) -> Result<Receipt, Error> {
        let t = self.controlled(topic)?;
        let records = t.with_group(|g| Ok(g.rekey()?))?;
        self.append_records(&t, topic, records)
    }

    /// The members of a private topic, as far as this store can read its
    /// key changes.
    pub fn members(&self, topic: &Topic) -> Result<Vec<Member>, Error> {
        let t = self.private_of(topic)?;
        t.with_group(|g| {
            Ok(g.members()
                .into_iter()
                .map(|(member_key, since_epoch)| Member {
                    member_key,
                    since_epoch,
                })
                .collect())
        })
    }

    /// Publishes this store's member key in an `Identity` event of its own
    /// log in `topic`, signed with that log, so a controller that
    /// replicates the topic learns the key from the member itself (see
    /// [`Core::published_member_keys`]). The event is plain: the controller
    /// reads it before it can add the member.
    pub fn publish_member_key(&self, topic: &Topic) -> Result<Receipt, Error> {
        let key = self.member_key()?;
        Ok(self
            .store
            .append(NewEvent::identity(topic, key.announcement()))?)
    }

    /// The member keys published in `topic`, the latest of each author, in
    /// author order: who asks to be added. It reads every log of the topic.
    pub fn published_member_keys(&self, topic: &Topic) -> Result<Vec<PublishedKey>, Error> {
        let mut out = Vec::new();
        for info in self.store.topic_logs(&topic.id())? {
            let mut latest = None;
            for ev in self.store.iter_log(&info.log, 0)? {
                let ev = ev?;
                if ev.kind() != EventKind::Identity || ev.flags() & FLAG_ENCRYPTED != 0 {
                    continue;
                }
                if let Some(k) = MemberKey::from_announcement(ev.payload()) {
                    latest = Some((k, ev.seq()));
                }
            }
            if let Some((member_key, seq)) = latest {
                out.push(PublishedKey {
                    author: info.log.author,
                    member_key,
                    seq,
                });
            }
        }
        out.sort_by_key(|p| p.author);
        Ok(out)
    }

    /// The title of a private topic, when readable.
    pub fn private_title(&self, topic: &Topic) -> Result<Option<String>, Error> {
        let t = self.private_of(topic)?;
        t.with_group(|g| Ok(g.title().map(str::to_string)))
    }

    /// Key changes in a private topic from others than its controller,
    /// ignored.
    pub fn ignored_key_changes(&self, topic: &Topic) -> Result<u64, Error> {
        let t = self.private_of(topic)?;
        t.with_group(|g| Ok(g.ignored()))
    }

    /// Marks an event of a private topic "to seal", after checking this
    /// store can (it holds the current epoch's key).
    pub(crate) fn prepare(&self, event: NewEvent) -> Result<NewEvent, Error> {
        let topic = event.topic().clone();
        let Some(t) = self.private_if_any(&topic)? else {
            return Ok(event);
        };
        if !t.can_seal()? {
            return Err(E2eError::NotAllowed(format!(
                "not a member of {} now: this store holds no key for its current epoch",
                topic.name()
            ))
            .into());
        }
        Ok(event.encrypted(true))
    }
}
