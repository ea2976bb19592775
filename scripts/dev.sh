#!/usr/bin/env bash
# The edit-build-run loop: builds APP, runs it on http://127.0.0.1:8787 (or CAIRN_DEV_PORT)
# with its data in ./data/dev-APP and a log line per request, and, whenever a source file,
# a CMakeLists.txt or a page under public/ changes, stops it cleanly (SIGTERM: the data stays),
# rebuilds and starts it again on the same data. A build that fails prints its errors and
# waits for the next change. Ctrl-C stops it.
#
#   scripts/dev.sh [flight|counter|chat|map|echo] [server flags...]
#
# Watches with entr (Debian's package; installed by scripts/install-deps.sh). The build is
# build/dev-loop (Debug, ccache when present) unless CAIRN_DEV_BUILD_DIR names another (an
# existing build keeps its options); CAIRN_DEV_DATA_DIR and CAIRN_DEV_PORT likewise.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

app="${1:-flight}"
[[ $# -gt 0 ]] && shift
case "$app" in
  flight) target=cairn-server; binary=examples/cairn-server; extra=(--public-dir "$root/public") ;;
  counter) target=cairn-counter; binary=examples/counter/cairn-counter; extra=() ;;
  chat) target=cairn-chat; binary=examples/chat/cairn-chat; extra=() ;;
  map) target=cairn-map; binary=examples/map/cairn-map; extra=() ;;
  echo) target=cairn-echo; binary=examples/echo/cairn-echo; extra=() ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "dev.sh: unknown app '$app' (flight, counter, chat, map or echo)" >&2; exit 2 ;;
esac

command -v entr >/dev/null || ./scripts/install-deps.sh
command -v entr >/dev/null || { echo "dev.sh: entr is not installed and could not be" >&2; exit 1; }

build="${CAIRN_DEV_BUILD_DIR:-build/dev-loop}"
data="${CAIRN_DEV_DATA_DIR:-data/dev-$app}"
port="${CAIRN_DEV_PORT:-8787}"
mkdir -p "$data"
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [[ -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" >/dev/null  # an existing build keeps its own options
else
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug -DCAIRN_BUILD_TESTS=OFF \
    -DCAIRN_BUILD_BENCHMARKS=OFF "${launcher[@]}" >/dev/null
fi

# What to watch: the tracked sources, build files and pages (git knows them; outside a git
# checkout, the same directories by name). New files are picked up by the next restart of
# the loop: entr -d exits when a watched directory gains a file, and the loop lists again.
watched() {
  local dirs=(runtime gateway actors cluster net cli examples public CMakeLists.txt cmake)
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -- "${dirs[@]}"
  else
    find "${dirs[@]}" -type f 2>/dev/null
  fi | grep -E '\.(cpp|hpp|h|cmake|txt|html|js|css|json|toml)$'
}

# The command entr runs (and stops with SIGTERM on each change): build, then become the server.
flags=""
for arg in "${extra[@]}" "$@"; do flags+=" $(printf '%q' "$arg")"; done
run="cmake --build '$build' -j '${CAIRN_JOBS:-2}' --target '$target' && echo 'dev.sh: http://127.0.0.1:$port/' &&
  exec '$build/$binary' --host 127.0.0.1 --port '$port' --data-dir '$data' --access-log=true$flags"
entr_flags=(-r -d)
# No terminal (a script, CI): entr must not try to read keys from one.
{ : </dev/tty; } 2>/dev/null || entr_flags+=(-n)
trap 'exit 0' INT TERM
while true; do
  # entr exits 2 when a new file appears in a watched directory: list again and go on.
  set +e
  watched | entr "${entr_flags[@]}" bash -c "$run"
  status=$?
  set -e
  [[ $status -eq 2 ]] || exit "$status"
done
