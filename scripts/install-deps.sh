#!/usr/bin/env bash
# Installs exactly the Debian bookworm packages Bulwark needs that are missing.
# Usage: scripts/install-deps.sh [run|test|bench]   (run: build + run; test: + test servers/tools)
set -euo pipefail
profile=${1:-run}

packages=(cmake ninja-build g++ pkg-config make
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-program-options1.81-dev
  libssl-dev libsodium-dev libsqlite3-dev libspdlog-dev libcli11-dev libpq-dev libhiredis-dev curl)
case "$profile" in
  test) packages+=(libgtest-dev libgmock-dev libbenchmark-dev clang-format sqlite3
    postgresql-15 redis-server redis-sentinel redis-tools haproxy openssl
    nginx caddy  # nginx (auth_request) and Caddy (forward_auth): tests/deploy/edge_*
    # tests/deploy: promtool (prometheus), the container image (podman with runc, debootstrap
    # for a local bookworm base image), rule extraction (python3-yaml)
    prometheus podman runc debootstrap python3-yaml) ;;
  bench) packages+=(libgtest-dev libgmock-dev libbenchmark-dev wrk nginx-light redis-server
    redis-tools) ;;
  run) ;;
  *) echo "install-deps: unknown profile '$profile' (run|test|bench)" >&2; exit 2 ;;
esac

# Interop tests run the npm `jose` package and the bench runs the Node.js peer:
# any Node.js with npm will do.
if [ "$profile" != run ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
