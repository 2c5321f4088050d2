// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Live mode: after the catch-up a session stays open, each side announces
//! its new checkpoints with `CHECKPOINT`, and the other pulls them at once
//! (the transport for peers without gossip, such as onion services). New
//! events travel both ways and across a chain of peers, nothing is echoed
//! back, a peer without live mode ends the session as before, and a forged
//! or out-of-place announcement or request ends the session.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};
use xaeroflux_sync::codec::PageRequest;
use xaeroflux_sync::driver::{self, RunOptions};
use xaeroflux_sync::{MemStore, Message, Outcome, Session, SessionConfig, SyncError, pipe};
use xaeroflux_types::{LogId, Topic};

const WAIT: Duration = Duration::from_secs(20);

/// Forwards what `watch` reports until `stop`'s sender is dropped; the
/// returned channel then closes, which ends a live session.
fn feed(watch: Receiver<LogId>, stop: Receiver<()>) -> Receiver<LogId> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        loop {
            select! {
                recv(watch) -> m => match m {
                    Ok(log) => {
                        if tx.send(log).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                recv(stop) -> _ => return,
            }
        }
    });
    rx
}

/// Runs one live session of `store` over a pipe end, fed by the store's
/// own changes until `stop` closes.
fn live_side(
    store: &MemStore,
    (r, w): (xaeroflux_sync::PipeReader, xaeroflux_sync::PipeWriter),
    stop: Receiver<()>,
) -> Result<Outcome, SyncError> {
    let mut opts = RunOptions::new(WAIT);
    opts.live = Some(feed(store.watch(), stop));
    driver::run_with(store, SessionConfig::default(), r, w, opts)
}

/// Waits (bounded) until `store` holds `log` at `size`, woken by its own
/// change reports.
fn wait_size(store: &MemStore, changes: &Receiver<LogId>, log: &LogId, size: u64) {
    xaeroflux_testkit::wait_log_size(store, changes, log, size, WAIT).unwrap();
}

fn stop_pair() -> (Sender<()>, Receiver<()>) {
    unbounded()
}

#[test]
fn new_events_travel_both_ways_over_one_live_session() {
    let chat = Topic::new("chat").unwrap();
    let (a, b) = (MemStore::with_seed(1), MemStore::with_seed(2));
    let a_log = (0..3).map(|i| a.append(&chat, &[i])).last().unwrap();
    let (b_changes, a_changes) = (b.watch(), a.watch());
    let ((stop_a, stop_a_rx), (stop_b, stop_b_rx)) = (stop_pair(), stop_pair());
    let (ends_a, ends_b) = pipe();
    let (oa, ob) = std::thread::scope(|s| {
        let ha = s.spawn(|| live_side(&a, ends_a, stop_a_rx));
        let hb = s.spawn(|| live_side(&b, ends_b, stop_b_rx));
        // The catch-up.
        wait_size(&b, &b_changes, &a_log, 3);
        // Then each round's appends reach b while the session stays open.
        let mut size = 3;
        for round in 1..=5u8 {
            for i in 0..round {
                a.append(&chat, &[round, i]);
            }
            size += u64::from(round);
            wait_size(&b, &b_changes, &a_log, size);
            assert_eq!(b.root(&a_log), a.root(&a_log), "round {round}");
        }
        // And the other way.
        let b_log = b.append(&chat, b"from b");
        wait_size(&a, &a_changes, &b_log, 1);
        drop(stop_a);
        drop(stop_b);
        (ha.join().unwrap().unwrap(), hb.join().unwrap().unwrap())
    });
    assert_eq!(a.heads(), b.heads());
    assert_eq!(ob.events_in, 3 + 15);
    assert_eq!(oa.events_in, 1);
    // Each round announced at least once (appends that land before the
    // driver looks are announced together), and every announcement made
    // it across.
    assert!((5..=15).contains(&oa.checkpoints_out), "{oa:?}");
    assert_eq!(ob.checkpoints_in, oa.checkpoints_out);
    // b announced its own log once, and none of what it pulled from a
    // back to a.
    assert_eq!(ob.checkpoints_out, 1, "{ob:?}");
    assert_eq!(oa.checkpoints_in, 1);
    assert!(oa.error.is_none() && ob.error.is_none());
}

#[test]
fn announcements_travel_along_a_chain_of_live_sessions() {
    // a - b - c: a and c never meet; b relays in both directions, because
    // what b pulls is a change of b's store and is announced onwards.
    let chat = Topic::new("chat").unwrap();
    let (a, b, c) = (
        MemStore::with_seed(11),
        MemStore::with_seed(12),
        MemStore::with_seed(13),
    );
    let a_log = a.append(&chat, b"a0");
    let c_log = c.append(&chat, b"c0");
    let (a_changes, c_changes) = (a.watch(), c.watch());
    let (stops, stopped): (Vec<Sender<()>>, Vec<Receiver<()>>) =
        (0..4).map(|_| stop_pair()).unzip();
    let [s0, s1, s2, s3]: [Receiver<()>; 4] = stopped.try_into().unwrap();
    let (ab_a, ab_b) = pipe();
    let (bc_b, bc_c) = pipe();
    let (ra, rb, rc) = (&a, &b, &c);
    let outcomes = std::thread::scope(|s| {
        let hs = vec![
            s.spawn(move || live_side(ra, ab_a, s0)),
            s.spawn(move || live_side(rb, ab_b, s1)),
            s.spawn(move || live_side(rb, bc_b, s2)),
            s.spawn(move || live_side(rc, bc_c, s3)),
        ];
        wait_size(&c, &c_changes, &a_log, 1);
        wait_size(&a, &a_changes, &c_log, 1);
        for i in 1..=20u8 {
            a.append(&chat, &[b'a', i]);
            c.append(&chat, &[b'c', i]);
        }
        wait_size(&c, &c_changes, &a_log, 21);
        wait_size(&a, &a_changes, &c_log, 21);
        drop(stops);
        hs.into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(a.heads(), c.heads());
    assert_eq!(a.heads(), b.heads());
    // b pulled each of a's and c's events once, though two sessions ran.
    assert_eq!(outcomes[1].events_in + outcomes[2].events_in, 42);
    assert_eq!(outcomes[0].events_in, 21);
    assert_eq!(outcomes[3].events_in, 21);
}

#[test]
fn a_peer_without_live_mode_ends_the_session_after_the_catch_up() {
    let chat = Topic::new("chat").unwrap();
    let (a, b) = (MemStore::with_seed(21), MemStore::with_seed(22));
    let log = a.append(&chat, b"hi");
    let (_keep_open, stop) = stop_pair();
    let (ends_a, (br, bw)) = pipe();
    let (oa, ob) = std::thread::scope(|s| {
        let ha = s.spawn(|| live_side(&a, ends_a, stop));
        let ob = driver::run(&b, SessionConfig::default(), br, bw, WAIT).unwrap();
        (ha.join().unwrap().unwrap(), ob)
    });
    assert_eq!(ob.events_in, 1);
    assert_eq!(b.root(&log), a.root(&log));
    assert_eq!(oa.checkpoints_out, 0);
}

/// Two sessions driven by hand: bytes moved and store writes applied until
/// neither has anything more to say.
fn pump<'s>(
    a: &mut Session<'s, MemStore>,
    sa: &MemStore,
    b: &mut Session<'s, MemStore>,
    sb: &MemStore,
) {
    for _ in 0..1000 {
        let moved = step(a, b, sb) | step(b, a, sa) | apply(a, sa) | apply(b, sb);
        if !moved {
            return;
        }
    }
    panic!("the sessions did not settle");
}

/// Moves `from`'s output to `to`; whether there was any.
fn step(
    from: &mut Session<'_, MemStore>,
    to: &mut Session<'_, MemStore>,
    store: &MemStore,
) -> bool {
    let out = from.take_output();
    if out.is_empty() {
        return false;
    }
    to.receive(&out).unwrap();
    apply(to, store);
    true
}

/// Applies the store writes a session asked for; whether there were any.
fn apply(s: &mut Session<'_, MemStore>, store: &MemStore) -> bool {
    let acts = s.take_actions();
    let any = !acts.is_empty();
    for act in acts {
        let r = store.apply(act.op);
        s.complete(act.token, r).unwrap();
    }
    any
}

fn encoded(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    out
}

#[test]
fn forged_or_out_of_place_live_messages_end_the_session() {
    let chat = Topic::new("chat").unwrap();
    let other = Topic::new("other").unwrap();
    let (a, b, c) = (
        MemStore::with_seed(31),
        MemStore::with_seed(32),
        MemStore::with_seed(33),
    );
    let a_log = a.append(&chat, b"a");
    let c_log = c.append(&chat, b"c");
    c.append(&other, b"c");
    let c_note = xaeroflux_sync::SyncStore::checkpoint_of(&c, &c_log)
        .unwrap()
        .unwrap()
        .note;
    let live = || {
        SessionConfig::default()
            .with_topics([chat.clone()])
            .with_live()
    };

    // A CHECKPOINT in a session that is not live.
    let (mut sa, mut sb) = (
        Session::new(&a, SessionConfig::default().with_topics([chat.clone()])).unwrap(),
        Session::new(&b, SessionConfig::default().with_topics([chat.clone()])).unwrap(),
    );
    pump(&mut sa, &a, &mut sb, &b);
    assert!(sb.is_finished() && !sb.is_live());
    let late = Message::Checkpoint {
        log: a_log,
        note: c_note.clone(),
    };
    let err = sb.receive(&encoded(&late)).unwrap_err();
    assert!(matches!(err, SyncError::Protocol(_)), "{err:?}");
    // One side live, the other not: the session ends as before.
    let (mut sa, mut sb) = (
        Session::new(&a, live()).unwrap(),
        Session::new(&b, SessionConfig::default().with_topics([chat.clone()])).unwrap(),
    );
    pump(&mut sa, &a, &mut sb, &b);
    assert!(sa.is_finished() && sb.is_finished() && !sa.is_live());

    let live_pair = || {
        let (mut sa, mut sb) = (
            Session::new(&a, live()).unwrap(),
            Session::new(&b, live()).unwrap(),
        );
        pump(&mut sa, &a, &mut sb, &b);
        assert!(sa.is_live() && sb.is_live() && sb.live_idle());
        assert_eq!(b.root(&a_log), a.root(&a_log));
        (sa, sb)
    };

    // A checkpoint of a's log signed by someone else (c's note).
    let (_sa, mut sb) = live_pair();
    let forged = Message::Checkpoint {
        log: a_log,
        note: c_note.clone(),
    };
    let err = sb.receive(&encoded(&forged)).unwrap_err();
    assert!(matches!(err, SyncError::Rejected(_)), "{err:?}");
    assert!(sb.is_finished());

    // A checkpoint of a topic the session did not agree on.
    let (_sa, mut sb) = live_pair();
    let elsewhere = LogId {
        author: c_log.author,
        topic: other.id(),
    };
    let err = sb
        .receive(&encoded(&Message::Checkpoint {
            log: elsewhere,
            note: c_note,
        }))
        .unwrap_err();
    assert!(matches!(err, SyncError::Protocol(_)), "{err:?}");

    // A request past what a side announced.
    let (mut sa, _sb) = live_pair();
    let greedy = Message::PageRequest(PageRequest {
        log: a_log,
        from: 0,
        to: 5,
        max_events: 5,
        want_base: false,
    });
    let err = sa.receive(&encoded(&greedy)).unwrap_err();
    assert!(matches!(err, SyncError::Protocol(_)), "{err:?}");

    // A catch-up message once live.
    let (_sa, mut sb) = live_pair();
    let err = sb.receive(&encoded(&Message::SyncDone)).unwrap_err();
    assert!(matches!(err, SyncError::Protocol(_)), "{err:?}");

    // And a well-formed announcement is pulled at once, by hand too.
    let (mut sa, mut sb) = live_pair();
    a.append(&chat, b"a2");
    sa.announce(a_log).unwrap();
    pump(&mut sa, &a, &mut sb, &b);
    assert_eq!(b.root(&a_log), a.root(&a_log));
    assert_eq!(
        (sa.outcome().checkpoints_out, sb.outcome().events_in),
        (1, 1)
    );
    assert!(sb.live_idle());
    // Announcing the same size again sends nothing.
    sa.announce(a_log).unwrap();
    assert!(sa.take_output().is_empty());
}

#[test]
fn a_live_session_whose_peer_closes_still_counts_the_page_it_was_committing() {
    let chat = Topic::new("chat").unwrap();
    let (a, b) = (MemStore::with_seed(51), MemStore::with_seed(52));
    let a_log = a.append(&chat, b"a");
    let live = || SessionConfig::default().with_live();
    let (mut sa, mut sb) = (
        Session::new(&a, live()).unwrap(),
        Session::new(&b, live()).unwrap(),
    );
    pump(&mut sa, &a, &mut sb, &b);
    assert!(sb.is_live());
    a.append(&chat, b"a2");
    sa.announce(a_log).unwrap();
    // CHECKPOINT to b, its PAGE_REQUEST to a, the page back to b.
    sb.receive(&sa.take_output()).unwrap();
    sa.receive(&sb.take_output()).unwrap();
    sb.receive(&sa.take_output()).unwrap();
    let writes = sb.take_actions();
    assert_eq!(writes.len(), 1, "the page waits for the store");
    // The peer goes before the store answers: the session waits for it.
    sb.peer_closed().unwrap();
    assert!(!sb.is_finished());
    sb.announce(a_log).unwrap();
    for w in writes {
        let r = b.apply(w.op);
        sb.complete(w.token, r).unwrap();
    }
    assert!(sb.is_finished());
    assert!(
        sb.take_output().is_empty(),
        "nothing is sent after the peer went"
    );
    assert_eq!(sb.outcome().events_in, 2);
    assert_eq!(b.root(&a_log), a.root(&a_log));
}
