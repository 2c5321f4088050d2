// Benchmarks may unwrap, index and panic: a panic is a failed run.
#![allow(clippy::restriction)]
//! The mesh in simulation: the real session code between in-memory stores
//! that run as nodes by the node's own rules (`xaeroflux_sync::schedule`:
//! sync with the peers given on joining, pull what gossip announces, sync
//! with every peer each period, one dialed session per peer and a redial
//! gap), over a simulated network with latency, lost connections, lost
//! gossip and churn, at 50, 200 and 1,000 peers in a random topology where
//! each knows 1 to 3 others. Reports the time and the periods to converge,
//! sessions, messages and bytes per node against the ideal (each event's
//! bytes received once per node), how they grow with the number of peers
//! (the exponent of a power-law fit), and a partition into two halves that
//! append apart and heal into one state. Writes a plot as SVG.
//!
//! `cargo bench -p xaeroflux-sync --bench mesh` (`XF_SIM_SEED=N` replays a
//! run; `XF_MESH_SIZES=50,200` picks the sizes; `XF_MESH_SVG=path` where
//! the plot goes, default `target/mesh.svg` in the workspace).

use std::fmt::Write as _;
use std::time::Instant;

use xaeroflux_sync::sim::{NodeConfig, Rng, Sim, SimConfig};
use xaeroflux_sync::{MemStore, SessionConfig};
use xaeroflux_types::{EVENT_HEADER_LEN, Topic};

/// Events each peer appends, and their payload size.
const EVENTS: u64 = 5;
const PAYLOAD: usize = 100;
/// A node's sync period, in ticks (milliseconds).
const PERIOD: u64 = 5_000;
/// Simulated time a run may take at most.
const LIMIT: u64 = 600_000;

fn topology(rng: &mut Rng, n: usize) -> Vec<Vec<usize>> {
    let mut links = vec![Vec::new(); n];
    for (i, l) in links.iter_mut().enumerate().skip(1) {
        l.push(rng.range(0, i as u64 - 1) as usize);
    }
    for (i, l) in links.iter_mut().enumerate() {
        for _ in 0..rng.range(0, 2) {
            let j = rng.range(0, n as u64 - 1) as usize;
            if j != i && !l.contains(&j) && l.len() < 3 {
                l.push(j);
            }
        }
    }
    if let Some(first) = links.first_mut()
        && first.is_empty()
        && n > 1
    {
        first.push(1);
    }
    links
}

fn config(seed: u64) -> SimConfig {
    let mut c = SimConfig::new(seed);
    c.latency = (5, 50);
    // One delivery in 2,000 cuts its connection.
    c.cut = 0.0005;
    c.session = SessionConfig::default();
    c
}

fn nodes() -> NodeConfig {
    NodeConfig {
        interval: PERIOD,
        // One gossip delivery in 100 is lost.
        gossip_loss: 0.01,
        ..NodeConfig::default()
    }
}

/// Runs until every store holds every log, in steps; the tick it took.
fn until_converged(sim: &mut Sim<'_>, from: u64, what: &str) -> u64 {
    let mut t = from;
    while !sim.converged() {
        t += 250;
        assert!(t <= LIMIT, "{what}: not converged by tick {LIMIT}");
        sim.run(t);
    }
    t
}

struct Row {
    n: usize,
    periods: u64,
    ticks: u64,
    sessions: u64,
    failed: u64,
    dials: u64,
    deliveries_per_node: f64,
    gossip_per_node: f64,
    bytes_per_node: f64,
    ideal_per_node: f64,
    wall_ms: u128,
}

/// Takes the peers in `off` back on line, and (if `again`) a tenth of all
/// peers, drawn anew, off line.
fn churn(sim: &mut Sim<'_>, n: usize, off: &mut Vec<usize>, again: bool) {
    for i in off.drain(..) {
        sim.set_online(i, true);
    }
    if again {
        for i in 0..n {
            if sim.rng().chance(0.1) {
                sim.set_online(i, false);
                off.push(i);
            }
        }
    }
}

fn run(seed: u64, n: usize) -> Row {
    let started = Instant::now();
    let stores: Vec<MemStore> = (0..n as u64)
        .map(|i| MemStore::with_seed(seed ^ (i << 32) ^ i))
        .collect();
    let chat = Topic::new("chat").expect("topic");
    for s in &stores {
        for i in 0..EVENTS {
            s.append(&chat, &[i as u8; PAYLOAD]);
        }
    }
    let mut sim = Sim::new(&stores, config(seed ^ n as u64));
    let links = topology(sim.rng(), n);
    // Churn: a tenth of the peers (drawn anew) are off line in each of
    // the first three periods.
    let mut off: Vec<usize> = Vec::new();
    churn(&mut sim, n, &mut off, true);
    sim.start_nodes(links, nodes());
    for p in 1..=3u64 {
        sim.run(p * PERIOD);
        churn(&mut sim, n, &mut off, p < 3);
    }
    let ticks = until_converged(&mut sim, 3 * PERIOD, &format!("{n} peers"));
    let st = sim.stats();
    let event_bytes = (EVENT_HEADER_LEN + PAYLOAD) as f64;
    Row {
        n,
        periods: ticks.div_ceil(PERIOD),
        ticks,
        sessions: st.sessions,
        failed: st.sessions_failed,
        dials: st.dials,
        deliveries_per_node: (st.deliveries + st.gossip_messages) as f64 / n as f64,
        gossip_per_node: st.gossip_bytes as f64 / n as f64,
        bytes_per_node: (st.bytes_in.iter().sum::<u64>() + st.gossip_bytes) as f64 / n as f64,
        ideal_per_node: (n as f64 - 1.0) * EVENTS as f64 * event_bytes,
        wall_ms: started.elapsed().as_millis(),
    }
}

/// Least-squares slope of log y against log x: the growth exponent.
fn exponent(points: &[(f64, f64)]) -> f64 {
    let pts: Vec<(f64, f64)> = points.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    let k = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / k, sy / k);
    let num: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = pts.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

/// A partition of `n` peers into two halves that append apart, then are
/// joined: ticks apart, ticks from the join to one state, and whether the
/// halves really were two states.
fn partition(seed: u64, n: usize) -> (u64, u64, bool) {
    let stores: Vec<MemStore> = (0..n as u64)
        .map(|i| MemStore::with_seed(seed ^ (i << 40) ^ 7))
        .collect();
    let chat = Topic::new("chat").expect("topic");
    let mut sim = Sim::new(&stores, config(seed ^ 99));
    let links = topology(sim.rng(), n);
    sim.partition((0..n).map(|i| usize::from(i >= n / 2)).collect());
    sim.start_nodes(links, nodes());
    for (i, s) in stores.iter().enumerate() {
        let log = s.append(&chat, b"before the join");
        sim.appended(i, log);
    }
    let apart = 6 * PERIOD;
    sim.run(apart);
    let split = !sim.converged();
    sim.heal();
    let joined = until_converged(&mut sim, apart, "the halves") - apart;
    (apart, joined, split)
}

fn svg(rows: &[Row]) -> String {
    let (w, h, m) = (640.0, 400.0, 60.0);
    let xs: Vec<f64> = rows.iter().map(|r| (r.n as f64).log10()).collect();
    let ys: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.bytes_per_node.log10(), r.ideal_per_node.log10()])
        .collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::MAX, f64::min),
        xs.iter().cloned().fold(f64::MIN, f64::max),
    );
    let (y0, y1) = (
        ys.iter().cloned().fold(f64::MAX, f64::min).floor(),
        ys.iter().cloned().fold(f64::MIN, f64::max).ceil(),
    );
    let px = |x: f64| m + (x - x0) / (x1 - x0).max(1e-9) * (w - 2.0 * m);
    let py = |y: f64| h - m - (y - y0) / (y1 - y0).max(1e-9) * (h - 2.0 * m);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">Bytes received per node (log scale) against peers</text>"#,
        w / 2.0
    );
    let axis = |s: &mut String| {
        let _ = write!(
            s,
            r#"<line x1="{m}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{m}" y1="{m}" x2="{m}" y2="{}" stroke="black"/>"#,
            h - m,
            w - m,
            h - m,
            h - m
        );
    };
    axis(&mut s);
    for r in rows {
        let x = px((r.n as f64).log10());
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            h - m + 18.0,
            r.n
        );
    }
    let mut y = y0;
    while y <= y1 {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">1e{}</text>"#,
            m - 6.0,
            py(y) + 4.0,
            y as i64
        );
        y += 1.0;
    }
    for (pick, colour, label) in [
        (0usize, "#c0392b", "measured"),
        (1, "#2471a3", "ideal: each event once"),
    ] {
        let pts: Vec<String> = rows
            .iter()
            .map(|r| {
                let v = if pick == 0 {
                    r.bytes_per_node
                } else {
                    r.ideal_per_node
                };
                format!("{:.1},{:.1}", px((r.n as f64).log10()), py(v.log10()))
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let ly = 40.0 + 16.0 * pick as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{label}</text>"#,
            m + 10.0,
            m + 40.0,
            m + 46.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn main() {
    let seed = std::env::var("XF_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let sizes: Vec<usize> = std::env::var("XF_MESH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![50, 200, 1000]);
    println!(
        "mesh simulation, seed {seed} (XF_SIM_SEED={seed} replays it): each peer appends {EVENTS} events of {PAYLOAD} bytes to one topic; nodes by their own rules, period {PERIOD} ticks; latency 5-50 ticks, 1 delivery in 2,000 cuts its connection, 1 gossip delivery in 100 lost, a tenth of the peers off line in each of the first 3 periods"
    );
    println!(
        "{:>6} {:>7} {:>8} {:>9} {:>7} {:>8} {:>10} {:>11} {:>12} {:>12} {:>7} {:>8}",
        "peers",
        "periods",
        "ticks",
        "sessions",
        "failed",
        "dials",
        "msgs/node",
        "gossip B/n",
        "bytes/node",
        "ideal/node",
        "ratio",
        "wall ms"
    );
    let mut rows = Vec::new();
    for n in sizes {
        let r = run(seed, n);
        println!(
            "{:>6} {:>7} {:>8} {:>9} {:>7} {:>8} {:>10.1} {:>11.0} {:>12.0} {:>12.0} {:>6.2}x {:>8}",
            r.n,
            r.periods,
            r.ticks,
            r.sessions,
            r.failed,
            r.dials,
            r.deliveries_per_node,
            r.gossip_per_node,
            r.bytes_per_node,
            r.ideal_per_node,
            r.bytes_per_node / r.ideal_per_node,
            r.wall_ms
        );
        rows.push(r);
    }
    if rows.len() >= 2 {
        let fit = |f: &dyn Fn(&Row) -> f64| {
            exponent(&rows.iter().map(|r| (r.n as f64, f(r))).collect::<Vec<_>>())
        };
        println!(
            "growth with peers (power-law exponent): bytes/node n^{:.2} (ideal n^{:.2}), msgs/node n^{:.2}, time to converge n^{:.2}",
            fit(&|r| r.bytes_per_node),
            fit(&|r| r.ideal_per_node),
            fit(&|r| r.deliveries_per_node),
            fit(&|r| r.ticks as f64),
        );
        let path = std::env::var("XF_MESH_SVG").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/mesh.svg").into()
        });
        match std::fs::write(&path, svg(&rows)) {
            Ok(()) => println!("plot written to {path}"),
            Err(e) => println!("plot not written to {path}: {e}"),
        }
    }
    let (apart, joined, split) = partition(seed, 200);
    println!(
        "partition of 200 peers into halves: {apart} ticks apart ({}), then one state {joined} ticks after the join",
        if split { "two states" } else { "NOT split" }
    );
}
