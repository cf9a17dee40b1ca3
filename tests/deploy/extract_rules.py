#!/usr/bin/env python3
"""Prometheus rule files for promtool, which reads {groups: [...]}, not Kubernetes objects.

  extract_rules.py MANIFESTS.yaml OUT.rules.yaml
      the rule groups of every PrometheusRule in a YAML stream
  extract_rules.py --dashboard DASHBOARD.json OUT.rules.yaml
      every query of a Grafana dashboard as a recording rule, Grafana's variables replaced,
      so that `promtool check rules` parses the dashboard's PromQL

Used by alerts_test.sh.
"""
import json
import sys

import yaml

if sys.argv[1] == "--dashboard":
    with open(sys.argv[2], encoding="utf-8") as f:
        dashboard = json.load(f)
    rules = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$__rate_interval", "5m")
                    .replace("$namespace", "bulwark"))
            rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}",
                          "expr": expr})
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False,
                       width=1000)
    print(f"{len(rules)} dashboard queries -> {sys.argv[3]}")
    sys.exit(0)

groups = []
with open(sys.argv[1], encoding="utf-8") as f:
    for doc in yaml.safe_load_all(f):
        if doc and doc.get("kind") == "PrometheusRule":
            groups.extend(doc["spec"]["groups"])
if not groups:
    sys.exit(f"no PrometheusRule groups in {sys.argv[1]}")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    yaml.safe_dump({"groups": groups}, f, sort_keys=False, width=1000)
print(f"{len(groups)} groups, {sum(len(g['rules']) for g in groups)} rules -> {sys.argv[2]}")
