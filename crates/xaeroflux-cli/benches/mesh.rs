// Benchmarks may unwrap, index and panic: a panic is a failed run.
#![allow(clippy::restriction)]
//! The loopback mesh of real `xf node` processes (see
//! `tests/support/mesh.rs`): time to converge, then again after a third
//! are killed with SIGKILL, and the bytes each surviving node received
//! against the ideal (each event of another author once).
//!
//! `cargo bench -p xaeroflux-cli --bench mesh` (`XF_MESH_NODES` (20),
//! `XF_MESH_EVENTS` per node and round (100), `XF_TEST_SEED`).

#[path = "../tests/support/mesh.rs"]
mod mesh;

fn main() {
    let cfg = mesh::Config {
        nodes: xaeroflux_testkit::env_u64("XF_MESH_NODES", 20) as usize,
        events: xaeroflux_testkit::env_u64("XF_MESH_EVENTS", 100) as usize,
        payload: 100,
        seed: xaeroflux_testkit::seed_from_env("XF_TEST_SEED"),
        bound: std::time::Duration::from_secs(300),
    };
    let report = mesh::run(std::path::Path::new(env!("CARGO_BIN_EXE_xf")), &cfg);
    report.print(&cfg);
}
