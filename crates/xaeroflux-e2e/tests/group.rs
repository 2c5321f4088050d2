// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Groups as the design asks: removed members and non-members read
//! nothing new, a late member reads all history from one wrap, only the
//! controller's key changes count, a rotated key opens nothing new.

use xaeroflux_e2e::{
    Applied, E2eError, Group, MemberKey, MemberSecret, Place, is_controller, parse_topic_name,
};
use xaeroflux_types::{EventKind, Topic};

const CONTROLLER: [u8; 32] = [1; 32];
const OTHER_AUTHOR: [u8; 32] = [2; 32];

/// A welcome (one record) or a key change (one or more).
trait IntoRecords {
    fn into_records(self) -> Vec<Vec<u8>>;
}

impl IntoRecords for Vec<u8> {
    fn into_records(self) -> Vec<Vec<u8>> {
        vec![self]
    }
}

impl IntoRecords for Vec<Vec<u8>> {
    fn into_records(self) -> Vec<Vec<u8>> {
        self
    }
}

/// The controller's log: records in order, and the sealed events of each
/// epoch (place, ciphertext, plaintext).
struct Log {
    name: String,
    group: Group,
    records: Vec<Vec<u8>>,
    events: Vec<(Place, Vec<u8>, Vec<u8>)>,
}

impl Log {
    fn new(me: &MemberSecret) -> Self {
        let c = Group::create(CONTROLLER, me, Some("the title")).unwrap();
        Self {
            name: c.name,
            group: c.group,
            records: vec![c.genesis],
            events: Vec::new(),
        }
    }

    fn record(&mut self, r: impl IntoRecords) {
        for r in r.into_records() {
            self.group.apply(&CONTROLLER, &r).unwrap();
            self.records.push(r);
        }
    }

    fn write(&mut self, text: &str) {
        let place = Place {
            author: CONTROLLER,
            topic: *self.group.topic(),
            kind: EventKind::Application,
            flags: 1,
            seq: self.events.len() as u64,
            timestamp_ms: 1_700_000_000_000 + self.events.len() as u64,
        };
        let sealed = self.group.seal(&place, text.as_bytes()).unwrap();
        self.events.push((place, sealed, text.as_bytes().to_vec()));
    }

    /// A replica holding `secrets` that replays the whole log.
    fn replica(&self, secrets: Vec<MemberSecret>) -> Group {
        let mut g = Group::new(*self.group.topic(), Some(&self.name), CONTROLLER, secrets).unwrap();
        for r in &self.records {
            g.apply(&CONTROLLER, r).unwrap();
        }
        g
    }

    /// Which events `g` opens, checking each against its plaintext.
    fn readable(&self, g: &Group) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|(place, sealed, plain)| match g.open(place, sealed) {
                Ok(p) => {
                    assert_eq!(&p, plain);
                    Some(place.seq)
                }
                Err(E2eError::NoKey { .. }) => None,
                Err(e) => panic!("event {}: {e}", place.seq),
            })
            .collect()
    }
}

fn key(s: &MemberSecret) -> MemberKey {
    s.public().unwrap()
}

#[test]
fn the_name_binds_the_controller() {
    let me = MemberSecret::generate().unwrap();
    let log = Log::new(&me);
    assert!(
        log.name.starts_with("xfe1.") && log.name.len() == 5 + 26,
        "{}",
        log.name
    );
    assert!(parse_topic_name(&log.name).is_some());
    assert_eq!(*log.group.topic(), Topic::id_of(&log.name));
    assert!(is_controller(&log.name, &CONTROLLER, &log.records[0]));
    assert!(!is_controller(&log.name, &OTHER_AUTHOR, &log.records[0]));
    // Someone else's first key change under this name is refused.
    let other = Group::create(OTHER_AUTHOR, &me, None).unwrap();
    let mut g = Group::new(*log.group.topic(), Some(&log.name), OTHER_AUTHOR, vec![me]).unwrap();
    assert!(matches!(
        g.apply(&OTHER_AUTHOR, &other.genesis),
        Err(E2eError::KeyChange(_))
    ));
}

#[test]
fn members_read_and_a_removed_member_reads_nothing_after() {
    let (alice, bob, carol) = (
        MemberSecret::generate().unwrap(),
        MemberSecret::generate().unwrap(),
        MemberSecret::generate().unwrap(),
    );
    let mut log = Log::new(&alice);
    let w = log.group.add(&key(&bob)).unwrap();
    log.record(w);
    let w = log.group.add(&key(&carol)).unwrap();
    log.record(w);
    log.write("epoch 0, everyone");
    let r = log.group.remove(&key(&bob)).unwrap();
    log.record(r);
    log.write("epoch 1, without bob");
    let r = log.group.remove(&key(&carol)).unwrap();
    log.record(r);
    log.write("epoch 2, alice alone");

    assert_eq!(log.readable(&log.group), [0, 1, 2]);
    // Bob holds the whole replica and his key: nothing after his removal.
    let bobs = log.replica(vec![bob.clone()]);
    assert_eq!(log.readable(&bobs), [0]);
    assert!(!bobs.can_read(1) && !bobs.can_read(2));
    // Two removals in a row exclude both.
    let carols = log.replica(vec![carol]);
    assert_eq!(log.readable(&carols), [0, 1]);
    assert!(!carols.can_read(2));
    // Members and title, as members see them.
    let members = log.group.members();
    assert_eq!(members, vec![(key(&alice), 0)]);
    assert_eq!(log.group.title(), Some("the title"));
    // A relay holds no secret: it replays and checks, and reads nothing.
    let relay = log.replica(vec![]);
    assert_eq!(log.readable(&relay), Vec::<u64>::new());
    assert!(relay.members().is_empty() && relay.title().is_none());
    // Bob cannot even write a key change after the current epoch: he
    // lacks its secret.
    assert!(matches!(bobs.rekey(), Err(E2eError::NoKey { epoch: 2 })));
}

#[test]
fn a_late_member_reads_all_history_from_one_wrap_of_constant_size() {
    let alice = MemberSecret::generate().unwrap();
    let mut log = Log::new(&alice);
    let late = MemberSecret::generate().unwrap();
    let mut sizes = Vec::new();
    for epoch in 0..100u64 {
        log.write(&format!("epoch {epoch}"));
        if epoch == 0 || epoch == 99 {
            sizes.push(log.group.add(&key(&late)).unwrap().len());
        }
        let r = log.group.rekey().unwrap();
        log.record(r);
    }
    assert_eq!(log.group.epoch(), Some(100));
    // The welcome costs the same after 1 epoch and after 100.
    assert_eq!(sizes[0], sizes[1], "{sizes:?}");
    assert_eq!(sizes[0], 173, "the size docs/private-topics.md gives");
    let w = log.group.add(&key(&late)).unwrap();
    assert_eq!(w.len(), sizes[0]);
    log.record(w);
    let lates = log.replica(vec![late.clone()]);
    assert_eq!(log.readable(&lates).len(), 100);
    assert!(lates.members().contains(&(key(&late), 100)));
}

#[test]
fn key_changes_from_anyone_but_the_controller_are_ignored() {
    let (alice, bob) = (
        MemberSecret::generate().unwrap(),
        MemberSecret::generate().unwrap(),
    );
    let mut log = Log::new(&alice);
    let w = log.group.add(&key(&bob)).unwrap();
    log.record(w);
    // Bob, a member with the current secret, writes a removal of alice
    // into his own log.
    let bobs = log.replica(vec![bob.clone()]);
    let forged = bobs.remove(&key(&alice)).unwrap().remove(0);
    let applied = log.group.apply(&OTHER_AUTHOR, &forged).unwrap();
    assert_eq!(applied, Applied::Ignored);
    assert_eq!(log.group.ignored(), 1);
    assert_eq!(log.group.epoch(), Some(0));
    assert!(log.group.members().iter().any(|(k, _)| *k == key(&alice)));
    // Malformed bytes from anyone are an error, not a panic.
    assert!(log.group.apply(&OTHER_AUTHOR, b"XFEC\x01\x01").is_err());
}

#[test]
fn after_a_rotation_and_a_rekey_the_old_secret_opens_nothing_new() {
    let (alice, bob_old, bob_new) = (
        MemberSecret::generate().unwrap(),
        MemberSecret::generate().unwrap(),
        MemberSecret::generate().unwrap(),
    );
    let mut log = Log::new(&alice);
    let w = log.group.add(&key(&bob_old)).unwrap();
    log.record(w);
    log.write("before the rotation");
    let r = log.group.replace(&key(&bob_old), &key(&bob_new)).unwrap();
    log.record(r);
    log.write("after the rotation");
    // The old secret alone (a thief's copy) reads only what came before.
    let thief = log.replica(vec![bob_old.clone()]);
    assert_eq!(log.readable(&thief), [0]);
    // Bob, with the new secret alone, reads everything (the back-link).
    let bob = log.replica(vec![bob_new.clone()]);
    assert_eq!(log.readable(&bob), [0, 1]);
    // A replica that learns the new secret later catches up.
    let mut later = log.replica(vec![bob_old]);
    later.add_member_secret(bob_new).unwrap();
    assert_eq!(log.readable(&later), [0, 1]);
}

#[test]
fn records_out_of_order_or_conflicting_are_refused() {
    let alice = MemberSecret::generate().unwrap();
    let mut log = Log::new(&alice);
    let r1 = log.group.rekey().unwrap().remove(0);
    log.record(r1.clone());
    let r2 = log.group.rekey().unwrap().remove(0);
    // Applying epoch 2 to a replica that has only epoch 0: a gap.
    let mut g = Group::new(*log.group.topic(), Some(&log.name), CONTROLLER, vec![]).unwrap();
    g.apply(&CONTROLLER, &log.records[0]).unwrap();
    assert!(matches!(
        g.apply(&CONTROLLER, &r2),
        Err(E2eError::KeyChange(_))
    ));
    // The same record twice is a duplicate; another epoch-1 record a conflict.
    g.apply(&CONTROLLER, &r1).unwrap();
    assert_eq!(g.apply(&CONTROLLER, &r1).unwrap(), Applied::Duplicate);
    // A second, different epoch-1 record (the controller equivocating,
    // as a replica that missed the first would write it) is refused.
    let mut before =
        Group::new(*log.group.topic(), Some(&log.name), CONTROLLER, vec![alice]).unwrap();
    before.apply(&CONTROLLER, &log.records[0]).unwrap();
    let other = before.rekey().unwrap().remove(0);
    assert_ne!(other, r1);
    assert!(matches!(
        g.apply(&CONTROLLER, &other),
        Err(E2eError::KeyChange(_))
    ));
}

#[test]
fn a_large_group_rekeys_in_records_that_fit_a_page() {
    let alice = MemberSecret::generate().unwrap();
    let mut log = Log::new(&alice);
    log.group.set_max_record_len(16_240);
    let members: Vec<MemberSecret> = (0..300)
        .map(|_| MemberSecret::generate().unwrap())
        .collect();
    for m in &members {
        let w = log.group.add(&key(m)).unwrap();
        log.record(w);
    }
    let records = log.group.rekey().unwrap();
    assert!(records.len() >= 3, "512 wraps in {} records", records.len());
    assert!(
        records.iter().all(|r| r.len() <= 16_240),
        "a record over a page"
    );
    log.record(records);
    log.write("for three hundred and one");
    // The first and the last member (their wraps in different records)
    // both read it; so does alice.
    for m in [&members[0], &members[299], &alice] {
        let g = log.replica(vec![m.clone()]);
        assert_eq!(log.readable(&g), [0], "a member misses the new epoch");
    }
    // Records of more wraps out of order, or for another epoch, are refused.
    let more = log.group.rekey().unwrap();
    let mut g = log.replica(vec![]);
    g.apply(&CONTROLLER, &more[0]).unwrap();
    assert!(g.apply(&CONTROLLER, &more[2]).is_err());
    g.apply(&CONTROLLER, &more[1]).unwrap();
    assert!(g.apply(&CONTROLLER, &more[1]).is_err());
}
