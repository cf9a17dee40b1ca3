#!/usr/bin/env bash
# ctest drill.short: a ~25 s drill (4 rolling SIGTERM evictions, 1 SIGKILL, a
# Redis Cluster failover). Fails on any lost session, on any failure around
# the SIGTERM evictions, on a failed libbulwark-client call, and when a
# process or listening port the drill started outlives it.
set -euo pipefail
drill=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
"$drill" --duration 25 --users 4 --rate 25 --evictions 4 --sigkill 1 --grace 10 \
  --max-failure-rate 0.02 --json >"$out" || status=$?
python3 - "$out" "$status" <<'PY'
import json, os, socket, sys, time
path, status = sys.argv[1], int(sys.argv[2])
try:
    report = json.load(open(path))
except Exception as e:
    sys.exit(f"drill.short: no JSON report (exit {status}): {e}")
problems = []
if status != 0:
    problems.append(f"exit status {status}")
for key in ("requests", "failures", "sessions_created", "sessions_lost",
            "client_library_failures", "latency_ms", "evictions"):
    if key not in report:
        problems.append(f"report lacks {key}")
if report.get("sessions_lost", 1) != 0:
    problems.append(f"sessions lost: {report.get('sessions_lost')} {report.get('lost_details')}")
if report.get("sessions_created", 0) < 10:
    problems.append(f"only {report.get('sessions_created')} sessions created: the load did not run")
if report["failures"]["around_sigterm_evictions"] != 0:
    problems.append(f"failures around SIGTERM evictions: {report['failures']['first']}")
if report.get("client_library_failures", 1) != 0:
    problems.append(f"libbulwark-client failures: {report.get('client_library_failure_details')}")
if len([e for e in report["evictions"] if e["kind"] == "sigterm"]) != 4:
    problems.append(f"expected 4 SIGTERM evictions: {report['evictions']}")
if not report["failovers"] or report["failovers"][0].get("failover_ms", 0) <= 0:
    problems.append(f"no Redis failover recorded: {report['failovers']}")
# Nothing it started may outlive it.
time.sleep(0.5)
for pid in report["pids"]:
    try:
        os.kill(pid, 0)
        problems.append(f"process {pid} still running")
    except ProcessLookupError:
        pass
for port in report["ports"]:
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            problems.append(f"port {port} still accepts connections")
print(json.dumps({k: report[k] for k in ("duration_s", "requests", "sessions_created",
      "sessions_lost", "client_library_calls", "client_library_failures", "evictions",
      "failovers")}, indent=1))
print("failures:", json.dumps(report["failures"]["by_class"]), "total", report["failures"]["total"])
if problems:
    sys.exit("drill.short FAILED:\n  " + "\n  ".join(problems))
print("drill.short passed")
PY
