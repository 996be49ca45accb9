#!/usr/bin/env python3
"""vCPUs move to KVM and back over QMP while pinned self-checking programs run.

Each vCPU runs a selfcheck thread and cowcheck forks children, so state handover,
kernel entries on KVM (the PVM tripwire), interrupts and copy-on-write all happen
across moves. Every move is reported by VCPU_ACCEL_CHANGED with reason "qmp".
"""
import time

from mixedvm_testlib import all_of, check, mixed_guest, move, require_kvm, run, vcpus

require_kvm()


def test(guests):
    cmd = all_of(["selfcheck --expect-cpus 4 --rounds 80", "cowcheck --rounds 40"])
    g = mixed_guest("mixed-moves", accel_opts="tcg-cpus=0-3", cmd=cmd)
    guests.append(g)
    g.start()
    g.wait_for(r"selfcheck: 4 CPUs online", timeout=120)

    for cpu in range(4):
        r = move(g, cpu, "kvm")
        check(r["accel"] == "kvm" and r["status"] in ("done", "scheduled"), f"move {cpu}: {r}")
    time.sleep(2)
    v = vcpus(g)
    for cpu, e in v.items():
        check(e["accel"] == "kvm", f"vCPU {cpu} is placed on {e['accel']}")
        check(e["kvm-ns"] > 0, f"vCPU {cpu} never executed on KVM: {e}")
        check(e["moves"] > 0 and e.get("last-move"), f"vCPU {cpu} has no move recorded: {e}")
        exits = {x["reason"]: x["count"] for x in e.get("kvm-exits", [])}
        check(exits.get("exits", 0) > 0, f"vCPU {cpu} ran on KVM but reports no KVM exits: {exits}")

    for cpu in (0, 1):
        r = move(g, cpu, "tcg")
        check(r == {"status": "done", "accel": "tcg", "running-on": "tcg"},
              f"a move to TCG completes at the next safe point: {r}")
    v = vcpus(g)
    check(v[0]["running-on"] == "tcg" and v[1]["running-on"] == "tcg", f"{v[0]}, {v[1]}")

    g.qmp.pump_events()
    events = [e["data"] for e in g.qmp.events if e["event"] == "VCPU_ACCEL_CHANGED"]
    check(sorted((e["cpu-index"], e["accel"]) for e in events) ==
          sorted([(c, "kvm") for c in range(4)] + [(0, "tcg"), (1, "tcg")]),
          f"events: {events}")
    check(all(e["reason"] == "qmp" for e in events), f"events: {events}")

    rc = g.wait_end(timeout=300)
    out = g.serial()
    check("SELFCHECK PASS" in out, "selfcheck failed across moves")
    check("COWCHECK PASS" in out, "cowcheck failed across moves")
    check(rc == 0, f"guest command rc={rc}")
    g.check_kernel_healthy()
    check(g.wait_exit() == 0, "QEMU did not exit cleanly")


run(test)
