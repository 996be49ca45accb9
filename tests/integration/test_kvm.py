#!/usr/bin/env python3
"""Our QEMU opens this host's /dev/kvm: query-kvm reports it present and enabled.

A Linux guest cannot run under plain KVM on a PVM host (see docs/host-kvm.md in this repository), so this
uses a machine with no CPU workload at all; it proves the KVM plumbing, not guest speed.
"""
from mixedvm_testlib import BareQemu, artifact, check, require_kvm, run

require_kvm("KVM cannot be tested here")


def test(guests):
    g = BareQemu("kvm-available", artifact("qemu"), accel="kvm")
    guests.append(g)
    g.start()
    kvm = g.qmp.execute("query-kvm")
    check(kvm == {"enabled": True, "present": True}, f"query-kvm: {kvm}")
    g.qmp.execute("quit")
    check(g.wait_exit() == 0, "QEMU did not quit cleanly")


run(test)
