"""The targets of docs/SPEC.md, read from its table, so that a bench says whether it met them.

    from spec import check_spec
    check_spec({"move.tcg_to_kvm.p50_us": 9.1, ...})   # prints SPEC <id>: MET|MISSED lines

docs/SPEC.md is the one place a target is written; a bench never repeats it.
"""
import os
import re

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "SPEC.md")
ROW = re.compile(r"^\|\s*([a-z0-9_.]+)\s*\|[^|]*\|\s*(<=|>=)\s*([0-9.]+)\s*\|", re.M)


def targets(path=SPEC):
    """{id: (op, bound)} for every row of the spec table."""
    with open(path) as f:
        return {m.group(1): (m.group(2), float(m.group(3))) for m in ROW.finditer(f.read())}


def check_spec(figures, path=SPEC):
    """Prints one SPEC line per measured figure that the spec names; returns the ids missed."""
    spec, missed = targets(path), []
    for fid, value in figures.items():
        if fid not in spec:
            raise KeyError(f"{fid} is not in {path}")
        op, bound = spec[fid]
        ok = value <= bound if op == "<=" else value >= bound
        print(f"SPEC {fid}: {'MET' if ok else 'MISSED'} ({value:.4g}, target {op} {bound:g})")
        if not ok:
            missed.append(fid)
    return missed


def policy_decision_cost(bench_binary):
    """Runs bench_policy and returns its worst decision cost per vCPU per period, in ns."""
    import json
    import subprocess
    out = subprocess.run([bench_binary, "--benchmark_format=json"], capture_output=True,
                         text=True, check=True).stdout
    runs = json.loads(out)["benchmarks"]
    for r in runs:
        print(f"{r['name']:<28}{r['ns_per_vcpu'] * 1e9:>8.1f} ns per vCPU")
    return max(r["ns_per_vcpu"] for r in runs) * 1e9   # the counter is in seconds


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "policy":
        sys.exit("usage: bench/spec.py policy build/bench/bench_policy")
    sys.exit(1 if check_spec({"policy.decision_ns_per_vcpu":
                              policy_decision_cost(sys.argv[2])}) else 0)
