#!/usr/bin/env python3
"""The move-path candidate x-user-get on a KVM host (needs /dev/kvm).

Where KVM runs guest kernel code (VT-x/AMD-V), x-user-get=on is refused (mixed-options
checks that), so this test runs x-user-get=verify only: the guest must stay correct and
runs that entered KVM in kernel mode must show differences (the comparison sees them).

Where it does not (PVM), a vCPU enters KVM only in user mode and every run ends in a
kick or the tripwire, so the rule is the one the candidate relies on:
- under x-user-get=verify, with vCPU 1 moving over QMP while it runs a vector-state check
  (two processes, sched_yield(), every register user code may use), a compute loop and
  selfcheck, at least 50 runs entered in user mode were checked and none differed;
- under x-user-get=on with x-sync-regs and x-lazy-put, the same workload passes and at
  least 50 moves off KVM used the user-mode get.
"""
import time

from mixedvm_testlib import all_of, check, host_runs_guest_kernel, mixed_guest, move, \
    require_kvm, run, vcpus

require_kvm()

WORKLOAD = all_of(["vecstate --cpu 1 --rounds 4000", "spinrate --cpu 1 --iterations 300000000",
                   "selfcheck --expect-cpus 2 --rounds 200"])


def one(guests, opts, flips=60):
    g = mixed_guest("mixed-user-get", accel_opts=f"kvm-cpus=1,{opts}", smp=2, cmd=WORKLOAD)
    guests.append(g)
    g.start()
    g.wait_for(r"selfcheck: 2 CPUs online", timeout=180)
    for i in range(flips):
        if "MIXEDVM-END" in g.serial():
            break
        move(g, 1, "tcg" if i % 2 == 0 else "kvm")
        time.sleep(0.1)
    move(g, 1, "kvm")
    # The guest powers off at its end: read the counters while it still runs.
    v, deadline = vcpus(g)[1], time.monotonic() + 900
    while "MIXEDVM-END" not in g.serial() and time.monotonic() < deadline:
        try:
            v = vcpus(g)[1]
        except Exception:   # noqa: BLE001 -- QEMU is going away at the guest's end
            break
        time.sleep(1)
    rc = g.wait_end(timeout=60)
    out = g.serial()
    print(f"  {opts}: rc={rc}; vCPU 1 moves {v['moves']}, user-gets {v['user-gets']}, "
          f"checks {v.get('user-get-checks')}")
    check(rc == 0 and "vecstate: registers PASS" in out and "SELFCHECK PASS" in out,
          f"{opts}: the workload failed (rc={rc}):\n" + out[-2000:])
    g.check_kernel_healthy()
    check(g.wait_exit() == 0, f"{opts}: QEMU did not exit cleanly")
    return v


def test(guests):
    if host_runs_guest_kernel():
        v = one(guests, "x-user-get=verify")
        c = v["user-get-checks"]
        check(c["kernel-entries"] >= 20 and c["kernel-entry-mismatches"] >= 1,
              f"runs entered in kernel mode showed no difference: {c}")
        return
    v = one(guests, "x-user-get=verify")
    c = v["user-get-checks"]
    check(c["user-entries"] >= 50, f"only {c['user-entries']} runs entered in user mode checked")
    check(c["user-entry-mismatches"] == 0,
          f"a user-mode get differed from a full one after a run in user mode: {c}")
    v = one(guests, "x-user-get=on,x-sync-regs=on,x-lazy-put=on")
    check(v["user-gets"] >= 50, f"only {v['user-gets']} moves used the user-mode get")


run(test)
