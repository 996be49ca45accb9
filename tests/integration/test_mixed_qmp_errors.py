#!/usr/bin/env python3
"""Bad QMP/HMP input gets a clear error, and the VM and its workload survive it.

Unknown vCPU index, unknown backend, a move while the VM is paused, a storm of
concurrent moves from two QMP connections, and the same through HMP.
"""
import threading

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
    g = mixed_guest("mixed-qmp-errors", cmd=all_of(["selfcheck --expect-cpus 4 --rounds 60",
                                                    "cowcheck --rounds 40"]))
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
    rc = g.wait_end(timeout=300)
    out = g.serial()
    check("SELFCHECK PASS" in out and "COWCHECK PASS" in out and rc == 0,
          f"the workload did not survive (rc={rc})")
    g.check_kernel_healthy()
    check(g.wait_exit() == 0, "QEMU did not exit cleanly")


run(test)
