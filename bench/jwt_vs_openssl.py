#!/usr/bin/env python3
"""JWT sign/verify rates of src/jwt against `openssl speed` measured in the same run.

bench/run calls it with rounds of two files each: jwt-N.json (Google Benchmark
JSON of bulwark_micro_bench --benchmark_filter=BM_Jwt) and openssl-speed-N.txt
(`openssl speed -seconds N ecdsap256 ed25519`; bench/run: N = 2). Writes jwt-vs-openssl.json:
the median rate of each side per operation and their ratio (target >= 0.8).
"""
import argparse
import json
import re
import statistics
import sys

# "BM_JwtSign/0" ... label "ES256" / "EdDSA"
OPS = {"BM_JwtSign": "sign", "BM_JwtValidate": "verify"}
SPEED_ROWS = {"ES256": re.compile(r"ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)"),
              "EdDSA": re.compile(r"EdDSA \(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)")}


def jwt_rates(path):
    out = {}
    with open(path) as f:
        for b in json.load(f).get("benchmarks", []):
            base = b["name"].split("/")[0]
            if base in OPS and b.get("run_type", "iteration") == "iteration":
                out[(b.get("label", ""), OPS[base])] = float(b["items_per_second"])
    return out


def speed_rates(path):
    out = {}
    text = open(path).read()
    for alg, rx in SPEED_ROWS.items():
        m = rx.search(text)
        if m:
            out[(alg, "sign")] = float(m.group(1))
            out[(alg, "verify")] = float(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jwt", nargs="+", required=True)
    ap.add_argument("--speed", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--target", type=float, default=0.8)
    a = ap.parse_args()
    jwt = [jwt_rates(p) for p in a.jwt]
    speed = [speed_rates(p) for p in a.speed]
    rows = []
    for alg in ("ES256", "EdDSA"):
        for op in ("sign", "verify"):
            ours = [r[(alg, op)] for r in jwt if (alg, op) in r]
            ref = [r[(alg, op)] for r in speed if (alg, op) in r]
            if not ours or not ref:
                continue
            m_ours, m_ref = statistics.median(ours), statistics.median(ref)
            rows.append({"alg": alg, "op": op, "bulwark_per_s": round(m_ours, 1),
                         "openssl_per_s": round(m_ref, 1), "ratio": round(m_ours / m_ref, 3),
                         "rounds": len(ours), "bulwark_runs": ours, "openssl_runs": ref})
    result = {"target": a.target, "rows": rows,
              "meets_target": bool(rows) and all(r["ratio"] >= a.target for r in rows)}
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    for r in rows:
        print(f"{r['alg']:6} {r['op']:6} bulwark {r['bulwark_per_s']:9.0f}/s  openssl {r['openssl_per_s']:9.0f}/s"
              f"  ratio {r['ratio']:.2f}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
