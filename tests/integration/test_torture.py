#!/usr/bin/env python3
"""One guest torture test under a QMP move storm, and its negative control.

    test_torture.py TEST     (xmc, ptchurn, atomics, splitlock, clock, ipi, shootdown)

With every coherence mechanism on, `torture TEST` must pass while random vCPUs move
between KVM and TCG: no error, no guest kernel trouble, a clean QEMU exit. Then the
mechanism the test targets is switched off (tools/torture.py NEGATIVE_CONTROL) and the
same run must fail: a FAIL line, or a guest that never finishes. That proves the
test can see the bug the mechanism prevents.
"""
import sys

from mixedvm_testlib import ROOT, check, host_runs_guest_kernel, require_kvm, run, skip

sys.path.insert(0, f"{ROOT}/tools")
import torture  # noqa: E402

require_kvm()
TEST = sys.argv[1]
SWITCH = torture.NEGATIVE_CONTROL[TEST]
if SWITCH == "x-shadow-zap" and host_runs_guest_kernel():
    skip("this host's KVM has EPT/NPT: no shadow MMU to go stale, so x-shadow-zap has "
         "nothing to turn off")
SECONDS = 8


def test(guests):
    res = torture.run_once([TEST], SECONDS, 40, "kvm-cpus=0-1", f"torture-{TEST}")
    guests.append(res["guest"])
    print(f"{TEST}: {res['results'].get(TEST, 'no result')}; {res.get('placement_changes')} "
          f"placement changes, {res.get('backend_switches')} backend switches, "
          f"{res.get('code_syncs')} code syncs invalidating {res.get('code_pages_invalidated')} pages")
    check(res["passed"], f"torture {TEST} failed with every mechanism on: rc={res['rc']} "
          f"{res['results']} {res.get('hang', '')} {res.get('kernel_trouble', '')}")
    check(not res.get("storm_error"), f"the QMP storm failed: {res.get('storm_error')}")
    check(res["placement_changes"] >= SECONDS * 5, f"too few moves: {res['placement_changes']}")
    if TEST == "xmc":
        check(res["code_pages_invalidated"] > 0,
              "xmc passed, but no KVM-written code page was ever invalidated: the test did "
              "not exercise the mechanism")

    placement, rate = torture.NEGATIVE_SETUP.get(TEST, ("kvm-cpus=0-1", 40))
    if (placement, rate) != ("kvm-cpus=0-1", 40):
        # The mechanism on, in the negative control's setup: it must pass there too.
        same = torture.run_once([TEST], SECONDS, rate, placement, f"torture-{TEST}-{rate}")
        guests.append(same["guest"])
        print(f"{placement}, {rate} moves/s: {TEST}: {same['results'].get(TEST, 'no result')}")
        check(same["passed"], f"torture {TEST} failed with every mechanism on, {placement}, "
              f"{rate} moves/s: {same['results']} {same.get('hang', '')}")
    neg = torture.run_once([TEST], SECONDS, rate, f"{placement},{SWITCH}=off",
                           f"torture-{TEST}-{SWITCH}-off", timeout=3 * SECONDS + 60)
    guests.append(neg["guest"])
    got = neg["results"].get(TEST, "no result: the guest hung or died")
    print(f"{SWITCH}=off: {TEST}: {got}")
    check(not got.startswith("PASS"),
          f"negative control: torture {TEST} passed with {SWITCH}=off, so it cannot see "
          "the bug that mechanism prevents")


run(test)
