#!/usr/bin/env python3
"""Negative control for boot-tcg-smp4: a corrupted result in the guest is reported as such.

The workload flips one bit of vCPU 2's result (--inject-fault 2). The guest must print
SELFCHECK FAIL, name the thread, and /init must pass the non-zero exit code out, so the
harness sees the failure that a broken backend move would cause.
"""
from mixedvm_testlib import Guest, check, run


def test(guests):
    g = Guest("boot-detects-fault", smp=4, accel="tcg", cmd="selfcheck --expect-cpus 4 --inject-fault 2")
    guests.append(g)
    g.start()
    rc = g.wait_end(timeout=240)
    out = g.serial()
    check("SELFCHECK FAIL" in out, "the injected fault was not detected")
    check("selfcheck: thread 2 cpu 2: FAIL" in out, "the failing thread was not named")
    check("selfcheck: thread 0 cpu 0: ok" in out, "an untouched thread should still pass")
    check(rc == 1, f"/init reported rc={rc}, expected the workload's exit code 1")
    check(g.wait_exit() == 0, "QEMU did not exit cleanly after the guest powered off")


run(test)
