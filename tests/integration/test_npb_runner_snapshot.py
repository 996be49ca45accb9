#!/usr/bin/env python3
"""tools/npb_runner.py --from-snapshot: repetitions from one post-boot snapshot.

No /dev/kvm needed: configuration tcg, EP class S, 2 vCPUs, 3 repetitions, run from a
snapshot, and the same once more booted (the control). Asserted:
- every snapshot run verified, records mode "snapshot" and its restore time, and its
  QEMU never booted the guest (no "Run /init" on its console), while the booted control
  did: a snapshot taken too early (during the boot), or an -incoming that the runner
  lost, would show the boot there;
- one snapshot served every repetition (one file, made once, removed at the end);
- the results page says which mode each guest run used, and has the mode column.
docs/mixed.md ("Snapshots and migration") and bench/snapshot_cost.py give the times.
"""
import json
import os
import subprocess
import tempfile

from mixedvm_testlib import ROOT, check, run

RUNNER = os.path.join(ROOT, "tools", "npb_runner.py")


def test(guests):
    work = tempfile.mkdtemp(prefix="mixedvm-npb-snapshot-")
    results = os.path.join(work, "results.jsonl")
    common = ["--kernels", "ep", "--classes", "S", "--vcpus", "2", "--configs", "tcg",
              "--results"]
    p = subprocess.run(["/usr/bin/python3", RUNNER, *common, results, "--reps", "3",
                        "--from-snapshot"], capture_output=True, text=True, timeout=900)
    print(p.stdout[-600:], p.stderr[-600:])
    check(p.returncode == 0, f"the runner failed: {p.returncode}")
    snap = [json.loads(line) for line in open(results)]
    for r in snap:
        print(f"  rep {r['rep']}: {r['status']}, mode {r.get('mode')}, restore "
              f"{r.get('restore_s', 0):.2f} s, wall {r.get('wall_s', 0):.2f} s, booted "
              f"{r.get('console_booted')}")
    check(len(snap) == 3 and all(r["status"] == "verified" for r in snap),
          f"not every snapshot run verified: {snap}")
    check(all(r.get("mode") == "snapshot" and r.get("restore_s", 0) > 0 for r in snap),
          "a run does not record its snapshot mode and restore time")
    check(not any(r["console_booted"] for r in snap),
          "a run from the snapshot booted the guest: the snapshot was not post-boot")
    folder = os.path.join(work, "snapshots")
    check(os.path.isdir(folder) and not os.listdir(folder),
          f"snapshot files left behind: {os.listdir(folder)}")

    # The control: the same run booted; it must show the boot the snapshot runs skip.
    boot_results = os.path.join(work, "boot.jsonl")
    report = os.path.join(work, "experiments.md")
    p = subprocess.run(["/usr/bin/python3", RUNNER, *common, boot_results, "--reps", "1"],
                       capture_output=True, text=True, timeout=900)
    boot = [json.loads(line) for line in open(boot_results)]
    check(p.returncode == 0 and boot[0]["mode"] == "boot" and boot[0]["console_booted"],
          f"the booted control did not show a boot: {boot}")
    print(f"  booted control: wall {boot[0]['wall_s']:.2f} s against snapshot runs "
          f"{min(r['wall_s'] for r in snap):.2f}-{max(r['wall_s'] for r in snap):.2f} s")

    # The results page says which mode was used.
    with open(results, "a") as out, open(boot_results) as b:
        out.write(b.read().replace('"rep": 1', '"rep": 4'))
    p = subprocess.run(["/usr/bin/python3", RUNNER, *common, results, "--reps", "4",
                        "--report", report], capture_output=True, text=True, timeout=900)
    page = open(report).read() if os.path.exists(report) else ""
    check("3 from one post-boot snapshot per configuration" in page and
          "1 each from a fresh boot" in page and "| mode |" in page,
          "the results page does not record the modes:\n" + page[:1500] + p.stderr[-800:])


run(test)
