#!/usr/bin/env bash
# CTest deploy.alerts: the alert rules of deploy/kubernetes pass `promtool check rules`, and
# behave as tests/deploy/alerts.test.yaml says (`promtool test rules`: series in, alerts out);
# the Grafana dashboard's queries parse.
#   tests/deploy/alerts_test.sh REPO WORK
# promtool comes with Debian's `prometheus` package (scripts/install-deps.sh test).
set -euo pipefail
repo=$(cd "$1" && pwd)
work=$2
mkdir -p "$work"
command -v promtool >/dev/null || { echo "SKIP: promtool is not installed (apt-get install prometheus; scripts/install-deps.sh test)"; exit 77; }

# The rules as the clusters get them: from the rendered overlays when kubectl is here (the
# second region patches AuthenticationPodCount), else from the base's file.
sources=()
if command -v kubectl >/dev/null 2>&1; then
  for overlay in single-region second-region; do
    kubectl kustomize "$repo/deploy/kubernetes/overlays/$overlay" > "$work/$overlay.yaml"
    sources+=("$overlay=$work/$overlay.yaml")
  done
else
  echo "NOTE kubectl not found: checking base/monitoring/prometheusrule.yaml as written"
  sources+=("base=$repo/deploy/kubernetes/base/monitoring/prometheusrule.yaml")
fi
promtool --version | head -1
for s in "${sources[@]}"; do
  name=${s%%=*}
  python3 "$repo/tests/deploy/extract_rules.py" "${s#*=}" "$work/$name.rules.yaml"
  promtool check rules "$work/$name.rules.yaml"
done

# The dashboard's queries parse too.
python3 "$repo/tests/deploy/extract_rules.py" --dashboard \
  "$repo/deploy/kubernetes/base/monitoring/grafana-dashboard.json" "$work/dashboard.rules.yaml"
promtool check rules "$work/dashboard.rules.yaml"

# Unit tests run against the first region's rules (the standby region only changes the
# replica-count alert, checked above).
first=${sources[0]%%=*}
cp "$work/$first.rules.yaml" "$work/bulwark.rules.yaml"
cp "$repo/tests/deploy/alerts.test.yaml" "$work/alerts.test.yaml"
cd "$work"
promtool test rules alerts.test.yaml
echo "promtool test rules: every alert test passed"
