#!/usr/bin/env bash
# The benchmark suite: builds cairn-server, cairn-load and cairn-bench in Release, then runs
# cairn-bench (a fresh cairn-server on an ephemeral loopback port, a fresh data dir, the
# standard scenarios). Writes bench-results/<time>/summary.md (the table the README shows),
# summary.json and one JSON per run. Flags go to cairn-bench (--out DIR, --repeat N,
# --strict, --quick). Run it on an otherwise idle machine: the figures are ratios against
# ceilings measured in the same run, but two cores are shared by the server and the harness.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "${CAIRN_JOBS:-2}" --target cairn-server cairn-load cairn-bench
exec build/release/examples/cairn-bench --server build/release/examples/cairn-server "$@"
