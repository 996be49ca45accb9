#!/usr/bin/env python3
"""Shadow-MMU coherence, and its negative control.

Every vCPU is placed on KVM and cowcheck forks: the guest kernel (on TCG) write-protects
pages for copy-on-write, which KVM's shadow MMU never sees. With the invalidation on
(the default) cowcheck passes; with -accel mixed,x-shadow-zap=off it must fail, which
proves the test sees the bug the mechanism prevents.
"""
from mixedvm_testlib import (VmError, check, host_runs_guest_kernel, mixed_guest, require_kvm,
                             run, skip, vcpus)

require_kvm()
if host_runs_guest_kernel():
    skip("this host's KVM has VT-x/AMD-V; with EPT/NPT it tracks guest page tables itself "
         "and mixed does not zap shadow pages")


def cowcheck(guests, zap):
    g = mixed_guest(f"mixed-shadow-zap-{zap}", accel_opts=f"kvm-cpus=0-3,x-shadow-zap={zap}",
                    cmd="cowcheck --rounds 30")
    guests.append(g)
    g.start()
    check(all(e["accel"] == "kvm" for e in vcpus(g).values()), "placement")
    if zap == "on":
        rc = g.wait_end(timeout=300)
    else:
        # Stale translations may also kill the guest's init, which then never reports
        # an end: a guest that stops talking is as broken as one that fails.
        try:
            rc = g.wait_end(timeout=60)
        except VmError:
            rc = None
    out = g.serial()
    g.stop()
    return rc, out


def test(guests):
    rc, out = cowcheck(guests, "on")
    check(rc == 0 and "COWCHECK PASS" in out, f"cowcheck failed with the invalidation on (rc={rc})")
    rc, out = cowcheck(guests, "off")
    check(rc != 0 and "COWCHECK PASS" not in out,
          "negative control: cowcheck passed with x-shadow-zap=off, so it cannot see stale "
          "shadow translations")
    how = "never ended" if rc is None else f"exit {rc}"
    print(f"x-shadow-zap=off: cowcheck {how} ({out.count('segfault')} segfaults), as expected")


run(test)
