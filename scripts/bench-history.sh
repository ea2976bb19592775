#!/usr/bin/env bash
# The cost of each actor's history of changes (--history-retention: a changeset per commit
# kept in the actor's database, for restores to a moment) on durable writes: cairn-load hot
# (holds and releases on one flight: every request a durable write on one actor) and book
# (bookings spread over 1,000 flights), with the history off against kept for a day,
# alternated ROUNDS times (default 3) on the same Release build, so both see the same machine.
# Prints each run, the ratio of the medians, and the history's size after a run.
# Usage: scripts/bench-history.sh [ROUNDS] [SECONDS]
# CAIRN_BENCH_BUILD=build/dev: measure an existing build's binaries instead (no Release build).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-5}"

build="${CAIRN_BENCH_BUILD:-}"
if [[ -z "$build" ]]; then
  build=build/release
  ./scripts/install-deps.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j "${CAIRN_JOBS:-2}" --target cairn-server cairn-load >/dev/null
fi

source scripts/bench-lib.sh
work="$bench_work"
server="$build/examples/cairn-server"

run() {  # $1: the --history-retention value; $2: scenario; $3: flights; prints requests per second
  start_server "$server" --history-retention "$1" --access-log=false
  local load=("$build/examples/cairn-load" "$2" -c 16 --flights "$3" --prefix "h$3-" --no-progress
              --url "http://127.0.0.1:$port")
  rm -f "$work/run.json"
  "${load[@]}" -d 1 > /dev/null  # warm up: every flight created
  "${load[@]}" -d "$seconds" --json "$work/run.json" > /dev/null
  stop_server
  if [[ "$1" != 0 ]]; then
    # What the busiest flight kept: the history's rows and bytes, read from its database.
    local db; db="$(find "$work/data" -name '*.sqlite' -not -path '*/_cairn/*' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)"
    [[ -n "$db" ]] && sqlite3 "file:$db?mode=ro" \
      "SELECT '  (the busiest flight kept ' || count(changes) || ' changesets, ' || coalesce(sum(length(changes)), 0) || ' bytes)' FROM _cairn_history" >&2 || true
  fi
  load_figure "$work/run.json" rate
}

for case in "hot 1" "book 1000"; do
  read -r scenario flights <<< "$case"
  off=(); on=()
  for i in $(seq "$rounds"); do
    f="$(run 0 "$scenario" "$flights")"; n="$(run 24h "$scenario" "$flights")"
    off+=("$f"); on+=("$n")
    echo "round $i, $scenario on $flights flight(s): ${f} durable writes/s with history off, ${n}/s with it kept"
  done
  python3 - "$scenario" "$flights" "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[3].split()]
on = [float(x) for x in sys.argv[4].split()]
mf, mn = statistics.median(off), statistics.median(on)
print(f"median, {sys.argv[1]} on {sys.argv[2]} flight(s): {mf:.0f}/s off, {mn:.0f}/s on: ratio {mn / mf:.3f}")
PY
done
