#!/usr/bin/env python3
"""pin=compact and pin=split: vCPU threads' affinities as the OS reports them.

compact: vCPU i's thread on host CPU i (mod the host's CPUs). split: vCPUs on TCG on the
TCG cores, a vCPU on KVM on the KVM cores, re-pinned whenever it changes backend. The
affinity is read back from /proc/<qemu>/task/<thread>/status.
"""
import os
import subprocess
import time

from mixedvm_testlib import artifact, check, mixed_guest, require_kvm, run, vcpus

require_kvm()


def affinity(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        text = next(l for l in f if l.startswith("Cpus_allowed_list:")).split(":")[1].strip()
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def test(guests):
    host = sorted(os.sched_getaffinity(0))
    p = subprocess.run([artifact("qemu"), "-accel", "mixed,pin=numa", "-nodefaults", "-display", "none"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "off, compact, split" in p.stderr, f"pin=numa: {p.stderr}")

    g = mixed_guest("mixed-pin-compact", accel_opts="pin=compact", cmd="sleep 3")
    guests.append(g)
    g.start()
    for c, e in vcpus(g).items():
        got = affinity(g.proc.pid, e["thread-id"])
        check(got == {host[c % len(host)]}, f"compact: vCPU {c} thread on {got}")
    g.wait_end(timeout=120)
    g.stop()

    if len(host) < 2:
        print("split needs two host cores; this host has one, checked compact only")
        return
    kvm_group, tcg_group = {host[0]}, set(host[1:])
    g = mixed_guest("mixed-pin-split", accel_opts="pin=split,kvm-cpus=1",
                    cmd="spinrate --cpu 1 --iterations 3000000000")
    guests.append(g)
    g.start()
    g.wait_for(r"MIXEDVM-READY", timeout=120)
    seen_kvm_group = False
    for _ in range(40):
        v = vcpus(g)
        for c in (0, 2, 3):
            got = affinity(g.proc.pid, v[c]["thread-id"])
            check(got <= tcg_group, f"split: vCPU {c} (on TCG) runs on {got}, TCG cores are {tcg_group}")
        got = affinity(g.proc.pid, v[1]["thread-id"])
        check(got in (kvm_group, tcg_group), f"split: vCPU 1 on {got}")
        seen_kvm_group |= got == kvm_group
        time.sleep(0.1)
    check(seen_kvm_group, "vCPU 1, placed on KVM and computing, never ran on the KVM core")
    g.qmp.execute("quit")


run(test)
