#!/usr/bin/env python3
"""The fallback path: KVM fails a vCPU, the guest goes on, on TCG, and says so.

A vCPU whose KVM run or handover fails falls back to TCG for good. Nothing in a healthy
guest makes KVM fail, so the debug command x-vcpu-fail-kvm provokes it for real: the
vCPU's next TCG -> KVM handover gives KVM a CR4 with a reserved bit, and the real
KVM_SET_SREGS refuses it (EINVAL), exactly as it would refuse a state it cannot run.
On the emulated AMD-V host (tools/nested_amdv.py, no /dev/kvm needed), with one vCPU
that runs on KVM, asserted:
- the vCPU falls back: query-vcpu-accel shows kvm-failed, placed on and running on TCG;
- VCPU_ACCEL_CHANGED is sent with reason "fallback" and KVM's error as its detail;
- placing it on KVM again is refused with a clear error, and so is a second
  x-vcpu-fail-kvm, and one for a vCPU that does not exist;
- the guest survives: selfcheck, which starts 30 s after the guest's user space and so
  runs on TCG, passes, the guest kernel reports no trouble, and L2's QEMU exits cleanly.
The same on a PVM host is in mixed-qmp-errors.
"""
import sys
import time

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
import nested_amdv  # noqa: E402

# The test provokes the failure when user space starts; the workload starts later, on TCG.
CMD = "sleep 30; selfcheck --scale 0.02"


def provoke(mon, info, text, res):
    """At L2's first look after its user space started: fail vCPU 0 on KVM, watch it fall
    back, and try what must now be refused."""
    if res.get("provoked") or "MIXEDVM-READY" not in text:
        return
    v = info["vcpus"][0]
    res["before"] = v
    if v["accel"] != "kvm" or v["kvm-ns"] == 0 or v["kvm-failed"]:
        return
    res["provoked"] = True
    mon.execute("x-vcpu-fail-kvm", **{"cpu-index": 0})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        v = mon.execute("query-vcpu-accel")["vcpus"][0]
        if v["kvm-failed"]:
            break
        time.sleep(0.5)
    res["after"] = v
    res["events"] = [e for e in mon.events if e["event"] == "VCPU_ACCEL_CHANGED"]
    res["refusals"] = {}
    for name, command, args in (
            ("to-kvm", "vcpu-set-accel", {"cpu-index": 0, "accel": "kvm"}),
            ("fail-again", "x-vcpu-fail-kvm", {"cpu-index": 0}),
            ("no-such-vcpu", "x-vcpu-fail-kvm", {"cpu-index": 5})):
        try:
            res["refusals"][name] = f"accepted: {mon.execute(command, **args)}"
        except OSError as e:
            res["refusals"][name] = str(e)


def test(guests):
    res = nested_amdv.run_nested(CMD, smp=1, minutes=40, every=5, on_look=provoke)
    l2 = res["l2_serial"]
    print(f"logs in {res['log_dir']}")
    print(f"  before: {res.get('before')}\n  after: {res.get('after')}\n"
          f"  events: {res.get('events')}\n  refusals: {res.get('refusals')}")
    check(res.get("provoked"), "the vCPU was never seen placed on KVM after the guest's "
          f"user space started: {res.get('before')}; monitor error {res['monitor_error']}")
    after = res["after"]
    check(after["kvm-failed"] and after["accel"] == "tcg" and after["running-on"] == "tcg",
          f"vCPU 0 did not fall back to TCG within 60 s: {after}")
    fallbacks = [e["data"] for e in res["events"] if e["data"]["reason"] == "fallback"]
    check(len(fallbacks) == 1 and fallbacks[0]["cpu-index"] == 0 and
          fallbacks[0]["accel"] == "tcg" and
          "special registers" in fallbacks[0].get("detail", ""),
          f"no single VCPU_ACCEL_CHANGED fallback event naming KVM's error: {res['events']}")
    r = res["refusals"]
    check("cannot run on KVM any more" in r["to-kvm"], f"placing on KVM again: {r['to-kvm']}")
    check("already failed" in r["fail-again"], f"a second x-vcpu-fail-kvm: {r['fail-again']}")
    check("does not exist" in r["no-such-vcpu"], f"vCPU 5: {r['no-such-vcpu']}")
    check("SELFCHECK PASS" in l2, "selfcheck did not pass on TCG after the fallback")
    vcpus = res["vcpus"] or [{}]
    check(vcpus[0].get("kvm-failed") and vcpus[0].get("running-on") == "tcg",
          f"vCPU 0 did not stay on TCG: {vcpus}")
    nested_amdv.check_clean_end(res, check)


run(test)
