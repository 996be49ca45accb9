#!/usr/bin/env python3
"""-accel mixed boots a -smp 4 guest; every vCPU has its thread, a KVM fd and TCG.

On a host whose KVM cannot run guest kernel code (PVM), the default placement is
every vCPU on TCG; query-vcpu-accel reports the start-up probe's verdict, which must
agree with the CPU flags of this host.
"""
from mixedvm_testlib import check, cpu_flags_have_vmx_svm, mixed_guest, require_kvm, run, vcpus

require_kvm()


def test(guests):
    g = mixed_guest("mixed-boot", cmd="selfcheck --expect-cpus 4")
    guests.append(g)
    g.start()
    info = g.qmp.execute("query-vcpu-accel")
    check(info["kvm-runs-kernel"] == cpu_flags_have_vmx_svm(),
          f"probe says kvm-runs-kernel={info['kvm-runs-kernel']}: {info['kvm-probe']}")
    check("CPL3" in info["kvm-probe"], f"probe summary: {info['kvm-probe']}")
    check(info["policy"] == "static", f"policy {info['policy']}")
    default = "kvm" if info["kvm-runs-kernel"] else "tcg"
    v = vcpus(g)
    check(sorted(v) == [0, 1, 2, 3], f"vCPUs {sorted(v)}")
    threads = {c["cpu-index"]: c["thread-id"] for c in g.qmp.execute("query-cpus-fast")}
    for i, e in v.items():
        check(e["accel"] == default, f"vCPU {i} placed on {e['accel']}, expected {default}")
        check(e["thread-id"] == threads[i], f"vCPU {i}: thread {e['thread-id']} vs {threads[i]}")
        check(not e["kvm-failed"], f"vCPU {i} fell back")
    check(len(set(threads.values())) == 4, "one host thread per vCPU")

    rc = g.wait_end(timeout=240)
    out = g.serial()
    check("selfcheck: 4 CPUs online" in out, "the guest did not see 4 CPUs")
    check("SELFCHECK PASS" in out and rc == 0, f"self-check failed (rc={rc})")
    g.check_kernel_healthy()
    check(g.wait_exit() == 0, "QEMU did not exit cleanly")


run(test)
