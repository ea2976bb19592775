#!/usr/bin/env bash
# Admin and metrics must not stall the serving workload: GET /seats throughput on one hot
# flight (cairn-load seats, 16 connections), alone and while `cairnctl backup` copies every
# actor (ACTORS flights, default 10,000) and /metrics is scraped every second, alternated
# ROUNDS times (default 3) against one Release cairn-server. Prints each run and the ratio
# of the medians (the bar: >= 0.8).
# Usage: scripts/bench-admin.sh [ROUNDS] [SECONDS] [ACTORS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-5}"
actors="${3:-10000}"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "${CAIRN_JOBS:-2}" --target cairn-server cairn-load cairnctl >/dev/null

source scripts/bench-lib.sh
work="$bench_work"
head -c 24 /dev/urandom | base64 > "$work/token"
start_server build/release/examples/cairn-server --admin-port 0 --admin-token-file "$work/token"
admin="$admin_port"
load=(build/release/examples/cairn-load --url "http://127.0.0.1:$port" --no-progress)
ctl=(build/release/gateway/cairnctl --url "http://127.0.0.1:$admin" --token-file "$work/token")
echo "making $actors flights..."
"${load[@]}" coldstart -c 16 -n "$actors" --prefix many -d 600 > /dev/null
"${load[@]}" seats -c 16 --prefix hot -d 2 > /dev/null  # warm up: the hot flight exists

seats() {  # prints GET /seats requests per second on the hot flight
  "${load[@]}" seats -c 16 --prefix hot -d "$seconds" --json "$work/run.json" > /dev/null
  load_figure "$work/run.json" rate
}

plain=(); loaded=()
for i in $(seq "$rounds"); do
  p="$(seats)"
  rm -rf "$work/backup"
  start=$(date +%s.%N)
  "${ctl[@]}" backup "$work/backup" > "$work/backup.out" 2>&1 &
  backup=$!
  ( for _ in $(seq $((seconds + 2))); do "${ctl[@]}" metrics > /dev/null; sleep 1; done ) &
  scraper=$!
  l="$(seats)"
  running=yes; kill -0 "$backup" 2>/dev/null || running=no
  wait "$backup" || { echo "the backup failed:"; cat "$work/backup.out"; exit 1; }
  took=$(python3 -c "import time,sys; print(round(time.time() - float(sys.argv[1]), 1))" "$start")
  wait "$scraper" 2>/dev/null || true
  plain+=("$p"); loaded+=("$l")
  echo "round $i: GET /seats ${p} req/s alone, ${l} req/s during a backup of $actors actors (still running at the end: $running; it took ${took} s) and /metrics every second"
done
python3 - "${plain[*]}" "${loaded[*]}" <<'PY'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
loaded = [float(x) for x in sys.argv[2].split()]
mp, ml = statistics.median(plain), statistics.median(loaded)
print(f"median: {mp:.0f} req/s alone, {ml:.0f} req/s with backup + scraping: ratio {ml / mp:.3f} (bar: >= 0.8)")
PY
