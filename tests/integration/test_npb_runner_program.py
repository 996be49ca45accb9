#!/usr/bin/env python3
"""tools/npb_runner.py runs a user's own programs through the matrix, and shows the spread.

A user points the runner at static programs that print NPB's summary (--program). Here
two of them, with no /dev/kvm needed (configurations native and tcg, 2 vCPUs, 2
repetitions): this tree's EP kernel copied under another name, which verifies, and a
program built here that prints an unverified summary (the negative control). Asserted:
- every run is recorded: the EP copy verified in all 4 runs, natively and in the guest,
  with 2 threads; the other recorded as unverified, never dropped, and the runner exits 1;
- runs are interleaved: each repetition runs both configurations back to back;
- the results page has the program's row with the range of its repetitions, and the
  time plot is drawn;
- a dynamically linked program, an unreadable path and a malformed --program are refused
  before anything runs, with a message that says why.
"""
import json
import os
import shutil
import subprocess
import tempfile

from mixedvm_testlib import ROOT, check, run

RUNNER = os.path.join(ROOT, "tools", "npb_runner.py")
UNVERIFIED = r'''
#include <stdio.h>
int main(void) {
  puts("\n\n FAKE Benchmark Completed.\n Class           =                        S\n"
       " Time in seconds =                     0.01\n Total threads   =                        2\n"
       " Mop/s total     =                     1.00\n Verification    =             UNSUCCESSFUL");
  return 0;
}
'''


def runner(*args, timeout=900):
    return subprocess.run(["/usr/bin/python3", RUNNER, *args], capture_output=True, text=True,
                          timeout=timeout)


def test(guests):
    work = tempfile.mkdtemp(prefix="mixedvm-npb-runner-")
    ep = os.path.join(work, "myep")
    shutil.copy(os.path.join(ROOT, "build", "tools", "npb_ep"), ep)
    with open(os.path.join(work, "fake.c"), "w") as f:
        f.write(UNVERIFIED)
    subprocess.run(["cc", "-static", "-O1", "-o", os.path.join(work, "fake"),
                    os.path.join(work, "fake.c")], check=True)

    for spec, why in (("dyn=/bin/ls", "dynamically linked"),
                      ("gone=/nonexistent/prog", "cannot be read"),
                      ("no-path-given", "NAME=PATH")):
        r = runner("--kernels", "", "--program", spec, "--configs", "native")
        check(r.returncode != 0 and why in r.stderr,
              f"--program {spec} was not refused with '{why}': rc={r.returncode} {r.stderr!r}")

    results, page = os.path.join(work, "results.jsonl"), os.path.join(work, "experiments.md")
    r = runner("--kernels", "", "--program", f"myep={ep} --class S --threads {{threads}}",
               "--program", f"fake={os.path.join(work, 'fake')}", "--configs", "native,tcg",
               "--vcpus", "2", "--reps", "2", "--results", results, "--report", page)
    print(r.stdout[-1500:], r.stderr[-1500:])
    check(r.returncode == 1, f"the runner should fail on the unverified program: rc={r.returncode}")
    with open(results) as f:
        recs = [json.loads(line) for line in f]
    ours = [x for x in recs if x["kernel"] == "myep"]
    fake = [x for x in recs if x["kernel"] == "fake"]
    check(len(ours) == 4 and all(x["status"] == "verified" and x["class"] == "-" and
                                 x["vcpus"] == 2 for x in ours),
          f"the EP copy did not verify in all 4 runs: {ours}")
    check(len(fake) == 4 and all(x["status"] == "unverified" for x in fake),
          f"the unverified program was not recorded as such: {fake}")
    check([x["config"] for x in ours] == ["native", "tcg", "native", "tcg"],
          f"runs are not interleaved: {[(x['config'], x['rep']) for x in ours]}")
    with open(page) as f:
        text = f.read()
    row = next((line for line in text.splitlines() if line.startswith("| MYEP |")), "")
    check(row.count("–") == 2, f"the results page has no range for the program's runs: {row!r}")
    check(os.path.getsize(os.path.join(work, "experiments", "time.png")) > 10000,
          "the time plot was not drawn")
    shutil.rmtree(work)


run(test)
