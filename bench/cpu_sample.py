#!/usr/bin/env python3
"""CPU split during a load run, from /proc (no pidstat needed).

Samples utime+stime of every thread of the given processes (and of their
direct children, e.g. nginx workers) at the start and end of a window, plus
the system-wide /proc/stat counters, and writes one JSON object:

  {"seconds": 8.0, "system": {"busy_pct": 190.1, "steal_pct": 0.3, "cores": 2},
   "procs": {"bulwark": {"cpu_pct": 120.5, "threads": [{"tid":..,"comm":..,"cpu_pct":..}]}}}

Percentages: 100 = one core fully busy. Usage:
  cpu_sample.py --delay 1 --seconds 8 --out F.json --proc bulwark=1234 --proc wrk=1240
  cpu_sample.py --wait-quiet MAX_SECONDS THRESHOLD_PCT   (wait for an idle machine)
"""
import argparse
import json
import os
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_stat(path):
    """(comm, ppid, utime+stime ticks) of a /proc/.../stat file, or None if gone."""
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm may contain spaces and parentheses: it ends at the last ')'.
    lpar, rpar = data.index("("), data.rindex(")")
    comm = data[lpar + 1:rpar]
    fields = data[rpar + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15, ppid field 4.
    return comm, int(fields[1]), int(fields[11]) + int(fields[12])


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = read_stat(f"/proc/{entry}/stat")
        if st and st[1] == pid:
            out.append(int(entry))
    return out


def context_switches(path):
    """(voluntary, involuntary) context switches from a /proc/.../status file."""
    vol = invol = 0
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    vol = int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol = int(line.split()[1])
    except OSError:
        pass
    return vol, invol


def snapshot_threads(pids):
    """{tid: (pid, comm, ticks, voluntary_cs, involuntary_cs)} for every thread of the given pids."""
    snap = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            st = read_stat(f"/proc/{pid}/task/{tid}/stat")
            if st:
                snap[int(tid)] = (pid, st[0], st[2]) + context_switches(
                    f"/proc/{pid}/task/{tid}/status")
    return snap


STAT_FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]


def system_ticks():
    """The first 8 counters of the "cpu" line of /proc/stat (guest time is inside user)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts[:8]]
    return vals + [0] * (8 - len(vals))


def all_processes():
    """{pid: (comm, ticks)} of every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(f"/proc/{entry}/stat")
            if st:
                out[int(entry)] = (st[0], st[2])
    return out


def wait_quiet(max_seconds, threshold_pct):
    """Waits (1 s samples, at most max_seconds) until the whole machine is less than
    threshold_pct busy (100 = one core). Prints and returns the last busy figure."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_seconds
    waited = 0
    while True:
        s0 = system_ticks()
        time.sleep(1.0)
        s1 = system_ticks()
        delta = [b - a for a, b in zip(s0, s1)]
        total = sum(delta) or 1
        busy = round(100.0 * cores * (total - delta[3] - delta[4]) / total, 1)
        waited += 1
        if busy < threshold_pct or time.monotonic() >= deadline:
            print(json.dumps({"busy_pct": busy, "quiet": busy < threshold_pct, "waited_s": waited}))
            return busy


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--wait-quiet":
        # cpu_sample.py --wait-quiet MAX_SECONDS THRESHOLD_PCT
        max_seconds = min(max(float(sys.argv[2]), 1.0), 300.0)
        wait_quiet(max_seconds, float(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=1.0, help="seconds to wait before sampling")
    ap.add_argument("--seconds", type=float, required=True, help="sampling window")
    ap.add_argument("--out", required=True)
    ap.add_argument("--proc", action="append", default=[], help="label=pid (children included)")
    args = ap.parse_args()
    if not (0 <= args.delay <= 60 and 0 < args.seconds <= 120):
        sys.exit("cpu_sample: --delay must be in [0, 60] and --seconds in (0, 120]")

    time.sleep(args.delay)
    groups = {}
    for spec in args.proc:
        label, _, pid = spec.partition("=")
        pid = int(pid)
        groups[label] = [pid] + children_of(pid)

    all_pids = [p for ps in groups.values() for p in ps]
    t0 = time.monotonic()
    s0 = system_ticks()
    before = snapshot_threads(all_pids)
    procs0 = all_processes()
    time.sleep(args.seconds)
    procs1 = all_processes()
    after = snapshot_threads(all_pids)
    s1 = system_ticks()
    elapsed = time.monotonic() - t0

    def pct(ticks):
        return round(100.0 * ticks / CLK_TCK / elapsed, 1)

    cores = os.cpu_count() or 1
    delta = [b - a for a, b in zip(s0, s1)]
    total = sum(delta) or 1
    # Share of all cores, scaled so that 100 = one core (like the per-process numbers).
    share = {name: round(100.0 * cores * d / total, 1) for name, d in zip(STAT_FIELDS, delta)}
    share["busy"] = round(100.0 * cores * (total - delta[3] - delta[4]) / total, 1)
    # Everything else running meanwhile (a shared machine: compilers, tests, ...).
    others = []
    for pid, (comm, ticks) in procs1.items():
        if pid in all_pids or pid == os.getpid():
            continue
        used = ticks - procs0.get(pid, (comm, 0))[1]
        if used > 0:
            others.append({"pid": pid, "comm": comm, "cpu_pct": pct(used)})
    others.sort(key=lambda o: -o["cpu_pct"])
    result = {
        "seconds": round(elapsed, 3),
        "system": {"cores": cores, "busy_pct": share["busy"], "steal_pct": share["steal"],
                   "breakdown_pct": share},
        "others": {"cpu_pct": round(sum(o["cpu_pct"] for o in others), 1), "top": others[:5]},
        "procs": {},
    }
    for label, pids in groups.items():
        threads = []
        for tid, (pid, comm, ticks, vol, invol) in sorted(after.items()):
            if pid not in pids:
                continue
            # A thread born mid-window counts from 0.
            _, _, ticks0, vol0, invol0 = before.get(tid, (pid, comm, 0, 0, 0))
            threads.append({"pid": pid, "tid": tid, "comm": comm, "cpu_pct": pct(ticks - ticks0),
                            "voluntary_cs_per_s": round((vol - vol0) / elapsed, 1),
                            "involuntary_cs_per_s": round((invol - invol0) / elapsed, 1)})
        result["procs"][label] = {
            "pids": pids,
            "cpu_pct": round(sum(t["cpu_pct"] for t in threads), 1),
            "voluntary_cs_per_s": round(sum(t["voluntary_cs_per_s"] for t in threads), 1),
            "involuntary_cs_per_s": round(sum(t["involuntary_cs_per_s"] for t in threads), 1),
            "threads": threads,
        }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
