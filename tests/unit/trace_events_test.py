#!/usr/bin/env python3
"""tools/trace_events.py reads every event that trace-events declares, by argument name.

Each declared event is rendered as QEMU's log backend would print it (its C format, with
the PRI macros resolved, applied to known values; with and without the timestamp prefix)
and must parse back to the same values under the declared names. A format the reader
cannot turn into a pattern, or a cast that loses a value, fails here and not in a bench.

Then bench/move_latency.py's per-move counts, from a made-up trace read in the log's
order, with QEMU 10.0's declarations of its two KVM events (those of the built source
tree, where it exists, must match them); and bench/round_trip.py's kernel-entry round
trips from made-up stamped moves.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import trace_events  # noqa: E402

# QEMU 10.0's accel/kvm/trace-events, the two lines move_latency reads.
KVM_DECLARATIONS = """kvm_vcpu_ioctl(int cpu_index, unsigned long type, void *arg) "cpu_index %d, type 0x%lx, arg %p"
kvm_set_user_memory(uint16_t as, uint16_t slot, uint32_t flags, uint64_t guest_phys_addr, uint64_t memory_size, uint64_t userspace_addr, uint32_t fd, uint64_t fd_offset, int ret) "AddrSpace#%d Slot#%d flags=0x%x gpa=0x%"PRIx64 " size=0x%"PRIx64 " ua=0x%"PRIx64 " guest_memfd=%d" " guest_memfd_offset=0x%" PRIx64 " ret=%d"
"""


def move_count_failures():
    import move_latency
    failures = []
    with tempfile.NamedTemporaryFile("w", suffix="trace-events", delete=False) as f:
        f.write(KVM_DECLARATIONS)
    try:
        kvm = move_latency.kvm_events(f.name)
    finally:
        os.unlink(f.name)
    if os.path.exists(move_latency.KVM_TRACE_EVENTS):
        built = move_latency.kvm_events()
        for name, ev in kvm.items():
            if built[name].args != ev.args:
                failures.append(f"{name} in the built QEMU is {built[name].declaration}")
    move, sync = move_latency.MOVE, move_latency.SYNC
    ioctl, slot = kvm["kvm_vcpu_ioctl"], kvm["kvm_set_user_memory"]

    def line(ev, *values):
        return "4242@1700000000.1:" + ev.name + " " + render(ev, values, ev.c_format)

    def io(cpu, kind):
        return line(ioctl, cpu, kind, "(nil)")

    memslot = line(slot, 0, 9, 0, 0, 4096, 0x7f00, 0, 0, 0)
    text = "\n".join([
        memslot, io(0, 0xae8a), io(1, 0xae8a),          # boot and set-up: not counted
        line(move, 0, "kvm", 9000, 1, 2, 3, "-"), line(move, 1, "tcg", 9000, 1, 2, 3, "placement"),
        io(0, move_latency.KVM_RUN), io(0, 0xc008ae88), io(0, 0xae8a), io(0, 0x4090ae82),
        line(move, 0, "tcg", 9000, 1, 2, 3, "timer"),           # vCPU 0 -> TCG: 3 ioctls
        io(1, 0xae8a), line(sync, 1, 2, 5, 700), io(1, 0xae80), io(1, 0xae8a),
        line(move, 1, "kvm", 9000, 1, 2, 3, "-"),           # vCPU 1 -> KVM: 2 ioctls, 1 sync
        memslot, memslot,                              # a zap
        io(0, 1), io(0, 2), io(0, 3), io(0, 4),
        line(move, 0, "kvm", 9000, 1, 2, 3, "-"),           # vCPU 0 -> KVM: 4 ioctls
    ])
    events = {"mixed_move": move, "mixed_code_sync": sync, **kvm}
    got = move_latency.move_counts(text, events)
    want = {"tcg": {"moves": 1, "ioctls_p50": 3, "ioctls_mean": 3, "code_syncs_per_move": 0.0,
                    "by_cause": {"timer": 1}},
            "kvm": {"moves": 2, "ioctls_p50": 3.0, "ioctls_mean": 3, "code_syncs_per_move": 0.5,
                    "memslot_changes_per_move": 1.0}}
    if got != want:
        failures.append(f"move_counts: {got}, want {want}")
    return failures


def sample(ctype, i):
    if ctype == "bool":
        return i % 2 == 1
    if "char" in ctype:
        return f"word{i} and more"    # %s may hold spaces
    if ctype.startswith("int"):
        return -1000 * (i + 1) if i % 2 else 1000 * (i + 1)
    return 0xabc0 + i


def round_trip_failures():
    import move_latency
    import round_trip
    move = move_latency.MOVE

    def line(t, cpu, to, latency_ns, why):
        return f"4242@{t:.6f}:mixed_move " + render(move, (cpu, to, latency_ns, 1, 2, 3, why),
                                                    move.c_format)
    text = "\n".join([
        line(100.000100, 1, "tcg", 20000, "kernel-entry"),   # leave: 20 us
        line(100.000150, 0, "kvm", 9000, "-"),               # another vCPU: ignored
        line(100.000160, 1, "kvm", 30000, "-"),              # back 60 us later: 80 us
        line(100.001000, 1, "tcg", 25000, "timer"),          # a tick: not a round trip
        line(100.001100, 1, "kvm", 30000, "-"),
        line(100.002000, 1, "tcg", 10000, "kernel-entry"),   # 10 + 45 = 55 us
        "4242@100.002010:kvm_vcpu_ioctl cpu_index 1, type 0xae80, arg (nil)",
        line(100.002045, 1, "kvm", 30000, "-"),
    ])
    got = [round(x, 3) for x in round_trip.round_trips(text, 1)]
    return [] if got == [80.0, 55.0] else [f"round_trips: {got}, want [80.0, 55.0]"]


def render(ev, values, fmt):
    args = []
    for (ctype, name), v in zip(ev.args, values):
        args.append(int(v) if ctype == "bool" else v)
    return fmt.replace("%p", "%s") % tuple(args)    # C's %p prints as (nil) or 0x...


def main():
    events = trace_events.load()
    failures = []
    if not {"mixed_move", "mixed_code_sync", "mixed_probe"} <= events.keys():
        failures.append(f"events the benches read are missing: {sorted(events)}")
    for name, ev in events.items():
        values = [sample(ctype, i) for i, (ctype, _) in enumerate(ev.args)]
        line = render(ev, values, ev.c_format)
        for text in (f"{name} {line}\n", f"4242@1700000000.123456:{name} {line}\n"):
            got = ev.parse("noise before\n" + text + "noise after\n")
            want = {n: v for (_, n), v in zip(ev.args, values)}
            if got != [want]:
                failures.append(f"{name}: {text.strip()!r} parsed as {got}, want [{want}]")
    try:
        trace_events.event("mixed_move", "no_such_argument")
        failures.append("a missing argument was not reported")
    except trace_events.TraceEventError as e:
        if "no_such_argument" not in str(e):
            failures.append(f"the error does not name the argument: {e}")
    failures += move_count_failures()
    failures += round_trip_failures()
    for f in failures:
        print("FAIL:", f)
    print(f"{len(events)} trace events, {len(failures)} failures")
    return 1 if failures else 0


sys.exit(main())
