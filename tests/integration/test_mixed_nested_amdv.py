#!/usr/bin/env python3
"""-accel mixed where KVM runs guest kernel code, on an emulated AMD-V host.

No machine of this project has VT-x or AMD-V, and some have no /dev/kvm at all, so the
VT-x/AMD-V column of docs/mixed.md's host table never ran in CI. tools/nested_amdv.py
builds that host from real parts: this tree's QEMU on TCG emulates AMD-V with nested
paging (L0), Debian's kernel runs its own kvm-amd on it (L1), and this tree's QEMU runs
the mixedvm guest under -accel mixed on that KVM (L2). It needs no /dev/kvm here.

Asserted, with one L2 vCPU (everything runs at TCG speed or slower):
- L1 has a working /dev/kvm, and mixed's start-up probe in L2 says kvm-runs-kernel;
- the vCPU ran on KVM and moved (every interrupt is two moves on this kind of host);
- the guest kernel detected KVM and switched to x2APIC, which on KVM reaches QEMU's APIC
  through user-space MSR exits (docs/mixed.md, "The guest CPU");
- selfcheck passes, the guest kernel reported no trouble, and L2's QEMU exited cleanly.
Before the interrupt-window fix in mixed_kvm_pre_run, this guest needed 8 minutes for
1.3 s of boot (a window-exit livelock), and this test timed out.
"""
import re
import shutil
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402
from mixedvm_vm import KERNEL_TROUBLE  # noqa: E402

CMD = "dmesg | grep -i -E 'hypervisor|x2apic|apic routing'; selfcheck --scale 0.05"


def test(guests):
    res = nested_amdv.run_nested(CMD, smp=1, minutes=40)
    l2, l1 = res["l2_serial"], res["l1_serial"]
    print(f"logs in {res['log_dir']}")
    for line in l2.splitlines():
        if re.search(r"Hypervisor detected|x2apic|APIC routing|SELFCHECK|MIXEDVM-END", line):
            print("  L2: " + line.strip())
    vcpu = (res["vcpus"] or [{}])[0]
    print(f"  L2 probe (trace): kernel on KVM {res['probe_says_kernel']}; QMP "
          f"({res['monitor_looks']} looks, last error {res['monitor_error']}): kvm-runs-kernel "
          f"{res['kvm_runs_kernel']}, moves {vcpu.get('moves')}, kvm-ns {vcpu.get('kvm-ns')}, "
          f"last move {vcpu.get('last-move')}")
    check("L1: /dev/kvm is up" in l1, "L1 has no /dev/kvm: kvm-amd did not load on TCG's "
          "AMD-V:\n" + l1[-1500:])
    check(not res["timed_out"], "the nested run did not finish in 40 minutes; L2's serial "
          "log ends with:\n" + l2[-1500:])
    check(res["probe_says_kernel"], "mixed's probe in L2 did not find a KVM that runs guest "
          "kernel code (no 'mixed_probe kvm_runs_kernel=1' in L1's console)")
    check(res["vcpus"], f"L2's monitor never answered ({res['monitor_looks']} looks, last "
          f"error: {res['monitor_error']})")
    check(res["kvm_runs_kernel"] is True, "query-vcpu-accel disagrees with the probe")
    check(vcpu.get("kvm-ns", 0) > 0 and vcpu.get("moves", 0) > 0,
          f"the vCPU did not run on KVM and move: {vcpu}")
    check("Hypervisor detected: KVM" in l2, "the guest did not detect KVM")
    check(re.search(r"Switched APIC routing to physical x2apic", l2),
          "the guest kernel did not switch to x2APIC")
    check("SELFCHECK PASS" in l2, "selfcheck did not pass")
    check("MIXEDVM-END rc=0" in l2, "the guest command failed")
    trouble = [l for l in l2.splitlines() if KERNEL_TROUBLE.search(l)]
    check(not trouble, "guest kernel trouble:\n  " + "\n  ".join(trouble[:10]))
    check(res["l2_qemu_clean_exit"], "L2's QEMU did not exit cleanly:\n" + l1[-1500:])
    shutil.rmtree(res["log_dir"])     # kept only when a check failed


run(test)
