// Benchmarks may unwrap, index and panic.
#![allow(clippy::restriction)]
//! The Python binding beside Rust, in the same run: append_batch of
//! 100,000 events of 100 bytes (batches of 1,000, durable), read_topic of
//! them, and delivery of them to a listener from a subscription at seq 0.
//! Rust uses `xaeroflux::Core` directly; Python the generated binding
//! (`benches/python_bench.py`, a child process). Prints each ratio
//! (target: at least 0.5x of Rust for batches).
//!
//! `cargo bench -p xaeroflux-bindgen --bench python` (XF_BENCH_EVENTS=N,
//! XF_BENCH_ROUNDS=R, default 100,000 and 3).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xaeroflux::{Core, Filter, Payload, Topic};
use xaeroflux_testkit::{bench_payload, env_u64, median};

#[path = "../tests/support/mod.rs"]
mod support;

const BATCH: u64 = 1000;

/// Events per second: append_batch, read_topic, listener delivery.
fn rust(dir: &Path, n: u64) -> [f64; 3] {
    let core = Core::builder().open(dir).unwrap();
    let topic = Topic::new("bench").unwrap();
    let payloads: Vec<Vec<u8>> = (0..n).map(bench_payload).collect();
    let t = Instant::now();
    for chunk in payloads.chunks(BATCH as usize) {
        let events = chunk.iter().map(|p| core.new_event_in(&topic, p)).collect();
        core.append_batch(events).unwrap();
    }
    let append = n as f64 / t.elapsed().as_secs_f64();

    // What the binding hands over: owned payloads, read through the same
    // call (read_topic, which opens private payloads).
    let t = Instant::now();
    let got: Vec<Vec<u8>> = core
        .read_topic(&topic)
        .map(|r| {
            let r = r.unwrap();
            match r.payload {
                Payload::Plain(p) => p.to_vec(),
                Payload::Decrypted(p) => p,
                Payload::Encrypted { .. } => Vec::new(),
            }
        })
        .collect();
    let read = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(got.len() as u64, n);

    let t = Instant::now();
    let mut sub = core.subscribe(Filter::topic(&topic), 0).unwrap();
    let mut seen = 0u64;
    while seen < n {
        sub.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
        seen += 1;
    }
    let deliver = n as f64 / t.elapsed().as_secs_f64();
    drop(sub);
    core.close().unwrap();
    [append, read, deliver]
}

fn python(bindings: &Path, dir: &Path, n: u64) -> [f64; 3] {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_bench.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg(n.to_string())
        .arg(BATCH.to_string())
        .env("PYTHONPATH", bindings)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    ["append_batch", "read_topic", "listener"].map(|k| v[k].as_f64().unwrap())
}

fn main() {
    let n = env_u64("XF_BENCH_EVENTS", 100_000);
    let rounds = env_u64("XF_BENCH_ROUNDS", 3);
    let bindings = tempfile::tempdir().unwrap();
    support::generate("python", bindings.path());
    println!(
        "{n} events of 100 bytes through the Python binding beside Rust (durable, batches of {BATCH})"
    );
    println!(
        "{:<6} {:<13} {:>14} {:>14} {:>7}",
        "round", "part", "Rust ev/s", "Python ev/s", "ratio"
    );
    let names = ["append_batch", "read_topic", "listener"];
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for round in 1..=rounds {
        let (dr, dp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Alternate which goes first, so neither always gets the warm disk.
        let (r, p) = if round % 2 == 1 {
            let r = rust(dr.path(), n);
            (r, python(bindings.path(), dp.path(), n))
        } else {
            let p = python(bindings.path(), dp.path(), n);
            (rust(dr.path(), n), p)
        };
        for i in 0..3 {
            let ratio = p[i] / r[i];
            ratios[i].push(ratio);
            println!(
                "{round:<6} {:<13} {:>14.0} {:>14.0} {:>6.2}x",
                names[i], r[i], p[i], ratio
            );
        }
    }
    for i in 0..3 {
        println!(
            "median {:<13} Python / Rust = {:.2}x",
            names[i],
            median(ratios[i].clone())
        );
    }
}
