#!/usr/bin/env python3
"""The guest side of bench/scenarios.py works: every synthetic scenario's command runs in
the real guest and yields a makespan.

The bench needs /dev/kvm for its matrix; its guest commands do not. Each synthetic
scenario runs here once, its work scaled down, under stock multi-threaded TCG, and must
end with rc 0 and a makespan no shorter than any single result it is made of.
Negative control: the same scenario with its work put on a vCPU the guest does not have
must yield no makespan, with the reason, so a command that silently did nothing fails.
"""
import os
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, os.path.join(ROOT, "bench"))
import scenarios  # noqa: E402

ACCEL = "tcg,thread=multi"


def test(guests):
    for sc in scenarios.scenarios(0.002):
        if sc.npb:
            continue
        rec = scenarios.run_one(sc, ACCEL, timeout=240)
        print(f"{sc.name}: {rec['status']}, makespan {rec['seconds']}")
        check(rec["status"] == "ok" and rec["seconds"] > 0,
              f"{sc.name}: no makespan from the guest: {rec['status']}")

    # negative control: vCPU 5 does not exist in a 2-vCPU guest
    bad = scenarios.Scenario("no-such-vcpu", "same", 2, {5: [scenarios.spin(1e5)]})
    rec = scenarios.run_one(bad, ACCEL, timeout=240)
    print(f"negative control: {rec['status']}")
    check(rec["seconds"] is None and "vCPU(s) [5]" in rec["status"],
          "negative control: work on a missing vCPU still gave a makespan")


run(test)
