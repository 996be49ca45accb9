#!/usr/bin/env python3
"""Run -accel mixed on an emulated AMD-V host, on a machine without /dev/kvm.

    tools/nested_amdv.py [--minutes M] [--smp N] [--cpu MODEL] [--cmd "guest command"]
                         [--mover] [--every S] [--l2-extra "-trace mixed_move"]
                         [--accel mixed,OPTS|kvm] [--l0-accel tcg,thread=single]

The test mixed-nested-amdv (tests/integration/test_mixed_nested_amdv.py) uses run_nested().

Some of this project's machines have no /dev/kvm at all, and none has VT-x or AMD-V,
so the path where KVM runs guest kernel code (docs/mixed.md, "Two kinds of host") is
never exercised. This builds a second level:

  L0  this tree's QEMU, -accel tcg -cpu max: TCG emulates AMD-V with nested paging
  L1  Debian's kernel with kvm.ko and kvm-amd.ko from the same package: a real KVM
      on an AMD-V CPU (emulated), in an initramfs that also holds this tree's QEMU,
      its shared libraries and firmware, and the guest image
  L2  the mixedvm guest under -accel mixed on L1's KVM

L2's serial console is L1's second serial port, a file here; L2's QMP monitor is L1's
third, a UNIX socket here (l2-qmp.sock in the log folder). Everything runs at TCG
speed or slower (L2's TCG vCPUs are TCG inside TCG), so this is for looking at what
the guest kernel does on that path (x2APIC, CPUID, the TSC verdict), not for timing.

The emulated host is not a perfect one. L2's KVM vCPUs execute in L0's TCG, and
multi-threaded TCG is not coherent for cross-modifying code: under the default L0 even
stock -accel kvm fails torture xmc. With two or more L2 vCPUs, pass --l0-accel
tcg,thread=single (slower, but coherent), as the two-vCPU tests do (docs/mixed.md,
"Limits"). Nor is L0's TSC synchronised across L1's CPUs.
Prints L2's serial log as it grows; exit code 0 when L2's command ended with rc=0.
"""
import argparse
import gzip
import json
import os
import re
import socket
import shutil
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
from guest_image import Cpio, fetch_kernel_deb  # noqa: E402
from mixedvm_vm import KERNEL_TROUBLE, artifact  # noqa: E402
import trace_events  # noqa: E402

L1_MODULES = ["virt/lib/irqbypass.ko", "arch/x86/kvm/kvm.ko", "drivers/crypto/ccp/ccp.ko",
              "arch/x86/kvm/kvm-amd.ko"]
FIRMWARE = ["/usr/share/seabios/bios-256k.bin", "/usr/share/qemu/kvmvapic.bin",
            "/usr/share/qemu/linuxboot_dma.bin"]
L1_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
for m in irqbypass kvm ccp kvm-amd; do insmod /mod/$m.ko || echo "L1: insmod $m failed"; done
[ -c /dev/kvm ] && echo "L1: /dev/kvm is up" || echo "L1: no /dev/kvm"
# L2's QEMU; the rest of its arguments (accelerator, serial ports, monitors) follow;
# $L2_WRAP, if set, runs it (a scenario's "taskset -c 0")
l2() {
    $L2_WRAP /opt/qemu -L /fw -nodefaults -display none -no-reboot -machine q35 "$@" \\
        -kernel /l2/vmlinuz -initrd /l2/initrd.img -append "$(cat /l2/append)"
}
if [ -f /l2/script ]; then
    . /l2/script    # a scenario with several L2 QEMUs (run_nested_scenario)
else
    l2 $(cat /l2/qemu-args) -serial file:/dev/ttyS1 \\
        -chardev serial,id=qmp,path=/dev/ttyS2 -mon chardev=qmp,mode=control
    echo "L1: L2's QEMU exited rc=$?"
fi
sleep 2     # let L1's serial ports drain L2's last words (a panic, a reset)
poweroff -f
"""


def shared_libs(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [w for line in out.splitlines() for w in line.split() if w.startswith("/")]


def build_l1_initrd(l2_args, l2_append, kernel_pkg_dir, plugin=None, extra_plugins=(),
                    script=None):
    cpio = Cpio()
    for d in ["bin", "dev", "proc", "sys", "mod", "opt", "fw", "l2", "lib",
              "lib/x86_64-linux-gnu", "lib64"]:
        cpio.directory(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("init", L1_INIT.encode())
    cpio.file("bin/busybox", open(shutil.which("busybox"), "rb").read())
    mods = os.path.join(kernel_pkg_dir, "lib", "modules")
    mods = os.path.join(mods, os.listdir(mods)[0], "kernel")
    for m in L1_MODULES:
        cpio.file("mod/" + os.path.basename(m), open(os.path.join(mods, m), "rb").read(), 0o644)
    qemu = artifact("qemu")
    with tempfile.NamedTemporaryFile() as stripped:
        subprocess.run(["strip", "-o", stripped.name, qemu], check=True)
        cpio.file("opt/qemu", open(stripped.name, "rb").read())
    for lib in shared_libs(qemu):
        dest = "lib64/" if "ld-linux" in lib else "lib/x86_64-linux-gnu/"
        cpio.file(dest + os.path.basename(lib), open(os.path.realpath(lib), "rb").read())
    for fw in FIRMWARE:
        cpio.file("fw/" + os.path.basename(fw), open(os.path.realpath(fw), "rb").read(), 0o644)
    if plugin:
        cpio.file("opt/libmixedvm.so", open(plugin, "rb").read(), 0o755)
    for spec in extra_plugins:
        path = spec.split(",", 1)[0]
        cpio.file("opt/" + os.path.basename(path), open(path, "rb").read(), 0o755)
    cpio.file("l2/vmlinuz", open(artifact("kernel"), "rb").read(), 0o644)
    cpio.file("l2/initrd.img", open(artifact("initrd"), "rb").read(), 0o644)
    cpio.file("l2/qemu-args", l2_args.encode(), 0o644)
    cpio.file("l2/append", l2_append.encode(), 0o644)
    if script:
        cpio.file("l2/script", script.encode(), 0o644)
    return gzip.compress(cpio.finish(), compresslevel=1)


class L2Monitor:
    """L2's QMP over L1's third serial port. The greeting went out before anyone
    listened, so this negotiates without waiting for it. Events that arrive while it
    waits for a reply are kept in .events, in order."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        try:
            self.execute("qmp_capabilities")
        except BaseException:
            self.sock.close()   # L0 serves one client at a time: free the port now
            raise

    def execute(self, command, **arguments):
        self.sock.sendall(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise OSError("L2's monitor closed")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                reply = json.loads(line)
            except ValueError:
                continue        # a line cut when we connected
            if "event" in reply:
                self.events.append(reply)
                continue
            if "return" in reply:
                return reply["return"]
            if "error" in reply and command != "qmp_capabilities":
                raise OSError(f"{command}: {reply['error']['desc']}")
            if "error" in reply:
                return None     # capabilities were negotiated by an earlier client

    def close(self):
        self.sock.close()


def _l0_argv(work, l2_args, l2_append, l0_accel, l0_cpu, l1_smp, fourth_serial, plugin=None,
             extra_plugins=(), script=None):
    """L0's command line, with L1's kernel and initrd written into work. L1's serial
    ports: its console, L2's console, L2's QMP (a UNIX socket here), and fourth_serial."""
    pkg = os.path.join(work, "kernel-pkg")
    subprocess.run(["dpkg-deb", "-x", fetch_kernel_deb(), pkg], check=True)
    l1_kernel = next(os.path.join(pkg, "boot", f) for f in os.listdir(os.path.join(pkg, "boot"))
                     if f.startswith("vmlinuz"))
    initrd = os.path.join(work, "l1-initrd.img")
    with open(initrd, "wb") as f:
        f.write(build_l1_initrd(l2_args, l2_append, pkg, plugin, extra_plugins, script))
    # The unpacked package is ~400 MB; keep only L1's kernel.
    l1_kernel = shutil.copy(l1_kernel, os.path.join(work, "l1-vmlinuz"))
    shutil.rmtree(pkg)
    l1_log, l2_log = os.path.join(work, "l1-serial.log"), os.path.join(work, "l2-serial.log")
    l2_qmp = os.path.join(work, "l2-qmp.sock")   # L2's QMP, through L1's third serial port
    argv = [artifact("qemu"), "-accel", l0_accel, "-cpu", l0_cpu, "-smp", str(l1_smp),
            "-m", "2G",
            "-nodefaults", "-display", "none", "-no-reboot",
            "-kernel", l1_kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1",
            "-serial", f"file:{l1_log}", "-serial", f"file:{l2_log}",
            "-chardev", f"socket,id=l2qmp,path={l2_qmp},server=on,wait=off",
            "-serial", "chardev:l2qmp", "-serial", fourth_serial]
    return argv, l1_log, l2_log, l2_qmp


def run_nested(cmd, smp=1, cpu="", accel="mixed", minutes=30, echo=False, every=10,
               l2_extra="", mover=False, plugin=False, gdb_pty=False, on_look=None,
               plugin_opts="", extra_plugins=(), l2_kernel_args="", l0_cpu="max",
               l0_accel="tcg", l1_smp=2):
    """Runs cmd in L2; returns its serial log, L1's, L2's last query-vcpu-accel and
    whether L2's QEMU exited cleanly. With mover, each look at L2 once its user space
    runs also flips one vCPU (in turn) to the other backend over QMP, so that moves in
    both directions happen while the guest runs; res["qmp_moves"] counts them. With
    plugin, L2 runs this tree's TCG plugin (libmixedvm.so, with plugin_opts such as
    "window-ms=2000"), whose per-vCPU report comes back through L1's fourth serial
    port: res["plugin"], a list of dicts. extra_plugins are more plugins ("PATH[,ARGS]",
    PATH here, such as QEMU's examples) that L2 loads too, with -d plugin: what they print goes to
    L2's standard error, so to L1's console (res["l1_serial"]). With gdb_pty,
    that port is a pseudo-terminal here instead (res["gdb_pty"]), for a gdb on this
    machine to reach a gdbstub that L2 opens on /dev/ttyS3. on_look(mon, info, text, res),
    if given, runs at each look with L2's monitor open."""
    work = tempfile.mkdtemp(prefix="mixedvm-nested-")
    # The probe's verdict goes to L1's console through L2's stderr, whatever QMP does.
    l2_args = f"-accel {accel} -smp {smp} -m 512M -trace mixed_probe" + \
        (f" -cpu {cpu}" if cpu else "") + (f" {l2_extra}" if l2_extra else "") + \
        (f" -plugin /opt/libmixedvm.so,out=/dev/ttyS3{',' + plugin_opts if plugin_opts else ''}"
         if plugin else "") + \
        "".join(f" -plugin /opt/{os.path.basename(p)}" for p in extra_plugins) + \
        (" -d plugin" if extra_plugins else "")
    l2_append = ('console=ttyS0 panic=-1 '
                 + (l2_kernel_args + " " if l2_kernel_args else "") + f'mixedvm.cmd="{cmd}"')
    argv, l1_log, l2_log, l2_qmp = _l0_argv(
        work, l2_args, l2_append, l0_accel, l0_cpu, l1_smp,
        "pty" if gdb_pty else f"file:{os.path.join(work, 'l2-plugin.log')}",
        plugin=artifact("plugin") if plugin else None, extra_plugins=extra_plugins)
    if echo:
        print(f"L0: {' '.join(argv)}\nL2: {l2_args}\nlogs in {work}", flush=True)
    res = {"log_dir": work, "vcpus": None, "kvm_runs_kernel": None,
           "monitor_looks": 0, "monitor_error": None, "qmp_moves": 0, "gdb_pty": None}
    l0_err = open(os.path.join(work, "l0-output.log"), "w")
    # QEMU prints where a pty serial port went on stdout, and its errors on stderr.
    l0 = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=l0_err, stderr=subprocess.STDOUT)
    deadline, shown, last_look = time.monotonic() + minutes * 60, 0, time.monotonic()
    read = lambda path: open(path, errors="replace").read() if os.path.exists(path) else ""
    try:
        while l0.poll() is None and time.monotonic() < deadline:
            time.sleep(2)
            text = read(l2_log)
            if echo:
                print(text[shown:], end="", flush=True)
                shown = len(text)
            # Look at L2 every `every` seconds once its QEMU runs, and right when the
            # guest's user space starts (the command may be short).
            running = bool(text) and "MIXEDVM-END" not in text
            ready_now = "MIXEDVM-READY" in text and not res.get("looked_at_ready")
            if running and (ready_now or time.monotonic() - last_look >= every):
                res["looked_at_ready"] = "MIXEDVM-READY" in text
                last_look = time.monotonic()
                res["monitor_looks"] += 1
                if gdb_pty and not res["gdb_pty"]:
                    pty = re.search(r"char device redirected to (\S+) \(label serial3\)",
                                    read(l0_err.name))
                    res["gdb_pty"] = pty and pty.group(1)
                try:
                    mon = L2Monitor(l2_qmp)
                    info = mon.execute("query-vcpu-accel")
                    if on_look:
                        on_look(mon, info, text, res)
                    if mover and "MIXEDVM-READY" in text:
                        v = info["vcpus"][res["monitor_looks"] % len(info["vcpus"])]
                        other = "tcg" if v["accel"] == "kvm" else "kvm"
                        mon.execute("vcpu-set-accel", **{"cpu-index": v["cpu-index"],
                                                         "accel": other, "wait": False})
                        res["qmp_moves"] += 1
                    mon.close()
                    res["vcpus"], res["kvm_runs_kernel"] = info["vcpus"], info["kvm-runs-kernel"]
                except (OSError, ValueError, KeyError) as e:
                    res["monitor_error"] = str(e)   # L2 busy or gone: try again later
    finally:
        res["timed_out"] = l0.poll() is None
        if res["timed_out"]:
            l0.terminate()
            l0.wait()
        l0_err.close()
    res["l2_serial"], res["l1_serial"] = read(l2_log), read(l1_log)
    res["l2_qemu_clean_exit"] = "L2's QEMU exited rc=0" in res["l1_serial"]
    res["plugin"] = []
    for line in read(os.path.join(work, "l2-plugin.log")).splitlines():
        try:
            res["plugin"].append(json.loads(line.strip()))
        except ValueError:
            pass
    probe = trace_events.event("mixed_probe", "kvm_runs_kernel").parse(res["l1_serial"])
    res["probe_says_kernel"] = bool(probe) and probe[0]["kvm_runs_kernel"]
    if echo:
        print(res["l2_serial"][shown:])
    return res


class Scenario:
    """What a scenario's driver sees of L1 and its L2 QEMUs (run_nested_scenario): L2's
    console (every L2 QEMU writes it to /dev/ttyS1), L1's console, and two monitor
    ports: /dev/ttyS2 (port 2) and /dev/ttyS3 (port 3), each a UNIX socket here."""

    def __init__(self, work, l1_log, l2_log, sockets, proc):
        self.work, self.l1_log, self.l2_log = work, l1_log, l2_log
        self.sockets, self.proc = sockets, proc

    @staticmethod
    def _read(path):
        return open(path, errors="replace").read() if os.path.exists(path) else ""

    def console(self):
        return self._read(self.l2_log)

    def l1(self):
        return self._read(self.l1_log)

    def _wait(self, read, pattern, timeout, start):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.compile(pattern, re.M).search(read(), start)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(1)
        raise TimeoutError(f"no /{pattern}/ within {timeout} s; L2's console ends with:\n"
                           + self.console()[-1500:] + "\nL1's with:\n" + self.l1()[-1500:])

    def wait_console(self, pattern, timeout=600, start=0):
        return self._wait(self.console, pattern, timeout, start)

    def wait_l1(self, pattern, timeout=600, start=0):
        return self._wait(self.l1, pattern, timeout, start)

    def monitor(self, port, nth=1, timeout=300):
        """L2Monitor on a port, once L1's console says for the nth time that an L2 QEMU
        opened it ("L1: monitor PORT up", which the script prints a few seconds after it
        started that QEMU). Not earlier: bytes sent to a port that no L1 process has
        open fill L0's 16-byte UART FIFO, and L0 then stops serving the socket."""
        deadline = time.monotonic() + timeout
        while len(re.findall(rf"^L1: monitor {port} up", self.l1(), re.M)) < nth:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise TimeoutError(f"L1 did not open monitor port {port} ({nth}) within "
                                   f"{timeout} s:\n" + self.l1()[-1500:])
            time.sleep(1)
        err = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                mon = L2Monitor(self.sockets[port])
                try:
                    mon.execute("query-status")
                except BaseException:
                    mon.close()
                    raise
                return mon
            except (OSError, ValueError) as e:
                err = str(e)    # not e: its traceback would keep the socket open
                time.sleep(2)
        raise TimeoutError(f"no L2 monitor on port {port} within {timeout} s: {err}")

    def send_line(self, port, text):
        """One line to L1 through a port that no QEMU uses yet (the script reads it)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sockets[port])
            s.sendall(text.encode() + b"\n")
            time.sleep(1)

    @staticmethod
    def wait_migration(mon, timeout=600):
        """query-migrate until the migration ends; its last answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = mon.execute("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                return info
            time.sleep(1)
        raise TimeoutError(f"the migration did not end within {timeout} s: {info}")


def run_nested_scenario(script, driver, cmd, minutes=40, l0_accel="tcg,thread=single",
                        l1_smp=2, echo=False):
    """Runs a scenario of several L2 QEMUs: L1 sources `script` (busybox sh), in which
    `l2 ARGS` runs L2's QEMU on the guest image with the kernel command running `cmd`,
    and ARGS give everything else (accelerator, -smp, serial ports, monitors on
    /dev/ttyS2 and /dev/ttyS3, -incoming), and after starting a QEMU whose monitor is
    on /dev/ttySN prints "L1: monitor N up". Meanwhile driver(Scenario) runs here and
    returns a dict. Returns that dict with the consoles and whether L1 finished; an
    exception in the driver is in res["driver_error"]."""
    import traceback
    work = tempfile.mkdtemp(prefix="mixedvm-nested-")
    l2_append = f'console=ttyS0 panic=-1 mixedvm.cmd="{cmd}"'
    port3 = os.path.join(work, "l2-qmp3.sock")
    argv, l1_log, l2_log, l2_qmp = _l0_argv(
        work, "", l2_append, l0_accel, "max", l1_smp,
        "chardev:l2qmp3", script=script)
    argv[-2:-2] = ["-chardev", f"socket,id=l2qmp3,path={port3},server=on,wait=off"]
    if echo:
        print(f"L0: {' '.join(argv)}\nlogs in {work}", flush=True)
    l0_err = open(os.path.join(work, "l0-output.log"), "w")
    l0 = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=l0_err, stderr=subprocess.STDOUT)
    sc = Scenario(work, l1_log, l2_log, {2: l2_qmp, 3: port3}, l0)
    res = {"log_dir": work, "driver_error": None}
    try:
        time.sleep(3)   # the monitor sockets exist once L0 runs
        res.update(driver(sc) or {})
    except Exception:   # noqa: BLE001 -- reported by the test, with the consoles
        res["driver_error"] = traceback.format_exc()
    finally:
        # A failed driver leaves L1 waiting for nothing: a minute for its last words.
        deadline = time.monotonic() + (60 if res["driver_error"] else minutes * 60)
        while l0.poll() is None and time.monotonic() < deadline:
            time.sleep(2)
        res["timed_out"] = l0.poll() is None
        if res["timed_out"]:
            l0.terminate()
            l0.wait()
        l0_err.close()
    res["l2_serial"], res["l1_serial"] = sc.console(), sc.l1()
    return res


def trace_for_looks(events, looks=(2, 3, 4)):
    """An on_look for run_nested: L2's trace events on during the given looks after its
    user space started, off otherwise. Traced from boot, a KVM-ioctl trace floods L1's
    console, a serial port at TCG speed, and the guest needed 15 minutes to boot."""
    def look(mon, info, text, res):
        if "MIXEDVM-READY" not in text:
            return
        res["traced_looks"] = res.get("traced_looks", 0) + 1
        for e in events:
            mon.execute("trace-event-set-state", name=e, enable=res["traced_looks"] in looks)
    return look


def check_clean_end(res, check):
    """The checks every nested test ends with: L2's command exited 0, its kernel reported
    no trouble, and L2's QEMU exited cleanly. Removes the log folder when they pass."""
    l2, l1 = res["l2_serial"], res["l1_serial"]
    check("MIXEDVM-END rc=0" in l2, "the guest command failed")
    trouble = [l for l in l2.splitlines() if KERNEL_TROUBLE.search(l)]
    check(not trouble, "guest kernel trouble:\n  " + "\n  ".join(trouble[:10]))
    check(res["l2_qemu_clean_exit"], "L2's QEMU did not exit cleanly:\n" + l1[-1500:])
    shutil.rmtree(res["log_dir"])     # kept only when a check failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--smp", type=int, default=1, help="L2's vCPUs")
    ap.add_argument("--cpu", default="", help="L2's -cpu (default: mixed's default)")
    ap.add_argument("--accel", default="mixed", help="L2's -accel")
    ap.add_argument("--l2-extra", default="", help="more arguments for L2's QEMU (e.g. -trace ...)")
    ap.add_argument("--every", type=float, default=10, help="seconds between looks at L2")
    ap.add_argument("--l0-accel", default="tcg", help="L0's -accel")
    ap.add_argument("--l1-smp", type=int, default=2,
                    help="L1's CPUs; 1 makes L0's TCG coherent for cross-modifying code, "
                         "which multi-threaded TCG is not (docs/mixed.md)")
    ap.add_argument("--plugin", action="store_true", help="run L2 with libmixedvm.so")
    ap.add_argument("--mover", action="store_true",
                    help="flip one vCPU to the other backend at each look")
    ap.add_argument("--cmd", default="dmesg | grep -i -E 'tsc|clocksource|x2apic|apic routing'; "
                    "selfcheck --scale 0.05")
    args = ap.parse_args()
    res = run_nested(args.cmd, args.smp, args.cpu, args.accel, args.minutes, echo=True,
                     every=args.every, l2_extra=args.l2_extra, mover=args.mover,
                     plugin=args.plugin, l0_accel=args.l0_accel,
                     l1_smp=args.l1_smp)
    print("--- L1 ---\n" + res["l1_serial"][-2000:])
    if res["plugin"]:
        print("L2 plugin: " + json.dumps(res["plugin"]))
    print(f"L2 kvm-runs-kernel: {res['kvm_runs_kernel']}; QMP moves: {res['qmp_moves']}; "
          f"vCPUs: {json.dumps(res['vcpus'])}")
    return 0 if "MIXEDVM-END rc=0" in res["l2_serial"] else 1


if __name__ == "__main__":
    sys.exit(main())
