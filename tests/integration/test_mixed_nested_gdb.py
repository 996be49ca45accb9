#!/usr/bin/env python3
"""gdb under -accel mixed, on the emulated AMD-V host (tools/nested_amdv.py; no /dev/kvm needed).

L2 runs sysloop (a getppid() loop) on its one vCPU, on KVM. Once the vCPU has run on KVM,
L2's monitor starts a gdbstub on L1's fourth serial port (HMP `gdbserver /dev/ttyS3`),
which is a pseudo-terminal here, and Debian's gdb attaches to it in batch mode:
break in sysloop's loop, inspect the registers, single-step, continue to the breakpoint
again, delete it and detach. Asserted:
- query-vcpu-accel says gdb-attached while gdb is attached, and a move to KVM is refused
  with a reason then;
- the breakpoint is hit, in sysloop's loop: a software breakpoint that only TCG honours,
  on a vCPU that was running on KVM, so attaching moved it to TCG;
- stepi moves RIP, and the second continue stops at the breakpoint again (the line has
  two locations in the loop; either counts);
- after the detach, gdb-attached is false and the vCPU runs on KVM again, its KVM time
  growing;
- sysloop finishes and reports its calls, the guest command exits 0, the guest kernel
  reported no trouble, and L2's QEMU exits cleanly.
One vCPU, because with two about one nested run in four ends in a triple fault on KVM
(docs/mixed.md, "Limits").
"""
import os
import re
import shutil
import subprocess
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

SOURCE = os.path.join(ROOT, "tools", "guest", "sysloop.cc")
LOOP_LINE = next(i for i, l in enumerate(open(SOURCE), 1) if "syscall(SYS_getppid)" in l)
CMD = "sysloop --cpu 0 --seconds 120"


def sysloop_binary():
    qemu = nested_amdv.artifact("qemu")          # <build>/qemu/qemu-system-x86_64
    return os.path.join(os.path.dirname(os.path.dirname(qemu)), "tools", "sysloop")


def run_gdb(pty, binary):
    argv = ["gdb", "-q", "-batch", "-nx",
            "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set remotetimeout 120", "-ex", f"file {binary}",
            "-ex", f"target remote {pty}",
            "-ex", f"break sysloop.cc:{LOOP_LINE}",
            "-ex", "continue",
            "-ex", "info registers rip rsp",
            "-ex", "info threads",
            "-ex", "stepi",
            "-ex", "info registers rip",
            "-ex", "continue",
            "-ex", "info registers rip",
            "-ex", "delete",
            "-ex", "detach"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def test(guests):
    binary = sysloop_binary()
    check(shutil.which("gdb"), "gdb is not installed (tools/mixedvm setup installs it)")
    check(os.path.exists(binary), f"no {binary}: build the guest programs first")
    state = {"phase": "wait-kvm", "kvm_ns_before": 0, "kvm_ns_after": [], "attached": None,
             "refusal": None, "gdb": None, "running_after": []}

    def on_look(mon, info, text, res):
        v1 = info["vcpus"][0]
        if state["phase"] == "wait-kvm":
            if "MIXEDVM-READY" in text and v1["kvm-ns"] > 2e9 and res["gdb_pty"]:
                state["kvm_ns_before"] = v1["kvm-ns"]
                mon.execute("human-monitor-command", **{"command-line": "gdbserver /dev/ttyS3"})
                state["attached"] = mon.execute("query-vcpu-accel")["gdb-attached"]
                try:
                    mon.execute("vcpu-set-accel", **{"cpu-index": 0, "accel": "kvm"})
                except OSError as e:
                    state["refusal"] = str(e)
                state["gdb"] = run_gdb(res["gdb_pty"], binary)
                state["phase"] = "detached"
        elif state["phase"] == "detached":
            state["kvm_ns_after"].append(v1["kvm-ns"])
            state["running_after"].append((info["gdb-attached"], v1["running-on"]))

    res = nested_amdv.run_nested(CMD, smp=1, minutes=40, every=5, gdb_pty=True,
                                 on_look=on_look)
    l2 = res["l2_serial"]
    print(f"logs in {res['log_dir']}; gdb on {res['gdb_pty']}; breakpoint at "
          f"sysloop.cc:{LOOP_LINE}")
    rc, out = state["gdb"] or (None, "")
    print("  gdb: " + "\n  gdb: ".join(out.strip().splitlines()[-40:]))
    print(f"  state: {state['phase']}, attached {state['attached']}, refusal "
          f"{state['refusal']!r}, after: {state['running_after']}, kvm-ns before "
          f"{state['kvm_ns_before']} after {state['kvm_ns_after']}")
    check(not res["timed_out"], "the nested run did not finish in 40 minutes:\n" + l2[-1500:])
    check(state["gdb"], f"gdb never ran (phase {state['phase']}, monitor error "
          f"{res['monitor_error']}, pty {res['gdb_pty']})")
    check(state["attached"] is True, "query-vcpu-accel did not report gdb-attached")
    check(state["refusal"] and "while gdb is attached" in state["refusal"],
          f"a move to KVM under gdb was not refused with a reason: {state['refusal']!r}")
    hits = re.findall(rf"Breakpoint 1(?:\.\d+)?, .*sysloop\.cc:{LOOP_LINE}", out)
    check(len(hits) >= 2, f"gdb did not stop at the breakpoint twice (rc {rc}):\n{out[-3000:]}")
    rips = re.findall(r"^rip\s+(0x[0-9a-f]+)", out, re.M)
    check(len(rips) >= 3 and rips[1] != rips[0],
          f"stepi did not move RIP: {rips}")
    check(re.search(r"^\*\s+1\s+Thread 1\.1", out, re.M),
          "the breakpoint did not stop vCPU 0 (gdb thread 1):\n" + out[-2000:])
    check("Detaching from program" in out or "[Inferior 1 (process 1) detached]" in out,
          "gdb did not detach:\n" + out[-1000:])
    check(state["running_after"] and all(not a for a, _ in state["running_after"]),
          f"gdb-attached after the detach: {state['running_after']}")
    check(any(r == "kvm" for _, r in state["running_after"]) and
          state["kvm_ns_after"] and state["kvm_ns_after"][-1] > state["kvm_ns_before"],
          "vCPU 0 did not go back to KVM after the detach: "
          f"{state['running_after']}, kvm-ns {state['kvm_ns_before']} -> {state['kvm_ns_after']}")
    check(re.search(r"sysloop cpu=0 calls=\d+", l2), "sysloop did not finish:\n" + l2[-1500:])
    nested_amdv.check_clean_end(res, check)


run(test)
