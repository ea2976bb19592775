#!/usr/bin/env bash
# The cost of what the runtime keeps for operators (each actor's recent events and the counts
# behind /admin/top; RuntimeOptions::recent_events) on GET /seats: cairn-load seats with 16
# connections on one hot flight, and spread over 1,000 flights (more actors in the top
# table), with --recent-events 32 (the default) against 0 (off), alternated ROUNDS times
# (default 3) on the same Release build, so both see the same machine. Prints each run and the
# ratio of the medians.
# Usage: scripts/bench-activity.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-5}"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "${CAIRN_JOBS:-2}" --target cairn-server cairn-load >/dev/null

source scripts/bench-lib.sh
work="$bench_work"
server=build/release/examples/cairn-server

run() {  # $1: the --recent-events value; $2: flights; prints requests per second
  start_server "$server" --recent-events "$1" --access-log=false
  local load=(build/release/examples/cairn-load seats -c 16 --flights "$2" --prefix "f$2-" --no-progress
              --url "http://127.0.0.1:$port")
  "${load[@]}" -d 1 > /dev/null  # warm up: every flight created
  "${load[@]}" -d "$seconds" --json "$work/run.json" > /dev/null
  stop_server
  load_figure "$work/run.json" rate
}

for flights in 1 1000; do
  off=(); on=()
  for i in $(seq "$rounds"); do
    f="$(run 0 "$flights")"; n="$(run 32 "$flights")"
    off+=("$f"); on+=("$n")
    echo "round $i, $flights flight(s): GET /seats ${f} req/s with recent events off, ${n} req/s with 32 kept"
  done
  python3 - "$flights" "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[2].split()]
on = [float(x) for x in sys.argv[3].split()]
mf, mn = statistics.median(off), statistics.median(on)
print(f"median, {sys.argv[1]} flight(s): {mf:.0f} req/s off, {mn:.0f} req/s on: ratio {mn / mf:.3f} "
      f"({(1 / mn - 1 / mf) * 1e6 * 2:+.2f} us of the 2 cores per request)")
PY
done
