#!/usr/bin/env python3
"""A -smp 4 guest boots on TCG, sees 4 CPUs, passes its self-check, and answers QMP."""
from mixedvm_testlib import Guest, check, run


def test(guests):
    g = Guest("boot-tcg-smp4", smp=4, accel="tcg", cmd="selfcheck --expect-cpus 4")
    guests.append(g)
    g.start()

    cpus = g.qmp.execute("query-cpus-fast")
    check([c["cpu-index"] for c in cpus] == [0, 1, 2, 3], f"query-cpus-fast: {cpus}")
    check(all(c["target"] == "x86_64" for c in cpus), f"unexpected targets: {cpus}")
    tids = {c["thread-id"] for c in cpus}
    check(len(tids) == 4, f"MTTCG must give each vCPU its own host thread, got {tids}")

    g.wait_for(r"MIXEDVM-READY", timeout=120)
    rc = g.wait_end(timeout=240)
    out = g.serial()
    check("selfcheck: 4 CPUs online" in out, "the guest did not see 4 CPUs")
    for i in range(4):
        check(f"selfcheck: thread {i} cpu {i}: ok" in out, f"thread {i} did not pass on cpu {i}")
    check("SELFCHECK PASS" in out, "the workload's self-check did not pass")
    check(rc == 0, f"guest command exited with {rc}")
    g.check_kernel_healthy()
    code = g.wait_exit()
    check(code == 0, f"QEMU exited with {code} after guest poweroff")


run(test)
