#!/usr/bin/env bash
# Installs what is missing, builds cairn twice (normal, and Sanitize = ASan + UBSan) with
# warnings as errors, runs every test in both builds, builds the Debian packages from the
# normal build and tests them installed (scripts/test-deb.sh: needs root or sudo), then
# builds the libFuzzer targets with clang and runs each for CAIRN_FUZZ_SECONDS (default 20).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# playwright-core for the browser tests, exactly as locked (Chromium comes from Debian).
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs="${CAIRN_JOBS:-2}"
# ccache keeps compiled objects between runs (in ~/.cache/ccache), keyed on the preprocessed
# source and the flags: a fresh clone anywhere on this machine recompiles only what changed.
# Paths under the clone are hashed relative to it, and not its directory, so clones share it.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=)
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

for build_type in RelWithDebInfo Sanitize; do
  dir="build/test-${build_type,,}"
  echo "== ${build_type}: configure and build (${dir})"
  # Ninja schedules the whole build as one graph (make recursed target by target).
  if [[ -f "$dir/CMakeCache.txt" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  # The benchmark programs run in no test: compiled (with -Werror) in the normal build only.
  benchmarks=ON
  [[ "$build_type" == Sanitize ]] && benchmarks=OFF
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" -DCAIRN_WERROR=ON -DCAIRN_BUILD_TESTS=ON \
    -DCAIRN_BUILD_BENCHMARKS="$benchmarks" "${launcher[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== ${build_type}: tests"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
done

echo "== the Debian packages (scripts/test-deb.sh): build, lintian, install, run, purge"
./scripts/test-deb.sh build/test-relwithdebinfo

echo "== fuzz: each target for ${CAIRN_FUZZ_SECONDS:-20} s (scripts/fuzz.sh)"
./scripts/fuzz.sh "${CAIRN_FUZZ_SECONDS:-20}"
