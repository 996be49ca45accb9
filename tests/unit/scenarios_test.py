#!/usr/bin/env python3
"""bench/scenarios.py's verdicts, makespans and guest commands, from made-up runs.

The bench itself needs /dev/kvm; what it concludes from its runs does not. Each verdict is
checked both ways: a result that meets the target and one that misses it, so a verdict
that always said MET (or always MISSED) fails here.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import scenarios  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def runs(name, table):
    """Recorded runs of scenario `name` from {config: [seconds or None, ...]}."""
    out = []
    for config, secs in table.items():
        for rep, s in enumerate(secs):
            out.append({"scenario": name, "config": config, "rep": rep, "seconds": s,
                        "status": "ok" if s is not None else "failed: timeout",
                        "when": "2026-11-30T00:00:00"})
    return out


by_name = {s.name: s for s in scenarios.scenarios(1.0)}
cs = by_name["compute-syscalls"]
phases = by_name["phases"]

# Configurations: all subsets with 2 vCPUs, prefixes beyond.
check([n for n, _ in scenarios.configurations(2)] ==
      ["tcg-only", "kvm=0", "kvm=1", "kvm-only", "hot-tcg"], "configurations of -smp 2")
check([a for _, a in scenarios.configurations(4)][1:4] ==
      ["mixed,kvm-cpus=0", "mixed,kvm-cpus=0-1", "mixed,kvm-cpus=0-2"],
      "configurations of -smp 4 are the prefixes")

# Guest commands: one vCPU's items in sequence, vCPUs side by side.
check(cs.guest_cmd() == "spinrate --cpu 0 --iterations 2000000000 & "
      "sysloop --cpu 1 --calls 100000 & wait", "compute-syscalls command")
check(phases.guest_cmd().startswith("( spinrate --cpu 1 --iterations 1000000000; "
                                    "sysloop --cpu 1 --calls 100000; spinrate"),
      "phases command runs its items in sequence")

# Makespan: the slowest vCPU's total; a missing result is a failure with its reason.
serial = ("spinrate cpu=1 iterations=1000000000 seconds=1.500 rate=6.6e+08 result=1\n"
          "sysloop cpu=1 calls=100000 seconds=2.250000 rate=4.4e+04\n"
          "spinrate cpu=1 iterations=1000000000 seconds=1.250 rate=8e+08 result=1\n")
check(phases.makespan(serial) == (5.0, None), "phases makespan sums its items")
secs, why = phases.makespan(serial.rsplit("spinrate", 1)[0])
check(secs is None and "vCPU(s) [1]" in why, "a missing item is reported")
secs, _ = cs.makespan("spinrate cpu=0 iterations=1 seconds=3.000 rate=1 result=1\n"
                      "sysloop cpu=1 calls=100000 seconds=0.400000 rate=2.5e+05\n")
check(secs == 3.0, "compute-syscalls makespan is the slower vCPU")

# Verdicts: hot-tcg close to the right placement, better than the others.
good = runs("compute-syscalls", {"tcg-only": [40, 41, 42], "kvm=0": [3.4, 3.5, 3.6],
                                 "kvm=1": [45, 46, 47], "kvm-only": [50, 52, 51],
                                 "hot-tcg": [3.7, 3.8, 3.6]})
s = scenarios.summarise(cs, good)
check(s["best"] == "kvm=0" and s["worst"] == "kvm-only", "best and worst fixed placement")
check(all(s["verdicts"].values()), f"a good hot-tcg meets every target: {s['verdicts']}")

slow = runs("compute-syscalls", {"tcg-only": [40, 41, 42], "kvm=0": [3.4, 3.5, 3.6],
                                 "kvm=1": [45, 46, 47], "kvm-only": [50, 52, 51],
                                 "hot-tcg": [4.2, 4.0, 4.1]})
s = scenarios.summarise(cs, slow)
check(not s["verdicts"]["within 10% of the best fixed placement"],
      "17% slower than the best fixed placement misses the 10% target")

lost = runs("compute-syscalls", {"tcg-only": [40, 41, 42], "kvm=0": [3.4, 3.5, 3.6],
                                 "kvm=1": [45, 46, 47], "kvm-only": [50, 52, 51],
                                 "hot-tcg": [3.6, None, 3.6]})
s = scenarios.summarise(cs, lost)
check(not any(s["verdicts"].values()), "a failed hot-tcg run misses every target")

# Phases: strictly better than every fixed placement, and no slower than kvm-only.
ph = runs("phases", {"tcg-only": [20, 21, 22], "kvm=0": [20, 21, 22], "kvm=1": [30, 30, 31],
                     "kvm-only": [30, 31, 32], "hot-tcg": [19, 19.5, 20.5]})
s = scenarios.summarise(phases, ph)
key = "strictly better than every fixed placement"
check(s["verdicts"][key], "phases: better than every fixed placement")
ph_tie = runs("phases", {"tcg-only": [20, 21, 22], "kvm=0": [19, 19.5, 20], "kvm=1": [30],
                         "kvm-only": [30], "hot-tcg": [19.5, 19.5, 19.6]})
s = scenarios.summarise(phases, ph_tie)
check(not s["verdicts"][key], "phases: a tie with a fixed placement is not strictly better")
check(s["verdicts"]["within 10% of the best fixed placement"], "phases: the tie is within 10%")
ph_kvm = runs("phases", {"tcg-only": [40], "kvm=0": [40], "kvm=1": [10], "kvm-only": [10, 11],
                         "hot-tcg": [11.5]})
s = scenarios.summarise(phases, ph_kvm)
check(not s["verdicts"]["never slower than kvm-only"], "slower than every kvm-only run")

# An incomplete matrix gives no verdicts, and the page says so.
part = runs("compute-syscalls", {"kvm=0": [3.5], "hot-tcg": [3.6]})
s = scenarios.summarise(cs, part)
check(not s["complete"] and not s["verdicts"], "an incomplete scenario has no verdict")

with tempfile.TemporaryDirectory() as d:
    page = os.path.join(d, "scenarios.md")
    sums = scenarios.report([cs, phases], slow + ph, ["--reps", "3"], page)
    text = open(page).read()
    check("within 10% of the best fixed placement: MISSED" in text, "the page shows a miss")
    check("| kvm=0 (right placement) | 3.50 [3.40–3.60] (n=3) |" in text,
          "the page shows the median and the spread")
    fig = scenarios.spec_figures(sums)
    check(abs(fig["scenarios.hot_tcg_over_best_fixed"] - 4.1 / 3.5) < 1e-9,
          "SPEC figure: the worst hot-tcg / best ratio")

# Overcommit: the same NPB kernel at -smp 2 and -smp 4, per configuration both ran.
npb = (runs("npb-cg-smp2", {"kvm-only": [1.5, 1.6, 1.7], "tcg-only": [7.0]})
       + runs("npb-cg-smp4", {"kvm-only": [4.0], "tcg-only": [10.5], "hot-tcg": [3.0]})
       + runs("npb-ep-smp2", {"kvm-only": [27.0]}))
over = {(k, c): x for k, c, _, _, x in scenarios.overcommit(npb)}
check(abs(over[("npb-cg", "kvm-only")] - 4.0 / 1.6) < 1e-9 and
      abs(over[("npb-cg", "tcg-only")] - 1.5) < 1e-9,
      f"overcommit: smp4 median over smp2 median per configuration ({over})")
check(("npb-cg", "hot-tcg") not in over and not any(k == "npb-ep" for k, _ in over),
      "overcommit: no ratio without both sizes")

# The PVM host's recorded runs (2026-12-04): the verdicts its page showed.
pvm = scenarios.load(os.path.join(HERE, "..", "data", "pvm-2026-12-04",
                                  "scenarios-synthetic-pti-scale0.5.jsonl"))
got = {s.name: scenarios.summarise(s, pvm) for s in scenarios.scenarios(0.5)
       if s.name in ("compute-syscalls", "phases", "timer-compute", "idle")}
check(got["phases"]["best"] == "tcg-only" and abs(got["phases"]["hot_over_best"] - 2.17) < 0.01,
      "PVM data: phases best fixed tcg-only, hot-tcg 2.17x")
check(not got["phases"]["verdicts"]["strictly better than every fixed placement"],
      "PVM data: phases missed 'strictly better'")
check(got["timer-compute"]["verdicts"]["within 10% of the best fixed placement"] and
      not got["idle"]["verdicts"]["within 10% of the best fixed placement"],
      "PVM data: timer-compute met 10%, idle missed it (1.16x)")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
