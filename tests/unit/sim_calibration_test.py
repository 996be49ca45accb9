#!/usr/bin/env python3
"""The simulator against the PVM host's recorded runs (2026-12-04, tests/data/pvm-2026-12-04/).

    sim_calibration_test.py PATH/TO/mixedvm-sim

bench/host_costs.py derives the host's costs from five fixed-placement runs (the fit
set) and predicts every other fixed placement from them; this checks the predictions,
the cost file in bench/hosts/, hot-tcg's simulated targets, and that each of those
checks can fail (negative controls with a wrong cost or a wrong zap-us).
"""
import json
import os
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
DATA = os.path.join(HERE, "..", "data", "pvm-2026-12-04")
SYNTH = os.path.join(DATA, "scenarios-synthetic-pti-scale0.5.jsonl")
NPB = os.path.join(DATA, "scenarios-npb-phases-nopti.jsonl")
COSTS = os.path.join(ROOT, "bench", "hosts", "pvm-2026-12-04.toml")
TOOL = os.path.join(ROOT, "bench", "host_costs.py")
SIM = sys.argv[1]
# NPB IS at -smp 2 with vCPU 1 on KVM took 1.96 s, half of kvm=0's 3.82 s: its two
# threads do not do alike work, and the runs do not record which vCPU ran what
# (docs/scheduler.md, "The simulator, calibrated").
KNOWN_NPB_MISSES = {("npb-is-smp2", "kvm=1")}

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run_check(costs, *extra, npb=True):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, TOOL, "check", "--costs", costs, "--results", SYNTH,
                "--sim", SIM, "--json", out.name, *extra] + (["--npb", NPB] if npb else [])
        rc = subprocess.run(argv, capture_output=True, text=True).returncode
        with open(out.name) as f:
            return rc, json.load(f)


def test_misses(result):
    return [(r["scenario"], r["config"]) for r in result["rows"]
            if r["role"] == "test" and r["error"] is not None and abs(r["error"]) > 0.15]


with tempfile.TemporaryDirectory() as tmp:
    # The cost file is what derive makes of the recorded runs, not edited by hand.
    derived = os.path.join(tmp, "derived.toml")
    subprocess.run([sys.executable, TOOL, "derive", "--results", SYNTH, "--scale", "0.5",
                    "--out", derived], check=True, capture_output=True)
    with open(derived, "rb") as f, open(COSTS, "rb") as g:
        mine, theirs = tomllib.load(f)["costs"], tomllib.load(g)["costs"]
    check(mine.keys() == theirs.keys() and
          all(abs(mine[k] - theirs[k]) <= 1e-3 * abs(theirs[k]) for k in mine),
          f"bench/hosts/pvm-2026-12-04.toml is derive's output ({theirs})")

    rc, res = run_check(COSTS)
    rows = res["rows"]
    synth = [r for r in rows if r["role"] == "test" and not r["scenario"].startswith("npb-")]
    npb = [r for r in rows if r["role"] == "test" and r["scenario"].startswith("npb-")]
    check(len(synth) == 11, f"11 synthetic fixed placements are tested ({len(synth)})")
    check(len(npb) == 10, f"10 NPB mixed placements are tested ({len(npb)})")
    misses = test_misses(res)
    check(not [m for m in misses if not m[0].startswith("npb-")],
          f"every synthetic test run predicted within 15% ({misses})")
    check(set(misses) <= KNOWN_NPB_MISSES,
          f"every NPB test run within 15% but {sorted(KNOWN_NPB_MISSES)} ({misses})")
    policy = [m for m in res["misses"] if "hot-tcg" in m]
    check(not policy, f"simulated hot-tcg meets every scenario's target ({policy})")
    hot = {r["scenario"]: r["predicted"] for r in rows if r["config"] == "hot-tcg"}
    fixed = {}
    for r in rows:
        if r["config"] != "hot-tcg":
            fixed.setdefault(r["scenario"], []).append(r["predicted"])
    check(hot["phases"] < min(fixed["phases"]),
          f"phases: hot-tcg {hot['phases']:.2f} s beats every fixed placement "
          f"({min(fixed['phases']):.2f} s best)")

    # Negative controls. A zap that costs the other vCPUs on KVM nothing: the
    # kvm-only runs of the scenarios with a second busy vCPU come out too fast.
    data = open(COSTS).read()
    bad = os.path.join(tmp, "no-zap-wait.toml")
    with open(bad, "w") as f:
        f.write(data.replace(f"zap_wait_us = {data.split('zap_wait_us = ')[1].split()[0]}",
                             "zap_wait_us = 0"))
    _, res0 = run_check(bad, npb=False)
    check(("timer-compute", "kvm-only") in test_misses(res0),
          f"with zap_wait_us = 0 the timer-compute kvm-only prediction misses "
          f"({test_misses(res0)})")
    # hot-tcg told a zap costs 50 us (its default until 2026-12-05): it stays on
    # KVM through the system calls, as on the PVM host.
    _, res50 = run_check(COSTS, "--hot-tcg-params", "zap-us=50", npb=False)
    check(any(m.startswith("phases: simulated hot-tcg") for m in res50["misses"]),
          f"with zap-us=50 simulated hot-tcg loses phases ({res50['misses']})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
