# Shared by the bench-*.sh scripts (sourced): one cairn-server at a time on an ephemeral
# loopback port with a fresh data dir, stopped by its PID, and the figures of a cairn-load
# JSON result. Sets bench_work (a temporary directory removed at exit).
bench_work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
bench_cleanup() {
  stop_server
  rm -rf "$bench_work"
}
trap bench_cleanup EXIT

# start_server BINARY [FLAGS...]: starts it and waits for its address; sets `port`, and
# `admin_port` when FLAGS has --admin-port.
start_server() {
  local binary="$1"
  shift
  rm -rf "$bench_work/data" "$bench_work/out"
  "$binary" --host 127.0.0.1 --port 0 --data-dir "$bench_work/data" --log-level warn "$@" > "$bench_work/out" &
  server_pid=$!
  local wanted='listening on'
  [[ " $* " == *" --admin-port "* ]] && wanted='admin API on'
  for _ in $(seq 100); do
    grep -q "$wanted" "$bench_work/out" 2>/dev/null && break
    sleep 0.1
  done
  port="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$bench_work/out" | grep -o '[0-9]*$')"
  admin_port="$(grep -o 'admin API on http://127.0.0.1:[0-9]*' "$bench_work/out" | grep -o '[0-9]*$' || true)"
}

# load_figure FILE rate|p99: the busiest series' requests per second, or its p99 in ms.
load_figure() {
  python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
s = max(r["series"].values(), key=lambda s: s["count"])
print(round(s["rate_per_s"]) if sys.argv[2] == "rate" else round(s["p99_ms"], 2))' "$1" "$2"
}
