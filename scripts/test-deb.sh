#!/usr/bin/env bash
# The Debian packages as a user gets them: builds them (scripts/package-deb.sh, from the build
# directory given, default build/deb), checks their contents and lintian, installs them with
# dpkg -i (root, or sudo), checks what the maintainer scripts made and the systemd units
# (systemd-analyze verify), starts the installed /usr/bin/cairn-server with
# /etc/cairn/cairn.toml as the `cairn` user (a temporary data directory, the admin token as
# systemd would pass it), serves the page, books a seat and reads the metrics, stops it
# (exit 0), builds examples/counter against the installed libcairn-dev and runs the
# counter's tests against that program, then removes both packages with dpkg --purge.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
build="${1:-build/deb}"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "test-deb: needs root or sudo (dpkg -i)" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }

# It installs and then purges the packages, and a purge deletes /var/lib/cairn: never on a
# machine where cairn is installed for real. What an earlier run of this test left behind
# (it was killed before its purge) carries its mark, and is purged first.
marker=/var/lib/cairn/.installed-by-test-deb
if "${sudo_cmd[@]}" test -e "$marker"; then
  echo "== test-deb: purging what an interrupted earlier run installed" >&2
  "${sudo_cmd[@]}" dpkg --purge cairn libcairn-dev >/dev/null
fi
for package in cairn libcairn-dev; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
    fail "$package is installed on this machine; this test would purge it (and /var/lib/cairn). Run it where cairn is not installed."
  fi
done

listing=$(mktemp)
./scripts/package-deb.sh "$build" >"$listing" || fail "scripts/package-deb.sh $build"
server_deb=$(grep '/cairn_' "$listing") || fail "no cairn package was built"
dev_deb=$(grep '/libcairn-dev_' "$listing") || fail "no libcairn-dev package was built"
rm -f "$listing"
echo "== test-deb: $server_deb $dev_deb"

# Contents.
contents=$(dpkg-deb -c "$server_deb")
for path in ./usr/bin/cairn-server ./usr/bin/cairnctl ./usr/bin/cairn-load ./etc/cairn/cairn.toml \
  ./lib/systemd/system/cairn.service ./lib/systemd/system/cairn.socket ./usr/share/cairn/public/index.html \
  ./usr/share/doc/cairn/copyright ./usr/share/man/man1/cairn-server.1.gz; do
  grep -q " $path\$" <<<"$contents" || fail "$server_deb lacks $path"
done
[[ "$(dpkg-deb -f "$server_deb" Package)" == cairn ]] || fail "package name"
dpkg-deb --ctrl-tarfile "$server_deb" | tar -xO ./conffiles | grep -qx /etc/cairn/cairn.toml || fail "conffiles"
dev_contents=$(dpkg-deb -c "$dev_deb")
for path in ./usr/include/cairn/gateway/app.hpp ./usr/include/cairn/plugin.hpp ./usr/include/cairn/runtime_version.hpp \
  ./usr/lib/cmake/cairn/cairnConfig.cmake ./usr/lib/cmake/cairn/cairnPlugin.cmake ./usr/lib/libcairn_runtime.a; do
  grep -q " $path\$" <<<"$dev_contents" || fail "$dev_deb lacks $path"
done
# lintian: no error or warning beyond what packaging/lintian-left lists (with why).
lintian_out=$(lintian --suppress-tags-from-file packaging/lintian-left "$server_deb" "$dev_deb" 2>&1 |
  grep -E '^[EW]: ' || true)
[[ -z "$lintian_out" ]] || fail "lintian: $lintian_out"

work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && "${sudo_cmd[@]}" kill -KILL "$server_pid" 2>/dev/null || true
  "${sudo_cmd[@]}" dpkg --purge cairn libcairn-dev >/dev/null 2>&1 || true
  "${sudo_cmd[@]}" rm -rf "$work"
}
trap cleanup EXIT

"${sudo_cmd[@]}" dpkg -i "$server_deb" "$dev_deb"
"${sudo_cmd[@]}" touch "$marker"
getent passwd cairn >/dev/null || fail "no cairn user"
[[ "$(stat -c %U /var/lib/cairn)" == cairn ]] || fail "/var/lib/cairn is not the cairn user's"
[[ "$("${sudo_cmd[@]}" stat -c %a /etc/cairn/admin-token)" == 600 ]] || fail "admin token mode"
verify=$(systemd-analyze verify /lib/systemd/system/cairn.service /lib/systemd/system/cairn.socket 2>&1) ||
  fail "systemd-analyze verify: $verify"
[[ -z "$verify" ]] || fail "systemd-analyze verify says: $verify"
/usr/bin/cairn-server --version | grep -q '^cairn-server ' || fail "--version"

# The installed server, as systemd runs it: the cairn user, the config file, the token as a
# credential.
"${sudo_cmd[@]}" install -d -o cairn -g cairn -m 0750 "$work/data" "$work/credentials"
"${sudo_cmd[@]}" install -o cairn -g cairn -m 0400 /etc/cairn/admin-token "$work/credentials/admin-token"
token=$("${sudo_cmd[@]}" cat /etc/cairn/admin-token)
"${sudo_cmd[@]}" chmod 0755 "$work"
"${sudo_cmd[@]}" env CREDENTIALS_DIRECTORY="$work/credentials" setpriv --reuid=cairn --regid=cairn --init-groups -- \
  /usr/bin/cairn-server --config /etc/cairn/cairn.toml --data-dir "$work/data" --port 0 --admin-port 0 \
  >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 100); do
  grep -q 'admin API on' "$work/out" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's|^cairn listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/out")
admin=$(sed -n 's|^cairn admin API on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/out")
[[ -n "$port" && -n "$admin" ]] || fail "the installed server did not start: $(cat "$work/out" "$work/err")"
curl -fsS "http://127.0.0.1:$port/" | grep -qi '<html' || fail "the demo page"
curl -fsS -X POST "http://127.0.0.1:$port/book-seat?flightId=DEB1" -H 'Content-Type: application/json' \
  -d '{"seatNumber":"3C","name":"Debian"}' >/dev/null || fail "booking"
curl -fsS "http://127.0.0.1:$port/seats?flightId=DEB1" | grep -q '"occupant":"Debian"' || fail "the booking is not there"
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/metrics" | grep -q '^cairn_build_info{' ||
  fail "admin metrics"
"${sudo_cmd[@]}" find "$work/data" -name '*.sqlite' -user cairn | grep -q . || fail "no database owned by cairn"
"${sudo_cmd[@]}" kill -TERM "$server_pid"  # through sudo when sudo started it (sudo relays it)
status=0
wait "$server_pid" || status=$?
server_pid=""
[[ $status -eq 0 ]] || fail "the installed server exited $status: $(cat "$work/err")"

# An outside project against the installed libcairn-dev.
cmake -S examples/counter -B "$work/counter" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$work/counter" -j "${CAIRN_JOBS:-2}" >/dev/null
if [[ -x "$build/tests/counter_tests" ]]; then
  CAIRN_COUNTER="$work/counter/cairn-counter" "$build/tests/counter_tests" >/dev/null ||
    fail "the counter built against the package fails its tests"
fi

# The installed server with no compiled-in class: the package's Flight plugin and the counter
# plugin just built against libcairn-dev.
flight_plugin=$(dpkg -L cairn | grep '/cairn/plugins/libcairn-flight\.so$' || true)
[[ -n "$flight_plugin" ]] || fail "the package has no libcairn-flight.so"
[[ -f "$work/counter/libcairn-counter.so" ]] || fail "the counter plugin was not built against the package"
/usr/bin/cairn-server --demo=false --plugin "$flight_plugin" --plugin "$work/counter/libcairn-counter.so" \
  --data-dir "$work/plugged" --port 0 --log-level warn >"$work/plugged.out" 2>"$work/plugged.err" &
server_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/plugged.out" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's|^cairn listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/plugged.out")
[[ -n "$port" ]] || fail "the server with plugins did not start: $(cat "$work/plugged.out" "$work/plugged.err")"
curl -fsS -X POST "http://127.0.0.1:$port/book-seat?flightId=DEB2" -H 'Content-Type: application/json' \
  -d '{"seatNumber":"4D","name":"Plugged"}' >/dev/null || fail "booking through the Flight plugin"
curl -fsS "http://127.0.0.1:$port/seats?flightId=DEB2" | grep -q '"occupant":"Plugged"' || fail "the plugin's booking is not there"
curl -fsS -X POST "http://127.0.0.1:$port/objects/COUNTER/deb/increment" | grep -qx '{"value":1}' || fail "the counter plugin"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[[ $status -eq 0 ]] || fail "the server with plugins exited $status: $(cat "$work/plugged.err")"

"${sudo_cmd[@]}" dpkg --purge cairn libcairn-dev
[[ ! -e /usr/bin/cairn-server && ! -e /etc/cairn/cairn.toml && ! -e /var/lib/cairn ]] || fail "purge left files"
echo "== test-deb: passed"
