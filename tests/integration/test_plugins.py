#!/usr/bin/env python3
"""TCG plugins: QEMU's own examples and ours (contrib/plugins/libmixedvm.so), on a real guest.

Under -accel tcg (no /dev/kvm needed), a 2-vCPU guest runs a getppid() loop pinned to
vCPU 1 and a compute loop pinned to vCPU 0, with our plugin and QEMU's `insn` example
loaded at once. Asserted:
- QEMU's example reports a non-zero instruction count;
- our plugin reports every vCPU, with instructions and memory accesses on each;
- on vCPU 1 it counted at least as many SYSCALLs as sysloop reported calls, and the
  most frequent sampled number is getppid (110 on x86-64);
- sample=N reads about one call in N;
- a bad plugin option is refused with a message that names it, and QEMU does not start.

Under -accel mixed (needs /dev/kvm), with vCPU 1 placed on KVM for the loop, the plugin's
count for vCPU 1 is what QEMU's own TCG counter (tcg-insns in query-vcpu-accel) says TCG
ran, not more: nothing that ran on KVM was observed. Its tcg-share is below 1.
"""
import os
import re
import subprocess

from mixedvm_testlib import (Guest, artifact, check, kvm_unavailable, mixed_guest,
                             plugin_paths, read_plugin_report, run, vcpus)

GETPPID = 110
CMD = "spinrate --cpu 0 --iterations 300000000 & sysloop --cpu 1 --seconds 3 & wait"


def sysloop_calls(out):
    m = re.search(r"sysloop cpu=1 calls=(\d+)", out)
    check(m, "sysloop did not report its calls:\n" + out[-2000:])
    return int(m.group(1))


def test(guests):
    ours, example = plugin_paths()
    check(os.path.exists(ours) and os.path.exists(example),
          f"the plugins were not built: {ours}, {example}")

    # A bad option: QEMU refuses to start and says why.
    bad = subprocess.run([artifact("qemu"), "-accel", "tcg", "-display", "none", "-plugin",
                          f"{ours},colour=red"], capture_output=True, text=True, timeout=60)
    check(bad.returncode != 0 and "unknown option 'colour=red'" in bad.stderr,
          f"a bad plugin option was not refused clearly: rc={bad.returncode} {bad.stderr!r}")

    g = Guest("plugins-tcg", smp=2, accel="tcg", cmd=CMD)
    report = os.path.join(g.dir, "mixedvm-plugin.json")
    g.extra_args += ["-plugin", f"{ours},out={report}", "-plugin", example,
                     "-d", "plugin", "-D", os.path.join(g.dir, "plugin.log")]
    guests.append(g)
    g.start()
    rc = g.wait_end(timeout=300)
    check(rc == 0, f"the guest command failed: rc={rc}")
    calls = sysloop_calls(g.serial())
    check(g.wait_exit() == 0, "QEMU did not exit cleanly")
    log = open(os.path.join(g.dir, "plugin.log")).read()
    m = re.search(r"insns: (\d+)", log)
    check(m and int(m.group(1)) > 0, f"QEMU's insn example reported nothing: {log[-500:]!r}")
    r = read_plugin_report(report)
    print(f"  tcg: sysloop calls {calls}; plugin: " +
          "; ".join(f"vCPU {v}: {x['insns']} insns, {x['mem']} mem, {x['syscalls']} syscalls, "
                    f"top {x['top']}" for v, x in sorted(r.items())))
    check(sorted(r) == [0, 1], f"the plugin did not report both vCPUs: {r}")
    check(all(x["insns"] > 0 and x["mem"] > 0 for x in r.values()), f"empty counts: {r}")
    check(r[1]["syscalls"] >= calls, f"vCPU 1 made {calls} getppid() calls, the plugin saw "
          f"{r[1]['syscalls']} SYSCALLs")
    top = max(r[1]["top"].items(), key=lambda kv: kv[1])
    check(int(top[0]) == GETPPID, f"the most frequent sampled call is {top}, not getppid")
    # Sampling: one in 16.
    g2 = Guest("plugins-sample", smp=2, accel="tcg", cmd="sysloop --cpu 1 --seconds 2")
    report2 = os.path.join(g2.dir, "mixedvm-plugin.json")
    g2.extra_args += ["-plugin", f"{ours},sample=16,out={report2}"]
    guests.append(g2)
    g2.start()
    check(g2.wait_end(timeout=300) == 0, "the sampled run failed")
    check(g2.wait_exit() == 0, "QEMU did not exit cleanly")
    x = read_plugin_report(report2)[1]
    check(abs(x["sampled"] - x["syscalls"] / 16) <= 2,
          f"sample=16 read {x['sampled']} of {x['syscalls']} calls")

    why = kvm_unavailable()
    if why:
        print(f"  -accel mixed part skipped: {why}")
        return
    g3 = mixed_guest("plugins-mixed", "kvm-cpus=1", smp=2, cmd=CMD)
    report3 = os.path.join(g3.dir, "mixedvm-plugin.json")
    g3.extra_args += ["-plugin", f"{ours},out={report3}"]
    guests.append(g3)
    g3.start()
    check(g3.wait_end(timeout=300) == 0, "the guest command failed under mixed")
    seen = vcpus(g3)
    check(g3.wait_exit() == 0, "QEMU did not exit cleanly")
    r3 = read_plugin_report(report3)
    v1 = seen[1]
    print(f"  mixed: vCPU 1 tcg-insns {v1['tcg-insns']}, plugin {r3[1]['insns']}, "
          f"tcg-share {v1['tcg-share']:.3f}, kvm-ns {v1['kvm-ns']}")
    check(v1["kvm-ns"] > 0 and v1["tcg-share"] < 1, f"vCPU 1 did not run on KVM: {v1}")
    # Both count whole blocks; QEMU's counter also counts a block left at its start for
    # an interrupt (~0.02%), and the plugin counts until exit, QMP a moment before.
    check(0.99 * v1["tcg-insns"] <= r3[1]["insns"] <= v1["tcg-insns"] * 1.05 + 1e6,
          f"the plugin saw {r3[1]['insns']} instructions on vCPU 1, TCG ran {v1['tcg-insns']}")


run(test)
