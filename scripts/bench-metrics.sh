#!/usr/bin/env bash
# The cost of metrics on the hot path: GET /seats throughput on one hot flight (cairn-load
# seats, 16 connections) with and without a scraper reading the admin listener's /metrics
# every second, alternated ROUNDS times (default 3) against one Release cairn-server, so
# both see the same machine. Prints each run and the ratio of the medians.
# Usage: scripts/bench-metrics.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-5}"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "${CAIRN_JOBS:-2}" --target cairn-server cairn-load cairnctl >/dev/null

source scripts/bench-lib.sh
work="$bench_work"
head -c 24 /dev/urandom | base64 > "$work/token"
start_server build/release/examples/cairn-server --admin-port 0 --admin-token-file "$work/token"
admin="$admin_port"
load=(build/release/examples/cairn-load seats --url "http://127.0.0.1:$port" -c 16 --prefix hot --no-progress)
ctl=(build/release/gateway/cairnctl --url "http://127.0.0.1:$admin" --token-file "$work/token")
"${load[@]}" -d 2 > /dev/null  # warm up: the flight exists, caches are hot

run() {  # $1: scrape or plain; prints requests per second
  local scraper=""
  if [[ "$1" == scrape ]]; then
    ( for _ in $(seq $((seconds * 2 + 4))); do "${ctl[@]}" metrics > /dev/null; sleep 1; done ) &
    scraper=$!
  fi
  "${load[@]}" -d "$seconds" --json "$work/run.json" > /dev/null
  [[ -n "$scraper" ]] && kill "$scraper" 2>/dev/null && wait "$scraper" 2>/dev/null || true
  load_figure "$work/run.json" rate
}

plain=(); scraped=()
for i in $(seq "$rounds"); do
  p="$(run plain)"; s="$(run scrape)"
  plain+=("$p"); scraped+=("$s")
  echo "round $i: GET /seats ${p} req/s without scraping, ${s} req/s with /metrics scraped every second"
done
python3 - "${plain[*]}" "${scraped[*]}" <<'PY'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
scraped = [float(x) for x in sys.argv[2].split()]
mp, ms = statistics.median(plain), statistics.median(scraped)
print(f"median: {mp:.0f} req/s without, {ms:.0f} req/s with scraping: ratio {ms / mp:.3f}")
PY
"${ctl[@]}" metrics | grep -E '^cairn_http_requests_total\{listener="public",route="/seats"' || true
