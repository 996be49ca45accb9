#!/usr/bin/env python3
"""IOAPIC level-triggered interrupts and IPIs where KVM runs guest kernel code.

mixed-ioapic checks this on a PVM host, where the guest kernel, the only code that
touches the APIC, always runs on TCG. Here the kernel runs on KVM too: on the emulated
AMD-V host (tools/nested_amdv.py, no /dev/kvm needed), x2APIC MSR accesses on KVM reach
QEMU's APIC through user-space MSR exits, and an interrupt for a vCPU on KVM is delivered
by leaving KVM (docs/mixed.md, "The guest CPU" and "Two kinds of host").

Two L2 vCPUs with QEMU's edu device run irqcheck (tools/guest/irqcheck.cc): it aims the
device's level-triggered INTx at each CPU in turn and checks that every interrupt arrives
exactly once, where it was sent, while the other CPU spins in user mode; changing an
interrupt's affinity and waking the reader are IPIs. QMP flips one vCPU to the other
backend every 2 s, so the interrupts reach vCPUs on both backends. L0 runs
single-threaded TCG, which, unlike multi-threaded TCG, is coherent for the guest
kernel's own code patching (docs/mixed.md, "Limits").

Asserted:
1. mixed's default CPU: the guest runs x2APIC (physical destinations: Linux 6.1 has no
   interrupt remapping here) and irqcheck passes; vCPUs were flipped; clean end.
2. -cpu qemu64,-x2apic: xAPIC with logical destinations, and irqcheck passes.
3. Negative control of the check: the same with irqcheck --inject-fault 5, which leaves
   the device's INTx masked after interrupt 5: irqcheck must see the lost interrupt
   and FAIL with a timeout, on this host, with vCPUs moving.
4. Negative control of the mechanism, x-event-exit=off: nothing makes a vCPU on KVM
   leave it for an interrupt. Where KVM runs kernel code that stops the guest early in
   boot (its timer interrupts wait forever): the guest must not reach its user space
   within 5 minutes (a normal run needs 2 to 3 for the whole test). On PVM the same switch lets the
   guest boot on TCG and fails irqcheck itself (mixed-ioapic).
"""
import re
import shutil
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

SECONDS = 8
L0 = "tcg,thread=single"


def irqcheck(accel, cpu="", mover=True, minutes=30, inject_fault=0):
    fault = f" --inject-fault {inject_fault}" if inject_fault else ""
    res = nested_amdv.run_nested(f"irqcheck --seconds {SECONDS}{fault}",
                                 smp=2, cpu=cpu, accel=accel, minutes=minutes, every=2,
                                 mover=mover, l0_accel=L0, l2_extra="-device edu")
    l2 = res["l2_serial"]
    m = re.search(r"^IRQCHECK (PASS|FAIL).*$", l2, re.M)
    apic = re.search(r"^IRQCHECK APIC (.*)$", l2, re.M)
    res["irqcheck"] = m.group(0) if m else None
    res["apic"] = apic.group(1) if apic else "not reported"
    print(f"-accel {accel}{' -cpu ' + cpu if cpu else ''}: {res['qmp_moves']} QMP flips")
    print(f"  {res['apic']}\n  {res['irqcheck'] or 'no IRQCHECK result'}\n"
          f"  logs in {res['log_dir']}")
    return res


def require_pass(res, mode):
    check(not res["timed_out"], "the nested run did not finish; L2's console ends with:\n"
          + res["l2_serial"][-1500:])
    check(res["irqcheck"] and res["irqcheck"].startswith("IRQCHECK PASS"),
          f"irqcheck failed in {mode} mode: {res['irqcheck']}\n" + res["l2_serial"][-1500:])
    check(res["apic"].startswith(f"mode={mode} "), f"expected {mode}, the guest reported "
          f"{res['apic']}")
    check(res["qmp_moves"] >= 2, f"only {res['qmp_moves']} QMP flips: the interrupts may "
          "not have crossed backends")
    nested_amdv.check_clean_end(res, check)


def test(guests):
    require_pass(irqcheck("mixed"), "x2APIC")

    res = irqcheck("mixed", cpu="qemu64,-x2apic")
    require_pass(res, "xAPIC")
    check("dest=logical" in res["apic"], f"xAPIC without logical destinations: {res['apic']}")

    lost = irqcheck("mixed", inject_fault=5)
    check(lost["irqcheck"] and lost["irqcheck"].startswith("IRQCHECK FAIL") and
          "timeout" in lost["irqcheck"],
          f"negative control: an interrupt left masked was not caught: {lost['irqcheck']}")

    neg = irqcheck("mixed,x-event-exit=off", mover=False, minutes=5)
    check(neg["timed_out"] and "MIXEDVM-READY" not in neg["l2_serial"],
          "negative control: with x-event-exit=off the guest still reached its user space "
          f"({neg['irqcheck']}), so interrupt delivery does not depend on the event exit")
    for res in (lost, neg):
        shutil.rmtree(res["log_dir"])     # kept only when a check failed

run(test)
