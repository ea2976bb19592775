#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in build/fuzz, and runs
# each for SECONDS (default 60) on its committed seed corpus plus a working corpus in
# build/fuzz/corpus/ (new inputs go there, so the committed seeds stay as they are).
# Prints executions per target; exits non-zero if a target crashes (the input is kept in
# build/fuzz/artifacts/). Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(fuzz_http_request fuzz_actor_names fuzz_flight_bodies fuzz_websocket_messages)

CAIRN_EXTRA_PACKAGES="clang libclang-rt-14-dev ${CAIRN_EXTRA_PACKAGES:-}" ./scripts/install-deps.sh
dir=build/fuzz
if [[ -f "$dir/CMakeCache.txt" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
  rm -rf "$dir"
fi
# Through ccache when there is one, as scripts/test.sh does (a rerun recompiles what changed).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=)
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_FUZZ=ON -DCAIRN_WERROR=ON \
  "${launcher[@]}" >/dev/null
cmake --build "$dir" -j "${CAIRN_JOBS:-2}" --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$dir/artifacts"
status=0
summary=()
for target in "${targets[@]}"; do
  work="$dir/corpus/$target"
  mkdir -p "$work"
  log="$dir/$target.log"
  echo "== fuzz $target for ${seconds}s"
  if "$dir/tests/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
      -rss_limit_mb=4096 -artifact_prefix="$dir/artifacts/$target-" \
      "$work" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -n 60 "$log"
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo "?")
  summary+=("$target: $result, $runs executions in ${seconds}s, coverage $cov edges")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $status
