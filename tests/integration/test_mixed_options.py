#!/usr/bin/env python3
"""Options that cannot work with -accel mixed are refused with a clear message.

QEMU must exit non-zero before the guest runs, naming the problem. A good option
(tcg-cpus=) is checked through query-vcpu-accel. More vCPUs than the host CPUs QEMU
may use is allowed, with a warning at start (and none without overcommit).
"""
import subprocess

from mixedvm_testlib import artifact, check, host_runs_guest_kernel, mixed_guest, require_kvm, \
    run, vcpus

require_kvm()

REFUSED = [
    (["-accel", "mixed,kernel-irqchip=on"], "kernel-irqchip"),
    (["-accel", "mixed,kernel-irqchip=split"], "kernel-irqchip"),
    (["-accel", "mixed", "-icount", "shift=1"], "icount"),
    (["-accel", "mixed", "-machine", "q35,smm=on"], "SMM"),
    (["-accel", "mixed", "-cpu", "host"], "-cpu max for every feature"),
    (["-accel", "mixed", "-cpu", "qemu64,+vmx"], "nested"),
    (["-accel", "mixed,tcg-cpus=0-4"], "vCPU 4 does not exist"),
    (["-accel", "mixed,tcg-cpus=1-"], "tcg-cpus"),
    (["-accel", "mixed,tcg-cpus=0,kvm-cpus=1"], "not both"),
    (["-accel", "mixed,policy=fastest"], "unknown policy 'fastest'"),
    (["-accel", "mixed,user-cpuid=native"], "expected auto, trap or host"),
    (["-accel", "mixed,x-user-get=yes"], "expected off, on or verify"),
]
# user-cpuid= is for hosts whose KVM runs guest user code natively (PVM) only; there,
# host mode needs a guest CPU with xsave.
if host_runs_guest_kernel():
    REFUSED.append((["-accel", "mixed,user-cpuid=trap"], "intercepts CPUID"))
    REFUSED.append((["-accel", "mixed,x-user-get=on"], "this host's KVM runs guest kernel code"))
else:
    REFUSED.append((["-accel", "mixed,user-cpuid=host", "-cpu", "qemu64,-xsave"],
                    "needs xsave"))


def test(guests):
    qemu = artifact("qemu")
    for args, needle in REFUSED:
        argv = [qemu, "-nodefaults", "-display", "none", "-smp", "4", "-m", "256M"] + args
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        msg = p.stderr.strip().splitlines()
        check(p.returncode != 0, f"{' '.join(args)} was accepted")
        check(any(needle in l for l in msg), f"{' '.join(args)}: no '{needle}' in:\n{p.stderr}")
        print(f"refused {' '.join(args)}: {msg[-1]}")

    # Overcommit is said once at start (docs/mixed.md, "Choosing -smp"): 2 vCPUs on the
    # one CPU taskset leaves QEMU, and, as the control, 1 vCPU there.
    for smp, said in ((2, True), (1, False)):
        argv = ["taskset", "-c", "0", qemu, "-nodefaults", "-display", "none", "-smp",
                str(smp), "-m", "256M", "-accel", "mixed", "-S"]
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        try:
            p.wait(timeout=10)   # -S: it waits for ever once it has started
        except subprocess.TimeoutExpired:
            p.kill()
        err = p.communicate()[1]
        check(("overcommitted" in err) == said,
              f"-smp {smp} on 1 host CPU: overcommit warning {'missing' if said else 'given'}:"
              f"\n{err}")
        print(f"-smp {smp} on 1 host CPU: {err.strip() or 'no warning'}")

    g = mixed_guest("mixed-options", accel_opts="tcg-cpus=0:2", cmd="true")
    guests.append(g)
    g.start()
    placed = {c: e["accel"] for c, e in vcpus(g).items()}
    check(placed == {0: "tcg", 1: "kvm", 2: "tcg", 3: "kvm"}, f"tcg-cpus=0:2 placed {placed}")
    check(g.wait_end(timeout=120) == 0, "guest failed")


run(test)
