#!/usr/bin/env python3
"""-accel mixed where KVM runs guest kernel code, on an emulated AMD-V host.

No machine of this project has VT-x or AMD-V, and some have no /dev/kvm at all, so the
VT-x/AMD-V column of docs/mixed.md's host table never ran in CI. tools/nested_amdv.py
builds that host from real parts: this tree's QEMU on TCG emulates AMD-V with nested
paging (L0), Debian's kernel runs its own kvm-amd on it (L1), and this tree's QEMU runs
the mixedvm guest under -accel mixed on that KVM (L2). It needs no /dev/kvm here.

Asserted, with one L2 vCPU on KVM running selfcheck, and this tree's TCG plugin loaded
(everything runs at TCG speed or slower):
- L1 has a working /dev/kvm, and mixed's start-up probe in L2 says kvm-runs-kernel;
- the vCPU ran on KVM and moved (every interrupt is two moves on this kind of host);
- every entry into KVM flushed the vCPU's KVM TLB, and query-vcpu-accel counts it
  (kvm-tlb-flushes; docs/coherence.md, "Which flushes a vCPU must honour");
- every move off KVM is counted under one cause (kvm-leaves), and ticks are told apart:
  "timer" under the vector of the vCPU's APIC timer (Linux's LOCAL_TIMER_VECTOR, 0xec),
  no kernel entries (KVM runs the kernel on this kind of host);
- the plugin reports the vCPU, and no instruction, memory access or system call for it,
  like QEMU's own tcg-insns: what runs on KVM is not observed;
- the guest kernel detected KVM and switched to x2APIC, which on KVM reaches QEMU's APIC
  through user-space MSR exits (docs/mixed.md, "The guest CPU");
- selfcheck passes, the guest kernel reported no trouble, and L2's QEMU exited cleanly;
- a second, short run with two L2 vCPUs on one L1 CPU gets mixed's overcommit warning
  at start, which the first (one vCPU on two) does not.
One vCPU, because with two (tools/nested_amdv.py --smp 2) about one run in four ends in a
triple fault on KVM, an open bug (docs/mixed.md, "Limits"). Two vCPUs boot at all only
since the KVM -> TCG handover keeps QEMU's pending INIT (mixed_x86_kvm_to_tcg).
Before the interrupt-window fix in mixed_kvm_pre_run, this guest needed 8 minutes for
1.3 s of boot (a window-exit livelock), and this test timed out.
"""
import re
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

CMD = "dmesg | grep -i -E 'hypervisor|x2apic|apic routing'; selfcheck --scale 0.05"


def hmp_look(mon, info, text, res):
    res["hmp"] = mon.execute("human-monitor-command", **{"command-line": "info vcpu-accel"})


def test(guests):
    res = nested_amdv.run_nested(CMD, smp=1, minutes=40, every=10, plugin=True,
                                 on_look=hmp_look)
    l2, l1 = res["l2_serial"], res["l1_serial"]
    print(f"logs in {res['log_dir']}")
    for line in l2.splitlines():
        if re.search(r"Hypervisor detected|x2apic|APIC routing|SELFCHECK|TORTURE|MIXEDVM-",
                     line):
            print("  L2: " + line.strip())
    vcpus = res["vcpus"] or [{}]
    for v in vcpus:
        print(f"  L2 vCPU {v.get('cpu-index')}: moves {v.get('moves')}, kvm-ns {v.get('kvm-ns')}, "
              f"kvm-tlb-flushes {v.get('kvm-tlb-flushes')}, last move {v.get('last-move')}")
    print(f"  L2 probe (trace): kernel on KVM {res['probe_says_kernel']}; QMP "
          f"({res['monitor_looks']} looks, {res['qmp_moves']} QMP moves, last error "
          f"{res['monitor_error']}): kvm-runs-kernel {res['kvm_runs_kernel']}")
    check("L1: /dev/kvm is up" in l1, "L1 has no /dev/kvm: kvm-amd did not load on TCG's "
          "AMD-V:\n" + l1[-1500:])
    check(not res["timed_out"], "the nested run did not finish in 40 minutes; L2's serial "
          "log ends with:\n" + l2[-1500:])
    check(res["probe_says_kernel"], "mixed's probe in L2 did not find a KVM that runs guest "
          "kernel code (no 'mixed_probe kvm_runs_kernel=1' in L1's console)")
    check(res["vcpus"], f"L2's monitor never answered ({res['monitor_looks']} looks, last "
          f"error: {res['monitor_error']})")
    check(res["kvm_runs_kernel"] is True, "query-vcpu-accel disagrees with the probe")
    check(len(vcpus) == 1 and all(v.get("kvm-ns", 0) > 0 and v.get("moves", 0) > 0
                                  for v in vcpus),
          f"a vCPU did not run on KVM and move: {vcpus}")
    flushes = sum(v.get("kvm-tlb-flushes", 0) for v in vcpus)
    entries = sum(v.get("moves", 0) for v in vcpus) // 2
    check(entries >= 100 and abs(flushes - entries) <= 2 * len(vcpus),
          f"{flushes} KVM TLB flushes for about {entries} entries into KVM: on EPT/NPT "
          "hosts every entry flushes (docs/coherence.md)")
    for v in vcpus:
        leaves = v.get("kvm-leaves", [])
        print(f"  L2 vCPU {v.get('cpu-index')} left KVM for: " + ", ".join(
            f"{k['cause']}" + (f"(0x{k['vector']:02x})" if "vector" in k else "") +
            f" {k['count']}" for k in leaves))
        to_tcg = sum(k["count"] for k in leaves)
        check(abs(v["moves"] - 2 * to_tcg) <= 1,
              f"{to_tcg} moves off KVM counted by cause, for {v['moves']} moves in all: "
              f"every move off KVM must have one cause ({leaves})")
        ticks = [k for k in leaves if k["cause"] == "timer"]
        check(len(ticks) == 1 and ticks[0]["vector"] == 0xec and ticks[0]["count"] >= 10,
              f"ticks are not told apart: Linux's APIC timer vector is 0xec ({leaves})")
        check(not any(k["cause"] == "kernel-entry" for k in leaves),
              f"kernel entries on a host whose KVM runs the guest kernel ({leaves})")
    hmp = res.get("hmp") or ""
    print("  L2 HMP info vcpu-accel:\n" + hmp)
    check(re.search(r"left KVM for:.* timer\(0xec\) \d+", hmp),
          f"HMP's info vcpu-accel does not list the ticks:\n{hmp}")
    seen = {p["vcpu"]: p for p in res["plugin"]}
    print(f"  L2 plugin: {res['plugin']}")
    check(sorted(seen) == [0], f"the TCG plugin did not report the vCPU: {res['plugin']}")
    for v in vcpus:
        p = seen[v["cpu-index"]]
        check(p["insns"] == p["mem"] == p["syscalls"] == 0 and v.get("tcg-insns", 1) == 0,
              f"vCPU {v['cpu-index']} ran on KVM only, yet the plugin saw {p} (QEMU's "
              f"tcg-insns: {v.get('tcg-insns')})")
    check("Hypervisor detected: KVM" in l2, "the guest did not detect KVM")
    check(re.search(r"Switched APIC routing to physical x2apic", l2),
          "the guest kernel did not switch to x2APIC")
    check("SELFCHECK PASS" in l2, "selfcheck did not pass")
    check("overcommitted" not in l1, "one vCPU on L1's two CPUs was called overcommitted")
    nested_amdv.check_clean_end(res, check)

    # Two vCPUs on L1's one CPU: mixed says at start that they are overcommitted
    # (docs/mixed.md, "Choosing -smp"); the run above, one vCPU on two, is the control.
    over = nested_amdv.run_nested("true", smp=2, l1_smp=1, l0_accel="tcg,thread=single",
                                  minutes=15, every=30)
    said = [line for line in over["l1_serial"].splitlines() if "overcommitted" in line]
    print(f"  -smp 2 on one L1 CPU: {said[:1]}")
    check(said and "2 vCPUs on 1 host CPU:" in said[0],
          "no overcommit warning for 2 vCPUs on 1 host CPU:\n" + over["l1_serial"][-1500:])
    nested_amdv.check_clean_end(over, check)


run(test)
