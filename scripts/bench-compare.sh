#!/usr/bin/env bash
# Two builds of cairn-server side by side: BASE (a git revision, built in a worktree under
# build/compare-base) and the working tree (build/release), both Release, measured with the
# working tree's cairn-load in alternating rounds so both see the same machine. Each round
# starts each server afresh (its own data dir, ephemeral loopback port) and runs:
#   seats-hot     GET /seats on one flight, 16 connections            (req/s)
#   seats-spread  GET /seats over 1,000 flights, 16 connections       (req/s)
#   book-spread   durable bookings over 1,000 flights, 16 connections (req/s)
#   fanout        a booking seen by all 100 sockets of its flight     (p99 ms)
# and prints every run, the medians and HEAD/BASE ratios.
# Usage: scripts/bench-compare.sh BASE [ROUNDS=5] [SECONDS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:?usage: scripts/bench-compare.sh BASE [ROUNDS] [SECONDS]}"
rounds="${2:-5}"
seconds="${3:-4}"
jobs="${CAIRN_JOBS:-2}"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$jobs" --target cairn-server cairn-load >/dev/null
base_src="build/compare-base/src"
if [[ ! -d "$base_src" ]]; then
  git worktree add --detach "$base_src" "$base_rev" >/dev/null
else
  git -C "$base_src" checkout --detach -q "$base_rev"
fi
cmake -S "$base_src" -B build/compare-base/build -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/compare-base/build -j "$jobs" --target cairn-server >/dev/null

load=build/release/examples/cairn-load
source scripts/bench-lib.sh
work="$bench_work"
measure() {  # $1: server binary; prints "seats_hot seats_spread book_spread fanout_p99"
  start_server "$1"
  local url="http://127.0.0.1:$port" out=()
  "$load" seats --url "$url" -c 16 --prefix hot -d 1 --no-progress > /dev/null  # warm up
  "$load" seats --url "$url" -c 16 --prefix hot -d "$seconds" --no-progress --json "$work/r.json" > /dev/null
  out+=("$(load_figure "$work/r.json" rate)")
  "$load" seats --url "$url" -c 16 -f 1000 --prefix spread -d 1 --no-progress > /dev/null
  "$load" seats --url "$url" -c 16 -f 1000 --prefix spread -d "$seconds" --no-progress --json "$work/r.json" > /dev/null
  out+=("$(load_figure "$work/r.json" rate)")
  "$load" book --url "$url" -c 16 -f 1000 -d "$seconds" --no-progress --json "$work/r.json" > /dev/null
  out+=("$(load_figure "$work/r.json" rate)")
  "$load" fanout --url "$url" -f 1 -s 100 -d "$seconds" --no-progress --json "$work/r.json" > /dev/null
  out+=("$(load_figure "$work/r.json" p99)")
  stop_server
  echo "${out[*]}"
}

base_runs=(); head_runs=()
for i in $(seq "$rounds"); do
  b="$(measure build/compare-base/build/examples/cairn-server)"
  h="$(measure build/release/examples/cairn-server)"
  base_runs+=("$b"); head_runs+=("$h")
  echo "round $i  BASE $base_rev: $b   HEAD: $h   (seats-hot req/s, seats-spread req/s, book-spread req/s, fanout p99 ms)"
done
python3 - "$base_rev" "$(printf '%s;' "${base_runs[@]}")" "$(printf '%s;' "${head_runs[@]}")" <<'PY'
import statistics, sys
names = ["seats-hot req/s", "seats-spread req/s", "book-spread req/s", "fanout p99 ms"]
def parse(text):
    return [list(map(float, run.split())) for run in text.split(";") if run.strip()]
base, head = parse(sys.argv[2]), parse(sys.argv[3])
for i, name in enumerate(names):
    b = statistics.median(r[i] for r in base)
    h = statistics.median(r[i] for r in head)
    print(f"{name:>20}: BASE {sys.argv[1]} median {b:10.2f}   HEAD median {h:10.2f}   HEAD/BASE {h / b:.3f}")
PY
