#!/usr/bin/env python3
"""Where a vCPU's time inside KVM goes: every statistic KVM keeps for it, over one workload.

    bench/kvm_stats.py [--cmd "npb_ep --class W"] [--smp 1] [--accel-opts policy=kvm-only]
                       [--top 25] [--json FILE]

Boots the guest under -accel mixed (every vCPU placed on KVM by default), runs the guest
command between two markers, and reads query-vcpu-accel with kvm-stats=true at each:
the statistics that changed are printed per vCPU as a rate per second of the workload,
largest first, beside the share of time each vCPU spent on KVM. On PVM this is the
question the 2026-12-04 report left open: NPB EP spends 97 % of its time on KVM yet runs
about 10x slower than natively, and these counters (page faults taken and fixed, TLB
flushes, MMU counters, emulated instructions) say what KVM was doing. Needs /dev/kvm.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from mixedvm_vm import built_guest, kvm_unavailable  # noqa: E402


def sample(g):
    info = g.qmp.execute("query-vcpu-accel", **{"kvm-stats": True})
    return time.monotonic(), {v["cpu-index"]: v for v in info["vcpus"]}


def deltas(before, after, seconds):
    """{cpu: [(stat, rate per second)]}, the stats that changed, largest first."""
    out = {}
    for cpu, b in before.items():
        a = after[cpu]
        old = {s["name"]: s["value"] for s in b.get("kvm-stats", [])}
        rates = [(s["name"], (s["value"] - old.get(s["name"], 0)) / seconds)
                 for s in a.get("kvm-stats", []) if s["value"] != old.get(s["name"], 0)]
        out[cpu] = sorted(rates, key=lambda r: -abs(r[1]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmd", default="npb_ep --class W")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--accel-opts", default="policy=kvm-only")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="write every rate here too")
    args = ap.parse_args()
    why = kvm_unavailable()
    if why:
        print(f"kvm_stats: {why}; nothing to measure", file=sys.stderr)
        return 77
    cmd = f"echo KVMSTATS-START; sleep 1; {args.cmd}; echo KVMSTATS-END; sleep 3"
    g = built_guest("bench-kvm-stats", smp=args.smp, cmd=cmd,
                    accel="mixed" + (f",{args.accel_opts}" if args.accel_opts else ""))
    g.start()
    try:
        g.wait_for(r"KVMSTATS-START", timeout=args.timeout)
        t0, before = sample(g)
        g.wait_for(r"KVMSTATS-END", timeout=args.timeout)
        t1, after = sample(g)
        g.wait_end(timeout=60)
    finally:
        g.stop()
    seconds = t1 - t0
    rates = deltas(before, after, seconds)
    if not any(v.get("kvm-stats") for v in after.values()):
        print("kvm_stats: this KVM offers no binary statistics", file=sys.stderr)
        return 1
    print(f"{args.cmd}: {seconds:.2f} s under -accel mixed,{args.accel_opts}")
    for cpu in sorted(rates):
        a, b = after[cpu], before[cpu]
        kvm = (a["kvm-ns"] - b["kvm-ns"]) / 1e9 / seconds
        print(f"vCPU {cpu}: {kvm:.0%} of the time on KVM, {a['moves'] - b['moves']} moves, "
              f"{a['kernel-entries'] - b['kernel-entries']} kernel entries")
        for name, rate in rates[cpu][:args.top]:
            print(f"  {name:<32}{rate:>14.1f}/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cmd": args.cmd, "seconds": seconds, "rates": rates}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
