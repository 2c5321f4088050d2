// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Generates the Python binding from the library `cargo test` built and
//! runs `tests/python/test_xaeroflux.py` with `python3 -m unittest` (python3
//! is the only need beyond cargo).

use std::path::Path;
use std::process::Command;

mod support;

#[test]
fn the_python_binding_passes_its_tests() {
    let Ok(out) = Command::new("python3").arg("--version").output() else {
        panic!("python3 is needed for the Python binding's tests");
    };
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let dir = tempfile::tempdir().unwrap();
    support::generate("python", dir.path());
    assert!(dir.path().join("xaeroflux.py").exists());
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(&tests)
        .env("PYTHONPATH", dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(out.status.success(), "python3 -m unittest failed");
    assert!(text.contains("OK"), "{text}");
    assert!(!text.contains("skipped"), "{text}");
}
