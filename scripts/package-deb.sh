#!/usr/bin/env bash
# Builds cairn's Debian packages, cairn_<version>_<arch>.deb and libcairn-dev_..., with CPack
# and prints their paths. With a build directory as argument it packages that build (the
# test script passes its RelWithDebInfo build; the binaries are stripped in the package);
# without one it makes a Release build in build/deb.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
dir="${1:-build/deb}"
jobs="${CAIRN_JOBS:-2}"
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF \
    -DCAIRN_BUILD_BENCHMARKS=OFF >/dev/null
fi
cmake --build "$dir" -j "$jobs" --target cairn-server cairnctl cairn-load cairn_gateway cairn_changelogs >&2
rm -f "$dir"/*.deb
(cd "$dir" && cpack -G DEB >&2)
ls "$PWD/$dir"/*.deb
