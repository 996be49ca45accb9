#!/usr/bin/env python3
"""Placement policies under -accel mixed: hot-tcg places vCPUs by their behaviour,
and policies switch at runtime over QMP.

vCPU 1 runs user-mode compute (spinrate), vCPU 2 makes system calls (sysloop), both
pinned. Every vCPU starts on TCG. Under hot-tcg the compute vCPU must end up on KVM and
the syscall-heavy one on TCG. A hold (vcpu-set-accel hold=true) keeps the compute vCPU on
TCG against the policy until released. Then tcg-only, switched at runtime, must bring every vCPU
back to TCG; bad policy input is refused and the VM stays healthy. On TCG, the split
of each vCPU's time into user and kernel time must tell the two programs apart.
"""
import time

from mixedvm_testlib import QmpError, check, mixed_guest, require_kvm, run, vcpus

require_kvm()

PARAMS = "margin=0.2:min-residency=2"


def wait_placement(g, want, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        placed = {c: e["accel"] for c, e in vcpus(g).items()}
        if all(placed[c] == b for c, b in want.items()):
            return placed
        time.sleep(0.25)
    return placed


def test(guests):
    cmd = "spinrate --cpu 1 --iterations 4000000000 & sysloop --cpu 2 --seconds 60 & wait"
    g = mixed_guest("mixed-policy", accel_opts=f"tcg-cpus=0-3,policy=hot-tcg,policy-params={PARAMS}",
                    cmd=cmd)
    guests.append(g)
    g.start()
    st = g.qmp.execute("query-mixed-policy")
    check(st["policy"] == "hot-tcg" and "margin=0.2" in st["params"], f"policy state: {st}")
    check([p["name"] for p in st["available"]] == ["static", "kvm-only", "tcg-only", "hot-tcg", "sample"],
          f"available: {st['available']}")
    g.wait_for(r"MIXEDVM-READY", timeout=120)

    placed = wait_placement(g, {1: "kvm", 2: "tcg"}, seconds=40)
    print(f"hot-tcg placement after the workload started: {placed}")
    check(placed[1] == "kvm", f"hot-tcg left the compute vCPU 1 on {placed[1]}")
    check(placed[2] == "tcg", f"hot-tcg left the syscall vCPU 2 on {placed[2]}")
    time.sleep(3)   # it must stay there, not ping-pong
    placed = {c: e["accel"] for c, e in vcpus(g).items()}
    check(placed[1] == "kvm" and placed[2] == "tcg", f"placement did not hold: {placed}")
    g.qmp.pump_events()
    reasons = {e["data"]["reason"] for e in g.qmp.events if e["event"] == "VCPU_ACCEL_CHANGED"}
    check("policy" in reasons, f"no VCPU_ACCEL_CHANGED with reason policy: {reasons}")

    for bad, needle in [({"policy": "fastest"}, "unknown policy 'fastest'"),
                        ({"policy": "hot-tcg", "params": "margin=7"}, "outside [0, 0.9]"),
                        ({"policy": "hot-tcg", "params": "speed=1"}, "unknown parameter 'speed'")]:
        try:
            g.qmp.execute("mixed-set-policy", **bad)
            check(False, f"mixed-set-policy {bad} was accepted")
        except QmpError as e:
            check(needle in e.desc, f"{bad}: error '{e.desc}' lacks '{needle}'")
    check(g.qmp.execute("query-mixed-policy")["policy"] == "hot-tcg", "a refused switch changed the policy")

    # "Observe vCPU 1 now": held on TCG, hot-tcg does not take it back to KVM.
    g.qmp.execute("vcpu-set-accel", **{"cpu-index": 1, "accel": "tcg", "hold": True})
    time.sleep(3)
    v = vcpus(g)[1]
    check(v["accel"] == "tcg" and v["held"], f"a held vCPU 1 did not stay on TCG: {v}")
    g.qmp.execute("vcpu-set-accel", **{"cpu-index": 1, "accel": "tcg", "hold": False})
    placed = wait_placement(g, {1: "kvm"}, seconds=20)
    check(placed[1] == "kvm" and not vcpus(g)[1]["held"],
          f"released, hot-tcg did not place vCPU 1 on KVM again: {placed}")

    g.qmp.execute("mixed-set-policy", policy="tcg-only")
    placed = wait_placement(g, {c: "tcg" for c in range(4)}, seconds=10)
    check(all(b == "tcg" for b in placed.values()), f"tcg-only at runtime: {placed}")

    # Both on TCG now: the split of TCG time must tell user compute from kernel work.
    a = vcpus(g)
    time.sleep(2)
    b = vcpus(g)
    share = {}
    for c in (1, 2):
        tcg = b[c]["tcg-ns"] - a[c]["tcg-ns"]
        user = b[c]["tcg-user-ns"] - a[c]["tcg-user-ns"]
        check(0 <= user <= tcg, f"vCPU {c}: user time {user} ns outside TCG time {tcg} ns")
        share[c] = user / tcg
    print(f"user share of TCG time over 2 s: compute vCPU 1 {share[1]:.3f}, syscall vCPU 2 {share[2]:.3f}")
    check(share[1] > 0.9, f"compute vCPU 1 spent only {share[1]:.3f} of its TCG time in user mode")
    check(share[2] < 0.5, f"syscall vCPU 2 spent {share[2]:.3f} of its TCG time in user mode")
    g.qmp.execute("quit")


run(test)
