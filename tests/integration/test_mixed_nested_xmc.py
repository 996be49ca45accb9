#!/usr/bin/env python3
"""Code written by a KVM vCPU and run by a TCG vCPU, where KVM runs guest kernel code.

On the emulated AMD-V host (tools/nested_amdv.py, no /dev/kvm needed), two L2 vCPUs run
torture's xmc test (the SDM's cross-modifying-code protocol: a writer patches code, the
executor waits for the flag, serialises with CPUID and must run the new code) while QMP
flips one vCPU to the other backend every 2 s, so the writer and the executor are on
different backends for much of the run. KVM's dirty log on nested paging is then what
tells TCG that its translations went stale (docs/coherence.md).

L0 runs single-threaded TCG: multi-threaded TCG is itself not coherent for
cross-modifying code, and L2's KVM vCPUs execute in L0's TCG, so on a multi-threaded L0
even stock -accel kvm fails xmc (docs/mixed.md, "Limits").

Asserted:
1. xmc passes: no stale execution after flag + CPUID, none before a modification, no
   torn imm32, no fault; vCPUs were flipped, and mixed's code syncs invalidated pages
   (code-pages-invalidated), so the mechanism was at work; the guest ends cleanly.
2. Negative control, x-code-sync=off, otherwise the same: xmc must report stale
   executions. That shows the check in 1 can fail on this host, and that what makes it
   pass is mixed's sync, not the host.

NOT IN CI: an open bug. Its third run (CI of 2026-12-01) saw 1 stale execution after
flag + CPUID in 2,496 modifications with the sync on (16 flips); the two runs before
saw none in 1,092 and 3,276. The cause is not known: a window in mixed's code sync
where KVM runs kernel code, or the emulated host (docs/mixed.md, "Limits"). Run it by
hand: /usr/bin/python3 tests/integration/test_mixed_nested_xmc.py
"""
import re
import shutil
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

SECONDS = 30
CMD = f"torture --seconds {SECONDS} xmc"
L0 = "tcg,thread=single"


def xmc(accel):
    res = nested_amdv.run_nested(CMD, smp=2, accel=accel, minutes=30, every=2, mover=True,
                                 l0_accel=L0)
    l2 = res["l2_serial"]
    m = re.search(r"^TORTURE xmc (PASS|FAIL).*$", l2, re.M)
    res["xmc"] = m.group(0) if m else None
    stats = dict(re.findall(r"\b(stale|stale_before|torn|faults|mods)=(\d+)", m.group(0))) \
        if m else {}
    res["stats"] = {k: int(v) for k, v in stats.items()}
    vcpus = res["vcpus"] or []
    res["invalidated"] = sum(v.get("code-pages-invalidated", 0) for v in vcpus)
    print(f"-accel {accel}: {res['xmc'] or 'no xmc result'}")
    print(f"  {res['qmp_moves']} QMP flips, {res['invalidated']} code pages invalidated, "
          f"moves {[v.get('moves') for v in vcpus]}; logs in {res['log_dir']}")
    check(not res["timed_out"], f"-accel {accel}: the nested run did not finish; L2's "
          "console ends with:\n" + l2[-1500:])
    check(res["xmc"], f"-accel {accel}: xmc printed no result:\n" + l2[-1500:])
    return res


def test(guests):
    res = xmc("mixed")
    check(res["xmc"].startswith("TORTURE xmc PASS"), "xmc failed with code sync on")
    check(res["stats"].get("mods", 0) >= 200, f"too few modifications: {res['stats']}")
    check(res["qmp_moves"] >= 5, f"only {res['qmp_moves']} QMP flips")
    check(res["invalidated"] > 0, "mixed's code syncs invalidated nothing: the test did not "
          "exercise the mechanism")
    nested_amdv.check_clean_end(res, check)

    neg = xmc("mixed,x-code-sync=off")
    check(neg["stats"].get("stale", 0) > 0,
          "negative control: with x-code-sync=off xmc saw no stale execution, so the "
          f"check cannot see one on this host: {neg['xmc']}")
    shutil.rmtree(neg["log_dir"])     # kept only when a check failed


run(test)
