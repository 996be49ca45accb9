#!/usr/bin/env python3
"""Our NPB kernels verify at class S inside the guest, under -accel mixed with every vCPU
placed on KVM (on PVM: their user code on KVM, the kernel's on TCG), 4 OpenMP threads."""
from mixedvm_testlib import check, mixed_guest, npb_report, require_kvm, run

require_kvm()

KERNELS = ["EP", "IS", "CG", "MG", "FT"]


def test(guests):
    cmd = " && ".join(f"npb_{k.lower()} --class S --threads 4" for k in KERNELS)
    g = mixed_guest("npb-guest", accel_opts="policy=kvm-only", cmd=cmd)
    guests.append(g)
    g.start()
    rc = g.wait_end(timeout=300)
    out = g.serial()
    for k in KERNELS:
        rep = npb_report(out, k)
        check(rep, f"no {k} report in the guest output")
        check(rep["verified"], f"{k} class S: Verification = {rep['verification']}")
        check(rep["threads"] == 4, f"{k} did not run 4 threads")
    check(rc == 0, f"guest command rc={rc}")
    g.check_kernel_healthy()


run(test)
