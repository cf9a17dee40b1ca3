#!/usr/bin/env python3
"""Writes the rule groups of every PrometheusRule in a YAML stream as a Prometheus rule file.

  extract_rules.py MANIFESTS.yaml OUT.rules.yaml

Used by alerts_test.sh: promtool reads rule files ({groups: [...]}), not PrometheusRule objects.
"""
import sys

import yaml

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
