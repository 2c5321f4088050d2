//! `uniffi-bindgen`: writes the Python, Kotlin and Swift sources of
//! Xaeroflux's bindings from the compiled `xaeroflux-ffi` library
//! (`uniffi-bindgen generate --library PATH --language LANG --out-dir DIR`);
//! `scripts/bindings.sh LANG` runs it.

fn main() {
    uniffi::uniffi_bindgen_main()
}
