//! What the Python binding's test and benchmark share: the
//! `xaeroflux-ffi` library cargo built beside them, and the binding
//! generated from it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `xaeroflux-ffi` cdylib beside the running test or bench binary.
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
