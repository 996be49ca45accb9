"""The move-path candidate x-user-get, checked on an emulated AMD-V host.

On a host whose KVM leaves on every guest kernel entry (PVM), a run on KVM that began
in guest user mode and ended in a kick stayed in user mode, so x-user-get=on reads only
what user mode can change: registers, segments, extended state and events (patch
0021), one ioctl with x-sync-regs instead of five. That shortcut cannot be used on this
kind of host, whose KVM runs guest kernel code, so this test checks the rule under it:
- x-user-get=on is refused at start, with a message that says why;
- x-user-get=verify reads the state both ways at every move off KVM and compares. A
  guest spinning in user mode, with QMP flips so that the vCPU now and then enters KVM
  in user mode (here it enters in kernel mode otherwise: TCG delivers each interrupt and
  the handler goes on on KVM), must show no difference for runs entered in user mode
  (at least one checked), and the guest and L2's QEMU must end cleanly;
- the negative control: runs that entered KVM in guest kernel mode (here, the tail of
  each timer interrupt runs on KVM) must show differences, because kernel code changes
  state a user-mode get does not read (KERNEL_GS_BASE at every return to user mode).
  Without them the comparison would not be shown to see anything;
- no difference is ever in the fixed or variable MTRRs: QEMU's put writes MTRRs only at
  reset, and until 2026-12-05 mixed lost every MTRR write the guest made on TCG (here
  SeaBIOS's) at the next move off KVM. This check found it, as a difference in
  mtrr_fixed; mixed_x86_put_mtrrs carries them now.
"""
import collections
import re
import shutil
import sys
import time

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

# About a minute of user-mode spinning, whatever this host's speed, in short runs.
SPIN = ("end=$(($(date +%s)+60)); while [ $(date +%s) -lt $end ]; do "
        "spinrate --cpu 0 --integer --iterations 50000000; done")


def flip_often(mon, info, text, res):
    """At each look, five round trips of vCPU 0 to TCG and back. Each return to KVM
    enters it wherever the guest was on TCG, in user mode only now and then: the guest
    kernel's timer work is slow on this host."""
    if "MIXEDVM-READY" not in text or "MIXEDVM-END" in text:
        return
    for _ in range(5):
        for accel in ("tcg", "kvm"):
            mon.execute("vcpu-set-accel", **{"cpu-index": 0, "accel": accel, "wait": False})
            res["qmp_moves"] += 1
            time.sleep(0.3)


def test(guests):
    refused = nested_amdv.run_nested("true", accel="mixed,x-user-get=on", minutes=15)
    l1 = refused["l1_serial"]
    check("x-user-get=on needs a host whose KVM leaves on every guest kernel entry" in l1,
          "x-user-get=on was not refused on a host whose KVM runs guest kernel code; "
          "L1's console ends with:\n" + l1[-1500:])
    print("  x-user-get=on refused: " + next(
        (line.strip() for line in l1.splitlines() if "x-user-get=on" in line), "?")[:200])
    shutil.rmtree(refused["log_dir"])

    res = nested_amdv.run_nested(SPIN, smp=1, accel="mixed,x-user-get=verify", minutes=30,
                                 every=2, on_look=flip_often,
                                 l2_extra="-trace mixed_user_get_mismatch")
    l2 = res["l2_serial"]
    check(not res["timed_out"], "the nested run did not finish in 30 minutes; L2's serial "
          "log ends with:\n" + l2[-1500:])
    check(l2.count("spinrate cpu=0") >= 3, "spinrate did not run 3 times:\n" + l2[-1500:])
    check(res["qmp_moves"] >= 40, f"only {res['qmp_moves']} QMP flips")
    vcpu = res["vcpus"][0]
    checks = vcpu.get("user-get-checks")
    print(f"  logs in {res['log_dir']}; {res['qmp_moves']} QMP flips; user-get-checks "
          f"{checks}; moves {vcpu['moves']}")
    diffs = collections.Counter(
        m.group(1) for m in re.finditer(r"differs from a full one in ([a-z_0-9-]+|CPUX86State "
                                        r"byte \d+)", res["l1_serial"]))
    print(f"  differences by field: {dict(diffs)}")
    # One vCPU: Linux writes MTRRdefType on KVM (its cache set-up disables MTRRs and
    # enables them again), but no fixed or variable range: those can differ only if
    # SeaBIOS's writes on TCG did not reach KVM.
    check(not diffs["mtrr_fixed"] and not diffs["mtrr_var"],
          f"the fixed or variable MTRRs KVM holds differ from env's: the guest's MTRR "
          f"writes on TCG did not reach KVM: {dict(diffs)}")
    nested_amdv.check_clean_end(res, check)
    check(checks is not None, f"query-vcpu-accel has no user-get-checks: {vcpu}")
    check(vcpu["user-gets"] == 0, f"verify used the shortcut: user-gets {vcpu['user-gets']}")
    check(checks["user-entries"] >= 1,
          f"no run that entered KVM in user mode was checked: {checks}")
    check(checks["user-entry-mismatches"] == 0,
          f"a user-mode get differed from a full one after a run entered in user mode: "
          f"{checks}")
    check(checks["kernel-entries"] >= 20 and checks["kernel-entry-mismatches"] >= 1,
          f"negative control: runs entered in kernel mode showed no difference, so the "
          f"comparison is not shown to see one: {checks}")


run(test)
