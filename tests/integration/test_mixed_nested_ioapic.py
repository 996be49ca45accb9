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
3. Negative control, x-event-exit=off and no flips: an interrupt for a vCPU spinning on
   KVM is never delivered, so irqcheck, once started, must not pass.
"""
import re
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

SECONDS = 8
L0 = "tcg,thread=single"


def irqcheck(accel, cpu="", mover=True, timeout_ms=2000, minutes=30):
    res = nested_amdv.run_nested(f"irqcheck --seconds {SECONDS} --timeout-ms {timeout_ms}",
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

    # A guest whose interrupts wait may also hang after irqcheck's verdict: 12 minutes,
    # then what counts is that irqcheck started and did not pass.
    neg = irqcheck("mixed,x-event-exit=off", mover=False, timeout_ms=1000, minutes=12)
    check("mixedvm: running: irqcheck" in neg["l2_serial"],
          "negative control: the guest never started irqcheck, so it proves nothing")
    check(not (neg["irqcheck"] or "").startswith("IRQCHECK PASS"),
          "negative control: irqcheck passed with x-event-exit=off, so it cannot see an "
          "interrupt that stays pending for a vCPU on KVM")


run(test)
