#!/usr/bin/env python3
"""`tools/mixedvm report` as a user runs it, in its cheapest form: --quick with the
tests, benches and experiments skipped (they are covered by their own tests, and
host_report_test checks what the report makes of their output).

Asserted: the command exits 0 and writes report.md and report.json; the JSON names this
tree's commit and the host's CPU; every phase is accounted for, run or skipped with a
reason (on a machine without /dev/kvm the probes are skipped because of it; with
/dev/kvm every probe in tools/probes/ is built and run, and the page shows its output).
Bad input gets a clear error and exit code 2: an unknown phase, an unknown experiment.
"""
import json
import os
import shutil
import subprocess
import tempfile

from mixedvm_testlib import ROOT, check, run
from mixedvm_vm import kvm_unavailable

MIXEDVM = os.path.join(ROOT, "tools", "mixedvm")


def report(*args):
    return subprocess.run([MIXEDVM, "report", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900)


def test(guests):
    out = tempfile.mkdtemp(prefix="mixedvm-report-")
    r = report("--quick", "--skip", "tests,benches,experiments", "--out", out)
    print(r.stdout[-1500:])
    check(r.returncode == 0, f"report exited {r.returncode}:\n{r.stderr[-1500:]}")
    with open(os.path.join(out, "report.json")) as f:
        data = json.load(f)
    page = open(os.path.join(out, "report.md")).read()
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    check(data["host"]["commit"] == head, f"the report names commit {data['host']['commit']}, "
          f"the tree is at {head}")
    check(data["host"]["cpu_model"] != "unknown" and data["host"]["cores"] >= 1,
          f"host facts missing: {data['host']}")
    skipped = {s["what"]: s["why"] for s in data["skipped"]}
    for phase in ("tests", "benches", "experiments"):
        check(skipped.get(phase) == "--skip", f"{phase} not recorded as skipped: {skipped}")
    why = kvm_unavailable()
    if why:
        check("/dev/kvm" in skipped.get("probes", ""), f"probes not skipped for want of "
              f"/dev/kvm: {skipped}")
        check("skipped probes: they need /dev/kvm" in page, "the page does not say why the "
              "probes did not run")
    else:
        probes = sorted(f[:-2] for f in os.listdir(os.path.join(ROOT, "tools", "probes"))
                        if f.endswith(".c"))
        ran = sorted(p["probe"] for p in data.get("probes", []))
        check(ran == probes, f"probes run {ran}, in the tree {probes}")
        check(all(f"### {p}" in page for p in probes), "a probe's output is not on the page")

    bad = report("--skip", "tests,nonsense")
    check(bad.returncode == 1 and "unknown phase" in bad.stderr + bad.stdout,
          f"an unknown phase was not refused clearly: {bad.returncode} {bad.stderr[-300:]}")
    bad = report("--experiments", "no-such-experiment", "--skip", "tests")
    check(bad.returncode == 1 and "unknown experiment" in bad.stderr + bad.stdout and
          "user-cpuid" in bad.stderr + bad.stdout,
          f"an unknown experiment was not refused clearly: {bad.stderr[-300:]}")
    shutil.rmtree(out)


run(test)
