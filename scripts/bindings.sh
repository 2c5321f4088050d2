#!/usr/bin/env bash
# scripts/bindings.sh LANG — writes Xaeroflux's bindings for LANG (python,
# kotlin or swift) and the library they load to target/bindings/LANG/.
#
#   scripts/bindings.sh python
#   PYTHONPATH=target/bindings/python python3 -c "import xaeroflux"
#
# XF_PROFILE picks the cargo profile (default: dev, which builds the whole
# workspace so the artifacts are the ones `cargo test --workspace` made;
# `XF_PROFILE=mobile` builds only the library and the generator, small).
# XF_FEATURES adds cargo features to the dev build, so that it reuses what
# a `cargo test --workspace --features ...` run built instead of building
# again (.ci/run sets it to the features of its test run).
set -euo pipefail
cd "$(dirname "$0")/.."
lang="${1:-}"
case "$lang" in
  python|kotlin|swift) ;;
  *) echo "usage: scripts/bindings.sh python|kotlin|swift" >&2; exit 2 ;;
esac
profile="${XF_PROFILE:-dev}"
target="${CARGO_TARGET_DIR:-target}"
if [ "$profile" = dev ]; then
  if [ -n "${XF_FEATURES:-}" ]; then
    cargo build --workspace --quiet --features "$XF_FEATURES"
  else
    cargo build --workspace --quiet
  fi
  dir="$target/debug"
else
  cargo build --profile "$profile" -p xaeroflux-ffi -p xaeroflux-bindgen --quiet
  dir="$target/$profile"
fi
case "$(uname -s)" in
  Darwin) lib="$dir/libxaeroflux_ffi.dylib" ;;
  *) lib="$dir/libxaeroflux_ffi.so" ;;
esac
out="$target/bindings/$lang"
rm -rf "$out"
mkdir -p "$out"
"$dir/uniffi-bindgen" generate --library "$lib" --language "$lang" --out-dir "$out" \
  --config crates/xaeroflux-ffi/bindgen.toml --no-format
cp "$lib" "$out/"
echo "bindings for $lang in $out:"
find "$out" -type f | sort | sed 's/^/  /'
