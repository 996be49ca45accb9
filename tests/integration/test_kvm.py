#!/usr/bin/env python3
"""Our QEMU opens this host's /dev/kvm: query-kvm reports it present and enabled.

A Linux guest cannot run under plain KVM on a PVM host (see docs/host-kvm.md), so this
uses a machine with no CPU workload at all; it proves the KVM plumbing, not guest speed.
"""
import os

from mixedvm_testlib import artifact, check, run, skip
from mixedvm_vm import Guest

if not os.path.exists("/dev/kvm"):
    skip("/dev/kvm is absent on this machine: KVM cannot be tested here")
if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    skip("/dev/kvm exists but is not readable and writable by this user")


class BareKvm(Guest):
    def argv(self):
        return [self.qemu, "-nodefaults", "-display", "none", "-machine", "none",
                "-accel", "kvm", "-S", "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]


def test(guests):
    g = BareKvm("kvm-available", artifact("qemu"), kernel=None, initrd=None)
    guests.append(g)
    g.start()
    kvm = g.qmp.execute("query-kvm")
    check(kvm == {"enabled": True, "present": True}, f"query-kvm: {kvm}")
    g.qmp.execute("quit")
    check(g.wait_exit() == 0, "QEMU did not quit cleanly")


run(test)
