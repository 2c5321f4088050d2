// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Private topics through the facade: sealed in the writer, opened on
//! read by members, carried blind by a relay, closed to removed members.

use std::path::Path;
use std::time::Duration;

use xaeroflux::{Core, E2eError, Error, EventRef, Payload, Topic};
use xaeroflux_testkit::files_hold;

const WAIT: Duration = Duration::from_secs(30);

fn open(dir: &Path) -> Core {
    Core::builder().open(dir).unwrap()
}

/// One XSP session between two stores over loopback TCP: each pulls what
/// the other has.
fn sync_pair(a: &Core, b: &Core) {
    xaeroflux_testkit::tcp_pair(
        |c| a.sync_over_tcp(c, &[], WAIT).unwrap(),
        |c| b.sync_over_tcp(c, &[], WAIT).unwrap(),
    );
}

/// The application payloads of a topic as `core` reads them, in order.
fn read_all(core: &Core, topic: &Topic) -> Vec<String> {
    core.iter_topic(topic)
        .filter_map(|ev| {
            let ev = ev.unwrap();
            if ev.kind() != xaeroflux::EventKind::Application {
                return None;
            }
            Some(match core.read_payload(&ev).unwrap() {
                Payload::Plain(p) => format!("plain:{}", String::from_utf8_lossy(p)),
                Payload::Decrypted(p) => String::from_utf8(p).unwrap(),
                Payload::Encrypted { epoch, .. } => format!("<encrypted {epoch}>"),
            })
        })
        .collect()
}

#[test]
fn members_read_a_relay_carries_blind_and_a_removed_member_reads_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, relay) = (
        open(&dir.path().join("a")),
        open(&dir.path().join("b")),
        open(&dir.path().join("relay")),
    );
    let created = a.create_private_topic(Some("secret plans")).unwrap();
    assert!(created.name.starts_with("xfe1.") && created.name.len() == 31);
    assert_eq!(created.epoch, 0);
    let t = created.topic.clone();
    a.add_member(&t, &b.member_key().unwrap()).unwrap();
    a.append(a.new_event_in(&t, "marker-alpha-7731")).unwrap();

    // The relay holds no key; it only learns the name (as a peer would
    // ask for the topic) and carries everything between a and b.
    relay.private_topic(&created.name).unwrap();
    sync_pair(&a, &relay);
    b.private_topic(&created.name).unwrap();
    sync_pair(&relay, &b);
    assert_eq!(read_all(&b, &t), ["marker-alpha-7731"]);
    assert_eq!(
        b.private_title(&t).unwrap().as_deref(),
        Some("secret plans")
    );
    b.append(b.new_event_in(&t, "marker-bravo-9182")).unwrap();
    sync_pair(&b, &relay);
    sync_pair(&relay, &a);
    let read = read_all(&a, &t);
    assert!(read.contains(&"marker-bravo-9182".to_string()), "{read:?}");

    // The relay verifies everything and reads nothing.
    let report = relay.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        read_all(&relay, &t)
            .iter()
            .all(|p| p.starts_with("<encrypted"))
    );
    for store in [&relay, &a, &b] {
        for marker in [
            &b"marker-alpha-7731"[..],
            b"marker-bravo-9182",
            b"secret plans",
        ] {
            assert!(
                !files_hold(store.dir(), marker),
                "{} holds a marker",
                store.dir().display()
            );
        }
    }

    // The scan finds what a plain topic carries, so its silence above
    // means something.
    let plain = Topic::new("plain").unwrap();
    a.append(a.new_event_in(&plain, "marker-plain-5555"))
        .unwrap();
    sync_pair(&a, &relay);
    assert!(files_hold(relay.dir(), b"marker-plain-5555"));

    // b is removed: a's next events are sealed in an epoch b never gets.
    a.remove_member(&t, &b.member_key().unwrap()).unwrap();
    a.append(a.new_event_in(&t, "marker-charlie-4410")).unwrap();
    sync_pair(&a, &relay);
    sync_pair(&relay, &b);
    let read = read_all(&b, &t);
    assert!(read.contains(&"<encrypted 1>".to_string()), "{read:?}");
    assert!(!read.iter().any(|p| p.contains("charlie")));
    // And b can no longer write there.
    let refused = b.append(b.new_event_in(&t, "after removal")).unwrap_err();
    assert!(
        matches!(refused, Error::E2e(E2eError::NotAllowed(_))),
        "{refused}"
    );
    // Members, as the controller sees them.
    let members = a.members(&t).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].member_key, a.member_key().unwrap());
}

#[test]
fn a_moved_or_tampered_ciphertext_is_refused_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let t = a.create_private_topic(None).unwrap().topic;
    a.append(a.new_event_in(&t, "one")).unwrap();
    a.append(a.new_event_in(&t, "two")).unwrap();
    let log = a.own_log(&t);
    let events: Vec<_> = a.iter_log(&log, 0).map(|e| e.unwrap().to_event()).collect();
    let sealed = &events[2]; // genesis, then "one", "two"
    let bytes = sealed.canonical_bytes();
    let log_bytes = log.to_bytes();
    // As stored, it opens.
    let ev = EventRef::new(&log_bytes, &bytes).unwrap();
    assert_eq!(
        a.read_payload(&ev).unwrap(),
        Payload::Decrypted(b"two".to_vec())
    );
    // Moved to another seq: the header's seq field is at offset 8.
    let mut moved = bytes.clone();
    moved[8] ^= 1;
    let ev = EventRef::new(&log_bytes, &moved).unwrap();
    assert!(matches!(
        a.read_payload(&ev),
        Err(Error::E2e(E2eError::Refused { .. }))
    ));
    // A flipped ciphertext byte.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 0x10;
    let ev = EventRef::new(&log_bytes, &flipped).unwrap();
    assert!(matches!(
        a.read_payload(&ev),
        Err(Error::E2e(E2eError::Refused { .. }))
    ));
}

#[test]
fn keys_survive_reopening_and_the_key_store_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let (key, name) = {
        let a = open(dir.path());
        let c = a.create_private_topic(Some("kept")).unwrap();
        a.append(a.new_event_in(&c.topic, "still readable"))
            .unwrap();
        let key = a.member_key().unwrap();
        a.close().unwrap();
        (key, c.name)
    };
    let a = open(dir.path());
    assert_eq!(a.member_key().unwrap(), key);
    let t = Topic::new(&name).unwrap();
    assert!(a.is_private(&t.id()));
    assert_eq!(read_all(&a, &t), ["still readable"]);
    a.append(a.new_event_in(&t, "and writable")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys/member.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A rotated key keeps history readable.
    let new = a.rotate_member_key().unwrap();
    assert_ne!(new, key);
    assert_eq!(read_all(&a, &t), ["still readable", "and writable"]);
}

#[test]
fn a_flipped_byte_in_the_key_store_is_a_corruption_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let core = open(dir.path());
        core.member_key().unwrap(); // made on first use
        core.close().unwrap();
    }
    let path = dir.path().join("keys/member.key");
    let good = std::fs::read(&path).unwrap();
    for i in [0usize, 4, 5, 7, 20, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let err = Core::builder().open(dir.path()).unwrap_err();
        let text = err.report();
        assert!(text.contains("member.key"), "byte {i}: {text}");
    }
    std::fs::write(&path, &good).unwrap();
    open(dir.path()).close().unwrap();
}

#[test]
fn a_non_member_cannot_append_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir.path().join("a"));
    let outsider = open(&dir.path().join("o"));
    let created = a.create_private_topic(None).unwrap();
    sync_pair(&a, &outsider);
    let t = outsider.private_topic(&created.name).unwrap();
    let err = outsider
        .append(outsider.new_event_in(&t, "let me in"))
        .unwrap_err();
    assert!(matches!(err, Error::E2e(E2eError::NotAllowed(_))), "{err}");
    // An event flagged to seal in a plain topic is refused by the store,
    // which still takes plain appends.
    let plain = Topic::new("plain").unwrap();
    let err = outsider
        .append(outsider.new_event_in(&plain, "x").encrypted(true))
        .unwrap_err();
    assert!(err.report().contains("no key to seal"), "{err}");
    outsider
        .append(outsider.new_event_in(&plain, "fine"))
        .unwrap();
    assert_eq!(read_all(&outsider, &t), Vec::<String>::new());
}

#[test]
fn a_group_too_large_for_one_page_still_removes_a_member() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let t = a.create_private_topic(None).unwrap().topic;
    let keys: Vec<_> = (0..200)
        .map(|_| {
            xaeroflux::e2e::MemberSecret::generate()
                .unwrap()
                .public()
                .unwrap()
        })
        .collect();
    for k in &keys {
        a.add_member(&t, k).unwrap();
    }
    // 200 members: 256 wraps of 80 bytes do not fit one 16 KiB page.
    a.remove_member(&t, &keys[0]).unwrap();
    assert_eq!(a.private_epoch(&t).unwrap(), Some(1));
    assert_eq!(a.members(&t).unwrap().len(), 200);
    a.append(a.new_event_in(&t, "after")).unwrap();
    assert_eq!(read_all(&a, &t), ["after"]);
}

#[test]
fn read_topic_and_subscriptions_give_members_plaintext_across_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, relay) = (
        open(&dir.path().join("a")),
        open(&dir.path().join("b")),
        open(&dir.path().join("relay")),
    );
    let created = a.create_private_topic(None).unwrap();
    let t = created.topic.clone();
    a.add_member(&t, &b.member_key().unwrap()).unwrap();
    // b subscribes before anything it can read exists.
    b.private_topic(&created.name).unwrap();
    let mut sub = b
        .subscribe(xaeroflux::Filter::topic(&t), xaeroflux::Since::Seq(0))
        .unwrap();
    let batch = |from: usize| {
        (from..from + 150)
            .map(|i| a.new_event_in(&t, format!("m{i}")))
            .collect::<Vec<_>>()
    };
    a.append_batch(batch(0)).unwrap();
    a.rekey(&t).unwrap();
    a.append_batch(batch(150)).unwrap();
    assert_eq!(a.private_epoch(&t).unwrap(), Some(1));
    sync_pair(&a, &b);
    relay.private_topic(&created.name).unwrap();
    sync_pair(&a, &relay);

    let want: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let app = |core: &Core| -> Vec<Option<String>> {
        core.read_topic(&t)
            .map(|r| r.unwrap())
            .filter(|r| r.event.kind() == xaeroflux::EventKind::Application)
            .map(|r| {
                r.plaintext()
                    .map(|p| String::from_utf8(p.to_vec()).unwrap())
            })
            .collect()
    };
    for core in [&a, &b] {
        let got: Vec<String> = app(core).into_iter().map(Option::unwrap).collect();
        assert_eq!(got, want);
    }
    // The relay is shown every event, as encrypted, with its epoch.
    let relay_read: Vec<_> = relay
        .read_topic(&t)
        .map(|r| r.unwrap())
        .filter(|r| r.event.kind() == xaeroflux::EventKind::Application)
        .collect();
    assert_eq!(relay_read.len(), 300);
    for (i, r) in relay_read.iter().enumerate() {
        let Payload::Encrypted { epoch, len } = r.payload else {
            panic!("the relay read event {i}: {:?}", r.payload);
        };
        assert_eq!(epoch, u64::from(i >= 150));
        assert_eq!(len, r.event.payload().len());
    }
    // The sealed bytes are still what the event holds.
    let first = b
        .read_topic(&t)
        .map(|r| r.unwrap())
        .find(|r| r.event.kind() == xaeroflux::EventKind::Application)
        .unwrap();
    assert_ne!(first.event.payload(), b"m0");
    assert_eq!(first.plaintext(), Some(&b"m0"[..]));

    // A plain topic reads as stored.
    let plain = Topic::new("open").unwrap();
    b.append(b.new_event_in(&plain, "hello")).unwrap();
    let r: Vec<_> = b.read_topic(&plain).map(|r| r.unwrap()).collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].payload, Payload::Plain(b"hello"));

    // The subscription delivered the replicated events; members open them.
    let mut got = Vec::new();
    while got.len() < 300 {
        let ev = sub
            .recv_timeout(WAIT)
            .unwrap()
            .expect("the subscription delivers every event in time");
        if ev.kind != xaeroflux::EventKind::Application {
            continue;
        }
        let p = b.read_event_payload(&ev).unwrap();
        got.push(String::from_utf8(p.plaintext().unwrap().to_vec()).unwrap());
    }
    got.sort_by_key(|s| s[1..].parse::<u32>().unwrap());
    assert_eq!(got, want);
}

#[test]
fn a_member_publishes_its_key_in_its_signed_log_and_the_controller_adds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(&dir.path().join("a")), open(&dir.path().join("b")));
    let created = a.create_private_topic(None).unwrap();
    let t = created.topic.clone();
    b.private_topic(&created.name).unwrap();
    // b is not a member yet; it can still publish its key (plain, signed).
    let r = b.publish_member_key(&t).unwrap();
    assert!(b.append(b.new_event_in(&t, "too early")).is_err());
    sync_pair(&b, &a);
    let asks = a.published_member_keys(&t).unwrap();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].author, b.author());
    assert_eq!(asks[0].member_key, b.member_key().unwrap());
    assert_eq!(asks[0].seq, r.seq);
    // The controller adds what b published; b then reads and writes.
    a.add_member(&t, &asks[0].member_key).unwrap();
    a.append(a.new_event_in(&t, "welcome")).unwrap();
    sync_pair(&a, &b);
    assert_eq!(read_all(&b, &t), ["welcome"]);
    // After a rotation, the latest published key is the one listed.
    let new_key = b.rotate_member_key().unwrap();
    b.publish_member_key(&t).unwrap();
    sync_pair(&b, &a);
    let asks = a.published_member_keys(&t).unwrap();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].member_key, new_key);
    // A payload that merely looks alike is not an announcement.
    let mut bad = new_key.announcement();
    bad[4] = 2;
    assert_eq!(xaeroflux::MemberKey::from_announcement(&bad), None);
    assert_eq!(
        xaeroflux::MemberKey::from_announcement(&new_key.announcement()),
        Some(new_key)
    );
}

#[test]
fn a_mixed_batch_over_two_private_topics_and_a_plain_one_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let t1 = a.create_private_topic(None).unwrap().topic;
    let t2 = a.create_private_topic(None).unwrap().topic;
    let plain = Topic::new("plain").unwrap();
    // Some events first, so the batch starts mid-log.
    a.append(a.new_event_in(&t1, "before")).unwrap();
    for round in 0..3 {
        let batch: Vec<_> = (0..300)
            .map(|i| {
                let topic = [&t1, &plain, &t2][i % 3];
                a.new_event_in(topic, format!("{round}-{i}"))
            })
            .collect();
        a.append_batch(batch).unwrap();
    }
    let want = |k: usize| -> Vec<String> {
        (0..3)
            .flat_map(|round| {
                (0..300)
                    .filter(move |i| i % 3 == k)
                    .map(move |i| format!("{round}-{i}"))
            })
            .collect()
    };
    let mut w1 = vec!["before".to_string()];
    w1.extend(want(0));
    assert_eq!(read_all(&a, &t1), w1);
    assert_eq!(
        read_all(&a, &plain),
        want(1)
            .into_iter()
            .map(|s| format!("plain:{s}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(read_all(&a, &t2), want(2));
    // Reopened, the same.
    a.close().unwrap();
    let a = open(dir.path());
    assert_eq!(read_all(&a, &t2), want(2));
    let report = a.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
