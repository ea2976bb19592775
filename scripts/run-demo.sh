#!/usr/bin/env bash
# Installs what is missing, builds cairn-server (Release) and runs the seat-booking demo on
# http://127.0.0.1:8787 with its data in ./data. Extra flags go to the server
# (e.g. --port 9000 --durability normal). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "${CAIRN_JOBS:-2}" --target cairn-server
echo "Open http://localhost:8787/?flightId=1234"
exec build/release/examples/cairn-server --host 127.0.0.1 --port 8787 \
  --data-dir ./data --public-dir ./public "$@"
