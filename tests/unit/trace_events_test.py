#!/usr/bin/env python3
"""tools/trace_events.py reads every event that trace-events declares, by argument name.

Each declared event is rendered as QEMU's log backend would print it (its C format, with
the PRI macros resolved, applied to known values; with and without the timestamp prefix)
and must parse back to the same values under the declared names. A format the reader
cannot turn into a pattern, or a cast that loses a value, fails here and not in a bench.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import trace_events  # noqa: E402


def sample(ctype, i):
    if ctype == "bool":
        return i % 2 == 1
    if "char" in ctype:
        return f"word{i} and more"    # %s may hold spaces
    if ctype.startswith("int"):
        return -1000 * (i + 1) if i % 2 else 1000 * (i + 1)
    return 0xabc0 + i


def render(ev, values, fmt):
    args = []
    for (ctype, name), v in zip(ev.args, values):
        args.append(int(v) if ctype == "bool" else v)
    return fmt % tuple(args)


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
    for f in failures:
        print("FAIL:", f)
    print(f"{len(events)} trace events, {len(failures)} failures")
    return 1 if failures else 0


sys.exit(main())
