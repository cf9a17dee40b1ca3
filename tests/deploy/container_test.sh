#!/usr/bin/env bash
# CTest deploy.container: builds deploy/Containerfile around the bulwark binary of this build and
# runs the image.
#   tests/deploy/container_test.sh REPO BULWARK_BINARY WORK
#
# No registry is reachable here, so the runtime base image is made locally: a minimal Debian
# bookworm from debootstrap, imported as localhost/bulwark-bookworm-runtime (the Containerfile's
# RUNTIME_IMAGE argument; a real build uses docker.io/library/debian:bookworm-slim). It is made
# once and kept, with podman's storage, in the cache directory
#   ${BULWARK_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark-container}
# (about 1-2 minutes the first time on 2 cores, then nothing).
#
# The image is built with BULWARK_PREBUILT=1 (compiling Bulwark inside the image takes
# about 6 minutes: `podman build -f deploy/Containerfile .` does that for users), with the
# package list deploy/container/runtime-packages derives from the binary (make test's sanitizer
# build adds libasan8 and libubsan1 to it).
#
# Checks: the image's user, entrypoint, port, HEALTHCHECK and that it holds no compiler; the
# binary's libraries all resolve inside; a container started with zero configuration listens on
# 0.0.0.0:8080 in its own network namespace and reports healthy; a container on the host network
# (read-only root, all capabilities dropped) answers /health/live and /health with 200 on a free
# loopback port, runs as uid 10001, and on SIGTERM answers /health 503, drains, and exits 0.
#
# podman runs only with runc, cgroupfs and explicit ulimits on these machines
# (/work/shared/TOOLING.md §7); a private containers.conf / storage.conf say so.
set -euo pipefail
repo=$(cd "$1" && pwd)
binary=$2
work=$3
mkdir -p "$work"

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, podman storage)"
for tool in podman debootstrap runc curl; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps.sh test installs it)"
done

cache=${BULWARK_CONTAINER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/cache}/.cache}/bulwark-container}
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9  # one run at a time per cache (podman storage, the base image)

cat > "$cache/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat > "$cache/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$cache/run"
graphroot = "$cache/storage"
CONF
export CONTAINERS_CONF="$cache/containers.conf" CONTAINERS_STORAGE_CONF="$cache/storage.conf"
# podman complains about the missing systemd for healthcheck timers; the checks run by hand.
pm() { podman "$@" 2> >(grep -v 'systemd' >&2); }

# Containers left by a run that was killed (a CTest timeout) go first; the storage is ours.
for stale in $(pm ps -a --format '{{.Names}}' | grep '^bulwark-deploy-test-' || true); do
  pm rm -f -t 0 "$stale" > /dev/null 2>&1 || true
done

failures=0
passes=0
check() {  # CONDITION-STATUS WHAT
  if [ "$1" = 0 ]; then passes=$((passes + 1)); echo "ok   $2"; else failures=$((failures + 1)); echo "FAIL $2"; fi
}
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }

# --- The base image: debootstrap once, then reuse. Bump the tag when the recipe changes.
base=localhost/bulwark-bookworm-runtime:minbase-1
if ! pm image exists "$base"; then
  # The machine's own Debian mirror (apt sources, one-line or deb822 format).
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -E '^(deb |URIs:)' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "making $base with debootstrap from $mirror (once per cache)"
  rootfs="$cache/rootfs.tmp"
  rm -rf "$rootfs"
  if ! nice -n 10 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1; then
    echo "FAIL debootstrap:"; tail -20 "$work/debootstrap.log"; exit 1
  fi
  # What debian:bookworm-slim leaves out: package caches and lists, documentation, locales.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*
  tar -C "$rootfs" --numeric-owner -cf "$cache/rootfs.tar" .
  pm import "$cache/rootfs.tar" "$base" > /dev/null
  rm -rf "$rootfs" "$cache/rootfs.tar"
  echo "base image ready after $(elapsed)"
fi

# --- Build.
tag="localhost/bulwark:deploy-test-$$"
run_host="bulwark-deploy-test-host-$$"
run_none="bulwark-deploy-test-none-$$"
cleanup() {
  pm rm -f -t 0 "$run_host" "$run_none" > /dev/null 2>&1 || true
  pm rmi -f "$tag" > /dev/null 2>&1 || true
  pm image prune -f > /dev/null 2>&1 || true
}
trap cleanup EXIT

ctx="$work/context"
rm -rf "$ctx"
mkdir -p "$ctx/prebuilt" "$ctx/deploy/container"
cp "$binary" "$ctx/prebuilt/bulwark"
cp "$repo/deploy/container/healthcheck" "$ctx/deploy/container/"
if ! "$repo/deploy/container/runtime-packages" "$binary" > "$ctx/prebuilt/runtime-packages"; then
  echo "FAIL deploy/container/runtime-packages $binary"; exit 1
fi
env_run=()
if grep -q '^libasan' "$ctx/prebuilt/runtime-packages"; then
  env_run=(-e ASAN_OPTIONS=detect_leaks=0)  # LeakSanitizer needs ptrace, which the container lacks
fi
echo "building $tag from deploy/Containerfile (prebuilt $binary; runtime packages:" \
  "$(tr '\n' ' ' < "$ctx/prebuilt/runtime-packages"))"
# --layers=false: one commit per stage, not one per instruction, each of which is a full copy of
# the root file system with the vfs driver (135 -> 82 s for this build on 2 cores).
if ! pm build --format docker --isolation chroot --network host --layers=false \
     -f "$repo/deploy/Containerfile" \
     --build-arg RUNTIME_IMAGE="$base" \
     --build-arg BUILD_IMAGE="$base" \
     --build-arg BULWARK_PREBUILT=1 \
     -t "$tag" "$ctx" > "$work/build.log" 2>&1; then
  echo "FAIL podman build:"; tail -40 "$work/build.log"; exit 1
fi
check 0 "podman build ($(elapsed))"

# --- The image's configuration.
inspect() { pm image inspect --format "$1" "$tag"; }
user=$(inspect '{{.Config.User}}')
check "$([ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ]; echo $?)" "image user is not root: '$user'"
entry=$(inspect '{{json .Config.Entrypoint}}')
check "$([ "$entry" = '["/usr/local/bin/bulwark","serve"]' ]; echo $?)" "entrypoint is bulwark serve: $entry"
envs=$(inspect '{{json .Config.Env}}')
check "$([[ $envs == *'"BULWARK_LISTEN=0.0.0.0:8080"'* ]]; echo $?)" "BULWARK_LISTEN=0.0.0.0:8080 in the image"
ports=$(inspect '{{json .Config.ExposedPorts}}')
check "$([[ $ports == *'8080/tcp'* ]]; echo $?)" "exposes 8080/tcp: $ports"
hc=$(inspect '{{json .Config.Healthcheck}}')
check "$([[ $hc == *bulwark-healthcheck* ]]; echo $?)" "HEALTHCHECK: $hc"
size=$(inspect '{{.Size}}')
echo "image size: $((size / 1024 / 1024)) MiB"

shell() { pm run --rm --network none --entrypoint /bin/bash "$tag" -c "$1"; }
tools=$(shell 'for t in gcc g++ cc c++ cmake make ld; do command -v $t; done; ls /usr/include 2>/dev/null | head -3' || true)
check "$([ -z "$tools" ]; echo $?)" "no compiler, build tool or headers in the image${tools:+: $tools}"
missing=$(shell 'ldd /usr/local/bin/bulwark | grep "not found"' || true)
check "$([ -z "$missing" ]; echo $?)" "every library of the binary resolves in the image${missing:+: $missing}"

# --- Zero configuration, private network namespace: listens on 0.0.0.0:8080, reports healthy.
pm run -d --name "$run_none" --network none --read-only --tmpfs /var/lib/bulwark:rw,U \
  --cap-drop ALL --security-opt no-new-privileges "${env_run[@]}" "$tag" > /dev/null
healthy=1
for _ in $(seq 1 150); do  # 30 s: make test runs other suites beside this one
  if pm healthcheck run "$run_none" > /dev/null 2>&1; then healthy=0; break; fi
  sleep 0.2
done
check "$healthy" "with no configuration the HEALTHCHECK passes (0.0.0.0:8080 inside the container)"
[ "$healthy" = 0 ] || pm logs "$run_none" 2>&1 | tail -5
pm rm -f -t 0 "$run_none" > /dev/null 2>&1 || true

# --- Host network on a free loopback port: the HTTP checks from outside, the user, SIGTERM.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pm run -d --name "$run_host" --network host --read-only --tmpfs /var/lib/bulwark:rw,U \
  --cap-drop ALL --security-opt no-new-privileges "${env_run[@]}" \
  -e BULWARK_LISTEN="127.0.0.1:$port" -e BULWARK_DRAIN_DELAY=3 "$tag" > /dev/null
base_url="http://127.0.0.1:$port"
up=1
for _ in $(seq 1 150); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base_url/health/live")" = 200 ]; then up=0; break; fi
  sleep 0.2
done
check "$up" "GET /health/live answers 200 on 127.0.0.1:$port"
if [ "$up" != 0 ]; then pm logs "$run_host" 2>&1 | tail -20; exit 1; fi
health=$(curl -s -w ' %{http_code}' "$base_url/health")
check "$([[ $health == *'"status":"healthy"'*' 200' ]]; echo $?)" "GET /health answers 200 healthy"
metrics=$(curl -s "$base_url/metrics")
check "$([[ $metrics == *bulwark_build_info* ]]; echo $?)" "GET /metrics exposes bulwark_build_info"
pid=$(pm inspect --format '{{.State.Pid}}' "$run_host")
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
check "$([ "$uids" = "10001 10001 10001 10001" ]; echo $?)" "the process runs as uid 10001 (real, effective, saved, fs: $uids)"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
check "$([ "$caps" = 0000000000000000 ]; echo $?)" "no effective capabilities ($caps)"
comm=$(tr '\0' ' ' < "/proc/$pid/cmdline")
check "$([[ $comm == '/usr/local/bin/bulwark serve '* ]]; echo $?)" "PID 1 of the container is '$comm'"
check "$(pm healthcheck run "$run_host" > /dev/null 2>&1; echo $?)" "podman healthcheck run: healthy"

# SIGTERM to PID 1 (what the kubelet sends): /health 503 at once, exit 0 after the drain.
pm kill --signal TERM "$run_host" > /dev/null
for _ in $(seq 1 10); do  # the drain lasts 3 s: /health must say 503 well within it
  draining=$(curl -s -o /dev/null -w '%{http_code}' "$base_url/health")
  [ "$draining" = 503 ] && break
  sleep 0.1
done
check "$([ "$draining" = 503 ]; echo $?)" "after SIGTERM GET /health answers 503 (draining): $draining"
code=$(pm wait "$run_host" 2>/dev/null | tail -1)
check "$([ "$code" = 0 ]; echo $?)" "the container exits 0 after draining (exit code $code)"
check "$(pm logs "$run_host" 2>&1 | grep -q '"msg":"stopped"'; echo $?)" "the log says it drained and stopped"

echo "container test took $(elapsed)"
echo "$passes passed, $failures failed"
[ "$failures" = 0 ]
