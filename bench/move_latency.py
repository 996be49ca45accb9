#!/usr/bin/env python3
"""Move latency of -accel mixed, one way in each direction: p50 and p99, with the breakdown.

    bench/move_latency.py [--seconds S] [--json FILE]

Besides time, it counts what each move does, in units every KVM host shows alike (the
emulated AMD-V host, PVM, VT-x), so that they can be driven down anywhere: the vCPU's
KVM ioctls other than KVM_RUN since its previous move, its code syncs, and the VM's
memslot changes (a shadow-MMU zap is two) per move into KVM. Moves off KVM are also
split by cause (the trace event's `why`, query-vcpu-accel's kvm-leaves): timer ticks,
other interrupts, kernel entries (PVM), placement; each with its count and latency.

Boots the 4-vCPU guest with every vCPU placed on KVM and a user-mode compute thread
pinned to each (spinrate). Every move the vCPUs make is then real: on a host whose KVM
cannot run guest kernel code (PVM), each timer tick or kernel entry moves the vCPU to
TCG and back. QEMU's mixed_move trace event records each move's latency and its parts
(state get, state put, TLB/shadow flushes), all measured on the vCPU's own thread at its
safe point. Needs /dev/kvm and a built tree (tools/mixedvm build image).
"""
import argparse
import collections
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

MOVE = trace_events.event("mixed_move", "cpu", "to", "latency_ns", "get_ns", "put_ns",
                          "flush_ns", "why")
SYNC = trace_events.event("mixed_code_sync", "cpu")
KVM_TRACE_EVENTS = os.path.join(os.environ.get("MIXEDVM_BUILD") or os.path.join(ROOT, "build"),
                                "qemu-src", "accel", "kvm", "trace-events")
KVM_RUN = 0xae80     # _IO(KVMIO, 0x80): running the guest, not moving it
COUNTED_EVENTS = ["mixed_move", "mixed_code_sync", "kvm_vcpu_ioctl", "kvm_set_user_memory"]


def kvm_events(path=KVM_TRACE_EVENTS):
    """QEMU's own KVM trace events, declared in its source tree."""
    return {"kvm_vcpu_ioctl": trace_events.event("kvm_vcpu_ioctl", "cpu_index", "type",
                                                 path=path),
            "kvm_set_user_memory": trace_events.event("kvm_set_user_memory", "slot", path=path)}


def move_counts(text, events):
    """What the moves in a trace did, per direction: ioctls (every vCPU ioctl but KVM_RUN
    since that vCPU's previous move, so work between moves counts towards the next one)
    and code syncs per move; memslot changes per move into KVM (VM-wide: the zap's
    slot is added and deleted). A vCPU's first move is left out, since the vCPU's
    set-up ioctls come before it, and so is every memslot change before the first move
    of any vCPU: boot sets up memslots too."""
    pending = collections.defaultdict(lambda: [0, 0])     # cpu -> [ioctls, syncs]
    per_move = {"kvm": [], "tcg": []}
    causes = collections.Counter()
    moved = set()
    slots, started = 0, False
    for name, r in trace_events.records(text, events):
        if name == "mixed_move":
            started = True
            counts = tuple(pending.pop(r["cpu"], [0, 0]))
            if r["cpu"] in moved:
                per_move[r["to"]].append(counts)
                if r["to"] == "tcg":
                    causes[r["why"]] += 1
            moved.add(r["cpu"])
        elif not started:
            continue
        elif name == "kvm_vcpu_ioctl" and r["type"] != KVM_RUN:
            pending[r["cpu_index"]][0] += 1
        elif name == "mixed_code_sync":
            pending[r["cpu"]][1] += 1
        elif name == "kvm_set_user_memory":
            slots += 1
    out = {}
    for to, moves in per_move.items():
        if moves:
            ioctls = [m[0] for m in moves]
            out[to] = {"moves": len(moves), "ioctls_p50": statistics.median(ioctls),
                       "ioctls_mean": statistics.mean(ioctls),
                       "code_syncs_per_move": sum(m[1] for m in moves) / len(moves)}
    if per_move["kvm"]:
        out["kvm"]["memslot_changes_per_move"] = slots / len(per_move["kvm"])
    if per_move["tcg"]:
        out["tcg"]["by_cause"] = dict(causes)
    return out


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
    traced = [a for e in COUNTED_EVENTS for a in ("-trace", e)]
    g = built_guest("bench-move-latency", smp=4, accel="mixed,kvm-cpus=0-3", cmd=cmd,
                    extra_args=traced + ["-D", trace, "-msg", "timestamp=on"])
    g.start()
    try:
        g.wait_end(timeout=args.seconds * 40 + 120)
    finally:
        g.stop()
    moves = {"kvm": [], "tcg": []}
    with open(trace) as f:
        text = f.read()
    os.unlink(trace)
    leave_lat = collections.defaultdict(list)
    for m in MOVE.parse(text):
        moves[m["to"]].append((m["latency_ns"], m["get_ns"], m["put_ns"], m["flush_ns"]))
        if m["to"] == "tcg":
            leave_lat[m["why"]].append(m["latency_ns"])
    counts = move_counts(text, {"mixed_move": MOVE, "mixed_code_sync": SYNC, **kvm_events()})
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
    print(f"\n{'direction':<12}{'ioctls p50':>11}{'ioctls mean':>12}{'syncs/move':>11}"
          f"{'memslot changes/move':>22}")
    for to, label in (("kvm", "TCG -> KVM"), ("tcg", "KVM -> TCG")):
        if to in counts:
            c = counts[to]
            slots = c.get("memslot_changes_per_move")
            print(f"{label:<12}{c['ioctls_p50']:>11.1f}{c['ioctls_mean']:>12.2f}"
                  f"{c['code_syncs_per_move']:>11.3f}"
                  f"{(f'{slots:.3f}' if slots is not None else '-'):>22}")
            result.setdefault(label, {})["counts"] = c
    # Why the vCPUs left KVM. On PVM a tick is a leave and a return; nothing else should
    # ride on it, so its latency is the move's own.
    # The span: the log backend stamps each line "pid@seconds:".
    stamps = [float(t) for t in re.findall(r"^\d+@(\d+\.\d+):mixed_move ", text, re.M)]
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    print(f"\n{'left KVM for':<14}{'moves':>7}{'per vCPU-s':>11}{'p50 us':>9}{'p99 us':>9}"
          f"   (over {span:.1f} s of moves)")
    for why, lat in sorted(leave_lat.items(), key=lambda kv: -len(kv[1])):
        r = {"moves": len(lat), "per_vcpu_s": len(lat) / 4 / span,
             "p50_us": pct(lat, 50) / 1e3, "p99_us": pct(lat, 99) / 1e3}
        result.setdefault("left KVM for", {})[why] = r
        print(f"{why:<14}{r['moves']:>7}{r['per_vcpu_s']:>11.1f}{r['p50_us']:>9.1f}"
              f"{r['p99_us']:>9.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    directions = (("tcg_to_kvm", "TCG -> KVM"), ("kvm_to_tcg", "KVM -> TCG"))
    check_spec({**{f"move.{key}.{stat}_us": result[label][f"{stat}_us"]
                   for key, label in directions if label in result for stat in ("p50", "p99")},
                **{f"move.{key}.ioctls_p50": result[label]["counts"]["ioctls_p50"]
                   for key, label in directions if "counts" in result.get(label, {})}})
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
