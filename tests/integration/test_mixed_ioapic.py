#!/usr/bin/env python3
"""IOAPIC level-triggered interrupts reach vCPUs on both backends, and the negative control.

The guest has QEMU's edu PCI device, whose INTx is a level-triggered IOAPIC interrupt, and
runs `irqcheck` (tools/guest/irqcheck.cc): it aims the interrupt at every CPU in turn
(/proc/irq/N/smp_affinity_list), raises it, and checks that each one arrives exactly
once and where it was sent, while user-mode spinners keep the other vCPUs busy.

1. -smp 4 (overcommitted on a 2-core host: fine for a correctness test), vCPUs 0-1
   starting on KVM, a QMP storm of 40 random moves a second (tools/torture.py): once
   with mixed's default CPU, where the guest must run in x2APIC mode (physical
   destinations: Linux 6.1 has no interrupt remapping here), and once with
   -cpu qemu64,-x2apic, where it must run xAPIC flat with logical destinations.
   irqcheck must pass, with no guest kernel trouble and a clean QEMU exit.
2. Every vCPU on KVM, no storm, every mechanism on: irqcheck must pass.
3. Negative control, same setup with x-event-exit=off: an interrupt for a vCPU spinning
   in user mode on KVM is never delivered, so irqcheck must not pass: a timeout FAIL, or
   a guest that does not end in time.
"""
import re
import sys

from mixedvm_testlib import ROOT, check, require_kvm, run

sys.path.insert(0, f"{ROOT}/tools")
import torture  # noqa: E402

require_kvm()
SECONDS = 8
RATE = 40


def irqcheck(guests, name, accel_opts, rate, cpu=None, timeout=3 * SECONDS + 150):
    extra = (["-cpu", cpu] if cpu else []) + ["-device", "edu"]
    res = torture.run_once([], SECONDS, rate, accel_opts, name, cmd=f"irqcheck --seconds {SECONDS}",
                           extra_args=extra, timeout=timeout)
    guests.append(res["guest"])
    out = res["serial"]
    m = re.search(r"IRQCHECK (PASS|FAIL)(.*)", out)
    res["irqcheck"] = (m.group(1) + m.group(2)).strip() if m else None
    apic = re.search(r"IRQCHECK APIC (.*)", out)
    res["apic"] = apic.group(1).strip() if apic else "not reported"
    print(f"{name}: -accel mixed,{accel_opts}, {rate} moves/s{', -cpu ' + cpu if cpu else ''}")
    print(f"  guest: {res['apic']}")
    print(f"  {res['irqcheck'] or 'no IRQCHECK result: ' + res.get('hang', 'the guest died')}")
    if rate:
        print(f"  {res.get('placement_changes')} placement changes, "
              f"{res.get('backend_switches')} backend switches, KVM {res.get('kvm_s', 0):.1f} s, "
              f"TCG {res.get('tcg_s', 0):.1f} s")
    return res


def require_pass(res, what):
    check(res["passed"] and (res["irqcheck"] or "").startswith("PASS"),
          f"irqcheck failed {what}: rc={res['rc']} {res['irqcheck']} {res.get('hang', '')} "
          f"{res.get('kernel_trouble', '')} qemu exit {res.get('qemu_exit')}")


def test(guests):
    # The default CPU has x2apic (docs/mixed.md, "The guest CPU"): x2APIC, physical
    # destinations without interrupt remapping. -x2apic: xAPIC flat, logical destinations.
    for cpu, mode in (("qemu64", "mode=x2APIC"), ("qemu64,-x2apic", "mode=xAPIC")):
        label = mode.split("=")[1].lower()
        res = irqcheck(guests, f"mixed-ioapic-{label}", "kvm-cpus=0-1", RATE, cpu=cpu)
        require_pass(res, f"under the storm with -cpu {cpu}")
        check(not res.get("storm_error"), f"the QMP storm failed: {res.get('storm_error')}")
        check(res["placement_changes"] >= SECONDS * 5, f"too few moves: {res['placement_changes']}")
        check(res.get("kvm_s", 0) > 0, "no vCPU ran on KVM: the test did not cross backends")
        check(res["apic"].startswith(mode + " "), f"-cpu {cpu}: expected {mode}, the guest "
              f"reported {res['apic']}")
        if mode == "mode=xAPIC":
            check("dest=logical" in res["apic"], "xAPIC without logical destinations: "
                  f"{res['apic']}")

    # Every vCPU on KVM and no storm: the storm's moves to TCG would deliver held-back
    # interrupts and hide the bug the negative control must show.
    same = irqcheck(guests, "mixed-ioapic-all-kvm", "kvm-cpus=0-3", 0)
    require_pass(same, "with every vCPU on KVM, no storm")

    neg = irqcheck(guests, "mixed-ioapic-x-event-exit-off", "kvm-cpus=0-3,x-event-exit=off", 0,
                   timeout=3 * SECONDS + 60)
    got = neg["irqcheck"] or "no result: the guest hung or died"
    print(f"x-event-exit=off: {got}")
    # It must fail in irqcheck, not before it: the guest booted and started it.
    check("mixedvm: running: irqcheck" in neg["serial"],
          "negative control: the guest never started irqcheck, so it proves nothing")
    check(not got.startswith("PASS"),
          "negative control: irqcheck passed with x-event-exit=off, so it cannot see an "
          "interrupt that stays pending for a vCPU on KVM")


run(test)
