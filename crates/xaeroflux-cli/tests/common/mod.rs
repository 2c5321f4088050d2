#![allow(dead_code)]
//! Helpers for tests that drive the `xf` binary.

use std::path::Path;
use std::process::{Command, Output};

pub fn xf(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run xf")
}

/// Runs xf and returns stdout, panicking with stderr on failure.
pub fn xf_ok(db: &Path, args: &[&str]) -> String {
    let out = xf(db, args);
    assert!(
        out.status.success(),
        "xf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Starts `xf append --topic TOPIC --lines` with piped stdin and stdout.
pub fn spawn_lines(db: &Path, topic: &str) -> std::process::Child {
    spawn_lines_with(db, topic, &[])
}

/// `spawn_lines` with extra arguments (such as `--fast`).
pub fn spawn_lines_with(db: &Path, topic: &str, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(db)
        .args(["append", "--topic", topic, "--lines"])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn xf append --lines")
}

pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

/// A seeded generator; the seed is printed, `XF_TEST_SEED` replays it.
pub fn rng() -> xaeroflux_testkit::Rng {
    xaeroflux_testkit::seeded_rng()
}

/// Starts `xf serve` on a free port of 127.0.0.1: the child, its output
/// after the first line, and the address it listens on.
pub fn spawn_serve(
    db: &std::path::Path,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    String,
) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--tcp", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn xf serve");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("serving "), "{first}");
    let addr = first.rsplit(' ').next().unwrap().to_string();
    (child, lines, addr)
}
