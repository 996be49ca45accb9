"""Harness for mixedvm integration tests: the real QEMU, the real guest, a real QMP socket.

A test registers the Guests it starts; if it fails (any exception), their serial log, QEMU
output, command line and QMP transcript are copied to $MIXEDVM_LOG_DIR/<guest name>/.
Exit codes follow meson: 0 pass, 1 fail, 77 skip (always with a printed reason).
"""
import json
import os
import shutil
import sys
import traceback

ROOT = os.environ.get("MIXEDVM_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from mixedvm_vm import (BareQemu, Qmp, QmpError, VmError, artifact, built_guest,  # noqa: E402,F401
                        kvm_unavailable, npb_report)

SKIP = 77
TestFailure = VmError


def Guest(name, **kwargs):
    """A Guest running the built QEMU, kernel and initrd."""
    return built_guest(name, **kwargs)


def keep_logs(guest):
    dest_root = os.environ.get("MIXEDVM_LOG_DIR") or os.path.join(ROOT, "build", "test-logs")
    dest = os.path.join(dest_root, guest.name)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(guest.dir, dest, ignore=shutil.ignore_patterns("*.sock"))
    return dest


def run(test_fn):
    """Run one integration test function; it receives a list to register Guests in."""
    guests = []
    try:
        test_fn(guests)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - report everything, keep the logs
        traceback.print_exc()
        for g in guests:
            g.stop()
            print(f"FAIL: {e}\nlogs kept in {keep_logs(g)}", file=sys.stderr)
        if not guests:
            print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    for g in guests:
        g.stop()
        shutil.rmtree(g.dir, ignore_errors=True)
    print("PASS")
    sys.exit(0)


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def check(cond, message):
    if not cond:
        raise TestFailure(message)


# ---------------------------------------------------------------- -accel mixed

def require_kvm(need="-accel mixed needs KVM"):
    """Skip, with the reason and `need`, when this process cannot use /dev/kvm."""
    why = kvm_unavailable()
    if why:
        skip(f"{why}: {need}")


_kvm_runs_kernel = None


def host_runs_guest_kernel():
    """Whether this host's KVM runs guest kernel code: True on VT-x/AMD-V, False on PVM,
    where a vCPU on KVM runs only guest user mode.

    The accelerator's own answer, kvm-runs-kernel in query-vcpu-accel (its start-up probe,
    docs/mixed.md), from a QEMU with no machine; asked once per process. Needs KVM: call
    require_kvm() first."""
    global _kvm_runs_kernel
    if _kvm_runs_kernel is None:
        g = BareQemu("kvm-runs-kernel", artifact("qemu"), accel="mixed")
        try:
            g.start()
            _kvm_runs_kernel = bool(g.qmp.execute("query-vcpu-accel")["kvm-runs-kernel"])
        finally:
            g.stop()
            shutil.rmtree(g.dir, ignore_errors=True)
    return _kvm_runs_kernel


def cpu_flags_have_vmx_svm():
    """Whether /proc/cpuinfo lists vmx or svm: a check on the probe, not a substitute for it."""
    with open("/proc/cpuinfo") as f:
        flags = next((l for l in f if l.startswith("flags")), "").split()
    return "vmx" in flags or "svm" in flags


def mixed_guest(name, accel_opts="", **kwargs):
    """A Guest under -accel mixed[,accel_opts]."""
    accel = "mixed" + ("," + accel_opts if accel_opts else "")
    return Guest(name, accel=accel, **kwargs)


def vcpus(guest):
    """query-vcpu-accel's per-vCPU entries, by cpu-index."""
    return {v["cpu-index"]: v for v in guest.qmp.execute("query-vcpu-accel")["vcpus"]}


def move(guest, cpu, accel, wait=True):
    return guest.qmp.execute("vcpu-set-accel", **{"cpu-index": cpu, "accel": accel, "wait": wait})


def all_of(cmds):
    """A guest shell command that runs cmds concurrently and fails if any fails."""
    parts = [f"{c} & p{i}=$!" for i, c in enumerate(cmds)]
    waits = " ".join(f"wait $p{i} || rc=1;" for i in range(len(cmds)))
    return "rc=0; " + "; ".join(parts) + "; " + waits + " exit $rc"


def plugin_paths():
    """Our TCG plugin (libmixedvm.so) and QEMU's `insn` example, as built."""
    ours = artifact("plugin")
    qemu_build = os.path.dirname(os.path.dirname(os.path.dirname(ours)))
    return ours, os.path.join(qemu_build, "tests", "tcg", "plugins", "libinsn.so")


def read_plugin_report(path):
    """Our plugin's report (out=FILE): one JSON object per vCPU, by vCPU index."""
    with open(path) as f:
        return {r["vcpu"]: r for r in (json.loads(line) for line in f if line.strip())}
