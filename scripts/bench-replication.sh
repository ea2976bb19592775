#!/usr/bin/env bash
# Replication's cost (issue 20): durable bookings over 1,000 flights on a two-node cluster
# (Release, one etcd, loopback), each node replicating every shard it owns to the other
# (--replicate: with two nodes each follows the other's shards) or not at all, alternated ROUNDS
# times in the same run (with replication, measured once every follower is in sync). cairn-load `book`
# takes turns over both nodes. Node i is pinned to core i of the 2-core machine, cairn-load is
# not: owner and follower share the disk and the cores, so the figures are an upper bound on
# what a follower on its own machine would cost.
# Usage: scripts/bench-replication.sh [SECONDS=8] [CONNECTIONS=32] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
connections="${2:-32}"
rounds="${3:-3}"
jobs="${CAIRN_JOBS:-2}"
cores="$(nproc)"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$jobs" --target cairn-server cairn-load >/dev/null
server="$PWD/build/release/examples/cairn-server"
load="$PWD/build/release/examples/cairn-load"
work="$(mktemp -d)"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
head -c 32 /dev/urandom | base64 > "$work/token"

run() {  # $1: on|off -> one line of figures
  local mode="$1" etcd_port peer_port i node url=""
  rm -rf "$work/etcd" "$work"/n*
  etcd_port="$(free_port)"; peer_port="$(free_port)"
  etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "bench=http://127.0.0.1:$peer_port" \
    --log-level warn > "$work/etcd.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$etcd_port/health" && break; sleep 0.1; done
  local cport=("$(free_port)" "$(free_port)") aport=("$(free_port)" "$(free_port)")
  for i in 0 1; do
    node="n$i"
    local extra=()
    [[ $mode == on ]] && extra=(--replicate)
    taskset -c "$((i % cores))" "$server" --host 127.0.0.1 --port 0 --data-dir "$work/$node" --log-level warn \
      --public-dir "" --cluster "http://127.0.0.1:$etcd_port" --node-id "$node" --cluster-port "${cport[$i]}" \
      --cluster-token-file "$work/token" --admin-port "${aport[$i]}" --admin-token-file "$work/token" \
      "${extra[@]}" > "$work/$node.out" 2>&1 &
    pids+=("$!")
    for _ in $(seq 200); do grep -q 'listening on' "$work/$node.out" 2>/dev/null && break; sleep 0.05; done
    url+="${url:+,}http://127.0.0.1:$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/$node.out" | grep -o '[0-9]*$')"
  done
  # Every shard owned: a never-used flight answers through both nodes.
  for _ in $(seq 300); do
    local ok=1
    for u in ${url//,/ }; do [[ "$(curl -s -o /dev/null -w '%{http_code}' "$u/seats?flightId=ready")" == 200 ]] || ok=0; done
    [[ $ok == 1 ]] && break; sleep 0.1
  done
  if [[ $mode == on ]]; then  # every shard's follower seeded and counted in sync
    for _ in $(seq 600); do
      local in_sync=0 n
      for i in 0 1; do
        n="$(curl -s -H "Authorization: Bearer $(cat "$work/token")" "http://127.0.0.1:${aport[$i]}/metrics" |
          awk '/^cairn_replication_shards\{state="in_sync"\}/ {print $2}')"
        in_sync=$((in_sync + ${n:-0}))
      done
      [[ $in_sync == 1024 ]] && break; sleep 0.1
    done
  fi
  "$load" book --url "$url" -c "$connections" -f 1000 -d "$seconds" --no-progress --json "$work/book.json" > "$work/book.txt"
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
s = r["series"]["POST /book-seat"]
print("replication %-3s %6.0f bookings/s, p50 %5.2f ms, p99 %6.2f ms, checks %s" % (sys.argv[2], s["rate_per_s"], s["p50_ms"], s["p99_ms"], "PASS" if r["passed"] else "FAIL"))' \
    "$work/book.json" "$mode"
  stop_all
}

for round in $(seq "$rounds"); do
  run off
  run on
done
