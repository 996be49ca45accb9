#!/usr/bin/env python3
"""Run the guest torture suite under -accel mixed while a QMP storm moves vCPUs.

    tools/torture.py [--tests all] [--seconds 10] [--minutes M] [--rate 40]
                     [--off SWITCH] [--kvm-cpus 0-1] [--json FILE]

The guest runs `torture --seconds S TESTS` (tools/guest/torture/): each test pins
its threads to chosen vCPUs and checks its own results. Meanwhile this driver moves
random vCPUs to random backends over QMP, RATE times a second, half of the moves
waiting for the vCPU's safe point. --minutes M repeats the suite until M minutes
have passed (the acceptance run). --off x-code-sync (or another coherence switch,
docs/coherence.md) turns that mechanism off: the negative control.

Prints one summary line and, with --json, writes the figures: runs, QMP moves that
changed a placement, backend switches, errors, guest oops, QEMU exit status.
Exit code 0 when every test passed, the guest kernel stayed healthy and QEMU
exited cleanly; 1 otherwise.
"""
import argparse
import json
import os
import random
import re
import shutil
import sys
import threading
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
from mixedvm_vm import VmError, built_guest  # noqa: E402

TESTS = ["xmc", "ptchurn", "atomics", "splitlock", "clock", "ipi", "shootdown"]

# The mechanism each test exists to check, and so its negative control.
NEGATIVE_CONTROL = {
    "xmc": "x-code-sync",
    "ptchurn": "x-shadow-zap",
    "shootdown": "x-shadow-zap",
    "atomics": "x-tcg-atomics",
    "splitlock": "x-kvm-exclusive",
    "clock": "x-tsc-sync",
    "ipi": "x-event-exit",
}


class Storm(threading.Thread):
    """Moves random vCPUs to random backends over QMP until stopped."""

    def __init__(self, guest, smp, rate, seed):
        super().__init__(daemon=True)
        self.guest, self.smp, self.rate = guest, smp, rate
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.requests = self.changes = 0
        self.error = None
        self.telemetry = []    # query-vcpu-accel, once a second: the guest may end any time

    def run(self):
        placement = {}
        last_look = 0
        try:
            while not self.stop_event.wait(1.0 / self.rate):
                if time.monotonic() - last_look >= 1:
                    self.telemetry = self.guest.qmp.execute("query-vcpu-accel")["vcpus"]
                    last_look = time.monotonic()
                cpu = self.rng.randrange(self.smp)
                accel = self.rng.choice(["kvm", "tcg"])
                r = self.guest.qmp.execute("vcpu-set-accel", **{
                    "cpu-index": cpu, "accel": accel, "wait": self.rng.random() < 0.5})
                self.requests += 1
                if placement.get(cpu) != r["accel"]:
                    self.changes += 1
                placement[cpu] = r["accel"]
        except (VmError, OSError) as e:
            # the guest powering off under our feet is not an error
            if self.guest.proc.poll() is None and "MIXEDVM-END" not in self.guest.serial():
                self.error = str(e)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=30)


# The negative control of `ipi` runs without the storm and with every vCPU on KVM:
# the storm's moves to TCG would deliver the held-back IPIs and hide the bug.
NEGATIVE_SETUP = {"ipi": ("kvm-cpus=0-3", 0)}


def run_once(tests, seconds, rate, accel_opts, name, seed=1, timeout=None, accel=None,
             cmd=None, extra_args=()):
    """One guest, one `torture` command under a storm. Returns a result dict.

    accel replaces -accel mixed,<accel_opts> (e.g. "tcg,thread=multi", stock QEMU's
    MTTCG, for comparison); the storm needs mixed, so rate must then be 0.
    cmd replaces the guest command (another program under the same storm; give
    tests=[] and a timeout, and read its result lines from res["serial"]);
    extra_args go to QEMU (e.g. a device)."""
    accel = accel or "mixed" + (f",{accel_opts}" if accel_opts else "")
    cmd = cmd or f"torture --seconds {seconds} {' '.join(tests)}"
    g = built_guest(name, smp=4, accel=accel, cmd=cmd, extra_args=extra_args)
    res = {"tests": tests, "accel": accel, "seconds": seconds, "log_dir": g.dir}
    storm = None
    timeout = timeout or 90 + len(tests) * (3 * seconds + 40)
    try:
        g.start()
        g.wait_for(r"MIXEDVM-READY", timeout=120)
        if rate > 0:
            storm = Storm(g, 4, rate, seed)
            storm.start()
        try:
            res["rc"] = g.wait_end(timeout=timeout)
        except VmError as e:
            res["rc"] = None
            res["hang"] = str(e)
    except VmError as e:
        res["rc"] = None
        res["hang"] = str(e)
    finally:
        if storm:
            storm.stop()
            res["qmp_moves"] = storm.requests
            res["placement_changes"] = storm.changes
            res["storm_error"] = storm.error
        try:
            v = storm.telemetry if storm else []
            if g.proc.poll() is None and accel.startswith("mixed"):
                v = g.qmp.execute("query-vcpu-accel")["vcpus"]
            res["backend_switches"] = sum(e["moves"] for e in v)
            res["code_syncs"] = sum(e["code-syncs"] for e in v)
            res["code_sync_ns"] = sum(e["code-sync-ns"] for e in v)
            res["code_pages_invalidated"] = sum(e["code-pages-invalidated"] for e in v)
            res["kvm_s"] = sum(e["kvm-ns"] for e in v) / 1e9
            res["tcg_s"] = sum(e["tcg-ns"] for e in v) / 1e9
        except (VmError, OSError):
            pass
        out = g.serial()
        res["results"] = {m.group(1): m.group(2) + m.group(3)
                          for m in re.finditer(r"^TORTURE (\w+) (PASS|FAIL)(.*)$", out, re.M)}
        try:
            g.check_kernel_healthy()
            res["kernel_healthy"] = True
        except VmError as e:
            res["kernel_healthy"] = False
            res["kernel_trouble"] = str(e)
        if res["rc"] is not None:
            try:
                res["qemu_exit"] = g.wait_exit(timeout=30)
            except VmError:
                res["qemu_exit"] = None
        g.stop()
        res["serial"] = out
        res["guest"] = g
    res["passed"] = (res["rc"] == 0 and res["kernel_healthy"] and res.get("qemu_exit") == 0
                     and all(res["results"].get(t, "").startswith("PASS") for t in tests))
    return res


def discard(res, keep_logs_in=None):
    """Remove a run's temporary directory, or keep it (for a failure) under keep_logs_in."""
    g = res.pop("guest")
    if keep_logs_in:
        dest = os.path.join(keep_logs_in, g.name)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(g.dir, dest, ignore=shutil.ignore_patterns("*.sock"))
        res["log_dir"] = dest
    shutil.rmtree(g.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", default="all")
    ap.add_argument("--seconds", type=int, default=10, help="per test and run")
    ap.add_argument("--minutes", type=float, default=0, help="repeat the suite this long")
    ap.add_argument("--rate", type=float, default=40, help="QMP moves per second")
    ap.add_argument("--off", action="append", default=[], help="coherence switch to turn off")
    ap.add_argument("--kvm-cpus", default="0-1", help="initial placement on KVM")
    ap.add_argument("--accel", help="run under this -accel instead of mixed (needs --rate 0), "
                    "e.g. tcg,thread=multi to compare with stock QEMU")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    tests = TESTS if args.tests == "all" else args.tests.split(",")
    unknown = [t for t in tests if t not in TESTS]
    if unknown:
        sys.exit(f"torture: unknown tests {unknown}; known: {TESTS}")
    if args.accel and (args.rate or args.off):
        sys.exit("torture: --accel runs without mixed: give --rate 0 and no --off")
    opts = ",".join([f"kvm-cpus={args.kvm_cpus}"] + [f"{s}=off" for s in args.off])
    log_root = os.path.join(os.path.dirname(TOOLS), "build", "test-logs")
    t0 = time.monotonic()
    total = {"runs": 0, "failed_runs": 0, "qmp_moves": 0, "placement_changes": 0,
             "backend_switches": 0, "code_syncs": 0, "code_pages_invalidated": 0,
             "code_sync_ns": 0, "oops": 0, "qemu_bad_exits": 0, "test_results": {}}
    run = 0
    while True:
        run += 1
        res = run_once(tests, args.seconds, args.rate, opts, f"torture-{run}", seed=run,
                       accel=args.accel)
        total["runs"] += 1
        for k in ("qmp_moves", "placement_changes", "backend_switches", "code_syncs",
                  "code_pages_invalidated", "code_sync_ns"):
            total[k] += res.get(k) or 0
        total["oops"] += 0 if res["kernel_healthy"] else 1
        total["qemu_bad_exits"] += 0 if res.get("qemu_exit") == 0 else 1
        for t in tests:
            r = res["results"].get(t, "missing (guest hung or died)")
            total["test_results"].setdefault(t, []).append(r)
        if not res["passed"]:
            total["failed_runs"] += 1
            discard(res, keep_logs_in=log_root)
            print(f"run {run}: FAILED (logs: {res['log_dir']})")
            for t in tests:
                print(f"  {t}: {res['results'].get(t, 'missing')}")
            if res.get("hang"):
                print(f"  {res['hang']}")
        else:
            discard(res)
        elapsed = time.monotonic() - t0
        print(f"run {run}: {'pass' if res['passed'] else 'FAIL'}; {elapsed / 60:.1f} min, "
              f"{total['placement_changes']} placement changes, "
              f"{total['backend_switches']} backend switches", flush=True)
        if elapsed >= args.minutes * 60:
            break
    total["minutes"] = (time.monotonic() - t0) / 60
    errors = sum(1 for rs in total["test_results"].values() for r in rs if not r.startswith("PASS"))
    total["test_errors"] = errors
    print(f"torture: {total['runs']} runs in {total['minutes']:.1f} min, "
          f"{total['placement_changes']} QMP placement changes ({total['qmp_moves']} requests), "
          f"{total['backend_switches']} backend switches, {errors} test failures, "
          f"{total['oops']} guests with kernel trouble, {total['qemu_bad_exits']} bad QEMU exits")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(total, f, indent=1)
    return 0 if total["failed_runs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
