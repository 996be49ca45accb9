#!/usr/bin/env python3
"""One guest-visible ISA under -accel mixed on this host's real KVM (docs/mixed.md,
"One guest-visible CPU"). Needs /dev/kvm; guest-isa covers TCG alone and
mixed-nested-isa the emulated AMD-V host.

The guest is unmodified: no hint to glibc anywhere. For the default CPU and for
-cpu max, -smp 2, vCPU 0 on TCG and vCPU 1 on KVM:
1. `vecstate --cpuid` on vCPU 0 and on vCPU 1 read the same CPU: a user program learns
   the same from CPUID and XGETBV whichever backend answers. On PVM that takes
   user-cpuid=trap (the host's CPUID faulting) or user-cpuid=host; query-vcpu-accel
   says which is in force, and it must be trap where the host CPU can fault CPUID.
2. `vecstate --isa` on vCPU 1: every extension offered runs.
3. `vecstate` keeps every vector register of two processes on vCPU 1 while a QMP storm
   moves both vCPUs.
4. Page-table isolation: where the host kernel says it is not affected by Meltdown, the
   guest says so too (mixed offers IA32_ARCH_CAPABILITIES' rdctl-no that KVM reports),
   so it does not isolate its page tables, whose CR3 writes made every move into a
   shadow-MMU KVM a zap on the PVM host of 2026-12-04.
5. The clock: the guest's TSC frequency ("tsc: Detected ... MHz") is the same for
   -cpu max as for the default CPU, within 0.5 %, and no soft lockup is logged. (Before
   2026-12-05 -cpu max on an Intel PVM host read 1.544 MHz: leaf 0x15 overflowed
   Linux's 32-bit arithmetic; tests/unit/x86_state_test.cc has the arithmetic.)
6. Negative control, on PVM only: user-cpuid=host with x-user-cpuid-host=off on the CPU
   is the state before 2026-12-05 (KVM shows user code the host, TCG the model); the
   two readings of 1 must then differ, on a host whose CPU has features the model
   lacks, so 1 can fail.
"""
import re
import sys

from mixedvm_testlib import ROOT, check, host_runs_guest_kernel, mixed_guest, require_kvm, \
    run, vcpus

sys.path.insert(0, f"{ROOT}/tools")
import torture  # noqa: E402

require_kvm()
STORM_SECONDS = 8
CMD = (f"vecstate --cpuid --cpu 0; vecstate --cpuid --cpu 1; vecstate --isa --cpu 1; "
       f"vecstate --cpu 1 --rounds 20000; dmesg | grep -i -E 'tsc:|soft lockup|invalid opcode'; "
       f"echo meltdown: $(cat /sys/devices/system/cpu/vulnerabilities/meltdown)")
SOFT_LOCKUP = re.compile(r"soft lockup|stuck for", re.I)


def host_meltdown():
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/meltdown") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def host_can_fault_cpuid():
    with open("/proc/cpuinfo") as f:
        return "cpuid_fault" in next((l for l in f if l.startswith("flags")), "").split()


def boot(guests, name, cpu=None, accel_opts="kvm-cpus=1", storm=True):
    extra = ["-cpu", cpu] if cpu else []
    g = mixed_guest(name, accel_opts=accel_opts, smp=2, cmd=CMD, extra_args=extra)
    guests.append(g)
    g.start()
    mode = g.qmp.execute("query-vcpu-accel")["user-cpuid"]
    s = None
    if storm:
        g.wait_for(r"vecstate: cpu=1 level", timeout=300)
        s = torture.Storm(g, 2, 40, seed=11)
        s.start()
    try:
        rc = g.wait_end(timeout=600)
    finally:
        if s:
            s.stop()
    out = g.serial()
    readings = re.findall(r"^vecstate: cpuid (.*)$", out, re.M)
    mhz = re.search(r"tsc: Detected ([0-9.]+) MHz", out)
    print(f"{name}: user-cpuid={mode}, rc={rc}, storm changes {s.changes if s else 0}")
    for r in readings:
        print(f"  cpuid {r}")
    for line in re.findall(r"^vecstate: (?:isa|rounds).*$", out, re.M):
        print(f"  {line}")
    print(f"  tsc: {mhz.group(0) if mhz else 'no Detected line'}")
    return g, rc, out, mode, readings, float(mhz.group(1)) if mhz else None


def test(guests):
    pvm = not host_runs_guest_kernel()
    results = {}
    for name, cpu in (("guest-isa-default", None), ("guest-isa-max", "max")):
        g, rc, out, mode, readings, mhz = boot(guests, name, cpu)
        results[name] = mhz
        if pvm:
            want = "trap" if host_can_fault_cpuid() else "host"
            check(mode == want, f"{name}: user-cpuid is {mode}, expected {want} here")
        else:
            check(mode == "intercepted", f"{name}: user-cpuid is {mode} where KVM runs "
                  "kernel code")
        check(len(readings) == 2, f"{name}: {len(readings)} CPUID readings of 2")
        check(readings[0] == readings[1], f"{name}: a user program read different CPUs on "
              f"TCG and KVM:\n  TCG {readings[0]}\n  KVM {readings[1]}")
        check(re.search(r"^vecstate: isa .*PASS$", out, re.M), f"{name}: an offered "
              "extension did not run")
        check(re.search(r"^vecstate: registers PASS$", out, re.M),
              f"{name}: vector registers were lost across moves")
        check("invalid opcode" not in out, f"{name}: a guest process took #UD")
        check(not SOFT_LOCKUP.search(out), f"{name}: the guest logged a soft lockup")
        check(rc == 0, f"{name}: the guest command failed (rc={rc})")
        if host_meltdown() == "Not affected":
            guest = re.search(r"^meltdown: (.*)$", out, re.M)
            check(guest and guest.group(1) == "Not affected", f"{name}: the host is not "
                  f"affected by Meltdown, the guest says {guest and guest.group(1)}")
        check(mhz, f"{name}: the guest logged no TSC frequency")
        g.check_kernel_healthy()
    a, b = results["guest-isa-default"], results["guest-isa-max"]
    check(abs(a - b) / a < 0.005, f"-cpu max reads its TSC at {b} MHz, the default CPU at "
          f"{a} MHz")

    if not pvm:
        print("negative control not run: KVM intercepts CPUID at every privilege level here")
        return
    g, rc, out, mode, readings, _ = boot(guests, "guest-isa-control",
                                         "max,x-user-cpuid-host=off",
                                         accel_opts="kvm-cpus=1,user-cpuid=host", storm=False)
    check(len(readings) == 2, f"control: {len(readings)} CPUID readings of 2")
    check(readings[0] != readings[1], "negative control: with KVM showing user code the "
          "host's CPUID and TCG the model, both still read the same: check 1 cannot fail "
          "on this host")


run(test)
