// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The real session code between many in-memory stores, over a simulated
//! network with latency, cut connections, slow writes, churn and a
//! partition. Each test prints its seed; `XF_SIM_SEED=N` replays a run.

use xaeroflux_sync::sim::{Rng, Sim, SimConfig, SimStats};
use xaeroflux_sync::{MemStore, SessionConfig};
use xaeroflux_types::Topic;

fn seed() -> u64 {
    xaeroflux_testkit::seed_from_env("XF_SIM_SEED")
}

/// A random connected topology: store `i > 0` knows a random earlier
/// store, and some stores know one or two more; every store knows 1 to 3
/// others it dials.
fn topology(rng: &mut Rng, n: usize) -> Vec<Vec<usize>> {
    let mut links = vec![Vec::new(); n];
    for (i, l) in links.iter_mut().enumerate().skip(1) {
        l.push(rng.range(0, i as u64 - 1) as usize);
    }
    for (i, l) in links.iter_mut().enumerate() {
        let extra = rng.range(0, 2);
        for _ in 0..extra {
            let j = rng.range(0, n as u64 - 1) as usize;
            if j != i && !l.contains(&j) && l.len() < 3 {
                l.push(j);
            }
        }
        if l.is_empty() {
            l.push(if i == 0 { 1 } else { 0 });
        }
    }
    links
}

fn stores(seed: u64, n: usize) -> Vec<MemStore> {
    (0..n as u64)
        .map(|i| MemStore::with_seed(seed ^ (i << 32) ^ i))
        .collect()
}

/// Each store appends 0 to `max` events to one or more of the topics.
fn append_random(rng: &mut Rng, stores: &[MemStore], topics: &[Topic], max: u64) {
    for s in stores {
        for t in topics {
            if rng.chance(0.3) {
                continue;
            }
            for i in 0..rng.range(0, max) {
                let len = rng.range(0, 300) as usize;
                s.append(t, &vec![(i % 251) as u8; len]);
            }
        }
    }
}

/// One round: every online store dials each peer it knows; then the
/// network runs until the sessions end.
fn round(sim: &mut Sim<'_>, links: &[Vec<usize>]) {
    for (a, peers) in links.iter().enumerate() {
        for &b in peers {
            sim.connect(a, b);
        }
    }
    let until = sim.stats().now + 1_000_000;
    assert!(
        sim.run(until),
        "sessions still running after a round: {:?}",
        sim.stats()
    );
}

/// Rounds until the stores converge, at most `max`; the rounds it took.
fn converge(sim: &mut Sim<'_>, links: &[Vec<usize>], max: usize) -> usize {
    for r in 1..=max {
        round(sim, links);
        if sim.converged() {
            return r;
        }
    }
    panic!("not converged after {max} rounds: {:?}", sim.stats());
}

fn report(what: &str, rounds: usize, st: &SimStats) {
    eprintln!(
        "{what}: converged in {rounds} rounds, {} ticks; {} sessions ({} failed), {} deliveries, {} bytes, {} writes",
        st.now, st.sessions, st.sessions_failed, st.deliveries, st.bytes, st.writes
    );
}

fn topics() -> Vec<Topic> {
    ["chat", "profiles", "market"]
        .iter()
        .map(|t| Topic::new(t).unwrap())
        .collect()
}

fn small_pages(seed: u64) -> SimConfig {
    let mut c = SimConfig::new(seed);
    // Many pages per log, so the window and pipelined writes are exercised.
    c.session = SessionConfig {
        page_events: 32,
        page_bytes: 4096,
        window: 3,
        ..SessionConfig::default()
    };
    c
}

#[test]
fn twelve_stores_converge_through_a_random_topology() {
    let seed = seed();
    let st = stores(seed, 12);
    let mut sim = Sim::new(&st, small_pages(seed));
    let links = topology(sim.rng(), st.len());
    append_random(sim.rng(), &st, &topics(), 150);
    let rounds = converge(&mut sim, &links, 20);
    report("12 stores", rounds, sim.stats());
    assert_eq!(sim.stats().sessions_failed, 0, "{:?}", sim.stats().failures);
    // Every log is whole: the size its author holds, and the author's root.
    for s in &st {
        for (log, head) in s.heads() {
            let author = st
                .iter()
                .find(|a| a.heads().get(&log).is_some_and(|h| h.0 == head.0))
                .unwrap();
            assert_eq!(author.root(&log), Some(head.1));
        }
    }
}

#[test]
fn cut_connections_and_slow_writes_still_converge() {
    let seed = seed();
    let st = stores(seed, 10);
    let mut config = small_pages(seed);
    config.cut = 0.02;
    config.latency = (1, 100);
    config.write_delay = (1, 60);
    let mut sim = Sim::new(&st, config);
    let links = topology(sim.rng(), st.len());
    append_random(sim.rng(), &st, &topics(), 200);
    let rounds = converge(&mut sim, &links, 300);
    report("10 stores, 2% cut deliveries", rounds, sim.stats());
    assert!(
        sim.stats().sessions_failed > 0,
        "no connection was cut: the test tested nothing"
    );
}

#[test]
fn a_partition_heals_into_one_state() {
    let seed = seed();
    let st = stores(seed, 10);
    let mut sim = Sim::new(&st, small_pages(seed));
    // A ring, so each half stays connected when split in two.
    let links: Vec<Vec<usize>> = (0..10).map(|i| vec![(i + 1) % 10]).collect();
    append_random(sim.rng(), &st, &topics(), 50);
    converge(&mut sim, &links, 20);
    let halves: Vec<usize> = (0..10).map(|i| usize::from(i >= 5)).collect();
    sim.partition(halves);
    let ring_halves: Vec<Vec<usize>> = (0..10)
        .map(|i| vec![if i < 5 { (i + 1) % 5 } else { 5 + (i - 4) % 5 }])
        .collect();
    append_random(sim.rng(), &st, &topics(), 50);
    for _ in 0..10 {
        round(&mut sim, &ring_halves);
    }
    let (a, b) = st.split_at(5);
    let same = |g: &[MemStore]| g.iter().all(|s| s.heads() == g[0].heads());
    assert!(same(a) && same(b), "each half converges on its own");
    assert_ne!(
        a[0].heads(),
        b[0].heads(),
        "the halves diverged while split"
    );
    sim.heal();
    let rounds = converge(&mut sim, &links, 20);
    report("healed partition", rounds, sim.stats());
}

#[test]
fn stores_that_come_and_go_catch_up() {
    let seed = seed();
    let st = stores(seed, 9);
    let mut sim = Sim::new(&st, small_pages(seed));
    let links = topology(sim.rng(), st.len());
    for _ in 0..15 {
        for i in 0..st.len() {
            let up = !sim.rng().chance(0.3);
            sim.set_online(i, up);
        }
        append_random(sim.rng(), &st, &topics(), 20);
        round(&mut sim, &links);
    }
    for i in 0..st.len() {
        sim.set_online(i, true);
    }
    let rounds = converge(&mut sim, &links, 20);
    report("churn", rounds, sim.stats());
}

#[test]
fn a_run_replays_exactly_from_its_seed() {
    let seed = seed();
    let run = || {
        let st = stores(seed, 8);
        let mut config = small_pages(seed);
        config.cut = 0.01;
        let mut sim = Sim::new(&st, config);
        let links = topology(sim.rng(), st.len());
        append_random(sim.rng(), &st, &topics(), 60);
        converge(&mut sim, &links, 200);
        let heads: Vec<_> = st.iter().map(|s| s.heads()).collect();
        (sim.stats().clone(), heads)
    };
    assert_eq!(run(), run());
}

/// Many peers offer the same log at once (they all heard the same
/// checkpoint): the newcomer pulls each page of it once, from one of them,
/// and leaves the log to that session in the others (deferred). Without
/// the shared claims every session would pull it whole.
#[test]
fn a_log_offered_by_many_peers_at_once_is_pulled_once() {
    let seed = seed();
    let chat = Topic::new("chat").unwrap();
    let st = stores(seed, 9);
    // Store 1 writes 2,000 events of 100 bytes; stores 2..9 hold copies.
    for i in 0..2000u32 {
        st[1].append(&chat, &[(i % 251) as u8; 100]);
    }
    let mut sim = Sim::new(&st, small_pages(seed));
    for b in 2..st.len() {
        sim.connect(1, b);
    }
    assert!(sim.run(sim.stats().now + 1_000_000));
    let log_bytes = 2000 * (100 + xaeroflux_types::EVENT_HEADER_LEN) as u64;
    let before = sim.stats().bytes_in[0];
    // Store 0 dials all eight holders at the same moment.
    for b in 1..st.len() {
        assert!(sim.connect(0, b));
    }
    assert!(sim.run(sim.stats().now + 1_000_000));
    assert!(sim.converged(), "{:?}", sim.stats().failures);
    let st_ = sim.stats();
    assert_eq!(st_.events_in[0], 2000, "each event imported once");
    let received = st_.bytes_in[0] - before;
    eprintln!(
        "9 holders: store 0 received {received} bytes for a log of {log_bytes} ({:.2}x)",
        received as f64 / log_bytes as f64
    );
    // Once, plus framing, proofs and the other sessions' handshakes; eight
    // whole copies would be 8x.
    assert!(
        received < log_bytes * 3 / 2,
        "{received} bytes received for a {log_bytes}-byte log"
    );
}

/// The stores run as nodes, by the node's own rules (`schedule`): they
/// sync with the peers they were given, pull what they hear announced by
/// gossip (which loses 5% of its deliveries here), and sync with every
/// peer each period. A fifth of them are off line for a while and come
/// back; all converge, with no dial loop (dials stay a few per node and
/// period).
#[test]
fn nodes_converge_by_their_own_rules_through_loss_and_churn() {
    use xaeroflux_sync::sim::NodeConfig;
    let seed = seed();
    let st = stores(seed, 60);
    let mut sim = Sim::new(&st, small_pages(seed));
    let links = topology(sim.rng(), st.len());
    append_random(sim.rng(), &st, &topics()[..1], 40);
    let config = NodeConfig {
        interval: 5_000,
        gossip_loss: 0.05,
        ..NodeConfig::default()
    };
    let links_n: usize = links.iter().map(Vec::len).sum();
    let off: Vec<usize> = (0..st.len()).filter(|i| i % 5 == 3).collect();
    for &i in &off {
        sim.set_online(i, false);
    }
    sim.start_nodes(links, config);
    sim.run(2_000);
    for &i in &off {
        sim.set_online(i, true);
    }
    let mut t = 2_000;
    while !sim.converged() {
        t += 500;
        assert!(
            t < 60_000,
            "not converged by tick 60,000: {:?}",
            sim.stats().failures
        );
        sim.run(t);
    }
    let st_ = sim.stats();
    eprintln!(
        "60 nodes converged at tick {t}: {} dials, {} sessions ({} failed), {} gossip deliveries",
        st_.dials, st_.sessions, st_.sessions_failed, st_.gossip_messages
    );
    // No dial loop: one node dials one peer at most once a redial gap.
    let edges: u64 = links_n as u64 * 2;
    let bound = edges * (t / xaeroflux_sync::schedule::REDIAL_GAP_MS + 1);
    assert!(st_.dials <= bound, "{} dials, bound {bound}", st_.dials);
}

/// Nodes split in two halves append apart; each half converges on its
/// own by announcements; once joined, neighbours across the split come up
/// and the whole network is one state.
#[test]
fn nodes_heal_a_partition_by_their_own_rules() {
    use xaeroflux_sync::sim::NodeConfig;
    let seed = seed();
    let chat = Topic::new("chat").unwrap();
    let st = stores(seed, 40);
    let mut sim = Sim::new(&st, small_pages(seed));
    let links = topology(sim.rng(), st.len());
    sim.partition((0..st.len()).map(|i| i % 2).collect());
    sim.start_nodes(
        links,
        NodeConfig {
            interval: 60_000,
            ..NodeConfig::default()
        },
    );
    for (i, s) in st.iter().enumerate() {
        let log = s.append(&chat, format!("written apart by {i}").as_bytes());
        sim.appended(i, log);
    }
    sim.run(20_000);
    assert!(!sim.converged(), "the halves cannot reach each other");
    sim.heal();
    let mut t = 20_000;
    while !sim.converged() {
        t += 500;
        assert!(t < 50_000, "not one state by tick 50,000");
        sim.run(t);
    }
    eprintln!("40 nodes: one state {} ticks after the join", t - 20_000);
}
