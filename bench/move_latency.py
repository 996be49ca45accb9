#!/usr/bin/env python3
"""Move latency of -accel mixed, one way in each direction: p50 and p99, with the breakdown.

    bench/move_latency.py [--seconds S] [--json FILE]

Boots the 4-vCPU guest with every vCPU placed on KVM and a user-mode compute thread
pinned to each (spinrate). Every move the vCPUs make is then real: on a host whose KVM
cannot run guest kernel code (PVM), each timer tick or kernel entry moves the vCPU to
TCG and back. QEMU's mixed_move trace event records each move's latency and its parts
(state get, state put, TLB/shadow flushes), all measured on the vCPU's own thread at its
safe point. Needs /dev/kvm and a built tree (tools/mixedvm build image).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from mixedvm_vm import built_guest, kvm_unavailable  # noqa: E402
from spec import check_spec  # noqa: E402  (bench/ is the script's own folder)
import trace_events  # noqa: E402

MOVE = trace_events.event("mixed_move", "to", "latency_ns", "get_ns", "put_ns", "flush_ns")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    why = kvm_unavailable()
    if why:
        print(f"move_latency: {why}; nothing to measure", file=sys.stderr)
        return 77
    trace = tempfile.NamedTemporaryFile(prefix="mixed-trace-", suffix=".log", delete=False).name
    iterations = int(args.seconds * 3e8)
    cmd = " & ".join(f"spinrate --cpu {c} --iterations {iterations}" for c in range(4)) + " & wait"
    g = built_guest("bench-move-latency", smp=4, accel="mixed,kvm-cpus=0-3", cmd=cmd,
              extra_args=["-trace", "mixed_move", "-D", trace])
    g.start()
    try:
        g.wait_end(timeout=args.seconds * 40 + 120)
    finally:
        g.stop()
    moves = {"kvm": [], "tcg": []}
    with open(trace) as f:
        for m in MOVE.parse(f.read()):
            moves[m["to"]].append((m["latency_ns"], m["get_ns"], m["put_ns"], m["flush_ns"]))
    os.unlink(trace)
    result = {}
    print(f"{'direction':<12}{'moves':>7}{'p50 us':>9}{'p99 us':>9}"
          f"{'get p50':>9}{'put p50':>9}{'flush p50':>10}{'flush p99':>10}")
    for to, label in (("kvm", "TCG -> KVM"), ("tcg", "KVM -> TCG")):
        rows = moves[to]
        if not rows:
            continue
        lat, get, put, flush = (list(c) for c in zip(*rows))
        r = {"moves": len(rows), "p50_us": pct(lat, 50) / 1e3, "p99_us": pct(lat, 99) / 1e3,
             "mean_us": statistics.mean(lat) / 1e3,
             "get_p50_us": pct(get, 50) / 1e3, "put_p50_us": pct(put, 50) / 1e3,
             "flush_p50_us": pct(flush, 50) / 1e3, "flush_p99_us": pct(flush, 99) / 1e3}
        result[label] = r
        print(f"{label:<12}{r['moves']:>7}{r['p50_us']:>9.1f}{r['p99_us']:>9.1f}"
              f"{r['get_p50_us']:>9.1f}{r['put_p50_us']:>9.1f}{r['flush_p50_us']:>10.1f}"
              f"{r['flush_p99_us']:>10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    check_spec({f"move.{key}.{stat}_us": result[label][f"{stat}_us"]
                for key, label in (("tcg_to_kvm", "TCG -> KVM"), ("kvm_to_tcg", "KVM -> TCG"))
                if label in result for stat in ("p50", "p99")})
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
