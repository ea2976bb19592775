#!/usr/bin/env bash
# Installs what cairn needs from Debian's packages; does nothing when all are present.
# Idempotent: safe to run before every build. Uses sudo when not root.
set -euo pipefail

packages=(
  cmake g++ make ninja-build pkg-config
  ccache  # scripts/test.sh and fuzz.sh compile through it: a rerun recompiles only what changed
  libcaf-dev libsqlite3-dev libboost-dev nlohmann-json3-dev doctest-dev
  libcli11-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev  # the config file's [bindings.NAME] tables (tables CLI11 cannot read)
  libsystemd-dev  # socket activation, sd_notify, the watchdog
  help2man lintian dpkg-dev curl  # the Debian packages: manual pages, their check, shlibdeps; test-deb.sh
  systemd  # systemd-socket-activate and systemd-analyze (their tests)
  chromium  # browser tests (tests/browser)
  etcd-server etcd-client  # cluster mode's coordination (and its tests)
  haproxy  # the example edge in front of a cluster (and its test)
  tmux  # cairnctl top's test drives it in a terminal
  entr  # scripts/dev.sh rebuilds and restarts on change
)
# Node.js and npm run the browser tests; the machine image brings its own, else Debian's.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
# Extra packages a caller may ask for (e.g. wrk for benchmarks): CAIRN_EXTRA_PACKAGES="wrk".
if [[ -n "${CAIRN_EXTRA_PACKAGES:-}" ]]; then
  read -r -a extra <<<"${CAIRN_EXTRA_PACKAGES}"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q >&2
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
