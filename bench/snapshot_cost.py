#!/usr/bin/env python3
"""What snapshots cost and save (docs/mixed.md, "Snapshots and migration").

    bench/snapshot_cost.py [--accel tcg|mixed,...] [--smp 2] [--reps 5] [--memory 2G]
                           [--fill-mb 1024] [--json FILE]

Two measurements, each repeated --reps times:

1. Per run: how long until a guest is ready to run an experiment's command, booted
   (a fresh QEMU, the kernel's boot, /init) against restored (a fresh QEMU with
   -incoming file: from one post-boot snapshot), as tools/npb_runner.py --from-snapshot
   does it. Boot and restore alternate within each repetition; the saving per run is
   their difference.
2. For a --memory guest whose RAM holds --fill-mb MiB of random data (written with dd
   into its tmpfs after boot, so neither zero pages nor compression help): how long
   migrate to a file takes (save), how long -incoming file: takes until the VM runs
   (restore), and how long a live precopy migration to a second QEMU on this host takes
   (unix socket), with its downtime as QEMU reports it. QEMU caps a migration at
   max-bandwidth, 128 MiB/s unless --max-bandwidth says otherwise (0: no cap).

Prints one line per figure: median, minimum and maximum over the repetitions; --json
writes every sample. Under -accel mixed the guest keeps mixed's default placement.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from mixedvm_vm import SERVE_COMMANDS, VmError, built_guest  # noqa: E402

READY = r"(?m)^MIXEDVM-SERVING$"


def guest(args, name, incoming=None):
    return built_guest(name, smp=args.smp, memory=args.memory, accel=args.accel,
                       cmd=SERVE_COMMANDS, command_port=True, incoming=incoming)


def wait_migration(qmp, timeout=1800):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = qmp.execute("query-migrate")
        if st["status"] in ("completed", "failed", "cancelled"):
            if st["status"] != "completed":
                raise VmError(f"migration {st['status']}: {st.get('error-desc', '')}")
            return st
        time.sleep(0.05)
    raise VmError("the migration did not end")


def wait_running(g, timeout=600):
    deadline = time.monotonic() + timeout
    while g.qmp.execute("query-status")["status"] != "running":
        if time.monotonic() > deadline:
            raise VmError("the VM did not start running")
        time.sleep(0.02)


def run_command(g, line, timeout=600):
    """Runs a command in a serving guest; its exit code (VmError if it never ends)."""
    ends = re.compile(r"(?m)^MIXEDVM-RUN-END rc=(\d+)")
    n = len(ends.findall(g.serial()))
    g.send_command(line)
    deadline = time.monotonic() + timeout
    while len(rcs := ends.findall(g.serial())) <= n:
        if time.monotonic() > deadline:
            raise VmError(f"{line}: no end within {timeout} s")
        time.sleep(0.1)
    return int(rcs[n])


def check_rc(g, line, timeout=600):
    rc = run_command(g, line, timeout)
    if rc:
        raise VmError(f"{line}: exit code {rc} in the guest")


def per_run(args, folder, samples):
    """Boot to ready against restore to ready."""
    state = os.path.join(folder, "post-boot.state")
    g = guest(args, "snapshot-take")
    try:
        g.start()
        g.wait_for(READY, 600)
        g.qmp.execute("migrate", uri=f"file:{state}")
        wait_migration(g.qmp)
    finally:
        g.stop()
        shutil.rmtree(g.dir, ignore_errors=True)
    for rep in range(args.reps):
        for mode in (("boot", "restore") if rep % 2 == 0 else ("restore", "boot")):
            g = guest(args, f"snapshot-{mode}",
                      incoming=f"file:{state}" if mode == "restore" else None)
            t0 = time.monotonic()
            try:
                g.start()
                if mode == "boot":
                    g.wait_for(READY, 600)
                else:
                    wait_running(g)
                ready = time.monotonic() - t0
                check_rc(g, "true")     # ready means: it runs a command
                samples.setdefault(f"{mode}_to_ready_s", []).append(ready)
            finally:
                g.stop()
                shutil.rmtree(g.dir, ignore_errors=True)


def big_guest(args, folder, samples):
    """Save, restore and live migration of a guest with --fill-mb of data."""
    for rep in range(args.reps):
        state = os.path.join(folder, f"big-{rep}.state")
        src = guest(args, "snapshot-big")
        dst = restored = None
        try:
            src.start()
            src.wait_for(READY, 600)
            # the guest's /tmp is a tmpfs of half its RAM: room for the data first
            check_rc(src, f"mount -o remount,size={args.fill_mb + 64}M /tmp && "
                     f"dd if=/dev/urandom of=/tmp/fill bs=1M count={args.fill_mb} "
                     "2>/dev/null && md5sum /tmp/fill > /tmp/fill.md5", 1800)
            # live: to a second QEMU waiting on a unix socket
            sock = os.path.join(folder, f"live-{rep}.sock")
            dst = guest(args, "snapshot-live", incoming=f"unix:{sock}")
            dst.start()
            while not os.path.exists(sock):
                time.sleep(0.05)
            for g in (src, dst):
                if args.max_bandwidth is not None:
                    g.qmp.execute("migrate-set-parameters",
                                  **{"max-bandwidth": args.max_bandwidth})
            t0 = time.monotonic()
            src.qmp.execute("migrate", uri=f"unix:{sock}")
            st = wait_migration(src.qmp)
            samples.setdefault("live_s", []).append(time.monotonic() - t0)
            samples.setdefault("live_downtime_ms", []).append(st.get("downtime", 0))
            wait_running(dst)
            check_rc(dst, "md5sum -c -s /tmp/fill.md5")     # the data arrived intact
            # save: the live destination, now running, to a file
            t0 = time.monotonic()
            dst.qmp.execute("migrate", uri=f"file:{state}")
            wait_migration(dst.qmp)
            samples.setdefault("save_s", []).append(time.monotonic() - t0)
            samples.setdefault("state_mib", []).append(os.path.getsize(state) / 2**20)
            dst.stop()
            # restore: a third QEMU from the file, until it runs
            restored = guest(args, "snapshot-restore", incoming=f"file:{state}")
            t0 = time.monotonic()
            restored.start()
            wait_running(restored)
            samples.setdefault("restore_s", []).append(time.monotonic() - t0)
            check_rc(restored, "md5sum -c -s /tmp/fill.md5")
        finally:
            for g in (src, dst, restored):
                if g:
                    g.stop()
                    shutil.rmtree(g.dir, ignore_errors=True)
            if os.path.exists(state):
                os.remove(state)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accel", default="tcg")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--memory", default="2G")
    ap.add_argument("--fill-mb", type=int, default=1024)
    ap.add_argument("--max-bandwidth", type=int,
                    help="the big guest's migrations: QEMU's max-bandwidth in bytes/s "
                    "(default QEMU's, 128 MiB/s; 0 = unlimited)")
    ap.add_argument("--skip", default="", help="per-run or big-guest")
    ap.add_argument("--json")
    args = ap.parse_args()
    samples = {}
    folder = tempfile.mkdtemp(prefix="mixedvm-snapshot-cost-")
    try:
        if "per-run" not in args.skip:
            per_run(args, folder, samples)
        if "big-guest" not in args.skip:
            big_guest(args, folder, samples)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"snapshot_cost: -accel {args.accel}, -smp {args.smp}, -m {args.memory}, "
          f"{args.fill_mb} MiB of data in the big guest, max-bandwidth "
          f"{'QEMU default' if args.max_bandwidth is None else args.max_bandwidth}, "
          f"{args.reps} repetitions")
    print(f"{'figure':<22} {'median':>10} {'min':>10} {'max':>10}")
    for name, vals in samples.items():
        print(f"{name:<22} {statistics.median(vals):>10.3f} {min(vals):>10.3f} "
              f"{max(vals):>10.3f}")
    if "boot_to_ready_s" in samples and "restore_to_ready_s" in samples:
        saved = statistics.median(samples["boot_to_ready_s"]) - \
            statistics.median(samples["restore_to_ready_s"])
        print(f"saved per run: {saved:.3f} s (median boot to ready - median restore to ready)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "samples": samples}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
