#!/usr/bin/env python3
"""One guest-visible ISA and vector state across moves, where KVM runs guest kernel
code: the emulated AMD-V host (tools/nested_amdv.py, no /dev/kvm needed).

The guest is unmodified (no hint to glibc), with -cpu max (AVX2 on this host). One L2
vCPU; QMP flips it to the other backend every 2 s while it runs, six times over:
- `vecstate --cpuid`: what CPUID and XGETBV tell a user program. Every reading must be
  the same, whichever backend answered it: KVM answers from the table mixed gave it,
  TCG from the model (docs/mixed.md, "One guest-visible CPU");
- `vecstate --isa`: every extension the guest CPU offers runs, on whichever backend;
- `vecstate`: two processes on the vCPU keep every vector register the guest lets user
  code use across sched_yield(), while the vCPU moves and the guest kernel, on both
  backends, switches between them.
Asserted too: the readings were taken on both backends (QMP moved the vCPU between
them, and query-vcpu-accel shows time on both), and the run ended cleanly. And
query-vcpu-accel with kvm-stats=true returns every statistic L1's KVM keeps for the
vCPU (docs/mixed.md, "Using it"): more than the eight exit counters, "exits" among them
and no smaller than kvm-exits' count read just before, and growing from the first look
to the last (between two neighbouring looks the vCPU may have been on TCG throughout).
L0 runs single-threaded TCG, which is coherent for the guest kernel's own code
patching (docs/mixed.md, "Limits").
"""
import re
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

ROUNDS = 6
# A pause between rounds lets the 2-s looks flip the vCPU between readings.
CMD = "; ".join(f"vecstate --cpuid --cpu 0; vecstate --isa --cpu 0; "
                f"vecstate --cpu 0 --rounds 10000; sleep 2" for _ in range(ROUNDS))


def test(guests):
    stats = []

    def look(mon, info, text, res):
        if "MIXEDVM-READY" in text:
            v = mon.execute("query-vcpu-accel", **{"kvm-stats": True})["vcpus"][0]
            stats.append(({s["name"]: s["value"] for s in v.get("kvm-stats", [])},
                          {e["reason"]: e["count"] for e in v.get("kvm-exits", [])}))

    res = nested_amdv.run_nested(CMD, smp=1, cpu="max", minutes=30, every=2, mover=True,
                                 l0_accel="tcg,thread=single", on_look=look)
    l2 = res["l2_serial"]
    print(f"logs in {res['log_dir']}; {res['qmp_moves']} QMP flips")
    cpuid = re.findall(r"^vecstate: cpuid (.*)$", l2, re.M)
    isa = re.findall(r"^vecstate: isa (?!offered).*$", l2, re.M)
    verdicts = re.findall(r"^vecstate: (isa|registers) .*(PASS|FAIL)$", l2, re.M)
    lost = re.findall(r"^vecstate: rounds=.*$", l2, re.M)
    for line in sorted(set(cpuid)):
        print(f"  cpuid: {line}")
    for line in lost:
        print(f"  {line}")
    if isa:
        print(f"  {isa[0]}")
    vcpu = (res["vcpus"] or [{}])[0]
    print(f"  vCPU 0: moves {vcpu.get('moves')}, kvm-ns {vcpu.get('kvm-ns')}, "
          f"tcg-ns {vcpu.get('tcg-ns')}")
    check(not res["timed_out"], "the nested run did not finish in 30 minutes; L2's serial "
          "log ends with:\n" + l2[-1500:])
    check(len(cpuid) == ROUNDS, f"{len(cpuid)} CPUID readings of {ROUNDS}:\n" + l2[-1500:])
    check(len(set(cpuid)) == 1, "a user program read different CPUs on the two backends:\n  "
          + "\n  ".join(sorted(set(cpuid))))
    check(len(verdicts) == 2 * ROUNDS and all(v[1] == "PASS" for v in verdicts),
          f"vecstate failed: {verdicts}\n" + "\n".join(lost))
    check(re.search(r"level=avx", l2), "the guest could not use AVX: the register check "
          "did not cover the ymm upper halves")
    check(res["qmp_moves"] >= 4, f"only {res['qmp_moves']} QMP flips: the readings may all "
          "come from one backend")
    check(vcpu.get("kvm-ns", 0) > 0 and vcpu.get("tcg-ns", 0) > 0,
          f"the vCPU did not run on both backends: {vcpu}")
    check(len(stats) >= 2, f"query-vcpu-accel kvm-stats=true answered {len(stats)} times")
    # First and last look: between two neighbours the vCPU may have been on TCG.
    (first, exits), (second, _) = stats[0], stats[-1]
    print(f"  kvm-stats: {len(first)} statistics, e.g. " +
          ", ".join(f"{k}={first[k]}" for k in list(first)[:6]))
    check(len(first) > 8 and "exits" in first and "pf_taken" in first,
          f"kvm-stats lacks KVM's statistics: {sorted(first)}")
    check(first["exits"] >= exits.get("exits", 0) > 0, "kvm-stats' exits disagrees with "
          f"kvm-exits: {first['exits']} against {exits.get('exits')}")
    check(second["exits"] > first["exits"], "exits did not grow between the first and the "
          "last look")
    nested_amdv.check_clean_end(res, check)


run(test)
