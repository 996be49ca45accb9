#!/usr/bin/env python3
"""Our NPB kernels verify at class S inside the guest, under -accel mixed with every vCPU
placed on KVM (on PVM: their user code on KVM, the kernel's on TCG), 4 OpenMP threads."""
import re

from mixedvm_testlib import check, mixed_guest, require_kvm, run

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
        m = re.search(rf" {k} Benchmark Completed\.(.*?)Verification\s+=\s+(\w+)", out, re.S)
        check(m, f"no {k} report in the guest output")
        check(m.group(2) == "SUCCESSFUL", f"{k} class S: Verification = {m.group(2)}")
        check(re.search(r"Total threads\s+=\s+4", m.group(1)), f"{k} did not run 4 threads")
    check(rc == 0, f"guest command rc={rc}")
    g.check_kernel_healthy()


run(test)
