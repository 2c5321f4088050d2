// Benchmarks may unwrap, index and panic: a panic is a failed run.
#![allow(clippy::restriction)]
//! The mesh in simulation: the real session code between in-memory stores
//! over a simulated network (latency, lost connections, churn), at 50, 200
//! and 1,000 peers in a random topology where each peer dials 1 to 3
//! others every round. Reports rounds and simulated time to converge,
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

use xaeroflux_sync::sim::{Rng, Sim, SimConfig};
use xaeroflux_sync::{MemStore, SessionConfig};
use xaeroflux_types::{EVENT_HEADER_LEN, Topic};

/// Events each peer appends, and their payload size.
const EVENTS: u64 = 5;
const PAYLOAD: usize = 100;

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

/// One round: every online peer dials each peer it knows, then the
/// network runs until every session has ended.
fn round(sim: &mut Sim<'_>, links: &[Vec<usize>]) {
    for (a, peers) in links.iter().enumerate() {
        for &b in peers {
            sim.connect(a, b);
        }
    }
    let until = sim.stats().now + 10_000_000;
    sim.run(until);
}

struct Row {
    n: usize,
    rounds: usize,
    ticks: u64,
    sessions: u64,
    failed: u64,
    deliveries_per_node: f64,
    bytes_per_node: f64,
    ideal_per_node: f64,
    wall_ms: u128,
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
    // Churn: a tenth of the peers are off line in each of the first rounds.
    let mut rounds = 0;
    while !sim.converged() {
        rounds += 1;
        assert!(rounds <= 200, "{n} peers: not converged after 200 rounds");
        let churn = rounds <= 3;
        let mut off = Vec::new();
        if churn {
            for i in 0..n {
                if sim.rng().chance(0.1) {
                    sim.set_online(i, false);
                    off.push(i);
                }
            }
        }
        round(&mut sim, &links);
        for i in off {
            sim.set_online(i, true);
        }
    }
    let st = sim.stats();
    let event_bytes = (EVENT_HEADER_LEN + PAYLOAD) as f64;
    Row {
        n,
        rounds,
        ticks: st.now,
        sessions: st.sessions,
        failed: st.sessions_failed,
        deliveries_per_node: st.deliveries as f64 / n as f64,
        bytes_per_node: st.bytes_in.iter().sum::<u64>() as f64 / n as f64,
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

/// A partition of `n` peers into two halves that append apart, each
/// converging on its own, then joined: rounds until one state.
fn partition(seed: u64, n: usize) -> (usize, usize, bool) {
    let stores: Vec<MemStore> = (0..n as u64)
        .map(|i| MemStore::with_seed(seed ^ (i << 40) ^ 7))
        .collect();
    let chat = Topic::new("chat").expect("topic");
    let mut sim = Sim::new(&stores, config(seed ^ 99));
    let links = topology(sim.rng(), n);
    sim.partition((0..n / 2).collect());
    for s in &stores {
        s.append(&chat, b"before the join");
    }
    let mut apart = 0;
    // Each half converges within itself (links across the cut fail).
    for _ in 0..30 {
        apart += 1;
        round(&mut sim, &links);
    }
    let split = !sim.converged();
    sim.heal();
    let mut joined = 0;
    while !sim.converged() {
        joined += 1;
        assert!(joined <= 200, "the halves never joined");
        round(&mut sim, &links);
    }
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
        "mesh simulation, seed {seed} (XF_SIM_SEED={seed} replays it): each peer appends {EVENTS} events of {PAYLOAD} bytes to one topic and dials 1 to 3 others each round; latency 5-50 ticks, 1 delivery in 2,000 cuts its connection, a tenth of the peers off line in each of the first 3 rounds"
    );
    println!(
        "{:>6} {:>6} {:>8} {:>9} {:>7} {:>12} {:>14} {:>14} {:>7} {:>8}",
        "peers",
        "rounds",
        "ticks",
        "sessions",
        "failed",
        "msgs/node",
        "bytes/node",
        "ideal/node",
        "ratio",
        "wall ms"
    );
    let mut rows = Vec::new();
    for n in sizes {
        let r = run(seed, n);
        println!(
            "{:>6} {:>6} {:>8} {:>9} {:>7} {:>12.1} {:>14.0} {:>14.0} {:>6.2}x {:>8}",
            r.n,
            r.rounds,
            r.ticks,
            r.sessions,
            r.failed,
            r.deliveries_per_node,
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
            "growth with peers (power-law exponent): bytes/node n^{:.2} (ideal n^{:.2}), msgs/node n^{:.2}, rounds n^{:.2}",
            fit(&|r| r.bytes_per_node),
            fit(&|r| r.ideal_per_node),
            fit(&|r| r.deliveries_per_node),
            fit(&|r| r.rounds as f64),
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
        "partition of 200 peers into halves: {apart} rounds apart ({}), then one state {joined} rounds after the join",
        if split { "two states" } else { "NOT split" }
    );
}
