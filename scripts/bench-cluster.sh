#!/usr/bin/env bash
# Cluster mode's cost of a forward: one etcd and two cairn-server nodes (Release) on loopback,
# and GET /seats on one flight through node a, for a flight node a owns (direct) and for one
# node b owns (forwarded by a to b over its kept-alive connections), in alternating rounds.
# Prints each run, then the medians and forwarded/direct ratios of rate, p50 and p99.
# Both nodes and the load share the machine's cores (2 here): the figures are the added work
# of a forward on one machine, not a network's latency.
# Usage: scripts/bench-cluster.sh [ROUNDS=3] [SECONDS=4] [CONNECTIONS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-4}"
connections="${3:-8}"
jobs="${CAIRN_JOBS:-2}"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$jobs" --target cairn-server cairn-load >/dev/null
server=build/release/examples/cairn-server
load=build/release/examples/cairn-load
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port="$(free_port)"
peer_port="$(free_port)"
etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "bench=http://127.0.0.1:$peer_port" \
  --log-level warn > "$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$etcd_port/health" && break; sleep 0.1; done
head -c 32 /dev/urandom | base64 > "$work/token"

declare -A port
for node in a b; do
  "$server" --host 127.0.0.1 --port 0 --data-dir "$work/$node" --log-level warn --public-dir "" \
    --cluster "http://127.0.0.1:$etcd_port" --node-id "$node" --cluster-token-file "$work/token" > "$work/$node.out" &
  pids+=($!)
  for _ in $(seq 100); do grep -q 'cluster listener' "$work/$node.out" 2>/dev/null && break; sleep 0.1; done
  port[$node]="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/$node.out" | grep -o '[0-9]*$')"
done

# A cairn-load prefix whose flight (<prefix>-s0) node $1 owns: its database lands there.
owned_by() {
  for i in $(seq 200); do
    local prefix="bench$1$i"
    curl -s -o /dev/null "http://127.0.0.1:${port[a]}/seats?flightId=$prefix-s0"
    if find "$work/$1/_shards" -name '*.sqlite' -newer "$work/token" 2>/dev/null | grep -q .; then
      local hex
      hex="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(b"FLIGHT\0"+sys.argv[1].encode()).hexdigest())' "$prefix-s0")"
      if find "$work/$1/_shards" -name "$hex.sqlite" | grep -q .; then echo "$prefix"; return; fi
    fi
  done
  echo "no flight owned by $1 found" >&2
  exit 1
}
for _ in $(seq 100); do curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[a]}/seats?flightId=probe" | grep -q 200 && break; sleep 0.2; done
direct="$(owned_by a)"
forwarded="$(owned_by b)"

figures() {  # $1: JSON result -> "rate p50 p99"
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
s = max(r["series"].values(), key=lambda s: s["count"])
print(round(s["rate_per_s"]), round(s["p50_ms"], 3), round(s["p99_ms"], 3))' "$1"
}
run() {  # $1: prefix
  "$load" seats --url "http://127.0.0.1:${port[a]}" -c "$connections" --prefix "$1" -d "$seconds" --no-progress \
    --json "$work/r.json" > /dev/null
  figures "$work/r.json"
}
"$load" seats --url "http://127.0.0.1:${port[a]}" -c "$connections" --prefix "$forwarded" -d 1 --no-progress > /dev/null
d_all=(); f_all=()
for r in $(seq "$rounds"); do
  d="$(run "$direct")"
  f="$(run "$forwarded")"
  echo "round $r  direct: $d   forwarded: $f   (req/s, p50 ms, p99 ms; GET /seats through node a, $connections connections)"
  d_all+=("$d"); f_all+=("$f")
done
python3 - "${d_all[@]}" -- "${f_all[@]}" <<'EOF'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
direct = [list(map(float, x.split())) for x in args[:cut]]
forwarded = [list(map(float, x.split())) for x in args[cut + 1:]]
for i, name in enumerate(["req/s", "p50 ms", "p99 ms"]):
    d = statistics.median(r[i] for r in direct)
    f = statistics.median(r[i] for r in forwarded)
    print(f"{name:>7}: direct median {d:10.3f}   forwarded median {f:10.3f}   forwarded/direct {f / d:.3f}")
EOF
