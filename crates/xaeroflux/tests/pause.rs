// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Sleep and wake: a paused core holds no network, keeps appending and
//! reading, and on resume reconnects and catches up both ways.

use std::path::Path;
use std::time::Duration;

use xaeroflux::{Core, Error, NetError, NetMode, Topic};

const WAIT: Duration = Duration::from_secs(60);

fn node(dir: &Path) -> Core {
    Core::builder()
        .with_sync_backends(&["iroh", "iroh-gossip"])
        .with_network(NetMode::local_only())
        .with_sync_interval(Duration::from_millis(300))
        .open(dir)
        .unwrap()
}

fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        xaeroflux_testkit::wait_until(WAIT, cond),
        "timed out waiting for {what}"
    );
}

/// (author's log size) for every log of `topic` that `core` holds, sorted.
fn sizes(core: &Core, topic: &Topic) -> Vec<u64> {
    let mut v: Vec<u64> = core
        .topic_logs(&topic.id())
        .unwrap()
        .iter()
        .map(|l| l.size)
        .collect();
    v.sort();
    v
}

#[test]
fn a_paused_core_appends_offline_and_catches_up_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(&dir.path().join("a"));
    let b = node(&dir.path().join("b"));
    let chat = Topic::new("chat").unwrap();
    a.append(a.new_event_in(&chat, b"a0")).unwrap();
    b.append(b.new_event_in(&chat, b"b0")).unwrap();
    b.join(&chat, &[] as &[&str]).unwrap();
    a.join(&chat, &[b.node_ticket().unwrap()]).unwrap();
    wait_until("both hold both logs", || {
        sizes(&a, &chat) == [1, 1] && sizes(&b, &chat) == [1, 1]
    });
    let ticket = a.node_ticket().unwrap();

    a.pause().unwrap();
    assert!(a.is_paused());
    a.pause().unwrap(); // a second pause does nothing
    assert!(matches!(a.node_ticket(), Err(Error::Net(NetError::Paused))));
    // The store goes on while the network sleeps, on both sides.
    for i in 0..3 {
        a.append(a.new_event_in(&chat, format!("a-offline-{i}")))
            .unwrap();
        b.append(b.new_event_in(&chat, format!("b-offline-{i}")))
            .unwrap();
    }
    assert_eq!(a.iter_topic(&chat).count(), 5);
    assert_eq!(sizes(&a, &chat), [1, 4]);
    assert_eq!(sizes(&b, &chat), [1, 4]);

    a.resume().unwrap();
    assert!(!a.is_paused());
    a.resume().unwrap(); // so does a second resume
    assert_eq!(
        a.node_ticket().unwrap(),
        ticket,
        "the port was free: same ticket"
    );
    wait_until("both catch up", || {
        sizes(&a, &chat) == [4, 4] && sizes(&b, &chat) == [4, 4]
    });
    let la = a.topic_logs(&chat.id()).unwrap();
    for l in &la {
        assert_eq!(a.root(&l.log).unwrap(), b.root(&l.log).unwrap());
    }

    // A topic joined while paused is joined on resume.
    let later = Topic::new("later").unwrap();
    b.append(b.new_event_in(&later, b"waiting")).unwrap();
    b.join(&later, &[] as &[&str]).unwrap();
    a.pause().unwrap();
    a.join(&later, &[b.node_ticket().unwrap()]).unwrap();
    a.resume().unwrap();
    wait_until("the topic joined while paused arrives", || {
        a.iter_topic(&later).count() == 1
    });
    a.close().unwrap();
    b.close().unwrap();
}
