#!/usr/bin/env python3
"""The guest stays healthy through 1000 random QMP moves during a self-checking workload.

Random vCPU, random backend, with and without waiting for the safe point. Every
self-check must pass (compute, copy-on-write, and RDTSC as one monotonic timeline
across vCPUs and moves), the console must show no oops or panic, and every vCPU must
have really executed on both backends.
"""
import random
import time

from mixedvm_testlib import all_of, check, mixed_guest, move, require_kvm, run, vcpus

require_kvm()

MOVES = 1000


def test(guests):
    cmd = all_of(["selfcheck --expect-cpus 4 --rounds 400", "cowcheck --rounds 150",
                  "torture --seconds 20 clock"])
    g = mixed_guest("mixed-random-moves", cmd=cmd)
    guests.append(g)
    g.start()
    g.wait_for(r"selfcheck: 4 CPUs online", timeout=120)
    rng = random.Random(1234)
    t0 = time.monotonic()
    for i in range(MOVES):
        check("MIXEDVM-END" not in g.serial(), f"the workload ended after only {i} moves")
        move(g, rng.randrange(4), rng.choice(["kvm", "tcg"]), wait=rng.random() < 0.5)
    elapsed = time.monotonic() - t0
    v = vcpus(g)
    print(f"{MOVES} QMP moves in {elapsed:.1f} s; per-vCPU backend switches: "
          + ", ".join(f"{c}: {e['moves']}" for c, e in sorted(v.items())))
    for c, e in v.items():
        check(e["kvm-ns"] > 0 and e["tcg-ns"] > 0, f"vCPU {c} did not run on both backends: {e}")
        check(not e["kvm-failed"], f"vCPU {c} fell back to TCG: {e}")
    rc = g.wait_end(timeout=600)
    out = g.serial()
    check("SELFCHECK PASS" in out and "COWCHECK PASS" in out and "TORTURE clock PASS" in out
          and rc == 0,
          f"workload failed across moves (rc={rc})")
    g.check_kernel_healthy()
    check(g.wait_exit() == 0, "QEMU did not exit cleanly")


run(test)
