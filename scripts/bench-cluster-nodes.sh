#!/usr/bin/env bash
# Cluster mode at 1, 2 and 3 nodes (Release builds, one etcd, all on loopback):
#   1. bookings per second over 1,000 flights, cairn-load `book` through every node (its
#      connections take turns), so most bookings are forwarded once with 2 or 3 nodes;
#   2. with 3 nodes, after the bookings: the time SIGTERM takes to hand node n0's shards (and
#      its third of the flights' databases) to the others and stop;
#   3. the time until n0, started again with its now empty directory, owns its share again
#      (the coordinator moves shards back to it, 32 at a time);
#   4. the time until a node killed with -9 and started again serves its flights (its old
#      claims must expire first: the lease TTL, 5 s).
# Node i is pinned to core i mod 2 with taskset (the machine has 2 cores; cairn-load is not
# pinned): with 2 and 3 nodes the nodes share the cores, so the figures show what forwarding
# costs, not what more machines would add.
# Usage: scripts/bench-cluster-nodes.sh [SECONDS=5] [CONNECTIONS=16]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
connections="${2:-16}"
jobs="${CAIRN_JOBS:-2}"
cores="$(nproc)"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$jobs" --target cairn-server cairn-load >/dev/null
server="$PWD/build/release/examples/cairn-server"
load="$PWD/build/release/examples/cairn-load"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
head -c 32 /dev/urandom | base64 > "$work/token"
head -c 32 /dev/urandom | base64 > "$work/admin-token"

declare -A port admin pid
etcd_pid=""
start_etcd() {
  local etcd_port peer_port
  etcd_port="$(free_port)"; peer_port="$(free_port)"
  rm -rf "$work/etcd"
  etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "bench=http://127.0.0.1:$peer_port" \
    --log-level warn > "$work/etcd.log" 2>&1 &
  etcd_pid=$!
  pids+=("$etcd_pid")
  etcd_url="http://127.0.0.1:$etcd_port"
  for _ in $(seq 100); do curl -s -o /dev/null "$etcd_url/health" && break; sleep 0.1; done
}
start_node() {  # $1: index
  local i="$1" node="n$1"
  : > "$work/$node.out"
  taskset -c "$((i % cores))" "$server" --host 127.0.0.1 --port 0 --data-dir "$work/$node" --log-level info \
    --public-dir "" --cluster "$etcd_url" --node-id "$node" --cluster-token-file "$work/token" \
    --admin-port 0 --admin-token-file "$work/admin-token" > "$work/$node.out" 2>&1 &
  pid[$node]=$!
  pids+=("${pid[$node]}")
  for _ in $(seq 200); do grep -q 'admin API' "$work/$node.out" 2>/dev/null && break; sleep 0.05; done
  port[$node]="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/$node.out" | grep -o '[0-9]*$')"
  admin[$node]="$(grep -o 'admin API on http://127.0.0.1:[0-9]*' "$work/$node.out" | grep -o '[0-9]*$')"
}
metric() {  # $1: node, $2: sample name -> value (0 if absent)
  curl -s -H "Authorization: Bearer $(cat "$work/admin-token")" "http://127.0.0.1:${admin[$1]}/metrics" |
    awk -v m="$2" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}
settled() {  # $@: nodes; true when every shard is owned, none moving, and the shares differ by <= 1
  local total=0 least=1024 most=0 moves=0 n v
  for n in "$@"; do
    v="$(metric "$n" cairn_cluster_shards_owned)"; v="${v%.*}"
    total=$((total + v)); ((v < least)) && least=$v; ((v > most)) && most=$v
    m="$(metric "$n" cairn_cluster_moves)"; moves=$((moves + ${m%.*}))
  done
  [[ $total -eq 1024 && $moves -eq 0 && $((most - least)) -le 1 ]]
}
wait_settled() {
  for _ in $(seq 600); do settled "$@" && return 0; sleep 0.1; done
  echo "the cluster did not settle" >&2; return 1
}
stop_all() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  rm -rf "$work"/n*
}

declare -A rate
for count in 1 2 3; do
  start_etcd
  nodes=(); urls=""
  for i in $(seq 0 $((count - 1))); do
    start_node "$i"; nodes+=("n$i"); urls+="${urls:+,}http://127.0.0.1:${port[n$i]}"
  done
  wait_settled "${nodes[@]}"
  "$load" book --url "$urls" -c "$connections" -f 1000 -d "$seconds" --no-progress --json "$work/book.json" > "$work/book.txt"
  rate[$count]="$(python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
s = r["series"]["POST /book-seat"]
ok = "PASS" if r["passed"] else "FAIL"
print("%.0f bookings/s, p50 %.2f ms, p99 %.2f ms, check %s" % (s["rate_per_s"], s["p50_ms"], s["p99_ms"], ok))' "$work/book.json")"
  echo "$count node(s): ${rate[$count]}"
  if [[ $count -eq 3 ]]; then
    # 2. SIGTERM n0: hand-off of its shards and databases, then exit.
    files="$(find "$work/n0/_shards" -name '*.sqlite' | wc -l)"
    t0="$(now)"; kill -TERM "${pid[n0]}"; wait "${pid[n0]}" || true; t1="$(now)"
    handed="$(grep -o 'shards handed over in [0-9.]* s' "$work/n0.out" | grep -o '[0-9.]* s' || echo '?')"
    printf 'SIGTERM of n0 (%s actor databases): hand-off %s, process gone after %.3f s\n' "$files" "$handed" \
      "$(echo "$t1 - $t0" | bc)"
    wait_settled n1 n2
    # 3. n0 back, empty: time until it owns its share again.
    t0="$(now)"; start_node 0; wait_settled n0 n1 n2; t1="$(now)"
    printf 'n0 started again: its share (%s shards) back by moves after %.3f s\n' \
      "$(metric n0 cairn_cluster_shards_owned)" "$(echo "$t1 - $t0" | bc)"
    # 4. kill -9 of n1 and a restart: its flights answer again once its old claims expired.
    flight="$(python3 - "$work/n1/_shards" <<'EOF'
import os, sys
# any flight whose database n1 holds: cairn-load's names are <prefix>-b<i>; find one by hash
import hashlib, json
held = {f[:-7] for _, _, files in os.walk(sys.argv[1]) for f in files if f.endswith(".sqlite")}
prefix = json.load(open(os.path.join(os.path.dirname(os.path.dirname(sys.argv[1])), "book.json")))["parameters"]["prefix"]
for i in range(1000):
    name = f"{prefix}-b{i}"
    if hashlib.sha256(b"FLIGHT\0" + name.encode()).hexdigest() in held:
        print(name); break
EOF
)"
    kill -9 "${pid[n1]}"; wait "${pid[n1]}" 2>/dev/null || true
    t0="$(now)"; start_node 1
    for _ in $(seq 300); do
      code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[n2]}/seats?flightId=$flight")"
      [[ $code == 200 ]] && break; sleep 0.05
    done
    t1="$(now)"
    printf 'n1 killed (-9) and started again: its flight %s answers (HTTP %s) after %.3f s\n' "$flight" "$code" \
      "$(echo "$t1 - $t0" | bc)"
  fi
  stop_all
done
echo "cores shared: node i pinned to core i mod $cores; cairn-load unpinned; $connections connections, ${seconds} s each"
