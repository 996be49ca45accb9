#!/usr/bin/env python3
"""The QEMU we run is our patched build, linked with libmixedvm."""
import os
import re
import subprocess

from mixedvm_testlib import ROOT, artifact, check, run


def test(guests):
    out = subprocess.run([artifact("qemu"), "-version"], capture_output=True, text=True, check=True).stdout
    check(re.search(r"QEMU emulator version 10\.0\.\d+", out), f"not QEMU 10.0.x:\n{out}")
    m = re.search(r"mixedvm (\d+\.\d+\.\d+)", out)
    check(m, f"-version does not name mixedvm, so the patch series is not applied:\n{out}")
    with open(os.path.join(ROOT, "meson.build")) as f:
        project_version = re.search(r"version: '([^']+)'", f.read()).group(1)
    check(m.group(1) == project_version,
          f"QEMU links libmixedvm {m.group(1)}, the tree is {project_version}: stale build")


run(test)
