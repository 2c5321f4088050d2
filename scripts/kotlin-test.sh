#!/usr/bin/env bash
# scripts/kotlin-test.sh — the Kotlin binding's test on the JVM: generates
# the binding, compiles crates/xaeroflux-bindgen/tests/kotlin with kotlinc
# and runs it with JNA. .ci/run calls it after `cargo test --workspace`.
#
# Needs a JDK (17 here), JNA (Debian: libjna-java) and a Kotlin compiler
# (the npm package kotlin-compiler; Debian's kotlin is too old); installs
# the last two when they are missing and it may (CI, or XF_INSTALL=1).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
kotlin_version=2.4.20
may_install() { [ "${CI:-}" = true ] || [ "${XF_INSTALL:-}" = 1 ]; }

jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
  if may_install; then
    apt-get install -y --no-install-recommends libjna-java >/dev/null
  else
    echo "JNA is missing: apt-get install libjna-java (or XF_INSTALL=1 $0)" >&2
    exit 1
  fi
fi
kotlinc="$target/kotlin/node_modules/kotlin-compiler/bin/kotlinc"
if [ ! -x "$kotlinc" ]; then
  if may_install; then
    mkdir -p "$target/kotlin"
    npm install --prefix "$target/kotlin" --no-audit --no-fund --silent "kotlin-compiler@$kotlin_version"
  else
    echo "kotlinc is missing: npm install --prefix $target/kotlin kotlin-compiler@$kotlin_version (or XF_INSTALL=1 $0)" >&2
    exit 1
  fi
fi

scripts/bindings.sh kotlin >/dev/null
out="$target/bindings/kotlin"
build="$target/kotlin/build"
rm -rf "$build"
mkdir -p "$build"
"$kotlinc" -nowarn -cp "$jna" -include-runtime -d "$build/xaeroflux-test.jar" \
  crates/xaeroflux-bindgen/tests/kotlin/XaerofluxTest.kt \
  "$out/uniffi/xaeroflux/xaeroflux.kt" 2>&1 | grep -v '^warning:' || true
test -f "$build/xaeroflux-test.jar"
timeout 300 java -Djna.library.path="$out" -cp "$build/xaeroflux-test.jar:$jna" XaerofluxTestKt
