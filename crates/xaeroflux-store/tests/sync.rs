// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Sessions between real stores over the in-memory pipe and TCP:
//! convergence, incremental cost, resume, and peers that misbehave.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use xaeroflux_merkle::Hash;
use xaeroflux_store::{
    LogId, NewEvent, Replication, Store, StoreError, StoreOptions, Topic, TopicId,
};
use xaeroflux_sync::codec::{PeakEntry, TopicEntry};
use xaeroflux_sync::{
    Done, EventRange, Outcome, SessionConfig, StoreFault, StoreOp, SyncError, SyncStore, driver,
    pipe,
};

const T: Duration = Duration::from_secs(20);

fn store(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            page_size: Some(4096),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn append(s: &Store, topic: &str, n: u64, tag: u8) {
    let t = Topic::new(topic).unwrap();
    let mut i = 0;
    while i < n {
        let k = (n - i).min(500);
        let evs = (0..k)
            .map(|j| NewEvent::application(&t, vec![tag; ((i + j) % 200) as usize]))
            .collect();
        s.append_batch(evs).unwrap();
        i += k;
    }
}

/// Runs a session between `a` and `b` over the pipe; returns both outcomes.
fn sync_pair<A: SyncStore + Sync + ?Sized, B: SyncStore + Sync + ?Sized>(
    a: &A,
    b: &B,
    ca: SessionConfig,
    cb: SessionConfig,
) -> (Result<Outcome, SyncError>, Result<Outcome, SyncError>) {
    let ((ar, aw), (br, bw)) = pipe();
    std::thread::scope(|s| {
        let t = s.spawn(move || driver::run(a, ca, ar, aw, T));
        let rb = driver::run(b, cb, br, bw, T);
        (t.join().unwrap(), rb)
    })
}

/// Every log: size and root.
fn heads(s: &Store) -> BTreeMap<LogId, (u64, Hash)> {
    s.logs()
        .unwrap()
        .into_iter()
        .map(|i| (i.log, (i.size, i.root)))
        .collect()
}

fn view(s: &Store, topic: &str) -> Vec<Vec<u8>> {
    s.iter_topic(&Topic::new(topic).unwrap())
        .unwrap()
        .map(|e| e.unwrap().canonical_bytes().to_vec())
        .collect()
}

#[test]
fn two_stores_converge_and_a_third_gets_both_through_one() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, c) = (
        store(dirs[0].path()),
        store(dirs[1].path()),
        store(dirs[2].path()),
    );
    // Random sizes per store and topic (0: the store has no log there),
    // with a power of two and a single event forced in.
    let seed = std::env::var("XF_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(1)
        });
    eprintln!("seed {seed} (set XF_TEST_SEED to repeat)");
    let mut x = seed;
    let mut rng = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut sizes = [[0u64; 3]; 2];
    for side in &mut sizes {
        for size in side.iter_mut() {
            *size = match rng(4) {
                0 => 0,
                _ => rng(700),
            };
        }
    }
    sizes[0][0] = 1 << (5 + rng(4)); // 32 to 256
    sizes[1][1] = 1;
    for (store, side) in [(&a, sizes[0]), (&b, sizes[1])] {
        for (t, n) in ["t1", "t2", "t3"].iter().zip(side) {
            append(store, t, n, 1 + rng(200) as u8);
        }
    }
    let (sum_a, sum_b) = (sizes[0].iter().sum::<u64>(), sizes[1].iter().sum::<u64>());
    let logs = sizes.iter().flatten().filter(|n| **n > 0).count();
    let (ra, rb) = sync_pair(&a, &b, SessionConfig::default(), SessionConfig::default());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.events_in, sum_b);
    assert_eq!(rb.events_in, sum_a);
    assert_eq!(ra.events_out, rb.events_in);
    assert_eq!(heads(&a), heads(&b));
    assert_eq!(heads(&a).len(), logs);
    for t in ["t1", "t2", "t3"] {
        assert_eq!(view(&a, t), view(&b, t), "topic {t}");
    }
    // C meets only B, and gets A's logs from it.
    let (_, rc) = sync_pair(&b, &c, SessionConfig::default(), SessionConfig::default());
    assert_eq!(rc.unwrap().events_in, sum_a + sum_b);
    assert_eq!(heads(&c), heads(&a));
    assert!(c.verify().unwrap().is_ok());
    // A second session moves nothing.
    let (ra, rb) = sync_pair(&a, &b, SessionConfig::default(), SessionConfig::default());
    assert_eq!((ra.unwrap().events_in, rb.unwrap().events_in), (0, 0));
}

#[test]
fn replicated_events_reach_subscribers_like_local_ones() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    let t = Topic::new("feed").unwrap();
    append(&b, "feed", 2, 9);
    let mut sub = b.subscribe(xaeroflux_store::Filter::topic(&t), 0).unwrap();
    append(&a, "feed", 50, 1);
    let _ = sync_pair(&a, &b, SessionConfig::default(), SessionConfig::default());
    let mut per_log: BTreeMap<LogId, Vec<u64>> = BTreeMap::new();
    for _ in 0..52 {
        let ev = sub.recv_timeout(T).unwrap().expect("an event");
        per_log.entry(ev.log).or_default().push(ev.seq);
    }
    assert_eq!(per_log[&a.own_log(&t)], (0..50).collect::<Vec<_>>());
    assert_eq!(per_log[&b.own_log(&t)], vec![0, 1]);
}

#[test]
fn two_sessions_pulling_the_same_log_at_once_both_end_well() {
    // B pulls A's log from A and from a replica of it at the same time:
    // whichever page lands second finds part or all of itself held, and
    // only the rest is imported, still checked against the signed root.
    let (da, dr, db) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (a, r, b) = (store(da.path()), store(dr.path()), store(db.path()));
    append(&a, "chat", 20_000, 1);
    let (x, y) = sync_pair(&a, &r, SessionConfig::default(), SessionConfig::default());
    x.unwrap();
    y.unwrap();
    let small = || SessionConfig {
        page_events: 700,
        ..SessionConfig::default()
    };
    let (from_a, from_r) = std::thread::scope(|s| {
        let t = s.spawn(|| sync_pair(&a, &b, small(), small()).1);
        let u = sync_pair(&r, &b, small(), small()).1;
        (t.join().unwrap(), u)
    });
    let (oa, or) = (from_a.unwrap(), from_r.unwrap());
    assert_eq!(heads(&a), heads(&b));
    // Between them, every event was imported once.
    assert_eq!(oa.events_in + or.events_in, 20_000, "{oa:?} {or:?}");
}

#[test]
fn topics_restrict_what_moves() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    append(&a, "wanted", 10, 1);
    append(&a, "other", 10, 2);
    let only = SessionConfig::default().with_topics([Topic::new("wanted").unwrap()]);
    let (_, rb) = sync_pair(&a, &b, SessionConfig::default(), only);
    assert_eq!(rb.unwrap().events_in, 10);
    assert_eq!(view(&b, "other").len(), 0);
    assert_eq!(view(&b, "wanted"), view(&a, "wanted"));
}

#[test]
fn one_new_event_moves_with_a_logarithmic_number_of_bytes() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    for (t, n) in [("t1", 5000u64), ("t2", 300), ("t3", 77)] {
        append(&a, t, n, 1);
    }
    let _ = sync_pair(&a, &b, SessionConfig::default(), SessionConfig::default());
    assert_eq!(heads(&a), heads(&b));
    let t1 = Topic::new("t1").unwrap();
    let ev = a
        .append(NewEvent::application(&t1, vec![9u8; 100]))
        .unwrap();
    let (ra, rb) = sync_pair(&a, &b, SessionConfig::default(), SessionConfig::default());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((rb.events_in, rb.pages_in, rb.logs_in), (1, 1, 1));
    assert_eq!(ra.pages_out, 1);
    assert_eq!(b.mmr_root(&ev.log).unwrap(), a.mmr_root(&ev.log).unwrap());
    // What B received: A's HELLO (a digest of its heads per topic), one
    // PEAKS per topic, listing checkpoints only where the digests differ
    // (the changed topic, whose one log changed), an empty DIFF,
    // SYNC_DONE, and one page: the event, a proof of at most 2 log2(n)
    // hashes, and (B held events of the log) the server's root at B's size
    // with the proof from there. Nothing for the logs that did not change.
    let frame = 4 + 1;
    let hello = frame + 4 + 2 + 32 + 4 + 1 + 2 + 3 * (32 + 2 + 2 + 32);
    let per_log_peak = 32 + 8 + 2 + 320;
    let peaks = 3 * (frame + 32 + 4) + per_log_peak;
    let proof = 2 * 13 * 32;
    let page = frame + 64 + 8 + 4 + (4 + 24 + 100) + 1 + proof + (1 + 32 + 1 + proof);
    let bound = (hello + peaks + (frame + 4) + frame + page) as u64;
    assert!(
        rb.bytes_in <= bound,
        "{} bytes in, bound {bound}",
        rb.bytes_in
    );
    assert_eq!(ra.events_in, 0);
}

/// A reader that reports the end of the stream after `limit` bytes.
struct CutAfter<R> {
    inner: R,
    left: usize,
}

impl<R: Read> Read for CutAfter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(self.left);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

#[test]
fn an_interrupted_session_keeps_what_it_verified_and_the_next_resumes() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    append(&a, "big", 20_000, 7);
    let log = a.own_log(&Topic::new("big").unwrap());
    let small = SessionConfig {
        page_events: 500,
        window: 1,
        ..SessionConfig::default()
    };
    // B's side of the stream ends after about a third of the data.
    let ((ar, aw), (br, bw)) = pipe();
    let br = CutAfter {
        inner: br,
        left: 700_000,
    };
    let rb = std::thread::scope(|s| {
        let c = small.clone();
        let a = &a;
        let t = s.spawn(move || driver::run(a, c, ar, aw, T));
        let rb = driver::run(&b, small.clone(), br, bw, T);
        let _ = t.join().unwrap();
        rb
    });
    assert!(rb.is_err(), "{rb:?}");
    let kept = b.log_size(&log).unwrap();
    assert!(kept > 0 && kept < 20_000, "kept {kept}");
    assert_eq!(
        b.root_at(&log, kept).unwrap(),
        a.root_at(&log, kept).unwrap()
    );
    assert!(b.verify().unwrap().is_ok());
    let (_, rb) = sync_pair(&a, &b, small.clone(), small);
    assert_eq!(rb.unwrap().events_in, 20_000 - kept);
    assert_eq!(b.mmr_root(&log).unwrap(), a.mmr_root(&log).unwrap());
}

#[test]
fn sessions_run_over_tcp() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    append(&a, "t", 3000, 1);
    append(&b, "t", 10, 2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (ra, rb) = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let (conn, _) = listener.accept().unwrap();
            driver::run_tcp(&a, SessionConfig::default(), conn, T)
        });
        let conn = std::net::TcpStream::connect(addr).unwrap();
        let rb = driver::run_tcp(&b, SessionConfig::default(), conn, T);
        (t.join().unwrap(), rb)
    });
    assert_eq!(ra.unwrap().events_in, 10);
    assert_eq!(rb.unwrap().events_in, 3000);
    assert_eq!(heads(&a), heads(&b));
}

/// Live mode over TCP: the logs of a store's commits, until `stop`'s
/// sender is dropped.
fn commit_feed(
    s: &Store,
    stop: crossbeam_channel::Receiver<()>,
) -> (
    crossbeam_channel::Receiver<LogId>,
    xaeroflux_store::reactive::SubscriptionGuard,
) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let guard = s.commits().unwrap().subscribe_fn(move |c| {
        let _ = tx.send(c.log);
    });
    let (out, feed) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        loop {
            crossbeam_channel::select! {
                recv(rx) -> m => match m {
                    Ok(log) if out.send(log).is_ok() => {}
                    _ => return,
                },
                recv(stop) -> _ => return,
            }
        }
    });
    (feed, guard)
}

/// Waits (bounded) until `s` holds `n` events of `log`, woken by its
/// commits.
fn wait_for_size(s: &Store, seen: &crossbeam_channel::Receiver<LogId>, log: &LogId, n: u64) {
    assert!(
        xaeroflux_testkit::wait_on(seen, T, || s.log_size(log).unwrap() == n),
        "{log}: {} of {n} events after {T:?}",
        s.log_size(log).unwrap()
    );
}

#[test]
fn live_sessions_over_tcp_carry_appends_as_they_commit() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    append(&a, "t", 100, 1);
    let a_log = LogId {
        author: a.author(),
        topic: Topic::new("t").unwrap().id(),
    };
    let b_log = LogId {
        author: b.author(),
        topic: a_log.topic,
    };
    let ((stop_a, stop_a_rx), (stop_b, stop_b_rx)) = (
        crossbeam_channel::unbounded::<()>(),
        crossbeam_channel::unbounded::<()>(),
    );
    let (feed_a, _ga) = commit_feed(&a, stop_a_rx);
    let (feed_b, _gb) = commit_feed(&b, stop_b_rx);
    let (_keep_a, a_seen_stop) = crossbeam_channel::unbounded::<()>();
    let (_keep_b, b_seen_stop) = crossbeam_channel::unbounded::<()>();
    let (a_seen, _gsa) = commit_feed(&a, a_seen_stop);
    let (b_seen, _gsb) = commit_feed(&b, b_seen_stop);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (oa, ob) = std::thread::scope(|s| {
        let ta = s.spawn(|| {
            let (conn, _) = listener.accept().unwrap();
            let mut opts = driver::RunOptions::new(T);
            opts.live = Some(feed_a);
            driver::run_tcp_with(&a, SessionConfig::default(), conn, opts)
        });
        let tb = s.spawn(|| {
            let conn = std::net::TcpStream::connect(addr).unwrap();
            let mut opts = driver::RunOptions::new(T);
            opts.live = Some(feed_b);
            driver::run_tcp_with(&b, SessionConfig::default(), conn, opts)
        });
        wait_for_size(&b, &b_seen, &a_log, 100);
        for round in 1..=3u64 {
            append(&a, "t", 50, round as u8);
            wait_for_size(&b, &b_seen, &a_log, 100 + 50 * round);
        }
        append(&b, "t", 10, 9);
        wait_for_size(&a, &a_seen, &b_log, 10);
        drop(stop_a);
        drop(stop_b);
        (ta.join().unwrap().unwrap(), tb.join().unwrap().unwrap())
    });
    assert_eq!(heads(&a), heads(&b));
    assert_eq!(ob.events_in, 250);
    assert_eq!(oa.events_in, 10);
    assert!(oa.checkpoints_out >= 3, "{oa:?}");
    assert_eq!(
        ob.checkpoints_out, 1,
        "nothing pulled from a is announced back: {ob:?}"
    );
}

#[test]
fn live_nodes_over_tcp_relay_between_real_stores() {
    use std::sync::Arc;
    use xaeroflux_sync::live::{LiveConfig, LiveNode, TcpListen, TcpTransport};
    // a - b - c over TCP: a and c only dial b; b relays what it imports,
    // because an import is a commit of b's store and is announced onwards.
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let [a, b, c]: [Arc<Store>; 3] = [0, 1, 2].map(|i| Arc::new(store(dirs[i].path())));
    append(&a, "t", 300, 1);
    append(&c, "t", 20, 3);
    let topic = Topic::new("t").unwrap().id();
    let (a_log, c_log) = (
        LogId {
            author: a.author(),
            topic,
        },
        LogId {
            author: c.author(),
            topic,
        },
    );
    let config = LiveConfig {
        retry: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..LiveConfig::default()
    };
    let listener = TcpListen::bind("127.0.0.1:0").unwrap();
    let b_addr = listener.local_addr().to_string();
    let mut keep = Vec::new();
    let mut node = |s: &Arc<Store>, l: Option<TcpListen>| {
        let (stop, stopped) = crossbeam_channel::unbounded::<()>();
        let (feed, guard) = commit_feed(s, stopped);
        keep.push((stop, guard));
        let n = LiveNode::start(
            s.clone(),
            Arc::new(TcpTransport),
            l.map(|l| Box::new(l) as Box<dyn xaeroflux_sync::live::Listener>),
            config.clone(),
        )
        .unwrap();
        n.follow(feed);
        n
    };
    let nb = node(&b, Some(listener));
    let na = node(&a, None);
    let nc = node(&c, None);
    let (_ka, a_stop) = crossbeam_channel::unbounded::<()>();
    let (_kc, c_stop) = crossbeam_channel::unbounded::<()>();
    let (a_seen, _ga) = commit_feed(&a, a_stop);
    let (c_seen, _gc) = commit_feed(&c, c_stop);
    na.add_peer(&b_addr);
    nc.add_peer(&b_addr);
    wait_for_size(&c, &c_seen, &a_log, 300);
    wait_for_size(&a, &a_seen, &c_log, 20);
    for round in 1..=3u64 {
        append(&a, "t", 100, 10 + round as u8);
        append(&c, "t", 10, 20 + round as u8);
        wait_for_size(&c, &c_seen, &a_log, 300 + 100 * round);
        wait_for_size(&a, &a_seen, &c_log, 20 + 10 * round);
    }
    na.stop();
    nc.stop();
    nb.stop();
    assert_eq!(heads(&a), heads(&b));
    assert_eq!(heads(&a), heads(&c));
    for s in [&a, &b, &c] {
        assert_eq!(view(s, "t").len(), 650);
    }
}

// ------------------------------------------------------------ bad peers

#[derive(Clone, Copy, Debug)]
enum Fault {
    AlterPayload,
    Reorder,
    DropEvent,
    WrongProof,
    TruncatedProof,
    ForeignSignature,
    ClaimsMore,
}

/// Serves `inner`'s logs with one fault.
struct Evil<'a> {
    inner: &'a Store,
    fault: Fault,
    other_key: &'a Store,
}

impl SyncStore for Evil<'_> {
    fn author(&self) -> [u8; 32] {
        self.inner.author()
    }
    fn topics(&self) -> Result<Vec<TopicEntry>, StoreFault> {
        SyncStore::topics(self.inner)
    }
    fn peaks(&self, topic: &TopicId) -> Result<Vec<PeakEntry>, StoreFault> {
        let mut p = SyncStore::peaks(self.inner, topic)?;
        for e in &mut p {
            match self.fault {
                Fault::ForeignSignature => {
                    // The same checkpoint body, signed by another store's key.
                    let log = LogId {
                        author: e.author,
                        topic: *topic,
                    };
                    let cp = xaeroflux_merkle::Checkpoint {
                        origin: log.origin(),
                        size: e.size,
                        root: self.inner.mmr_root(&log).map_err(StoreFault::from)?,
                    };
                    let key = ed25519_dalek_key(self.other_key);
                    e.note = xaeroflux_merkle::sign_checkpoint(&cp, &key).note;
                }
                Fault::ClaimsMore => {}
                _ => {}
            }
        }
        Ok(p)
    }
    fn log_size(&self, log: &LogId) -> Result<u64, StoreFault> {
        SyncStore::log_size(self.inner, log)
    }
    fn root_at(&self, log: &LogId, size: u64) -> Result<Hash, StoreFault> {
        SyncStore::root_at(self.inner, log, size)
    }
    fn read_events(&self, log: &LogId, range: EventRange) -> Result<Vec<Vec<u8>>, StoreFault> {
        let mut v = SyncStore::read_events(self.inner, log, range)?;
        match self.fault {
            Fault::AlterPayload => {
                if let Some(e) = v.get_mut(3) {
                    let last = e.len() - 1;
                    e[last] ^= 0x40;
                }
            }
            Fault::Reorder => v.swap(1, 2),
            Fault::DropEvent => {
                v.remove(4);
            }
            Fault::ClaimsMore => v.clear(),
            _ => {}
        }
        Ok(v)
    }
    fn prove_consistency(&self, log: &LogId, old: u64, new: u64) -> Result<Vec<Hash>, StoreFault> {
        let mut p = SyncStore::prove_consistency(self.inner, log, old, new)?;
        match self.fault {
            Fault::WrongProof => {
                if let Some(h) = p.first_mut() {
                    h[7] ^= 1;
                }
            }
            Fault::TruncatedProof => {
                p.pop();
            }
            _ => {}
        }
        Ok(p)
    }
    fn start(&self, op: StoreOp, done: Done) {
        SyncStore::start(self.inner, op, done)
    }
}

fn ed25519_dalek_key(s: &Store) -> ed25519_dalek::SigningKey {
    let bytes = std::fs::read(s.dir().join("identity.key")).unwrap();
    let secret: [u8; 32] = bytes[8..40].try_into().unwrap();
    ed25519_dalek::SigningKey::from_bytes(&secret)
}

/// Everything observable about a store's logs.
fn snapshot(s: &Store) -> (BTreeMap<LogId, (u64, Hash)>, u64) {
    (heads(s), s.stat().unwrap().events)
}

#[test]
fn a_peer_serving_bad_data_is_refused_and_nothing_is_stored() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, other) = (
        store(dirs[0].path()),
        store(dirs[1].path()),
        store(dirs[2].path()),
    );
    append(&a, "t", 700, 1);
    // B already holds part of the log, so a refused page would extend it.
    let part = SessionConfig {
        page_events: 100,
        window: 1,
        ..SessionConfig::default()
    };
    let (_, rb) = sync_pair(&a, &b, part.clone(), part.clone());
    rb.unwrap();
    append(&a, "t", 300, 1);
    let before = snapshot(&b);
    for fault in [
        Fault::AlterPayload,
        Fault::Reorder,
        Fault::DropEvent,
        Fault::WrongProof,
        Fault::TruncatedProof,
        Fault::ForeignSignature,
        Fault::ClaimsMore,
    ] {
        let evil = Evil {
            inner: &a,
            fault,
            other_key: &other,
        };
        let (ra, rb) = sync_pair(&evil, &b, part.clone(), part.clone());
        match rb {
            Err(SyncError::Rejected(why)) => assert!(!why.is_empty()),
            other => panic!("{fault:?}: {other:?}"),
        }
        // The bad peer was told why.
        match ra {
            Err(SyncError::Peer { code, reason }) => {
                assert!(code.is_rejection(), "{fault:?}: {code:?}");
                assert!(reason.contains("refused"), "{fault:?}: {reason}");
            }
            other => panic!("{fault:?}: the bad peer got {other:?}"),
        }
        assert_eq!(snapshot(&b), before, "{fault:?} changed the store");
    }
    // The honest peer still works.
    let (_, rb) = sync_pair(&a, &b, part.clone(), part);
    assert_eq!(rb.unwrap().events_in, 300);
}

/// Runs an honest session against raw bytes from a scripted peer, which
/// then keeps the stream open (stalls) or closes it.
fn against_raw(b: &Store, script: &[u8], then_close: bool) -> Result<Outcome, SyncError> {
    let ((ar, aw), (br, bw)) = pipe();
    let mut aw = aw;
    aw.write_all(script).unwrap();
    let keep = if then_close {
        drop(aw);
        None
    } else {
        Some(aw)
    };
    let r = driver::run(
        b,
        SessionConfig::default(),
        br,
        bw,
        Duration::from_millis(500),
    );
    drop(keep);
    drop(ar);
    r
}

fn hello_bytes(from: &Store) -> Vec<u8> {
    let s = xaeroflux_sync::Session::new(from, SessionConfig::default()).unwrap();
    let mut s = s;
    s.take_output()
}

// Long on purpose: a table of broken streams, each run against the same
// store and checked to leave it unchanged.
#[test]
fn broken_streams_are_refused_with_a_reason() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (store(da.path()), store(db.path()));
    append(&b, "t", 5, 1);
    append(&a, "t", 5, 2);
    let before = snapshot(&b);
    let hello = hello_bytes(&a);

    // A frame longer than the bound.
    let mut long = hello.clone();
    long.extend_from_slice(&(64u32 << 20).to_be_bytes());
    assert!(matches!(
        against_raw(&b, &long, true),
        Err(SyncError::FrameTooLong { .. })
    ));
    // A truncated frame, then the end of the stream.
    let cut = &hello[..hello.len() - 3];
    let r = against_raw(&b, cut, true);
    assert!(matches!(r, Err(SyncError::Closed)), "{r:?}");
    // Garbage.
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 73 % 251) as u8).collect();
    let r = against_raw(&b, &garbage, true);
    assert!(
        matches!(
            r,
            Err(SyncError::Malformed { .. } | SyncError::FrameTooLong { .. })
        ),
        "{r:?}"
    );
    // A message out of order: SYNC_DONE before anything.
    let mut done = Vec::new();
    xaeroflux_sync::Message::SyncDone.encode(&mut done).unwrap();
    assert!(matches!(
        against_raw(&b, &done, true),
        Err(SyncError::Protocol(_))
    ));
    // A stalled peer: HELLO, then silence.
    assert!(matches!(
        against_raw(&b, &hello, false),
        Err(SyncError::Timeout(_))
    ));
    // Another version.
    let mut v2 = hello.clone();
    v2[4 + 1 + 4] = 0;
    v2[4 + 1 + 5] = 2;
    assert!(matches!(
        against_raw(&b, &v2, true),
        Err(SyncError::Version(2))
    ));
    // A requester asking for more than was announced.
    let t = Topic::new("t").unwrap();
    let blog = b.own_log(&t);
    let mut script = Vec::new();
    for m in [
        xaeroflux_sync::Message::Hello {
            version: 1,
            node_id: [7; 32],
            caps: 1,
            all_topics: true,
            topics: vec![],
        },
        xaeroflux_sync::Message::Peaks {
            topic: t.id(),
            logs: vec![],
        },
        xaeroflux_sync::Message::Diff {
            wants: vec![xaeroflux_sync::codec::DiffEntry {
                log: blog,
                from: 0,
                to: 1000,
            }],
        },
        xaeroflux_sync::Message::PageRequest(xaeroflux_sync::codec::PageRequest {
            log: blog,
            from: 0,
            to: 1000,
            max_events: 10,
            want_base: false,
        }),
    ] {
        m.encode(&mut script).unwrap();
    }
    let r = against_raw(&b, &script, false);
    assert!(
        matches!(&r, Err(SyncError::Protocol(why)) if why.contains("announced")),
        "{r:?}"
    );
    assert_eq!(snapshot(&b), before);
}

/// A store with the same identity (author key) as `original`, in a new directory.
fn twin(original: &std::path::Path, dir: &std::path::Path) -> Store {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(original.join("identity.key"), dir.join("identity.key")).unwrap();
    store(dir)
}

#[test]
fn a_forked_log_is_refused_and_its_proof_kept() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = store(dirs[0].path());
    // A twin signs a different history of the same log (same author, topic).
    let twin_dir = dirs[1].path().join("twin");
    let a2 = twin(dirs[0].path(), &twin_dir);
    let c = store(dirs[2].path());
    append(&a, "t", 10, 1);
    append(&a2, "t", 6, 2);
    let log = a.own_log(&Topic::new("t").unwrap());
    assert_eq!(log, a2.own_log(&Topic::new("t").unwrap()));
    let (_, rc) = sync_pair(&a, &c, SessionConfig::default(), SessionConfig::default());
    assert_eq!(rc.unwrap().events_in, 10);
    let before = snapshot(&c);
    // The twin's head (6 events) disagrees with C's copy at size 6.
    let (_, rc) = sync_pair(&a2, &c, SessionConfig::default(), SessionConfig::default());
    let rc = rc.unwrap();
    assert_eq!(rc.forks, vec![log]);
    assert_eq!(rc.events_in, 0);
    assert_eq!(snapshot(&c), before);
    let forks = c.forks().unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].log, log);
    assert!(forks[0].verify().unwrap(), "the kept pair proves the fork");
    // Seeing it again keeps one proof.
    let _ = sync_pair(&a2, &c, SessionConfig::default(), SessionConfig::default());
    assert_eq!(c.forks().unwrap().len(), 1);
    // The twin's history grows past C's copy: its root at C's size tells
    // the fork from a lie, and nothing of it is imported.
    append(&a2, "t", 10, 2);
    let (_, rc) = sync_pair(&a2, &c, SessionConfig::default(), SessionConfig::default());
    let rc = rc.unwrap();
    assert_eq!((rc.forks.clone(), rc.events_in), (vec![log], 0));
    assert_eq!(snapshot(&c), before);
    let forks = c.forks().unwrap();
    assert_eq!(forks.len(), 2);
    assert!(forks.iter().all(|f| f.verify().unwrap()));
    assert!(forks.iter().any(|f| f.at == 10));
    // The honest author still extends C.
    append(&a, "t", 3, 1);
    let (_, rc) = sync_pair(&a, &c, SessionConfig::default(), SessionConfig::default());
    assert_eq!(rc.unwrap().events_in, 3);
    // The author's own stores see each other's heads as forks of their own
    // log, and neither is extended.
    let (ra, ra2) = sync_pair(&a, &a2, SessionConfig::default(), SessionConfig::default());
    assert_eq!(ra.unwrap().forks, vec![log]);
    assert_eq!(ra2.unwrap().forks, vec![log]);
    assert_eq!(a.log_size(&log).unwrap(), 13);
    assert_eq!(a2.log_size(&log).unwrap(), 16);
}

#[test]
fn damaged_fork_files_are_refused_or_fail_verification() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = store(dirs[0].path());
    let a2 = twin(dirs[0].path(), &dirs[1].path().join("twin"));
    let c = store(dirs[2].path());
    append(&a, "t", 9, 1);
    append(&a2, "t", 3, 2);
    let _ = sync_pair(&a, &c, SessionConfig::default(), SessionConfig::default());
    let _ = sync_pair(&a2, &c, SessionConfig::default(), SessionConfig::default());
    let forks_dir = dirs[2].path().join("forks");
    let file = std::fs::read_dir(&forks_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "fork"))
        .unwrap();
    let good = std::fs::read(&file).unwrap();
    assert!(c.forks().unwrap()[0].verify().unwrap());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= if i % 2 == 0 { 0x01 } else { 0x80 };
        std::fs::write(&file, &bad).unwrap();
        // Never a panic; either a typed error, or a proof that no longer
        // proves anything (or still proves the same fork, when the flip
        // hit a byte the proof does not depend on).
        match c.forks() {
            Err(StoreError::Corrupt(_)) => {}
            Err(e) => panic!("byte {i}: {e}"),
            Ok(f) => {
                let _ = f.first().map(|p| p.verify());
            }
        }
    }
    std::fs::write(&file, &good).unwrap();
    assert!(c.forks().unwrap()[0].verify().unwrap());
}
