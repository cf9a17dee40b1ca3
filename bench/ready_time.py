#!/usr/bin/env python3
"""Start-to-ready time of `bulwark serve`.

For each run: pick a free port, spawn `bulwark serve` (BULWARK_DATA_DIR,
BULWARK_LISTEN=127.0.0.1:PORT, BULWARK_DRAIN_DELAY=0), then every 1 ms open a
raw TCP connection and send `GET /health`; the time from just before the spawn
to the first `HTTP/1.1 200` status line is the start-to-ready time. Also
reads the `startup_ms` field of Bulwark's "ready" log line (stderr, JSON).
Each process is stopped with SIGTERM (SIGKILL after 10 s). Writes one JSON
object to --out:
  {"runs": [{"ready_ms":..,"first_connect_ms":..,"startup_ms":..,"polls":..}], ...}
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

POLL_INTERVAL = 0.001
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_status(port):
    """Status code of GET /health, or None when nothing answers (yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None, False
    line = data.split(b"\r\n", 1)[0].split()
    code = int(line[1]) if len(line) >= 2 and line[1].isdigit() else None
    return code, True


def startup_ms_from(log_path):
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("msg") == "ready":
                    return rec.get("startup_ms")
    except OSError:
        pass
    return None


def one_run(binary, data_dir, log_path):
    port = free_port()
    env = dict(os.environ)
    env.update(BULWARK_DATA_DIR=data_dir, BULWARK_LISTEN=f"127.0.0.1:{port}",
               BULWARK_DRAIN_DELAY="0", BULWARK_LOG_FORMAT="json")
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        # argv[0] "bulwark-bench-ready": recognisable, and not matched by someone
        # else's `pkill -f "bulwark serve"` on a shared machine.
        proc = subprocess.Popen(["bulwark-bench-ready", "serve"], executable=binary, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    ready_ms = first_connect_ms = None
    polls = 0
    try:
        while time.perf_counter() - t0 < READY_TIMEOUT:
            polls += 1
            code, connected = health_status(port)
            now_ms = (time.perf_counter() - t0) * 1000.0
            if connected and first_connect_ms is None:
                first_connect_ms = now_ms
            if code == 200:
                ready_ms = now_ms
                break
            if proc.poll() is not None:
                break
            time.sleep(POLL_INTERVAL)
        # The "ready" line is written right after the listener starts; give it a moment.
        startup_ms = None
        for _ in range(100):
            startup_ms = startup_ms_from(log_path)
            if startup_ms is not None or proc.poll() is not None:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
    return {"port": port, "ready_ms": None if ready_ms is None else round(ready_ms, 2),
            "first_connect_ms": None if first_connect_ms is None else round(first_connect_ms, 2),
            "startup_ms": startup_ms, "polls": polls, "exit_code": proc.returncode}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulwark", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not 1 <= args.runs <= 20:
        sys.exit("ready_time: --runs must be 1..20")
    runs = []
    for i in range(args.runs):
        runs.append(one_run(args.bulwark, args.data_dir,
                            os.path.join(args.log_dir, f"ready-{i + 1}.log")))
        time.sleep(0.2)  # let the previous process's exit settle
    ok = [r["ready_ms"] for r in runs if r["ready_ms"] is not None]
    startup = [r["startup_ms"] for r in runs if r["startup_ms"] is not None]
    result = {
        "runs": runs,
        "failed": args.runs - len(ok),
        "median_ready_ms": round(statistics.median(ok), 2) if ok else None,
        "median_startup_ms": round(statistics.median(startup), 2) if startup else None,
        "poll_interval_ms": POLL_INTERVAL * 1000,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: result[k] for k in ("median_ready_ms", "median_startup_ms", "failed")}))
    return 0 if not result["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
