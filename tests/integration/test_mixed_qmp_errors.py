#!/usr/bin/env python3
"""Bad QMP/HMP input gets a clear error, and the VM and its workload survive it.

Unknown vCPU index, unknown backend, a move while the VM is paused, a storm of
concurrent moves from two QMP connections, and the same through HMP. Then the fallback
path, provoked with x-vcpu-fail-kvm (KVM refuses vCPU 3's next handover for real): the
vCPU falls back to TCG with its event, later placements on KVM are refused, and the
workload still passes (the same on the emulated AMD-V host: mixed-nested-fallback).
"""
import threading
import time

from mixedvm_testlib import (Qmp, QmpError, all_of, check, mixed_guest, move, require_kvm,
                             run, vcpus)

require_kvm()


def expect_error(fn, *needles):
    try:
        r = fn()
    except QmpError as e:
        for n in needles:
            check(n in e.desc, f"error '{e.desc}' does not mention '{n}'")
        return e.desc
    raise AssertionError(f"expected an error, got {r}")


def test(guests):
    # sysloop keeps vCPU 3 returning to user mode, where (on PVM) it enters KVM.
    g = mixed_guest("mixed-qmp-errors", cmd=all_of(["selfcheck --expect-cpus 4 --rounds 60",
                                                    "cowcheck --rounds 40",
                                                    "sysloop --cpu 3 --seconds 100"]))
    second_socket = g.qmp_path + "-2"
    g.extra_args += ["-qmp", f"unix:{second_socket},server=on,wait=off"]
    guests.append(g)
    g.start()
    g.wait_for(r"selfcheck: 4 CPUs online", timeout=120)

    expect_error(lambda: move(g, 4, "kvm"), "vCPU 4 does not exist", "0-3")
    expect_error(lambda: move(g, -1, "kvm"), "does not exist")
    expect_error(lambda: g.qmp.execute("vcpu-set-accel", **{"cpu-index": 0, "accel": "hvf"}),
                 "hvf")
    expect_error(lambda: g.qmp.execute("vcpu-set-accel", **{"accel": "kvm"}), "cpu-index")

    g.qmp.execute("stop")
    expect_error(lambda: move(g, 1, "kvm"), "not running", "paused")
    g.qmp.execute("cont")

    # A storm: two QMP connections firing moves concurrently, without waiting.
    second = Qmp(second_socket, g.transcript)
    errors = []

    def storm(qmp, seed):
        try:
            for i in range(300):
                qmp.execute("vcpu-set-accel", **{"cpu-index": (i * 7 + seed) % 4,
                                                  "accel": "kvm" if (i + seed) % 3 else "tcg",
                                                  "wait": i % 2 == 0})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=storm, args=(q, n)) for n, q in enumerate([g.qmp, second])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    check(not errors, f"moves failed during the storm: {errors}")

    hmp = g.qmp.execute("human-monitor-command", **{"command-line": "info vcpu-accel"})
    check("vCPU  accel  running" in hmp and "policy: static" in hmp, f"info vcpu-accel:\n{hmp}")
    hmp = g.qmp.execute("human-monitor-command", **{"command-line": "vcpu_set_accel 2 tcg"})
    check("vCPU 2:" in hmp, f"vcpu_set_accel: {hmp}")
    hmp = g.qmp.execute("human-monitor-command", **{"command-line": "vcpu_set_accel 9 tcg"})
    check("does not exist" in hmp, f"vcpu_set_accel 9: {hmp}")
    hmp = g.qmp.execute("human-monitor-command", **{"command-line": "vcpu_set_accel 2 hvf"})
    check("unknown accel" in hmp or "hvf" in hmp, f"vcpu_set_accel hvf: {hmp}")

    check(all(not e["kvm-failed"] for e in vcpus(g).values()), "a vCPU fell back")

    # The fallback path: KVM refuses vCPU 3's next TCG -> KVM handover.
    move(g, 3, "kvm")
    g.qmp.execute("x-vcpu-fail-kvm", **{"cpu-index": 3})
    deadline = time.monotonic() + 60
    while not vcpus(g)[3]["kvm-failed"] and time.monotonic() < deadline:
        time.sleep(0.2)
    v = vcpus(g)[3]
    check(v["kvm-failed"] and v["accel"] == "tcg" and v["running-on"] == "tcg",
          f"vCPU 3 did not fall back to TCG within 60 s: {v}")
    g.qmp.pump_events(1)
    fallbacks = [e["data"] for e in g.qmp.events if e["event"] == "VCPU_ACCEL_CHANGED" and
                 e["data"]["reason"] == "fallback"]
    check(len(fallbacks) == 1 and fallbacks[0]["cpu-index"] == 3 and
          "special registers" in fallbacks[0].get("detail", ""),
          f"no single fallback event naming KVM's error: {fallbacks}")
    expect_error(lambda: move(g, 3, "kvm"), "cannot run on KVM any more")
    expect_error(lambda: g.qmp.execute("x-vcpu-fail-kvm", **{"cpu-index": 3}), "already failed")
    expect_error(lambda: g.qmp.execute("x-vcpu-fail-kvm", **{"cpu-index": 9}), "does not exist")
    failed = sorted(i for i, e in vcpus(g).items() if e["kvm-failed"])
    check(failed == [3], f"vCPUs that fell back: {failed}, only 3 should have")
    rc = g.wait_end(timeout=300)
    out = g.serial()
    check("SELFCHECK PASS" in out and "COWCHECK PASS" in out and rc == 0,
          f"the workload did not survive (rc={rc})")
    g.check_kernel_healthy()
    check(g.wait_exit() == 0, "QEMU did not exit cleanly")


run(test)
