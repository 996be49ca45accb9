"""Run the mixedvm guest in the real QEMU and talk to it over a real QMP socket.

Shared by tools/mixedvm (demo) and the integration tests. A Guest is one QEMU process:
serial console to a file, QMP on a UNIX socket, and helpers that wait for the markers
that the guest's /init prints (MIXEDVM-READY, MIXEDVM-END rc=N).
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time

# Lines on the guest console that mean the guest kernel is broken even if the workload passed.
KERNEL_TROUBLE = re.compile(r"(Kernel panic|Oops|BUG:|general protection fault|WARNING: CPU:|segfault at)")


# The summary every NPB kernel prints (npb::Report in tools/guest/npb_common.h).
NPB_REPORT = re.compile(r" (?P<kernel>\w+) Benchmark Completed\..*?"
                        r"Time in seconds =\s+(?P<seconds>[0-9.]+).*?"
                        r"Total threads\s+=\s+(?P<threads>\d+).*?"
                        r"Mop/s total\s+=\s+(?P<mops>[0-9.]+).*?"
                        r"Verification\s+=\s+(?P<verification>\w+)", re.S)


def kvm_unavailable():
    """Why this process cannot use KVM (-accel kvm, -accel mixed), or None if it can."""
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm is absent"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user"
    return None


def npb_report(text, kernel=None):
    """The first NPB summary in text (of `kernel`, e.g. "EP", if given), or None.

    A dict: seconds, threads, mops, verification (as printed) and verified (a bool)."""
    pos = 0
    while m := NPB_REPORT.search(text, pos):
        if kernel is None or m["kernel"] == kernel:
            return {"seconds": float(m["seconds"]), "threads": int(m["threads"]),
                    "mops": float(m["mops"]), "verification": m["verification"],
                    "verified": m["verification"] == "SUCCESSFUL"}
        pos = m.start() + 1
    return None


class VmError(Exception):
    """QEMU or the guest did not do what was expected (timeout, early exit, QMP trouble)."""


class QmpError(Exception):
    def __init__(self, cls, desc):
        super().__init__(f"{cls}: {desc}")
        self.cls = cls
        self.desc = desc


class Qmp:
    """A minimal synchronous QMP client: one command at a time, events queued."""

    def __init__(self, path, transcript, timeout=30.0, proc=None, stderr_path=None):
        self.transcript = transcript
        self.events = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if proc is not None and proc.poll() is not None:
                    tail = open(stderr_path).read().strip()[-600:] if stderr_path else ""
                    raise VmError(f"QEMU exited with {proc.returncode} before QMP came up:\n{tail}")
                if time.monotonic() > deadline:
                    raise VmError(f"QMP socket {path} did not come up in {timeout:.0f} s")
                time.sleep(0.05)
        self.timeout = timeout
        self.buf = b""      # our own line buffer: a timed-out makefile() is unusable
        greeting = self._read()
        if "QMP" not in greeting:
            raise VmError(f"unexpected QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self, timeout=None):
        """One JSON message; socket.timeout if none arrives within `timeout`."""
        while b"\n" not in self.buf:
            self.sock.settimeout(timeout if timeout is not None else self.timeout)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise VmError("QMP connection closed by QEMU")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        text = line.decode("utf-8")
        self.transcript.write("<- " + text + "\n")
        return json.loads(text)

    def execute(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        data = json.dumps(msg)
        self.transcript.write("-> " + data + "\n")
        self.sock.sendall(data.encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise QmpError(reply["error"]["class"], reply["error"]["desc"])
            return reply["return"]

    def pump_events(self, seconds=0.5):
        """Read events that arrive within `seconds` (QEMU sends them unprompted)."""
        try:
            while True:
                msg = self._read(timeout=seconds)
                if "event" in msg:
                    self.events.append(msg)
        except (socket.timeout, TimeoutError):
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def artifact(name):
    """Path of a built artifact (qemu, kernel, initrd): $MIXEDVM_<NAME>, else `tools/mixedvm path`."""
    env = os.environ.get("MIXEDVM_" + name.upper())
    if env:
        return env
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mixedvm")
    out = subprocess.run([tool, "path", name], capture_output=True, text=True)
    if out.returncode != 0:
        raise VmError(f"cannot locate {name}: {out.stderr.strip()} (run tools/mixedvm build image)")
    return out.stdout.strip()


def built_guest(name, **kwargs):
    """A Guest running this tree's QEMU, kernel and initrd."""
    return Guest(name, artifact("qemu"), artifact("kernel"), artifact("initrd"), **kwargs)


# The guest command for experiments run from a snapshot (tools/npb_runner.py
# --from-snapshot): it runs each line that arrives on its second serial port
# (Guest(command_port=True), send_command) and ends each with a marker. The port is held
# open, in raw mode, from before the marker that says the guest waits.
SERVE_COMMANDS = ("exec 3< /dev/ttyS1; stty -F /dev/ttyS1 raw -echo; echo MIXEDVM-SERVING; "
                  "while read -r c <&3; do eval $c; echo MIXEDVM-RUN-END rc=$?; done")


class Guest:
    """One QEMU process running the mixedvm guest image."""

    def __init__(self, name, qemu, kernel, initrd, smp=4, accel="tcg", cmd="selfcheck",
                 memory="512M", extra_args=(), kernel_args="", command_port=False,
                 incoming=None):
        self.name = name
        self.qemu, self.kernel, self.initrd = qemu, kernel, initrd
        self.smp = smp
        self.accel = accel
        self.cmd = cmd
        self.memory = memory
        self.extra_args = list(extra_args)
        self.kernel_args = kernel_args     # more guest kernel parameters
        # A second serial port, the guest's /dev/ttyS1, a UNIX socket here: commands
        # for a guest that waits for them (SERVE_COMMANDS, send_command).
        self.command_port = command_port
        self.incoming = incoming           # -incoming URI: continue a saved VM
        self.dir = tempfile.mkdtemp(prefix=f"mixedvm-{name}-")
        self.serial_path = os.path.join(self.dir, "serial.log")
        self.stderr_path = os.path.join(self.dir, "qemu-stderr.log")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.command_path = os.path.join(self.dir, "command.sock")
        self.transcript = open(os.path.join(self.dir, "qmp-transcript.log"), "w")
        self.proc = None
        self.qmp = None

    def argv(self):
        # No hint for the guest's software: it must run as it would anywhere
        # (docs/mixed.md, "One guest-visible CPU").
        append = ('console=ttyS0 panic=-1 '
                  + (self.kernel_args + " " if self.kernel_args else "") +
                  f'mixedvm.cmd="{self.cmd}"')
        # An experiment's variant (tools/host_report.py, bench/experiments.toml) reaches
        # every guest a bench boots through these two, with no change to the bench.
        accel = self.accel
        if accel.startswith("mixed") and os.environ.get("MIXEDVM_EXTRA_ACCEL"):
            accel += "," + os.environ["MIXEDVM_EXTRA_ACCEL"]
        extra = shlex.split(os.environ.get("MIXEDVM_EXTRA_ARGS", ""))
        return [self.qemu,
                "-nodefaults", "-display", "none", "-no-reboot",
                "-machine", "q35", "-accel", accel,
                "-smp", str(self.smp), "-m", self.memory,
                "-kernel", self.kernel, "-initrd", self.initrd,
                "-append", append,
                "-serial", f"file:{self.serial_path}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"] + \
            (["-chardev", f"socket,id=command,path={self.command_path},server=on,wait=off",
              "-serial", "chardev:command"] if self.command_port else []) + \
            (["-incoming", self.incoming] if self.incoming else []) + extra + self.extra_args

    def send_command(self, line):
        """One shell command line to a guest running SERVE_COMMANDS; its output goes to
        the console, followed by "MIXEDVM-RUN-END rc=N"."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(self.command_path)
            sock.sendall(line.encode() + b"\n")
            time.sleep(0.2)     # QEMU reads it before the socket closes

    def start(self):
        self.stderr = open(self.stderr_path, "w")
        argv = self.argv()
        with open(os.path.join(self.dir, "command-line"), "w") as f:
            f.write(" ".join(argv) + "\n")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=subprocess.STDOUT)
        self.qmp = Qmp(self.qmp_path, self.transcript, proc=self.proc,
                       stderr_path=self.stderr_path)
        return self

    def serial(self):
        try:
            with open(self.serial_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern, timeout):
        """Wait until the serial console matches `pattern`; return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.serial())
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.serial())
                if m:
                    return m
                raise VmError(f"QEMU exited with {self.proc.returncode} before /{pattern}/ appeared")
            time.sleep(0.1)
        raise VmError(f"/{pattern}/ did not appear on the serial console within {timeout} s")

    def wait_end(self, timeout):
        """Wait for /init's end marker and return the guest command's exit code."""
        m = self.wait_for(r"MIXEDVM-END rc=(\d+)", timeout)
        return int(m.group(1))

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VmError(f"QEMU did not exit within {timeout} s after the guest powered off")

    def check_kernel_healthy(self):
        bad = [l for l in self.serial().splitlines() if KERNEL_TROUBLE.search(l)]
        if bad:
            raise VmError("guest kernel reported trouble:\n  " + "\n  ".join(bad[:10]))

    def stop(self):
        if self.qmp:
            self.qmp.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.transcript.close()


class BareQemu(Guest):
    """QEMU with no machine and no guest (-machine none, paused): only its QMP answers."""

    def __init__(self, name, qemu, accel):
        super().__init__(name, qemu, kernel=None, initrd=None, accel=accel)

    def argv(self):
        return [self.qemu, "-nodefaults", "-display", "none", "-machine", "none",
                "-accel", self.accel, "-S", "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
