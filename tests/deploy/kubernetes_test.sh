#!/usr/bin/env bash
# CTest deploy.kubernetes: renders deploy/kubernetes (base, both overlays, the first region with
# the replication-source component) with `kubectl kustomize`, then validates every document
# offline with tests/deploy/kubernetes_check.mjs (npm kubernetes-models and
# @kubernetes-models/prometheus-operator, installed with `npm ci` into WORK/node once per lock).
#   tests/deploy/kubernetes_test.sh REPO BULWARK_BINARY WORK
# kubectl comes with this machine image (Google's apt repository, not Debian's; Debian's
# kubernetes-client 1.20 predates `labels:` and components). Without kubectl the rendering is
# skipped with a NOTE and the base's files are checked as written.
set -euo pipefail
repo=$(cd "$1" && pwd)
bulwark=$2
work=$3
mkdir -p "$work"
here="$repo/tests/deploy"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/install-deps.sh test installs it)"; exit 77; }
done

# npm ci only when the lock file changed (as tests/interop does).
node_dir="$work/node"
mkdir -p "$node_dir"
cp "$here/kubernetes_check.mjs" "$node_dir/"
if ! cmp -s "$here/package-lock.json" "$node_dir/package-lock.json" ||
   [ ! -f "$node_dir/node_modules/kubernetes-models/package.json" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
  if ! (cd "$node_dir" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error) > "$work/npm-ci.log" 2>&1; then
    rm -f "$node_dir/package-lock.json"
    echo "FAIL npm ci:"; cat "$work/npm-ci.log"; exit 1
  fi
fi

rendered=()
k8s="$repo/deploy/kubernetes"
if command -v kubectl >/dev/null 2>&1; then
  render() {  # NAME DIR
    if ! kubectl kustomize "$2" > "$work/$1.yaml" 2> "$work/$1.err"; then
      echo "FAIL kubectl kustomize $2:"; cat "$work/$1.err"; exit 1
    fi
    grep -v "commonLabels' is deprecated" "$work/$1.err" || true
    echo "ok   kubectl kustomize ${2#"$repo/"}"
    rendered+=(--rendered "$1=$work/$1.yaml")
  }
  render base "$k8s/base"
  render single-region "$k8s/overlays/single-region"
  render second-region "$k8s/overlays/second-region"
  # The first region of a two-region pair: single-region plus the replication-source component.
  first="$work/first-region"
  rm -rf "$first"; mkdir -p "$first"
  rel=$(realpath --relative-to="$first" "$k8s")  # kustomize refuses absolute paths
  cat > "$first/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel/overlays/single-region
components:
  - $rel/components/replication-source
YAML
  render first-region-with-replication-source "$first"
  echo "kubectl $(kubectl version --client 2>/dev/null | tr '\n' ' ')"
else
  rendered+=(--raw "kubectl not found")
fi

cd "$node_dir"
exec node kubernetes_check.mjs --repo "$repo" --bulwark "$bulwark" "${rendered[@]}"
