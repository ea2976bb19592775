#!/usr/bin/env bash
# The cost of the public edge on the hot path: GET /seats throughput on one hot flight
# (cairn-load seats, 16 connections) with every check on (a bearer token verified on each
# request, HS256; a rate limit per client; CORS; a trusted proxy's X-Forwarded-For read; the
# application's hook; the access log written at info to a file) against all of it off,
# alternated ROUNDS times (default 3) on the same Release build, so both see the same machine.
# Prints each run and the ratio of the medians. With "split" as the third argument it also
# runs the access log alone and the token check alone, to say which costs what.
# Usage: scripts/bench-edge.sh [ROUNDS] [SECONDS] [split]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-5}"
split="${3:-}"

./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "${CAIRN_JOBS:-2}" --target cairn-bench-edge-server cairn-load >/dev/null

source scripts/bench-lib.sh
work="$bench_work"
secret="$(head -c 33 /dev/urandom | base64)"
printf '%s' "$secret" > "$work/jwt-secret"
token="$(python3 - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench", "aud": "seat-booking", "exp": int(time.time()) + 3600}).encode())
sig = hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
PY
)"
server=build/release/examples/cairn-bench-edge-server
load=(build/release/examples/cairn-load seats -c 16 --prefix hot --no-progress)
on_flags=(--hook --auth-hs256-secret-file "$work/jwt-secret" --auth-audience seat-booking
          --auth-required "GET /seats" --rate-limit "* 1000000/s 1000000" --cors-origin https://seats.example.com
          --trusted-proxy 127.0.0.1 --access-log --log-level info)
on_headers=(--header "Authorization: Bearer $token" --header "X-Forwarded-For: 203.0.113.7"
            --header "Origin: https://seats.example.com" --header "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

run() {  # $1: on, off, log (the access log alone) or jwt (the token check alone); prints requests per second
  if [[ "$1" == log ]]; then
    start_server "$server" --access-log --log-level info 2> "$work/access.log"
    "${load[@]}" --url "http://127.0.0.1:$port" -d 1 > /dev/null
    "${load[@]}" --url "http://127.0.0.1:$port" -d "$seconds" --json "$work/run.json" > /dev/null
  elif [[ "$1" == jwt ]]; then
    start_server "$server" --access-log=false --auth-hs256-secret-file "$work/jwt-secret" \
      --auth-audience seat-booking --auth-required "GET /seats" 2> /dev/null
    "${load[@]}" --url "http://127.0.0.1:$port" --header "Authorization: Bearer $token" -d 1 > /dev/null
    "${load[@]}" --url "http://127.0.0.1:$port" --header "Authorization: Bearer $token" -d "$seconds" \
      --json "$work/run.json" > /dev/null
  elif [[ "$1" == on ]]; then
    start_server "$server" "${on_flags[@]}" 2> "$work/access.log"
    "${load[@]}" --url "http://127.0.0.1:$port" "${on_headers[@]}" -d 1 > /dev/null  # warm up
    "${load[@]}" --url "http://127.0.0.1:$port" "${on_headers[@]}" -d "$seconds" --json "$work/run.json" > /dev/null
  else
    start_server "$server" --access-log=false 2> /dev/null
    "${load[@]}" --url "http://127.0.0.1:$port" -d 1 > /dev/null
    "${load[@]}" --url "http://127.0.0.1:$port" -d "$seconds" --json "$work/run.json" > /dev/null
  fi
  stop_server
  load_figure "$work/run.json" rate
}

off=(); on=(); logged=(); tokens=()
for i in $(seq "$rounds"); do
  f="$(run off)"; n="$(run on)"
  off+=("$f"); on+=("$n")
  echo "round $i: GET /seats ${f} req/s with the edge off, ${n} req/s with it all on ($(grep -c '"GET /seats" 200' "$work/access.log") access lines)"
  if [[ "$split" == split ]]; then
    l="$(run log)"; j="$(run jwt)"
    logged+=("$l"); tokens+=("$j")
    echo "round $i: ${l} req/s with the access log alone, ${j} req/s with the token check alone"
  fi
done
if [[ "$split" == split ]]; then
  python3 - "${off[*]}" "${logged[*]}" "${tokens[*]}" <<'PY'
import statistics, sys
off, log, jwt = (statistics.median(float(x) for x in a.split()) for a in sys.argv[1:4])
print(f"median: access log alone {log:.0f} req/s (ratio {log / off:.3f}), token check alone {jwt:.0f} req/s (ratio {jwt / off:.3f})")
PY
fi
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
mf, mn = statistics.median(off), statistics.median(on)
print(f"median: {mf:.0f} req/s off, {mn:.0f} req/s on: ratio {mn / mf:.3f} ({(1 - mn / mf) * 100:.1f}% fewer; {(1 / mn - 1 / mf) * 1e6 * 2:.1f} us more of the 2 cores per request)")
PY
