#!/usr/bin/env python3
"""Turns bench/results/ (written by bench/run) into a summary table on stdout
and docs/benchmarks.md. Standard library only.

Usage: report.py --results bench/results --doc docs/benchmarks.md
"""
import argparse
import json
import os
import re
import statistics
import sys

# Targets (from the project's performance goals).
TARGET_VERIFY_RATIO = 0.5      # verify req/s >= 0.5 x nginx `return 200`
TARGET_LOGIN_RATIO = 0.9       # logins/s >= 0.9 x Argon2id hashes/s on all cores
TARGET_FLOOD_P99_MS = 5.0      # verify p99 during a login flood < 5 ms
TARGET_IDLE_RSS_MIB = 20.0     # idle RSS <= 20 MiB
TARGET_READY_MS = 100.0        # spawn -> first /health 200 <= 100 ms (median of 5)
TARGET_JWT_VERIFY_RATIO = 0.6  # verify of a JWT access token >= 0.6 x nginx `return 200`
TARGET_CC_PER_S = 20000.0      # client_credentials grants/s
TARGET_INTROSPECT_PER_S = 40000.0  # introspections/s
TARGET_REFRESH_PER_S = 10000.0     # refresh-token rotations/s
TARGET_REDIS_VERIFY_RATIO = 0.6    # session verify on Redis >= 0.6 x nginx (issue 3)
TARGET_REDIS_VS_NODE = 3.0         # ... and >= 3 x the seed's Node.js SessionManager
TARGET_REDIS_VERIFY_P99_MS = 2.0   # ... with p99 <= 2 ms (the same wrk -c50 runs, as the issue sets it;
                                   # the open-loop p99 at PACED_FRACTION x nginx is reported beside it)
PACED_FRACTION = 0.4               # bench/run's PACED_FRACTION (meta.json has the run's own)
PACED_MIN_DELIVERED = 0.97         # a paced run that delivered less than this of its offered rate is invalid
PACED_MAX_GENERATOR_CPU = 85.0     # ... or whose generator used more of its core than this (% of one
                                   # core): its own lag, counted from the schedule, would be the p99

# Reference points for the OAuth numbers. Not measured by bench/run: figures the
# project's performance goals quote (Keycloak's sizing guide; npm oidc-provider
# measured on this machine when the goals were set).
KEYCLOAK_PER_VCPU = 120            # Keycloak sizing guide: client_credentials / refresh per vCPU
OIDC_PROVIDER_TOKENS_PER_S = 3200  # oidc-provider, ES256 JWT access tokens/s
OIDC_PROVIDER_INTROSPECT_PER_S = 4700


# --- loading ----------------------------------------------------------------------

def load_json(results, name, default=None):
    path = os.path.join(results, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def load_wrk(results, stem):
    """Parsed wrk run: BENCH_JSON fields + rps, p99_ms, non2xx, socket errors, cpu split."""
    path = os.path.join(results, stem + ".txt")
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return None
    m = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if not m:
        return None
    d = json.loads(m.group(1))
    secs = d["duration_us"] / 1e6
    lat = d["latency_us"]
    e = d["errors"]
    run = {
        "stem": stem,
        "requests": d["requests"],
        "seconds": secs,
        "rps": d["requests"] / secs if secs else 0.0,
        "p50_ms": lat["p50"] / 1000.0,
        "p90_ms": lat["p90"] / 1000.0,
        "p99_ms": lat["p99"] / 1000.0,
        "p999_ms": lat["p999"] / 1000.0,
        "max_ms": lat["max"] / 1000.0,
        "mean_ms": lat["mean"] / 1000.0,
        "non2xx": e["status"],
        "socket_errors": e["connect"] + e["read"] + e["write"] + e["timeout"],
        "errors": e,
        # Per-script response checks (bench/oauth.lua, bench/refresh.lua), summed over threads.
        "counters": d.get("counters") or {},
        "cpu": load_json(results, stem + ".cpu.json"),
    }
    return run


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def median_run(runs, key="rps"):
    """The run whose `key` is the median (lower median for an even count)."""
    runs = [r for r in runs if r]
    if not runs:
        return None
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def login_metric_delta(results, result_label):
    def read(name):
        total = 0.0
        try:
            for line in open(os.path.join(results, name)):
                if f'result="{result_label}"' in line:
                    total += float(line.split()[-1])
        except (OSError, ValueError):
            return None
        return total
    before, after = read("login-metrics-before.txt"), read("login-metrics-after.txt")
    return None if before is None or after is None else after - before


# --- formatting -------------------------------------------------------------------

def fmt_int(v):
    return "n/a" if v is None else f"{v:,.0f}"


def fmt(v, digits=2, suffix=""):
    return "n/a" if v is None else f"{v:.{digits}f}{suffix}"


def fmt_below(v, threshold, digits=2):
    """fmt(v), with more digits when v is under threshold but would print as reaching it."""
    if v is None:
        return "n/a"
    while digits < 5 and v < threshold and round(v, digits) >= threshold:
        digits += 1
    return fmt(v, digits)


def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**NOT met**"


def plain(s):
    return s.replace("**", "")


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def text_table(headers, rows):
    rows = [[plain(str(c)) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(out)


# --- CPU split --------------------------------------------------------------------

# Thread names Bulwark gives its threads (NameThisThread); the main thread keeps
# the process name.
THREAD_ROLES = {"bulwark-io": "io", "bulwark-store": "store", "bulwark-hash": "hash",
                "bulwark-upkeep": "maintenance", "bulwark-keys": "maintenance",
                "redis-io": "redis", "redis-upkeep": "redis", "sqlite-refresh": "store"}


def bulwark_thread_roles(threads):
    """Roles of bulwark's threads by their names; the first (lowest tid) is main."""
    if not threads:
        return {}
    main_tid = min(t["tid"] for t in threads)
    return {t["tid"]: "main" if t["tid"] == main_tid else THREAD_ROLES.get(t.get("comm"), "thread")
            for t in threads}


def fmt_duration(v, unit):
    """Benchmark times: 3 significant digits without exponents, e.g. 4.91 ns, 767 ns, 1,260 ns."""
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v:,.0f} {unit}"
    if v >= 100:
        return f"{v:.0f} {unit}"
    if v >= 10:
        return f"{v:.1f} {unit}"
    return f"{v:.2f} {unit}"


def cpu_summary(run, nproc, server_label, per_request=True):
    """(one-line summary, per-role rows) of a run's CPU sample."""
    cpu = run and run.get("cpu")
    if not cpu:
        return "no CPU sample", []
    procs = cpu["procs"]
    server = procs.get("server", {})
    wrk = procs.get("wrk", {})
    sysinfo = cpu.get("system", {})
    others = cpu.get("others", {})
    top = ", ".join(f"{o['comm']} {fmt(o['cpu_pct'], 0, '%')}" for o in others.get("top", [])[:3]
                    if o["cpu_pct"] >= 1)
    br = sysinfo.get("breakdown_pct", {})
    cs = None
    if run.get("rps") and "voluntary_cs_per_s" in server:
        cs = (server["voluntary_cs_per_s"] + server["involuntary_cs_per_s"]) / run["rps"]
    cpu_us = (server.get("cpu_pct", 0) / 100.0) * 1e6 / run["rps"] if run.get("rps") else None
    if not per_request:
        detail = ""
    elif cpu_us is not None and cpu_us >= 1000:
        detail = f" (≈ {fmt(cpu_us / 1000, 1)} ms of CPU and {fmt(cs, 1)} context switches per request)"
    else:
        detail = f" (≈ {fmt(cpu_us, 1)} µs of CPU and {fmt(cs, 2)} context switches per request)"
    rate = f"{fmt(run.get('rps'), 1)}" if run.get("rps", 0) < 1000 else fmt_int(run.get("rps"))
    line = (f"{rate} req/s; {server_label} {fmt(server.get('cpu_pct'), 0, '%')}{detail}, "
            f"wrk {fmt(wrk.get('cpu_pct'), 0, '%')}, "
            f"other processes {fmt(others.get('cpu_pct'), 0, '%')}{' (' + top + ')' if top else ''}; "
            f"whole machine busy {fmt(sysinfo.get('busy_pct'), 0, '%')} of {nproc * 100}% "
            f"(user {fmt(br.get('user'), 0, '%')}"
            f"{', nice ' + fmt(br.get('nice'), 0, '%') if br.get('nice') else ''}, system {fmt(br.get('system'), 0, '%')}, "
            f"softirq {fmt(br.get('softirq'), 0, '%')}, steal {fmt(sysinfo.get('steal_pct'), 1, '%')})")
    rows = []
    if server_label == "bulwark" and server.get("threads"):
        roles = bulwark_thread_roles(server["threads"])
        by_role = {}
        for t in server["threads"]:
            role = roles.get(t["tid"], "thread")
            by_role.setdefault(role, []).append(t["cpu_pct"])
        for role in ["io", "store", "hash", "redis", "main", "maintenance", "thread"]:
            if role in by_role:
                vals = by_role[role]
                rows.append([role, len(vals), fmt(sum(vals), 1, "%"),
                             ", ".join(fmt(v, 1) for v in vals)])
    return line, rows


# --- main -------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--doc", required=True)
    args = ap.parse_args()
    R = args.results

    meta = load_json(R, "meta.json", {})
    nproc = meta.get("nproc") or os.cpu_count() or 1
    rounds = meta.get("rounds", 3)
    duration = meta.get("duration_s", 10)

    nginx = [load_wrk(R, f"nginx-r{i}") for i in range(1, rounds + 1)]
    vfile = [load_wrk(R, f"verify-file-r{i}") for i in range(1, rounds + 1)]
    vnull = [load_wrk(R, f"verify-null-r{i}") for i in range(1, rounds + 1)]
    vjwt = [load_wrk(R, f"verify-jwt-r{i}") for i in range(1, rounds + 1)]
    logins = [load_wrk(R, f"login-r{i}") for i in range(1, rounds + 1)]
    ceilings = [load_json(R, f"argon2-hash-r{i}.json") for i in range(1, rounds + 2)]
    oauth_token = load_wrk(R, "oauth-token")
    oauth_introspect = load_wrk(R, "oauth-introspect")
    refresh_sqlite = load_wrk(R, "refresh-sqlite")
    refresh_redis = load_wrk(R, "refresh-redis")
    # Verify on Redis: interleaved rounds of nginx, standalone, Cluster and the
    # Node.js peer (STEM-rN); results of older runs hold one STEM run each.
    def redis_rounds(stem):
        runs = [load_wrk(R, f"{stem}-r{i}") for i in range(1, rounds + 1)]
        return runs if any(runs) else [load_wrk(R, stem)]

    nginx_redis = [load_wrk(R, f"nginx-redis-r{i}") for i in range(1, rounds + 1)]
    verify_redis = redis_rounds("verify-redis")
    verify_redis_cluster = redis_rounds("verify-redis-cluster")
    verify_redis_nocache = load_wrk(R, "verify-redis-nocache")
    node_rounds = redis_rounds("verify-node-peer")
    verify_node = median_run(node_rounds)
    # The same rounds, open loop at PACED_FRACTION x that round's nginx (bench/paced_load).
    paced_nginx = [load_wrk(R, f"paced-nginx-redis-r{i}") for i in range(1, rounds + 1)]
    paced_redis = [load_wrk(R, f"paced-verify-redis-r{i}") for i in range(1, rounds + 1)]
    paced_cluster = [load_wrk(R, f"paced-verify-redis-cluster-r{i}") for i in range(1, rounds + 1)]
    paced_fraction = meta.get("paced_fraction", PACED_FRACTION)

    def redis_bench(stem):
        # redis-benchmark -q prints "GET: 68027.21 requests per second, p50=..."
        try:
            m = re.search(r"GET: ([0-9.]+) requests per second", open(os.path.join(R, stem + ".txt")).read())
            return float(m.group(1)) if m else None
        except OSError:
            return None
    redis_get = redis_bench("redis-benchmark-get")
    redis_get_p16 = redis_bench("redis-benchmark-get-p16")
    redis_version = ""
    redis_sessions = None  # the "sessions" field of the Redis replica's "ready" log line
    try:
        for line in open(os.path.join(R, "bulwark-redis-log-nonrequest.txt")):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "ready":
                redis_sessions = rec.get("sessions")
    except OSError:
        pass
    try:
        m = re.search(r"v=(\S+)", open(os.path.join(R, "redis-version.txt")).read())
        redis_version = m.group(1) if m else ""
    except OSError:
        pass
    diag_live = load_wrk(R, "diag-live")
    flood_verify = load_wrk(R, "flood-verify")
    flood_login = load_wrk(R, "flood-login")
    flood_base = load_wrk(R, "flood-baseline")
    a_hashes = [h for h in ceilings if h]
    # Describes the ceiling runs together: the median rate, and CPU summed over every run.
    a_hash = {}
    if a_hashes:
        a_hash = dict(a_hashes[0])
        a_hash["ops_per_s"] = median([h["ops_per_s"] for h in a_hashes])
        a_hash["ms_per_op_per_thread"] = median([h.get("ms_per_op_per_thread") for h in a_hashes])
        for k in ("user_s", "sys_s", "minor_faults", "ops"):
            vals = [h.get(k) for h in a_hashes]
            a_hash[k] = sum(vals) if all(v is not None for v in vals) else None
    a_verify = load_json(R, "argon2-verify.json", {})
    rss = load_json(R, "rss.json", {})
    ready = load_json(R, "ready.json", {})
    micro = load_json(R, "micro.json", {})
    jwt_vs = load_json(R, "jwt-vs-openssl.json", {})
    quiet = []
    try:
        for line in open(os.path.join(R, "quiet.jsonl")):
            try:
                quiet.append(json.loads(line))
            except ValueError:
                pass
    except OSError:
        pass
    try:
        elapsed = int(open(os.path.join(R, "elapsed_s.txt")).read().strip())
    except (OSError, ValueError):
        elapsed = None

    med = lambda runs, k: median([r[k] for r in runs if r])
    nginx_rps, vfile_rps, vnull_rps = med(nginx, "rps"), med(vfile, "rps"), med(vnull, "rps")
    vfile_p99, vnull_p99, nginx_p99 = med(vfile, "p99_ms"), med(vnull, "p99_ms"), med(nginx, "p99_ms")
    ratio_file = vfile_rps / nginx_rps if vfile_rps and nginx_rps else None
    ratio_null = vnull_rps / nginx_rps if vnull_rps and nginx_rps else None
    round_ratios = [(f["rps"] / n["rps"]) if f and n and n["rps"] else None for f, n in zip(vfile, nginx)]
    http_non2xx = sum(r["non2xx"] + r["socket_errors"] for r in vfile + vnull if r)

    vjwt_rps, vjwt_p99 = med(vjwt, "rps"), med(vjwt, "p99_ms")
    ratio_jwt = vjwt_rps / nginx_rps if vjwt_rps and nginx_rps else None
    jwt_round_ratios = [(j["rps"] / n["rps"]) if j and n and n["rps"] else None for j, n in zip(vjwt, nginx)]
    http_non2xx += sum(r["non2xx"] + r["socket_errors"] for r in vjwt if r)

    # Logins: round r ran between ceilings r and r+1; its ratio is against their mean.
    login_rounds = []
    for i, run in enumerate(logins):
        before, after = ceilings[i], ceilings[i + 1] if i + 1 < len(ceilings) else None
        around = [h["ops_per_s"] for h in (before, after) if h]
        mean_ceiling = sum(around) / len(around) if around else None
        login_rounds.append({
            "run": run, "before": before and before["ops_per_s"], "after": after and after["ops_per_s"],
            "ceiling": mean_ceiling,
            "ratio": run["rps"] / mean_ceiling if run and mean_ceiling else None})
    ceiling = a_hash.get("ops_per_s")
    login_ratio = median([lr["ratio"] for lr in login_rounds])
    login_rps = med(logins, "rps")
    # The round whose ratio is the median (lower median): its CPU sample is the one shown.
    rated = sorted((lr for lr in login_rounds if lr["ratio"] is not None), key=lambda lr: lr["ratio"])
    login = rated[(len(rated) - 1) // 2]["run"] if rated else median_run(logins)
    login_ok = login_metric_delta(R, "success")
    login_requests = sum(r["requests"] for r in logins if r) if any(logins) else None
    login_non2xx = sum(r["non2xx"] for r in logins if r) if any(logins) else None
    login_sock = sum(r["socket_errors"] for r in logins if r) if any(logins) else None
    login_bad = None if login_non2xx is None else login_non2xx + login_sock
    login_p50, login_p99 = med(logins, "p50_ms"), med(logins, "p99_ms")

    def refresh_invalid(run):
        # Every way a rotation run loses or wastes a token; 0 for a valid run.
        if not run:
            return None
        c = run["counters"]
        return (run["non2xx"] + run["socket_errors"] + c.get("failed", 0) + c.get("no_token", 0)
                + c.get("starved", 0))

    def oauth_invalid(run):
        if not run:
            return None
        return run["non2xx"] + run["socket_errors"] + run["counters"].get("unexpected", 0)

    def same_round_ratio(runs, refs, fallback):
        """Median of run / reference over the rounds (a reference run from the
        same round, or `fallback` when that round has none)."""
        ratios = []
        for i, run in enumerate(runs):
            ref = refs[i] if i < len(refs) and refs[i] else fallback
            if run and ref and ref["rps"]:
                ratios.append(run["rps"] / ref["rps"])
        return median(ratios)

    def same_round_p99_ratio(runs, refs):
        """Median of run p99 / nginx p99 over the rounds that have both."""
        ratios = [run["p99_ms"] / ref["p99_ms"] for run, ref in zip(runs, refs)
                  if run and ref and ref.get("p99_ms")]
        return median(ratios)

    def p99_vs_nginx_row():
        # A reference, not a target: the target stays the absolute p99 above. This
        # host's own nginx p99 at -c50 moves between ~1.5 and ~5 ms from hour to
        # hour, and this says how far Bulwark's tail is from it in the same rounds.
        parts = []
        for name, runs in (("standalone", verify_redis), ("Cluster", verify_redis_cluster)):
            r = same_round_p99_ratio(runs, nginx_redis)
            if r is not None:
                parts.append(f"{name} {fmt(r)}×")
        nginx_p99 = median([n["p99_ms"] for n in nginx_redis if n])
        return ["Saturated (wrk -c50) verify p99 on Redis / nginx's p99 in the same round (median of rounds)",
                (", ".join(parts) + f" (nginx p99 {fmt(nginx_p99)} ms)") if parts else "not measured",
                "—", "(reference)", "—"]

    def redis_verify_row(label, runs):
        measured = [r for r in runs if r]
        if not measured:
            return [label, "not measured", "—", "≥ 0.6 × nginx, ≥ 3 × Node peer, p99 ≤ 2 ms", "—"]
        rps = median([r["rps"] for r in measured])
        p99 = median([r["p99_ms"] for r in measured])
        non2xx = sum(r["non2xx"] for r in measured)
        r_nginx = same_round_ratio(runs, nginx_redis, median_run(nginx))
        r_node = same_round_ratio(runs, node_rounds, None)
        met = (r_nginx is not None and r_nginx >= TARGET_REDIS_VERIFY_RATIO and
               r_node is not None and r_node >= TARGET_REDIS_VS_NODE and
               p99 <= TARGET_REDIS_VERIFY_P99_MS and non2xx == 0)
        rounds_text = f", median of {len(measured)} rounds" if len(measured) > 1 else ""
        return [label + rounds_text, f"{fmt_int(rps)} req/s (p99 {fmt(p99)} ms), non-2xx {fmt_int(non2xx)}",
                f"{fmt(r_nginx)} / {fmt(r_node, 2)}× node",
                "≥ 0.6 × nginx, ≥ 3 × Node peer, p99 ≤ 2 ms",
                verdict(None if r_nginx is None or r_node is None else met)]

    def generator_cpu(run):
        return (((run.get("cpu") or {}).get("procs") or {}).get("wrk") or {}).get("cpu_pct")

    def paced_valid(run):
        offered = run["counters"].get("offered_rate")
        cpu = generator_cpu(run)
        return (run["non2xx"] == 0 and run["socket_errors"] == 0 and bool(offered) and
                run["rps"] >= PACED_MIN_DELIVERED * offered and
                cpu is not None and cpu <= PACED_MAX_GENERATOR_CPU)

    def paced_row(label, runs, against_nginx):
        """p99 of open-loop runs at paced_fraction x nginx: median over rounds. A reference, not
        a target (the issue sets p99 on the wrk rows); flagged when a round was not valid."""
        measured = [r for r in runs if r]
        if not measured:
            return [label, "not measured", "—", "(reference)", "—"]
        p99 = median([r["p99_ms"] for r in measured])
        p50 = median([r["p50_ms"] for r in measured])
        worst = max(r["p99_ms"] for r in measured)
        rate = median([r["rps"] for r in measured])
        bad = [r for r in measured if not paced_valid(r)]
        r_nginx = same_round_p99_ratio(runs, paced_nginx) if against_nginx else None
        rounds_text = f", median of {len(measured)} rounds" if len(measured) > 1 else ""
        result = (f"p99 {fmt(p99)} ms (p50 {fmt(p50)}, worst round's p99 {fmt(worst)}) at "
                  f"{fmt_int(rate)} req/s delivered, non-2xx + socket errors "
                  f"{fmt_int(sum(r['non2xx'] + r['socket_errors'] for r in measured))}")
        if bad:
            result += (f"; **invalid**: {len(bad)} of {len(measured)} rounds had errors, under-delivered or "
                       f"had a generator over {fmt(PACED_MAX_GENERATOR_CPU, 0)}% CPU")
        ratio_text = f"{fmt(r_nginx)} × nginx's p99" if against_nginx else "—"
        return [label + rounds_text, result, ratio_text, "(reference)", "—"]

    def rate_row(label, run, target, invalid, target_text, reference):
        if not run:
            return [label, "n/a (not measured)", "—", target_text, "n/a"]
        bad = invalid(run)
        result = (f"{fmt_int(run['rps'])} /s (p99 {fmt(run['p99_ms'])} ms), non-2xx {fmt_int(run['non2xx'])}"
                  + (f", other failures {fmt_int(bad - run['non2xx'])}" if bad != run["non2xx"] else ""))
        return [label, result, "—", f"{target_text} ({reference})",
                verdict(run["rps"] >= target) if bad == 0 else "**NOT met** (invalid run)"]

    keycloak = KEYCLOAK_PER_VCPU * nproc
    oauth_conns = meta.get("oauth_conns", 50)
    refresh_conns = meta.get("refresh_conns", 16)

    flood_p99 = flood_verify["p99_ms"] if flood_verify else None
    idle_mib = rss["idle_kb"] / 1024 if rss.get("idle_kb") else None
    after_mib = rss["after_kb"] / 1024 if rss.get("after_kb") else None
    ready_ms = ready.get("median_ready_ms")

    targets = [
        ["HTTP ceiling: nginx `return 200`", f"{fmt_int(nginx_rps)} req/s (p99 {fmt(nginx_p99)} ms)",
         "—", "—", "(the ceiling)"],
        ["Verify, access log → file", f"{fmt_int(vfile_rps)} req/s (p99 {fmt(vfile_p99)} ms)",
         fmt(ratio_file), "≥ 0.50 × nginx",
         verdict(None if ratio_file is None else ratio_file >= TARGET_VERIFY_RATIO)],
        ["Verify, access log → /dev/null", f"{fmt_int(vnull_rps)} req/s (p99 {fmt(vnull_p99)} ms)",
         fmt(ratio_null), "≥ 0.50 × nginx",
         verdict(None if ratio_null is None else ratio_null >= TARGET_VERIFY_RATIO)],
        ["Verify, JWT access token (log → file)", f"{fmt_int(vjwt_rps)} req/s (p99 {fmt(vjwt_p99)} ms)",
         fmt(ratio_jwt), "≥ 0.60 × nginx",
         verdict(None if ratio_jwt is None else ratio_jwt >= TARGET_JWT_VERIFY_RATIO)],
        ["Logins (wrk -c4), median of %d rounds" % len([r for r in logins if r]),
         f"{fmt(login_rps, 1)} /s, non-2xx {fmt_int(login_bad)}",
         fmt_below(login_ratio, TARGET_LOGIN_RATIO), "≥ 0.90 × Argon2id ceiling (median of per-round ratios)",
         verdict(None if login_ratio is None else login_ratio >= TARGET_LOGIN_RATIO and login_bad == 0)],
        ["Argon2id ceiling (libsodium, %d threads), median of %d runs" % (a_hash.get("threads", nproc), len(a_hashes)),
         f"{fmt(ceiling, 1)} hashes/s", "—", "—", "(the ceiling)"],
        rate_row("OAuth `client_credentials` grants (wrk -c%d)" % oauth_conns,
                 oauth_token, TARGET_CC_PER_S, oauth_invalid, "≥ 20,000 /s",
                 f"Keycloak {KEYCLOAK_PER_VCPU}/s per vCPU = {keycloak:,}/s; oidc-provider ~{OIDC_PROVIDER_TOKENS_PER_S:,}/s"),
        rate_row("OAuth introspection of a JWT (wrk -c%d)" % oauth_conns,
                 oauth_introspect, TARGET_INTROSPECT_PER_S, oauth_invalid, "≥ 40,000 /s",
                 f"oidc-provider ~{OIDC_PROVIDER_INTROSPECT_PER_S:,}/s"),
        rate_row("Refresh rotations, embedded SQLite (wrk -c%d)" % refresh_conns, refresh_sqlite, TARGET_REFRESH_PER_S,
                 refresh_invalid, "≥ 10,000 /s", f"Keycloak {keycloak:,}/s"),
        rate_row("Refresh rotations, Redis (wrk -c%d)" % refresh_conns
                 + ("" if refresh_redis else "; redis-server not installed"),
                 refresh_redis, TARGET_REFRESH_PER_S, refresh_invalid, "≥ 10,000 /s",
                 f"Keycloak {keycloak:,}/s"),
        *[redis_verify_row(label, run) for label, run in
          (("Verify, session in Redis standalone (wrk -c50, redis+db)", verify_redis),
           ("Verify, session in Redis Cluster (wrk -c50, redis+db)", verify_redis_cluster))],
        paced_row(f"Verify p99, session in Redis standalone, open loop at {fmt(paced_fraction, 1)} × nginx",
                  paced_redis, True),
        paced_row(f"Verify p99, session in Redis Cluster, open loop at {fmt(paced_fraction, 1)} × nginx",
                  paced_cluster, True),
        paced_row(f"nginx `return 200` p99, open loop at {fmt(paced_fraction, 1)} × its ceiling",
                  paced_nginx, False),
        p99_vs_nginx_row(),
        ["Verify, Redis standalone, session cache off (every verify reads Redis)",
         f"{fmt_int(verify_redis_nocache['rps'])} req/s (p99 {fmt(verify_redis_nocache['p99_ms'])} ms)"
         if verify_redis_nocache else "not measured",
         f"{fmt(verify_redis_nocache['rps'] / nginx_rps if nginx_rps else None)} / "
         f"{fmt(verify_redis_nocache['rps'] / verify_node['rps'] if verify_node and verify_node['rps'] else None, 1)}× node"
         if verify_redis_nocache else "—", "(reference)", "—"],
        ["Seed's Node.js SessionManager (node http + ioredis), verify"
         + (f", median of {len([r for r in node_rounds if r])} rounds" if len([r for r in node_rounds if r]) > 1 else ""),
         f"{fmt_int(verify_node['rps'])} req/s (p99 {fmt(median([r['p99_ms'] for r in node_rounds if r]))} ms)"
         if verify_node else "not measured", "—", "(the peer)", "—"],
        ["Redis `redis-benchmark` GET -c50, unpipelined / -P 16",
         f"{fmt_int(redis_get)} / {fmt_int(redis_get_p16)} req/s" if redis_get else "not measured",
         "—", "(the Redis ceiling)", "—"],
        ["Verify p99 during login flood",
         f"{fmt(flood_p99)} ms ({fmt_int(flood_verify and flood_verify['rps'])} req/s)",
         "—", "< 5 ms", verdict(None if flood_p99 is None else flood_p99 < TARGET_FLOOD_P99_MS)],
        ["Verify p99, same load without logins", 
         f"{fmt(flood_base and flood_base['p99_ms'])} ms ({fmt_int(flood_base and flood_base['rps'])} req/s)",
         "—", "(reference)", "—"],
        ["Idle RSS", f"{fmt(idle_mib, 1)} MiB", "—", "≤ 20 MiB",
         verdict(None if idle_mib is None else idle_mib <= TARGET_IDLE_RSS_MIB)],
        ["RSS after the load", f"{fmt(after_mib, 1)} MiB", "—", "(recorded)", "—"],
        ["Start to ready (median of %d)" % len(ready.get("runs", [])),
         f"{fmt(ready_ms, 1)} ms (startup_ms {fmt(ready.get('median_startup_ms'), 1)})", "—", "≤ 100 ms",
         verdict(None if ready_ms is None or ready.get("failed") else ready_ms <= TARGET_READY_MS)],
    ]
    headers = ["measurement", "result", "ratio", "target", "status"]

    # --- stdout ---
    print()
    print(f"Bulwark benchmarks — {meta.get('date_utc', '?')} — {nproc} × {meta.get('cpu_model', '?')}")
    print(text_table(headers, targets))
    print()
    print(f"docs: {args.doc}; raw results: {R}")

    # --- markdown ---
    L = []
    add = L.append
    add("# Benchmarks")
    add("")
    add("<!-- Generated by bench/run (bench/report.py); edit those, not this file. -->")
    add("")
    changed = meta.get("uncommitted") or []
    dirty_note = ""
    if changed:
        dirty_note = (" plus uncommitted changes in the working tree (" +
                      ", ".join(f"`{c}`" for c in changed[:12]) + (", …" if len(changed) > 12 else "") + ")")
    elif meta.get("dirty"):
        dirty_note = " (with uncommitted changes in the working tree)"
    build_dir = meta.get("build_dir", "build")
    if build_dir == "build":
        build_note = ("optimised build (`cmake --preset release -DBULWARK_BUILD_BENCH=ON`: "
                      "RelWithDebInfo, -O2; the same `build/bulwark` as `make build`)")
    else:
        build_note = (f"optimised build in `{build_dir}` (`BENCH_BUILD_DIR`; configured with "
                      "`-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_BUILD_BENCH=ON`: -O2)")
    add(f"Measured **{meta.get('date_utc', '?')}** on commit `{meta.get('commit', '?')}`{dirty_note}, "
        f"`{meta.get('bulwark', 'bulwark')}`, " + build_note + ".")
    add("Every ratio is against a ceiling measured **in the same run on the same machine**, so it says "
        "how much of what the hardware can do Bulwark delivers, not how fast the machine is.")
    add("")
    add("## Results")
    add("")
    add(md_table(headers, targets))
    add("")
    met = [plain(t[4]) for t in targets if plain(t[4]) == "met" or plain(t[4]).startswith("NOT met")]
    add(f"{met.count('met')} of {len(met)} targets met.")
    add("")

    # Per-request CPU from the samples: where the verify gap comes from.
    def per_req(run):
        c = run and run.get("cpu")
        if not c or not run.get("rps"):
            return None, None
        srv = c["procs"].get("server", {})
        cs = None
        if "voluntary_cs_per_s" in srv:
            cs = (srv["voluntary_cs_per_s"] + srv["involuntary_cs_per_s"]) / run["rps"]
        return srv.get("cpu_pct", 0) / 100.0 * 1e6 / run["rps"], cs

    n_us, n_cs = per_req(median_run(nginx))
    f_us, f_cs = per_req(median_run(vfile))
    l_us, l_cs = per_req(diag_live)
    j_us, j_cs = per_req(median_run(vjwt))
    if n_us and f_us:
        add("### Reading the numbers")
        add("")
        add(f"- Server CPU per request (from the CPU samples below): nginx {fmt(n_us, 1)} µs; Bulwark "
            f"`/health/live` {fmt(l_us, 1)} µs (HTTP stack, access log and metrics only); Bulwark verify "
            f"of a session token {fmt(f_us, 1)} µs, of a JWT {fmt(j_us, 1)} µs. Context switches per "
            f"request: nginx {fmt(n_cs, 2)}, `/health/live` {fmt(l_cs, 2)}, verify of a session token "
            f"{fmt(f_cs, 2)}, of a JWT {fmt(j_cs, 2)} — a session-token verify is handed from an I/O "
            "thread to the store pool and back (`Executor::kStore`), `/health/live` is answered inline "
            "on the I/O thread.")
        oauth_cpu = [(label, per_req(run)) for label, run in
                     [("a client_credentials grant", oauth_token), ("an introspection", oauth_introspect),
                      ("a refresh rotation on SQLite", refresh_sqlite),
                      ("a refresh rotation on Redis", refresh_redis)] if run]
        if any(us for _, (us, _) in oauth_cpu):
            add("- OAuth, server CPU and context switches per request: " + "; ".join(
                f"{label} {fmt(us, 1)} µs, {fmt(cs, 2)}" for label, (us, cs) in oauth_cpu if us) +
                ". Every `/oauth2/*` request authenticates its client first (a client lookup in the "
                "store, on the store pool); a grant or a rotation also signs an ES256 access token.")
        if flood_verify and flood_verify.get("cpu"):
            thr = flood_verify["cpu"]["procs"].get("server", {}).get("threads", [])
            roles = bulwark_thread_roles(thr)
            hashers = [t for t in thr if roles.get(t["tid"]) == "hash"]
            # None when no thread carries the hashing pool's name (a build before thread
            # names): then the sentence must not claim the hashing pool was idle.
            hash_pct = sum(t["cpu_pct"] for t in hashers) if hashers else None
            base = (f" from {fmt(flood_base['p99_ms'])} ms (p50 {fmt(flood_base['p50_ms'])} ms, "
                    f"{fmt_int(flood_base['rps'])} req/s) with the same verify load and no logins"
                    if flood_base else "")
            add(f"- During the login flood the hashing pool ({len(hashers) or '?'} threads) used "
                f"{fmt(hash_pct, 0, '%') if hash_pct is not None else 'an unknown share (no thread named bulwark-hash)'} "
                f"of the machine's {nproc * 100}%, and verify's p99 rose to "
                f"{fmt(flood_p99)} ms (p50 {fmt(flood_verify['p50_ms'])} ms){base}.")
        if login and login.get("cpu"):
            c = login["cpu"]
            thr = c["procs"].get("server", {}).get("threads", [])
            roles = bulwark_thread_roles(thr)
            hashes = [t for t in thr if roles.get(t["tid"]) == "hash"]
            br = c["system"].get("breakdown_pct", {})
            if hashes:
                add(f"- During the login round with the median ratio the hashing threads were busy "
                    f"{', '.join(fmt(t['cpu_pct'], 0, '%') for t in hashes)} and went to sleep "
                    f"{fmt(sum(t['voluntary_cs_per_s'] for t in hashes) / login['rps'] if login['rps'] else None, 1)} "
                    f"times per login, while the machine was {fmt(br.get('idle'), 0, '%')} idle + "
                    f"{fmt(br.get('iowait'), 0, '%')} iowait and other processes used "
                    f"{fmt(c.get('others', {}).get('cpu_pct'), 0, '%')} (hashing runs at nice 19, so "
                    "any other work on the machine is taken out of the logins first, not out of the "
                    "ceiling, which runs at normal priority). Only the Argon2id verify runs on the "
                    "hashing pool (`Executor::kHash`); the login's SQLite reads and its session insert "
                    "(`PRAGMA synchronous=FULL`: an fdatasync per login) run on the store pool, so a "
                    "hashing thread never waits on a store.")
        add("")

    add("### HTTP: nginx vs `GET /v1/auth/verify`, per round")
    add("")
    add(f"Interleaved rounds (nginx; verify of a session token with the access log to a file and with it "
        f"to /dev/null; verify of a JWT access token, log to a file), {duration} s each; the table above "
        "uses the medians.")
    add("")
    def others(run):
        c = run and run.get("cpu")
        return fmt(c["others"]["cpu_pct"], 0, "%") if c and "others" in c else "n/a"

    def steal(run):
        c = run and run.get("cpu")
        return fmt(c["system"].get("steal_pct"), 0, "%") if c else "n/a"

    rows = []
    for i in range(rounds):
        n, f, z, j = nginx[i], vfile[i], vnull[i], vjwt[i]
        rows.append([i + 1, fmt_int(n and n["rps"]), fmt(n and n["p99_ms"]),
                     fmt_int(f and f["rps"]), fmt(f and f["p99_ms"]),
                     fmt_int(z and z["rps"]), fmt(z and z["p99_ms"]),
                     fmt_int(j and j["rps"]), fmt(j and j["p99_ms"]),
                     fmt(round_ratios[i]), fmt(jwt_round_ratios[i]),
                     f"{others(n)} / {others(f)} / {others(z)} / {others(j)}",
                     f"{steal(n)} / {steal(f)} / {steal(z)} / {steal(j)}"])
    rows.append(["median", fmt_int(nginx_rps), fmt(nginx_p99), fmt_int(vfile_rps), fmt(vfile_p99),
                 fmt_int(vnull_rps), fmt(vnull_p99), fmt_int(vjwt_rps), fmt(vjwt_p99),
                 fmt(median(round_ratios)), fmt(median(jwt_round_ratios)), "", ""])
    add(md_table(["round", "nginx req/s", "nginx p99 ms", "verify (log→file) req/s", "p99 ms",
                  "verify (log→/dev/null) req/s", "p99 ms", "verify JWT req/s", "p99 ms",
                  "verify(file)/nginx", "verify(JWT)/nginx",
                  "other processes' CPU (nginx / file / null / JWT)",
                  "hypervisor steal (nginx / file / null / JWT)"], rows))
    add("")
    add("Interference columns: CPU used by other processes in this VM, and time the hypervisor gave to other "
        "VMs (steal), during each run (100% = one core). A round with a lot of either is less trustworthy; "
        "the medians damp one bad round.")
    add("")
    if any(nginx_redis):
        add("### Verify on Redis and the Node.js peer, per round")
        add("")
        add(f"Interleaved rounds (nginx `return 200`; verify of a session token on Redis standalone and on Redis "
            f"Cluster; the seed's Node.js SessionManager on the standalone server), {duration} s each; the "
            "ratios in the table above are the medians of the per-round ratios below.")
        add("")

        def ratio(a, b):
            return a["rps"] / b["rps"] if a and b and b["rps"] else None

        rows = []
        for i in range(rounds):
            n = nginx_redis[i]
            d = verify_redis[i] if i < len(verify_redis) else None
            e = verify_redis_cluster[i] if i < len(verify_redis_cluster) else None
            p = node_rounds[i] if i < len(node_rounds) else None
            rows.append([i + 1, fmt_int(n and n["rps"]), fmt(n and n["p99_ms"]), fmt_int(d and d["rps"]),
                         fmt(d and d["p99_ms"]),
                         fmt_int(e and e["rps"]), fmt(e and e["p99_ms"]), fmt_int(p and p["rps"]),
                         fmt(p and p["p99_ms"]), fmt(ratio(d, n)), fmt(ratio(d, p)), fmt(ratio(e, p)),
                         f"{others(n)} / {others(d)} / {others(e)} / {others(p)}"])
        add(md_table(["round", "nginx req/s", "nginx p99 ms", "standalone req/s", "p99 ms", "Cluster req/s", "p99 ms",
                      "Node.js peer req/s", "p99 ms", "standalone/nginx", "standalone/Node", "Cluster/Node",
                      "other processes' CPU (nginx / standalone / Cluster / Node)"], rows))
        add("")
    if any(paced_nginx):
        add(f"### p99 at a given load: open loop at {fmt(paced_fraction, 1)} × nginx, per round")
        add("")
        add(f"In each round above, after the wrk runs: `bench/paced_load` offers {fmt(paced_fraction, 1)} × that "
            f"round's nginx req/s (not 0.6, the throughput target: the generator costs about twice wrk's CPU per "
            f"request, and at 0.6 its own lag was everyone's p99; see bench/run) at a fixed "
            f"rate over 50 keep-alive connections, {duration} s after 1 s of warm-up, to nginx, then Bulwark on "
            "standalone, then on Cluster. Request i is scheduled at i / rate and released at the next 0.25 ms "
            "tick to an idle connection; its latency runs from its scheduled time (so it includes up to 0.25 ms "
            "of that batching), and a stall is charged for every request it held back (no coordinated "
            "omission). \"Late\" counts requests sent ≥ 1 ms after their scheduled time (no connection was "
            "idle, or the generator lagged: it waits on the same host stalls as the servers). A round is invalid if it had "
            f"errors, delivered under {fmt(PACED_MIN_DELIVERED * 100, 0)}% of the offered rate, or the "
            f"generator used over {fmt(PACED_MAX_GENERATOR_CPU, 0)}% of its core: then its own lag is the p99.")
        add("")
        add("Why both: the p99 target is set on the wrk rows, but wrk is closed-loop, each of its 50 "
            "connections sends as soon as its last answer arrives, so at saturation the mean latency is "
            "50 / throughput for any server (Little's law) and the p99 a multiple of it: it says how fast a "
            "server is more than how promptly it answers. These rows give the tail at a stated load below "
            "saturation, charged for every stall, beside nginx's under the same generator.")
        add("")
        prow = []
        for i in range(rounds):
            cells = [i + 1]
            for run in (paced_nginx[i], paced_redis[i], paced_cluster[i]):
                cells += [fmt_int(run and run["counters"].get("offered_rate")), fmt_int(run and run["rps"]),
                          fmt(run and run["p50_ms"]), fmt(run and run["p99_ms"]), fmt(run and run["p999_ms"]),
                          fmt_int(run and (run["non2xx"] + run["socket_errors"])),
                          fmt_int(run and run["counters"].get("late_sends")),
                          fmt(run and generator_cpu(run), 0, "%")]
            cells.append(f"{others(paced_nginx[i])} / {others(paced_redis[i])} / {others(paced_cluster[i])}")
            prow.append(cells)
        heads = ["round"]
        for who in ("nginx", "standalone", "Cluster"):
            heads += [f"{who} offered /s", "delivered /s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "late",
                      "generator CPU"]
        heads.append("other processes' CPU (nginx / standalone / Cluster)")
        add(md_table(heads, prow))
        add("")
    if diag_live:
        add(f"Diagnostic, one run: `GET /health/live` on the /dev/null replica — answered inline on the I/O "
            f"thread, no store-pool hop, no SQLite, but with the same access log and metrics — "
            f"{fmt_int(diag_live['rps'])} req/s (p99 {fmt(diag_live['p99_ms'])} ms), "
            f"{fmt(diag_live['rps'] / nginx_rps if nginx_rps else None)} × nginx.")
        add("")
    add(f"Errors in all verify runs (non-2xx + socket errors): {http_non2xx}. "
        f"Access log of the file-logging replica after the whole run: "
        f"{fmt_int(rss.get('log_a_lines'))} lines, {fmt(rss.get('log_a_bytes', 0) / 1e6, 1)} MB "
        f"(a file in a temporary directory on `{meta.get('tmp_fs', '?')}`).")
    add("")

    add("### Where the CPU goes")
    add("")
    add(f"Sampled from `/proc/PID/task/*/stat` from 1 s after each wrk run started to 1 s before it ended "
        f"(100% = one core; the machine has {nproc * 100}%). The run shown is the median-throughput round. "
        "Bulwark's thread roles come from the names it gives its threads (`bulwark-io`, "
        "`bulwark-store`, `bulwark-hash`, `bulwark-upkeep`/`bulwark-keys` = maintenance, "
        "`redis-io`/`redis-upkeep` = redis; the main thread keeps the process name).")
    add("")
    for label, run, server_label in [("nginx", median_run(nginx), "nginx (master+workers)"),
                                     ("verify, log → file", median_run(vfile), "bulwark"),
                                     ("verify, log → /dev/null", median_run(vnull), "bulwark"),
                                     ("verify, JWT access token (log → file)", median_run(vjwt), "bulwark"),
                                     ("diagnostic: `GET /health/live` (log → /dev/null)", diag_live, "bulwark"),
                                     ("logins (the round with the median ratio)", login, "bulwark"),
                                     ("OAuth `client_credentials` grants", oauth_token, "bulwark"),
                                     ("OAuth introspection", oauth_introspect, "bulwark"),
                                     ("refresh rotations, embedded SQLite", refresh_sqlite, "bulwark"),
                                     ("refresh rotations, Redis (bulwark only; redis-server is among "
                                      "the other processes)", refresh_redis, "bulwark"),
                                     ("verify during login flood (rate is verify's; bulwark's CPU "
                                      "includes the logins)", flood_verify, "bulwark"),
                                     ("verify on Redis standalone (the median round)",
                                      median_run(verify_redis), "bulwark"),
                                     ("verify on Redis Cluster (the median round)",
                                      median_run(verify_redis_cluster), "bulwark"),
                                     ("the Node.js peer's verify (the median round)", verify_node, "node")]:
        if run is None:
            continue
        line, rows = cpu_summary(run, nproc, server_label, per_request=run is not flood_verify)
        add(f"- **{label}**: {line}.")
        if rows:
            add("")
            add("  " + md_table(["bulwark threads", "count", "total", "per thread %"], rows)
                .replace("\n", "\n  "))
            add("")
    add("")
    if flood_verify and flood_verify.get("cpu"):
        add("During the flood the login wrk (a second process) is not in the sample; "
            "its CPU use is small (a few dozen requests per second).")
        add("")

    add("### Logins vs the Argon2id ceiling")
    add("")
    add(f"{len(logins)} interleaved rounds: the Argon2id ceiling for {meta.get('ceiling_s', '?')} s, then logins "
        f"(`wrk -t1 -c4 -d{meta.get('login_s', '?')}s`) on replica A; one more ceiling after the last round. "
        "Each round's ratio is its login rate over the mean of the ceilings measured just before and just "
        "after it, so interference from other work on the machine that comes and goes between rounds hits "
        "both sides of a ratio alike; the table of targets uses the median of the per-round ratios.")
    add("")
    lrows = []
    for i, lr in enumerate(login_rounds):
        run = lr["run"]
        c = run and run.get("cpu")
        lrows.append([i + 1, fmt(lr["before"], 1), fmt(run and run["rps"], 1), fmt(lr["after"], 1),
                      fmt(lr["ceiling"], 1), fmt(lr["ratio"]),
                      f"{fmt(run and run['p50_ms'], 1)} / {fmt(run and run['p99_ms'], 1)}",
                      fmt_int(run and run["non2xx"] + run["socket_errors"]),
                      fmt(c["others"]["cpu_pct"], 0, "%") if c and "others" in c else "n/a"])
    lrows.append(["median", "", fmt(login_rps, 1), "", fmt(ceiling, 1), fmt_below(login_ratio, TARGET_LOGIN_RATIO), "", "", ""])
    add(md_table(["round", "ceiling before /s", "logins /s", "ceiling after /s", "mean ceiling /s",
                  "ratio", "login p50 / p99 ms", "non-2xx + socket errors", "other processes' CPU"], lrows))
    add("")
    add(md_table(
        ["measurement", "value"],
        [["Argon2id `crypto_pwhash_str_alg` (hash), %s threads, t=%s, m=%s KiB: every ceiling run" %
          (a_hash.get("threads", "?"), a_hash.get("iterations", "?"), a_hash.get("memory_kib", "?")),
          f"{' / '.join(fmt(h['ops_per_s'], 1) for h in a_hashes)} /s; median {fmt(ceiling, 1)} /s "
          f"({fmt(a_hash.get('ms_per_op_per_thread'), 1)} ms per hash per thread)"],
         ["Kernel share of the ceilings' CPU time (page faults: libsodium maps fresh memory for every hash)",
          (f"{fmt(100.0 * a_hash['sys_s'] / (a_hash['sys_s'] + a_hash['user_s']), 0, '%')} "
           f"(user {fmt(a_hash['user_s'], 1)} s, system {fmt(a_hash['sys_s'], 1)} s, "
           f"{fmt_int(a_hash['minor_faults'] / a_hash['ops'] if a_hash.get('ops') else None)} minor faults per hash)")
          if a_hash.get("user_s") is not None else "n/a"],
         ["Argon2id `crypto_pwhash_str_verify`, same parameters, %s threads (cross-check, after the rounds)"
          % a_verify.get("threads", "?"),
          f"{fmt(a_verify.get('ops_per_s'), 1)} /s ({fmt(a_verify.get('ms_per_op_per_thread'), 1)} ms per verify per thread)"],
         ["Logins, all rounds: wrk's responses, and successes counted by Bulwark itself",
          f"{fmt_int(login_requests)}; `bulwark_logins_total{{result=\"success\"}}` rose by {fmt_int(login_ok)}"],
         ["Login non-2xx / socket errors, all rounds", f"{fmt_int(login_non2xx)} / {fmt_int(login_sock)}"],
         ["Logins/s during the flood (same wrk, verify traffic alongside)",
          f"{fmt(flood_login and flood_login['rps'], 1)} /s, non-2xx {fmt_int(flood_login and flood_login['non2xx'])}"],
         ]))
    add("")
    add("A login costs exactly one Argon2id verification (`crypto_pwhash_str_verify` recomputes the hash "
        "at the parameters stored in the PHC string: the same work as hashing), plus two SQLite reads "
        "(user, roles), a session token + SHA-256, an ES256 access token and one SQLite transaction "
        "(the session and its refresh family), on the store pool (the "
        "handler hops store pool → hashing pool → store pool). The ceiling is libsodium "
        "called directly on every core with nothing else running, so a ratio near 1 means the login path "
        "adds no overhead and the hashing pool keeps every core busy.")
    add("")

    add("### OAuth: client_credentials, introspection, refresh rotation")
    add("")
    add("Absolute rates (there is no ceiling to divide by), with reference points quoted by the project's "
        f"performance goals, not measured here: Keycloak's sizing guide plans {KEYCLOAK_PER_VCPU} "
        f"client_credentials or refresh grants per second per vCPU ({keycloak:,}/s for {nproc} vCPUs); "
        f"npm oidc-provider issued about {OIDC_PROVIDER_TOKENS_PER_S:,} ES256 JWTs/s and answered about "
        f"{OIDC_PROVIDER_INTROSPECT_PER_S:,} introspections/s on this machine.")
    add("")
    orows = []
    for label, run, invalid in [
            ("`POST /oauth2/token` `grant_type=client_credentials`", oauth_token, oauth_invalid),
            ("`POST /oauth2/introspect` `token=<JWT>`", oauth_introspect, oauth_invalid),
            ("`POST /v1/auth/refresh`, embedded SQLite", refresh_sqlite, refresh_invalid),
            ("`POST /v1/auth/refresh`, Redis" + (f" {redis_version}" if redis_version else ""),
             refresh_redis, refresh_invalid)]:
        if not run:
            orows.append([label, "not measured", "", "", "", "", "", ""])
            continue
        c = run["counters"]
        checks = ", ".join(f"{k} {fmt_int(v)}" for k, v in c.items())
        orows.append([label, fmt_int(run["rps"]), fmt(run["p50_ms"]), fmt(run["p99_ms"]),
                      fmt_int(run["non2xx"]), fmt_int(run["socket_errors"]), checks or "—",
                      "valid" if invalid(run) == 0 else "**invalid**"])
    add(md_table(["request", "/s", "p50 ms", "p99 ms", "non-2xx", "socket errors",
                  "response checks (bench/oauth.lua, bench/refresh.lua)", "run"], orows))
    add("")
    add("Response checks: for the OAuth runs, `checked` 200s and how many of them were `unexpected` "
        "(no `access_token` in a token response; not `\"active\": true` in an introspection). For "
        "refresh: `initial` tokens (one login each), `rotated` (200 carrying a new refresh token, pushed "
        "back into the pool), `failed` (non-200: that token is gone), `no_token` (200 without one), "
        "`starved` (a request found the pool empty and sent a token that cannot exist). A run is valid "
        "when there are no non-2xx responses, no socket errors and none of failed / no_token / starved.")
    add("")
    if refresh_redis:
        add(f"The Redis replica's \"ready\" log line reported `sessions: {redis_sessions or '?'}` "
            "(sessions and refresh families in Redis; the relational store is SQLite).")
        add("")
    if refresh_sqlite and refresh_redis and refresh_redis["rps"]:
        add(f"Embedded SQLite rotates at {fmt(refresh_sqlite['rps'] / refresh_redis['rps'], 2)} × the Redis "
            "rate: each rotation there is a write transaction committed with `PRAGMA synchronous=FULL` "
            "(an fdatasync), and SQLite admits one writer at a time; Redis here runs without persistence "
            "(`--save '' --appendonly no`), so a rotation costs no disk write at all — a durability "
            "difference, not only a speed difference.")
        add("")
    add("### Memory and start-up")
    add("")
    add(md_table(
        ["measurement", "value"],
        [["VmRSS, fresh idle `bulwark serve` (after /health is 200 and 1 s idle)",
          f"{fmt_int(rss.get('idle_kb'))} kB ({fmt(idle_mib, 1)} MiB), {rss.get('idle_threads', '?')} threads"],
         ["VmRSS, same process after all the load above",
          f"{fmt_int(rss.get('after_kb'))} kB ({fmt(after_mib, 1)} MiB), {rss.get('after_threads', '?')} threads"],
         ["VmRSS, second replica (log → /dev/null): idle / after its verify runs",
          f"{fmt_int(rss.get('idle_b_kb'))} / {fmt_int(rss.get('after_b_kb'))} kB"],
         ["Start to ready, each run (ms)",
          ", ".join(fmt(r.get("ready_ms"), 1) for r in ready.get("runs", []))],
         ["`startup_ms` from the \"ready\" log line, each run",
          ", ".join(fmt(r.get("startup_ms"), 1) for r in ready.get("runs", []))],
         ]))
    add("")
    add("Start to ready is measured from just before `fork/exec` to the first `200` on `/health`, "
        "polled with a raw socket every 1 ms (bench/ready_time.py), on an already-migrated data directory. "
        "`startup_ms` is Bulwark's own figure (from `Run()` to listening), which excludes process start-up "
        "and dynamic linking.")
    add("")

    add("### JWT signing and validation vs `openssl speed`")
    add("")
    add("src/jwt on one thread (bench/jwt_bench.cpp: `SigningKey::Sign` of a typical access token, and the "
        "whole `Validate`: base64url, JSON, key lookup, signature, claims) against "
        f"`openssl speed -seconds {meta.get('jwt_speed_s', 3)} ecdsap256 ed25519` (raw signatures of a digest, "
        f"also one thread; each Bulwark benchmark with `--benchmark_min_time={meta.get('jwt_speed_s', 3)}`), "
        "interleaved rounds in this run, medians (bench/jwt_vs_openssl.py). Target: ratio >= "
        f"{jwt_vs.get('target', 0.8):g}.")
    add("")
    jrows = [[r["alg"], r["op"], fmt_int(r["bulwark_per_s"]), fmt_int(r["openssl_per_s"]),
              f"{r['ratio']:.2f}", verdict(r["ratio"] >= jwt_vs.get("target", 0.8))]
             for r in jwt_vs.get("rows", [])]
    add(md_table(["algorithm", "operation", "Bulwark /s", "openssl speed /s", "ratio", ""], jrows)
        if jrows else "(not measured)")
    add("")

    add("### Micro-benchmarks")
    add("")
    add("`build/bench/bulwark_micro_bench --benchmark_min_time=0.2` (Google Benchmark 1.7.1, bench/*_bench.cpp). "
        "Debian's libbenchmark warns it was built as DEBUG; that affects the framework only, not the code measured.")
    add("")
    rows = []
    for b in micro.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        unit = b.get("time_unit", "ns")
        extra = ", ".join(f"{k}={v:g}" for k, v in b.items()
                          if k in ("t", "m_kib") and isinstance(v, (int, float)))
        rows.append([f"`{b['name']}`", fmt_duration(b["real_time"], unit), fmt_duration(b["cpu_time"], unit),
                     fmt_int(b.get("iterations")), extra or ""])
    add(md_table(["benchmark", "wall time", "CPU time", "iterations", ""], rows) if rows else "(no results)")
    add("")
    add("What they cover: `NewSessionToken` / `Sha256Hex` (src/crypto/tokens.hpp; every verify hashes the "
        "presented token), `PasswordHasher::Verify` at the OWASP defaults (one per login), "
        "`metrics::Counter::Inc` on a kept reference (1 and 2 threads) and a by-name-and-labels lookup + Inc, "
        "`AccessObserver::OnRequest` (the metrics + JSON access-log line written after every response; "
        "stderr to /dev/null), and `http::Router::Find` over Bulwark's real route table.")
    add("")

    add("## How it was measured")
    add("")
    add(f"- **Machine**: {nproc} cores ({meta.get('cpu_model', '?')}), {fmt_int(meta.get('mem_total_mib'))} MiB RAM, "
        f"Linux {meta.get('kernel', '?')}, load average at start {' '.join(meta.get('loadavg_start', []))}. "
        "A shared, noisy virtual machine: treat differences of ±10% between runs as noise. "
        f"Tools: {meta.get('wrk', 'wrk')}; {meta.get('nginx', 'nginx')}.")
    if quiet:
        parts = []
        for q in quiet:
            r = q.get("result", {})
            state = "quiet" if r.get("quiet") else "**still busy**"
            parts.append(f"{q.get('at')}: {state} ({fmt(r.get('busy_pct'), 0, '%')} busy, waited {r.get('waited_s', '?')} s)")
        add("- **Contention**: the machine is shared with other work (compilers, test suites). Before the run "
            "and before each phase bench/run waits (at most 30 s, then 10 s) for it to fall under 30% of one "
            "core busy, and every CPU sample above lists what else ran and the hypervisor steal (CPU time "
            "taken by other VMs, which no wait inside this VM can avoid). This run: " + "; ".join(parts) + ".")
    workers = meta.get("server_workers")
    add("- **Everything on one machine**, over 127.0.0.1: wrk (one thread) and the server share the cores, "
        "exactly as nginx and wrk do for the ceiling. Since wrk keeps a core busy by itself, the servers "
        "whose rates are divided by the nginx ceiling (nginx itself, the verify replicas on SQLite, Redis "
        "and Redis Cluster) get one worker per core left to it: "
        f"{workers if workers else 'nproc (older runs)'} (nginx `worker_processes`, Bulwark "
        "`BULWARK_IO_THREADS`; `BENCH_SERVER_WORKERS` overrides it). A worker more would make three busy "
        "threads share two cores, which costs nginx and Bulwark alike throughput and most of their p99. "
        "The rows with absolute targets (logins, the flood, OAuth, refresh) run Bulwark with its defaults "
        "(one I/O thread per core): replica A is restarted on the same data directory and log for them.")
    add(f"- **HTTP ceiling**: `nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'` with `worker_processes {workers or nproc}; "
        "access_log off; keepalive_requests 1000000; location / { return 200 \"ok\"; }` (pid, error log "
        "and temp paths inside a temporary DIR; the keep-alive limit is raised so that nginx, like Bulwark, "
        f"never closes a keep-alive connection mid-run), measured with `wrk -t1 -c50 -d{duration}s --latency`.")
    add("- **Verify**: a fresh data directory, `bulwark user add --username bench --password-stdin`, two "
        f"`bulwark serve` replicas on it with default settings but `BULWARK_IO_THREADS={workers or nproc}` "
        "(`BULWARK_HASH_THREADS` one per core, 8 store threads, Argon2id t=2 m=19456 KiB, JSON logs) — replica A with stderr (the "
        "access log, one JSON line per request) to a file, replica B with stderr to /dev/null — one login with "
        "curl for a `session_token`, then "
        f"`wrk -t1 -c50 -d{duration}s --latency -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:PORT/v1/auth/verify`. "
        f"{rounds} rounds, interleaved with nginx, after a 2 s warm-up of each; medians reported. "
        "**JWT verify**: in every round, the same wrk on replica A with `Authorization: Bearer <access_token>` "
        "from a fresh login (an ES256 JWT; a new one each round, since access tokens live 300 s).")
    add(f"- **Logins**: {rounds} rounds of (Argon2id ceiling {meta.get('ceiling_s', '?')} s, then "
        f"`wrk -t1 -c4 -d{meta.get('login_s', '?')}s --latency -s bench/login.lua` (POST /v1/auth/login, "
        "`Content-Type: application/json`, `{\"username\":\"bench\",\"password\":\"...\"}`) on replica A) "
        "and a last ceiling; per-round ratio = logins/s over the mean of the ceilings before and after; "
        "median reported. Non-2xx counted by wrk and successes cross-checked with `bulwark_logins_total` "
        f"from /metrics. **Argon2id ceiling**: `build/bench/argon2_ceiling --threads {nproc} --seconds "
        f"{meta.get('ceiling_s', '?')} --mode hash` "
        "(bench/argon2_ceiling.cpp: `crypto_pwhash_str_alg(..., 2, 19456 KiB, crypto_pwhash_ALG_ARGON2ID13)` "
        "in a loop on every thread); `--mode verify` (3 s) after the rounds as a cross-check.")
    add(f"- **OAuth** (replica A, embedded SQLite): client `bench-client` registered before the servers start "
        "with `bulwark client add --id bench-client --secret-stdin --grant client_credentials` (a random "
        "48-character secret); after a 2 s warm-up, "
        f"`wrk -t1 -c{oauth_conns} -d{duration}s --latency -s bench/oauth.lua -H \"Authorization: Basic ...\"` "
        "POSTing `grant_type=client_credentials` to /oauth2/token, then `token=<an access token from that "
        "grant>` to /oauth2/introspect (`client_secret_basic`; every 200 checked for `access_token` / "
        "`\"active\": true`).")
    add(f"- **Refresh rotation**: {refresh_conns + 1} logins with curl (one Argon2id each) for {refresh_conns + 1} "
        f"live refresh tokens, then `wrk -t1 -c{refresh_conns} -d{duration}s --latency --timeout 10s -s "
        "bench/refresh.lua` on POST /v1/auth/refresh: each request takes a token from the wrk thread's "
        "pool, each response's new `refresh_token` goes back into it, so no token is ever presented twice. "
        "Once on replica A (embedded SQLite: sessions and refresh families in `bulwark.db`), once on "
        "replica C: `redis-server --bind 127.0.0.1 --port <free> --save '' --appendonly no` in the "
        "temporary directory and `bulwark serve` with `REDIS_HOSTS=127.0.0.1:<port>` and "
        "`BULWARK_SESSION_DURABILITY=redis` (sessions and refresh families in Redis only; users and clients "
        "in the same SQLite file) — skipped when redis-server is not installed.")
    add("- **Verify on Redis (issue 3)**: on the same throw-away redis-server, `redis-benchmark -t get -c 50 -q` "
        "(300,000 requests) and with `-P 16` (3,000,000) as the Redis ceiling; replica D with "
        "`REDIS_HOSTS=127.0.0.1:<port>` and the default `BULWARK_SESSION_DURABILITY=redis+db` (the record is the "
        "SQLite file), one login, then `wrk -t1 -c50 --latency` on `GET /v1/auth/verify` with that session token "
        "(2 s warm-up); the same against replica E on a 6-node Redis Cluster (3 primaries, 3 replicas, "
        "`--cluster-node-timeout 1000`, `redis-cli --cluster create`) with `CLUSTER_ENABLED=true`; and the seed's "
        "own design as the peer: bench/node-peer/session_manager.js (its SessionManager: ioredis, "
        "`session:<id>` JSON with `SET ... EX 3600`, `GET` to validate, behind node's http module, one process) "
        "against the standalone server, same wrk settings. All of them (and nginx) run at once, each idle while "
        f"another is measured, in {rounds} interleaved rounds of nginx, standalone, Cluster and the peer; "
        "ratios are the medians of the per-round ratios (to that round's nginx and peer), rates and p99 the "
        "medians of the rounds. The session-cache-off reference is one run before the rounds. After the wrk "
        "runs of each round, `bench/paced_load` (open loop: a fixed rate, latency from each request's scheduled "
        "time) offers PACED_FRACTION (bench/run, 0.4) × that round's nginx rate to nginx, standalone and Cluster "
        "for the same duration after 1 s of warm-up: the reference rows of p99 at a stated load.")
    add(f"- **Verify during a login flood**: the login wrk ({duration} s) and, started 1 s later, "
        f"`wrk -t1 -c10 -d{max(duration - 2, 1)}s --latency` on verify against the same replica; just before, "
        "the same verify wrk alone as the reference.")
    add("- **RSS**: `VmRSS` from `/proc/PID/status`.")
    add("- **wrk numbers** come from a `done()` hook (bench/wrk_report.lua) that prints wrk's exact request "
        "count, duration, error counts and latency percentiles; wrk's text output is kept too.")
    add("")
    add("## Reproduce")
    add("")
    add("```sh")
    add("make bench            # runs bench/run: installs what is missing (scripts/install-deps.sh bench:")
    add("                      # wrk, nginx-light, libbenchmark), builds build/ with -DBULWARK_BUILD_BENCH=ON, measures")
    add("./bench/run           # the same without make; BENCH_SKIP_BUILD=1 to use build/ as it is")
    add("BENCH_DURATION=5 BENCH_ROUNDS=1 ./bench/run   # a quick smoke run")
    add("```")
    add("")
    add("Raw output (wrk text, CPU samples, micro-benchmark JSON, logs) lands in `bench/results/` "
        f"(git-ignored). This run took {elapsed if elapsed is not None else '?'} s including the build check.")
    add("")

    os.makedirs(os.path.dirname(os.path.abspath(args.doc)), exist_ok=True)
    tmp = args.doc + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L))
    os.replace(tmp, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
