// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Generates the Python binding from the library `cargo test` built and
//! runs `tests/python/test_xaeroflux.py` with `python3 -m unittest` (python3
//! is the only need beyond cargo).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `xaeroflux-ffi` cdylib next to this test's binary.
pub fn ffi_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = if cfg!(target_os = "macos") {
        "libxaeroflux_ffi.dylib"
    } else {
        "libxaeroflux_ffi.so"
    };
    [deps.join(name), deps.parent().unwrap().join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} beside {}", deps.display()))
}

/// Writes the bindings for `lang` and the library into `out`.
pub fn generate(lang: &str, out: &Path) {
    let lib = ffi_library();
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--library"])
        .arg(&lib)
        .args(["--language", lang, "--out-dir"])
        .arg(out)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../xaeroflux-ffi/bindgen.toml"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "uniffi-bindgen generate --language {lang}"
    );
    std::fs::copy(&lib, out.join(lib.file_name().unwrap())).unwrap();
}

#[test]
fn the_python_binding_passes_its_tests() {
    let Ok(out) = Command::new("python3").arg("--version").output() else {
        panic!("python3 is needed for the Python binding's tests");
    };
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let dir = tempfile::tempdir().unwrap();
    generate("python", dir.path());
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
