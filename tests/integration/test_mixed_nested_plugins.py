#!/usr/bin/env python3
"""Plugins under -accel mixed with vCPUs moving: counts that match each vCPU's TCG residency.

A 2-vCPU guest boots on vCPU 0 alone (maxcpus=1), then brings vCPU 1 up and runs an
integer loop of a fixed instruction count on it, twice, with this tree's plugin and
QEMU's `insn` example loaded at once. (vCPU 1 stays out of the boot so that its count
is the loop's, not the share of boot work the guest kernel happened to give it, which
differs between a guest whose vCPU 0 is fast and one whose vCPUs are equally slow.)
- under -accel tcg on this machine: the reference figure;
- under -accel mixed on the emulated AMD-V host (tools/nested_amdv.py, no /dev/kvm
  needed), with vCPU 0 on KVM and vCPU 1 on TCG. vCPU 0 moves to TCG and back for every
  interrupt it takes (TCG delivers events; it runs no guest code there), so vCPUs move
  all along.
Asserted:
- under mixed, both plugins count nothing for vCPU 0, which stayed on KVM from reset,
  and QEMU's own tcg-insns agrees;
- for vCPU 1, which stayed on TCG, both count within 10% of the -accel tcg figure (the
  loop is the same; the timer ticks it takes differ with the run's length);
- in each run, our count and QEMU's example agree within 1% on every vCPU;
- the loops finish, and L2's QEMU exits cleanly.
"""
import os
import re
import sys

from mixedvm_testlib import (ROOT, Guest, artifact, check, plugin_paths, read_plugin_report,
                             run)

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

ITERATIONS = 200_000_000
KERNEL_ARGS = "maxcpus=1"
CMD = (f"echo 1 > /sys/devices/system/cpu/cpu1/online && "
       f"spinrate --cpu 1 --integer --iterations {ITERATIONS}")
INSN_LINE = re.compile(r"cpu (\d+) insns: (\d+)")


def example_plugin():
    return plugin_paths()[1]


# Inline counting: its default, a callback per instruction, is 20 times slower.
EXAMPLE_ARGS = ",inline=on"


def loops_done(out):
    return bool(re.search(r"spinrate cpu=1 iterations=\d+", out))


def tcg_reference(guests):
    g = Guest("plugins-nested-reference", smp=2, accel="tcg", cmd=CMD, kernel_args=KERNEL_ARGS)
    report = os.path.join(g.dir, "mixedvm-plugin.json")
    g.extra_args += ["-plugin", f"{artifact('plugin')},out={report}",
                     "-plugin", example_plugin() + EXAMPLE_ARGS, "-d", "plugin", "-D", os.path.join(g.dir, "insn.log")]
    guests.append(g)
    g.start()
    rc = g.wait_end(timeout=600)
    check(rc == 0 and loops_done(g.serial()), f"the reference run under -accel tcg failed (rc={rc})")
    check(g.wait_exit() == 0, "QEMU under -accel tcg did not exit cleanly")
    ours = {c: r["insns"] for c, r in read_plugin_report(report).items()}
    with open(os.path.join(g.dir, "insn.log")) as f:
        example = {int(c): int(n) for c, n in INSN_LINE.findall(f.read())}
    return ours, example


def test(guests):
    check(os.path.exists(example_plugin()), f"QEMU's example plugin was not built: {example_plugin()}")
    ref_ours, ref_example = tcg_reference(guests)
    print(f"  -accel tcg: ours {ref_ours}, QEMU's insn {ref_example}")
    res = nested_amdv.run_nested(CMD, smp=2, accel="mixed,kvm-cpus=0", minutes=40, every=10,
                                 plugin=True, extra_plugins=[example_plugin() + EXAMPLE_ARGS],
                                 l2_kernel_args=KERNEL_ARGS)
    ours = {p["vcpu"]: p["insns"] for p in res["plugin"]}
    example = {int(c): int(n) for c, n in INSN_LINE.findall(res["l1_serial"])}
    vcpus = {v["cpu-index"]: v for v in res["vcpus"] or []}
    print(f"logs in {res['log_dir']}\n  -accel mixed: ours {ours}, QEMU's insn {example}, "
          f"tcg-insns {[v.get('tcg-insns') for v in vcpus.values()]}, moves "
          f"{[v.get('moves') for v in vcpus.values()]}")
    check(loops_done(res["l2_serial"]), "the loops did not finish under -accel mixed:\n" +
          res["l2_serial"][-1500:])
    for name, run_ours, run_example in (("-accel tcg", ref_ours, ref_example),
                                        ("-accel mixed", ours, example)):
        check(sorted(run_ours) == [0, 1] and sorted(run_example) == [0, 1],
              f"{name}: a plugin did not report both vCPUs: ours {run_ours}, insn {run_example}")
        for c in (0, 1):
            check(abs(run_ours[c] - run_example[c]) <= 0.01 * max(run_example[c], 1),
                  f"{name}: vCPU {c}: our plugin counted {run_ours[c]}, QEMU's insn "
                  f"{run_example[c]}")
    check(ours[0] == 0 and example[0] == 0, f"vCPU 0 stayed on KVM, yet the plugins counted "
          f"{ours[0]} and {example[0]} instructions")
    check(vcpus.get(0, {}).get("moves", 0) > 100 and vcpus[0].get("tcg-insns") == 0,
          f"vCPU 0 did not move between the backends without running on TCG: {vcpus.get(0)}")
    check(abs(ours[1] - ref_ours[1]) <= 0.10 * ref_ours[1],
          f"vCPU 1 stayed on TCG: {ours[1]} instructions under mixed, {ref_ours[1]} under "
          "-accel tcg")
    nested_amdv.check_clean_end(res, check)


run(test)
