#!/usr/bin/env python3
"""A guest kernel entry from KVM, and what a moving vCPU costs the vCPU beside it.

    bench/round_trip.py [--seconds S] [--reps N] [--json FILE]

Two figures of the move-path issue, on a host whose KVM runs only guest user mode (PVM),
where every system call of a vCPU placed on KVM is a round trip: leave KVM, run the call
on TCG, come back.
- round trip: `sysloop` (a getppid() loop) on vCPU 1, placed on KVM, with QEMU's
  mixed_move trace on. For every move off KVM whose cause is a kernel entry, the round
  trip is that move's own latency plus the time until the move back has finished, both
  from the trace (the log backend stamps each line to the microsecond). Its p50 and p99.
- neighbour: `sysloop` on vCPU 0, placed on TCG, alone (vCPU 1 idle on KVM), beside a
  `sysloop` on vCPU 1 on KVM (which moves twice per call), and beside one on vCPU 1 on
  TCG (the control: what sharing the host's cores alone costs). The slowdown is
  1 - rate beside the KVM vCPU / rate alone.
Each configuration is its own boot, -smp 2 (no more vCPUs than this project's 2 host
cores), interleaved and repeated; the figures are medians over the repetitions, with
their spread. Where KVM runs guest kernel code (VT-x/AMD-V) a system call never leaves
KVM: the round trip is then not measured (no kernel-entry moves), and the neighbour
figure still is. Needs /dev/kvm and a built tree.
"""
import argparse
import json
import os
import re
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from mixedvm_vm import built_guest, kvm_unavailable  # noqa: E402
from spec import check_spec  # noqa: E402  (bench/ is the script's own folder)
import trace_events  # noqa: E402

MOVE = trace_events.event("mixed_move", "cpu", "to", "latency_ns", "why")
STAMP = re.compile(r"^\d+@(\d+\.\d+):mixed_move ", re.M)
SYSLOOP = re.compile(r"^sysloop cpu=(\d+) calls=\d+ seconds=[0-9.]+ rate=([0-9.e+]+)", re.M)

# name: (-accel mixed options, guest command with {s} for the seconds, traced)
CONFIGS = {
    "round-trip": ("kvm-cpus=1", "sysloop --cpu 1 --seconds {s}", True),
    "alone": ("kvm-cpus=1", "sysloop --cpu 0 --seconds {s}", False),
    "beside-kvm": ("kvm-cpus=1", "sysloop --cpu 1 --seconds {s2} & "
                   "sysloop --cpu 0 --seconds {s}; wait", False),
    "beside-tcg": ("tcg-cpus=0-1", "sysloop --cpu 1 --seconds {s2} & "
                   "sysloop --cpu 0 --seconds {s}; wait", False),
}


def round_trips(text, cpu):
    """Round trips of vCPU `cpu`'s kernel entries in a mixed_move trace, in µs: the move
    off KVM's latency plus the time from its end to the end of the next move back."""
    out, leave = [], None
    for line in text.splitlines():
        stamp, moves = STAMP.match(line), MOVE.parse(line)
        if not stamp or not moves:
            continue
        t, m = float(stamp.group(1)), moves[0]
        if m["cpu"] != cpu:
            continue
        if m["to"] == "tcg":
            leave = (t, m["latency_ns"]) if m["why"] == "kernel-entry" else None
        elif leave:
            out.append((t - leave[0]) * 1e6 + leave[1] / 1e3)
            leave = None
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def run_config(name, seconds):
    accel, cmd, traced = CONFIGS[name]
    trace = tempfile.NamedTemporaryFile(prefix="mixed-trace-", suffix=".log",
                                        delete=False).name
    extra = ["-trace", "mixed_move", "-D", trace, "-msg", "timestamp=on"] if traced else []
    g = built_guest(f"bench-round-trip-{name}", smp=2, accel=f"mixed,{accel}",
                    cmd=cmd.format(s=seconds, s2=seconds + 2), extra_args=extra)
    g.start()
    try:
        g.wait_end(timeout=seconds * 20 + 180)
        serial = g.serial()
    finally:
        g.stop()
    with open(trace) as f:
        text = f.read()
    os.unlink(trace)
    rates = {int(c): float(r) for c, r in SYSLOOP.findall(serial)}
    return rates, round_trips(text, 1) if traced else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    why = kvm_unavailable()
    if why:
        print(f"round_trip: {why}; nothing to measure", file=sys.stderr)
        return 77
    rate0 = {n: [] for n in CONFIGS}
    trips_p50, trips_p99, rate1 = [], [], []
    names = list(CONFIGS)
    for rep in range(args.reps):
        # Interleaved, and rotated each repetition, so that drift hits every config.
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            rates, trips = run_config(name, args.seconds)
            print(f"rep {rep + 1} {name}: rates {rates}"
                  + (f", {len(trips)} round trips" if name == "round-trip" else ""))
            if name == "round-trip":
                rate1.append(rates.get(1, 0.0))
                if trips:
                    trips_p50.append(pct(trips, 50))
                    trips_p99.append(pct(trips, 99))
            elif 0 in rates:
                rate0[name].append(rates[0])
    result = {}
    if trips_p50:
        result["round_trip"] = {"p50_us": spread(trips_p50), "p99_us": spread(trips_p99),
                                "calls_per_s": spread(rate1)}
        print(f"\nkernel-entry round trip from KVM: p50 {statistics.median(trips_p50):.1f} µs "
              f"({min(trips_p50):.1f}-{max(trips_p50):.1f}), p99 "
              f"{statistics.median(trips_p99):.1f} µs; getppid() on KVM "
              f"{statistics.median(rate1):.0f}/s")
    else:
        print("\nno kernel entry left KVM: this host's KVM runs guest kernel code")
    alone = rate0["alone"]
    if alone and rate0["beside-kvm"] and rate0["beside-tcg"]:
        base = statistics.median(alone)
        result["neighbour"] = {n: spread(r) for n, r in rate0.items() if r}
        for n in ("beside-kvm", "beside-tcg"):
            result["neighbour"][f"{n}_slowdown"] = 1 - statistics.median(rate0[n]) / base
        print(f"getppid() on a TCG vCPU: alone {base:.0f}/s "
              f"({min(alone):.0f}-{max(alone):.0f}); beside a KVM vCPU's syscall loop "
              f"{statistics.median(rate0['beside-kvm']):.0f}/s, slowdown "
              f"{result['neighbour']['beside-kvm_slowdown']:.1%}; beside a TCG vCPU's "
              f"{statistics.median(rate0['beside-tcg']):.0f}/s, slowdown "
              f"{result['neighbour']['beside-tcg_slowdown']:.1%} (the cores' share alone)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    figures = {}
    if "round_trip" in result:
        figures["move.round_trip.p50_us"] = result["round_trip"]["p50_us"]["median"]
    if "neighbour" in result:
        figures["move.neighbour_slowdown"] = result["neighbour"]["beside-kvm_slowdown"]
    check_spec(figures)
    return 0 if "neighbour" in result else 1


if __name__ == "__main__":
    sys.exit(main())
