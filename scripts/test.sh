#!/usr/bin/env bash
# Installs what is missing, builds cairn twice (normal, and Sanitize = ASan + UBSan) with
# warnings as errors, runs every test in both builds, then builds the libFuzzer targets with
# clang and runs each for CAIRN_FUZZ_SECONDS (default 20). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# playwright-core for the browser tests, exactly as locked (Chromium comes from Debian).
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs="${CAIRN_JOBS:-2}"

for build_type in RelWithDebInfo Sanitize; do
  dir="build/test-${build_type,,}"
  echo "== ${build_type}: configure and build (${dir})"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$build_type" -DCAIRN_WERROR=ON -DCAIRN_BUILD_TESTS=ON >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== ${build_type}: tests"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
done

echo "== fuzz: each target for ${CAIRN_FUZZ_SECONDS:-20} s (scripts/fuzz.sh)"
./scripts/fuzz.sh "${CAIRN_FUZZ_SECONDS:-20}"
