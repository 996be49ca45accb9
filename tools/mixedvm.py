"""mixedvm: build, run and test the mixed KVM/TCG QEMU.

    tools/mixedvm demo               boot the 4-vCPU demo guest and run its workload
    tools/mixedvm demo hot-tcg       the same guest placed by the hot-tcg policy
    tools/mixedvm test               run every test (unit and integration)
    tools/mixedvm report [--quick]   verify a host with /dev/kvm: tests, benches, probes,
                                     experiments, in one folder (tools/host_report.py)
    tools/mixedvm setup              install what a fresh Debian 12 needs (as root)
    tools/mixedvm build              build libmixedvm, the guest programs and QEMU
    tools/mixedvm image              build the guest kernel + initramfs
    tools/mixedvm path qemu|kernel|initrd|plugin

Every command does the steps before it on its own, incrementally: `demo` and `test` on a
fresh machine install packages, fetch and build QEMU and make the image. Logs of every
step are in build/logs/; a failing step prints its last lines and the log's path.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
BUILD = os.path.abspath(os.environ.get("MIXEDVM_BUILD") or os.path.join(ROOT, "build"))
LOGS = os.path.join(BUILD, "logs")
sys.path.insert(0, TOOLS)

# Debian packages. QEMU 10 needs Meson >= 1.5, which bookworm has only in backports;
# SeaBIOS and the option ROMs come from the same QEMU 10 generation.
BACKPORTS = "bookworm-backports"
APT_FROM_BACKPORTS = ["meson", "python3-pycotap", "seabios", "qemu-system-data"]
APT_PACKAGES = [
    # toolchain and QEMU build
    "build-essential", "pkgconf", "ninja-build", "python3-venv", "flex", "bison",
    "libglib2.0-dev", "zlib1g-dev", "dpkg-dev", "patch", "rsync", "git", "xz-utils", "file",
    # libraries of libmixedvm, its tests and benchmarks
    "libtbb-dev", "libhwloc-dev", "liburcu-dev", "libgtest-dev", "libgmock-dev",
    "libbenchmark-dev",
    # guest image
    "busybox-static",
    # the gdb test (tests/integration/test_mixed_nested_gdb.py)
    "gdb",
    # only tools/npb_runner.py --report, for its plots
    "python3-matplotlib",
]
MIN_MESON = "1.5"
SOURCES_FILE = "/etc/apt/sources.list.d/mixedvm.sources"
QEMU_BUILD_FREE_GIB = 4

ARTIFACTS = {
    "qemu": os.path.join(BUILD, "qemu", "qemu-system-x86_64"),
    "kernel": os.path.join(BUILD, "image", "vmlinuz"),
    "initrd": os.path.join(BUILD, "image", "initrd.img"),
    # our TCG plugin (qemu/files/contrib/plugins/mixedvm.c); QEMU's examples are beside
    # it in contrib/plugins and in tests/tcg/plugins
    "plugin": os.path.join(BUILD, "qemu", "contrib", "plugins", "libmixedvm.so"),
}


class Fail(Exception):
    """A step failed; message says what, log (if any) holds the details."""

    def __init__(self, message, log=None, hint=None):
        super().__init__(message)
        self.log = log
        self.hint = hint


# --------------------------------------------------------------------------- output

TTY = sys.stdout.isatty()


def say(text=""):
    print(text, flush=True)


class Step:
    """One long step: a title, a live progress line on a terminal, a timed result line."""

    def __init__(self, title):
        self.title = title
        self.start = time.monotonic()
        self.last_report = -1
        self.last_line_time = 0.0
        say(f"▸ {title}")

    def progress(self, done, total, detail=""):
        pct = int(100 * done / max(total, 1))
        if TTY:
            width = 30
            filled = width * done // max(total, 1)
            bar = "█" * filled + "·" * (width - filled)
            sys.stdout.write(f"\r  [{bar}] {pct:3d}% {detail[:40]:<40}")
            sys.stdout.flush()
        elif total >= 50 and pct // 10 != self.last_report // 10:
            say(f"  {pct:3d}% ({done}/{total}) {time.monotonic() - self.start:.0f} s")
        self.last_report = pct

    def note(self, text):
        if TTY:
            sys.stdout.write(f"\r  {text[:76]:<76}")
            sys.stdout.flush()
        elif time.monotonic() - self.last_line_time > 30:
            say(f"  {text}")
            self.last_line_time = time.monotonic()

    def done(self, result="done"):
        if TTY:
            sys.stdout.write("\r" + " " * 80 + "\r")
        say(f"  ✓ {result} ({time.monotonic() - self.start:.1f} s)")


NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)")


def run_logged(step, argv, log_name, env=None, cwd=None, what=None):
    """Run argv with output to build/logs/<log_name>.log, showing progress on `step`."""
    os.makedirs(LOGS, exist_ok=True)
    log_path = os.path.join(LOGS, log_name + ".log")
    full_env = dict(os.environ, **(env or {}))
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(argv) + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=full_env, cwd=cwd, text=True,
                                    errors="replace")
        except FileNotFoundError:
            raise Fail(f"{argv[0]} is not installed", hint="run: tools/mixedvm setup")
        for line in proc.stdout:
            log.write(line)
            m = NINJA_PROGRESS.match(line)
            if m:
                step.progress(int(m.group(1)), int(m.group(2)), m.group(3))
            elif line.startswith("==> "):
                step.note(line[4:].strip())
        rc = proc.wait()
    if rc != 0:
        raise Fail(f"{what or step.title} failed (exit code {rc})", log=log_path)
    return log_path


def quiet(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


# --------------------------------------------------------------------------- setup

def installed_version(pkg):
    out = quiet(["dpkg-query", "-W", "-f", "${Status}|${Version}", pkg])
    if out.returncode != 0 or not out.stdout.startswith("install ok installed"):
        return None
    return out.stdout.split("|", 1)[1]


def version_ge(a, b):
    return quiet(["dpkg", "--compare-versions", a, "ge", b]).returncode == 0


def missing_packages():
    missing = [p for p in APT_PACKAGES if installed_version(p) is None]
    backports = []
    for p in APT_FROM_BACKPORTS:
        v = installed_version(p)
        if v is None or (p == "meson" and not version_ge(v, MIN_MESON)):
            backports.append(p)
    return missing, backports


def ensure_backports_source():
    """Add bookworm-backports (binary packages) to apt; return True if it was added."""
    if os.path.exists(SOURCES_FILE):
        return False
    with open(SOURCES_FILE, "w") as f:
        f.write("# Added by mixedvm tools/mixedvm setup: Meson >= 1.5, SeaBIOS and QEMU 10 ROMs\n"
                "Types: deb\nURIs: http://deb.debian.org/debian\n"
                f"Suites: {BACKPORTS}\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return True


def check_disk(path, need_gib, what):
    os.makedirs(path, exist_ok=True)
    free = shutil.disk_usage(path).free / 2**30
    if free < need_gib:
        raise Fail(f"low disk: {free:.1f} GiB free at {path}, {what} needs about {need_gib} GiB",
                   hint="free some space or point MIXEDVM_BUILD at a larger disk")


def cmd_setup(_args=None):
    if not os.path.exists("/etc/debian_version"):
        raise Fail("mixedvm is set up with Debian's packages; this is not a Debian system")
    missing, backports = missing_packages()
    if not missing and not backports:
        return
    if os.geteuid() != 0:
        raise Fail("packages are missing: " + " ".join(missing + backports),
                   hint="run tools/mixedvm setup as root (it uses apt-get)")
    step = Step(f"installing {len(missing) + len(backports)} Debian packages")
    ensure_backports_source()
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        run_logged(step, ["apt-get", "update"], "apt-update", env=env)
    except Fail as e:
        raise Fail("apt-get update failed: the Debian mirror cannot be reached (no network?)",
                   log=e.log)
    check_disk("/var/cache/apt", 2, "installing packages")
    if backports:
        run_logged(step, ["apt-get", "install", "-y", "-q", "-t", BACKPORTS] + backports,
                   "apt-install-backports", env=env, what="apt-get install " + " ".join(backports))
    if missing:
        run_logged(step, ["apt-get", "install", "-y", "-q"] + missing, "apt-install", env=env,
                   what="apt-get install")
    missing, backports = missing_packages()
    if missing or backports:
        raise Fail("still missing after apt-get install: " + " ".join(missing + backports))
    step.done("packages installed")


# --------------------------------------------------------------------------- build

def meson_build():
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        step = Step("configuring the mixedvm C++ build (Meson)")
        run_logged(step, ["meson", "setup", BUILD, ROOT], "meson-setup", what="meson setup")
        step.done()
    step = Step("building libmixedvm, tests, benchmarks and guest programs")
    run_logged(step, ["ninja", "-C", BUILD], "ninja-mixedvm", what="the C++ build")
    step.done()


def qemu_env():
    # pkg-config prefers mixedvm-uninstalled.pc: QEMU links the library straight from
    # the build tree, and ninja relinks QEMU when libmixedvm.a changes.
    return {"MIXEDVM_BUILD": BUILD, "PKG_CONFIG_PATH": os.path.join(BUILD, "meson-uninstalled")}


def cmd_build(_args=None):
    cmd_setup()
    meson_build()
    if not os.path.exists(os.path.join(BUILD, "qemu", "build.ninja")):
        check_disk(BUILD, QEMU_BUILD_FREE_GIB, "building QEMU")
    step = Step("building patched QEMU 10.0 (x86_64-softmmu)")
    run_logged(step, [os.path.join(ROOT, "qemu", "build-qemu.sh")], "qemu-build", env=qemu_env(),
               what="the QEMU build")
    step.done(os.path.relpath(ARTIFACTS["qemu"], ROOT))


def guest_programs():
    """The static guest programs Meson built (listed by tools/meson.build)."""
    with open(os.path.join(BUILD, "tools", "guest-programs.txt")) as f:
        return [line.strip() for line in f if line.strip()]


def cmd_image(_args=None, built=False):
    if not built:
        cmd_setup()
        meson_build()
    import guest_image
    step = Step("guest image (Debian kernel + busybox initramfs)")
    try:
        rebuilt = guest_image.build(os.path.join(BUILD, "image"), guest_programs())
    except guest_image.ImageError as e:
        raise Fail(str(e))
    step.done("built" if rebuilt else "up to date")


def cmd_path(args):
    if len(args) != 1 or args[0] not in ARTIFACTS:
        raise Fail("usage: tools/mixedvm path qemu|kernel|initrd|plugin")
    path = ARTIFACTS[args[0]]
    if not os.path.exists(path):
        raise Fail(f"{args[0]} is not built yet ({path})", hint="run: tools/mixedvm build image")
    say(path)


# --------------------------------------------------------------------------- demo

def vcpu_table(info):
    rows = ["  vCPU  placed  running  moves  kernel-entries  TCG user-returns   on KVM    on TCG"
            "  (user)  last move"]
    for v in info["vcpus"]:
        last = v.get("last-move")
        rows.append(f"  {v['cpu-index']:>4}  {v['accel']:<6}  {v['running-on']:<7}  {v['moves']:>5}"
                    f"  {v['kernel-entries']:>14}  {v['tcg-user-returns']:>16}"
                    f"  {v['kvm-ns'] / 1e9:6.2f} s  {v['tcg-ns'] / 1e9:6.2f} s"
                    f"  {100 * v['tcg-user-ns'] / v['tcg-ns'] if v['tcg-ns'] else 0:5.1f}%"
                    + (f"  {last['latency-ns'] / 1e3:6.1f} us" if last else ""))
    return "\n".join(rows)


def demo_hot_tcg(Guest, VmError, t0):
    """hot-tcg places a compute vCPU on KVM and a syscall-heavy one on TCG."""
    say("  workload vCPU 1: spinrate (user-mode floating point); vCPU 2: sysloop (system calls)")
    say("  policy   hot-tcg, every vCPU starting on TCG")
    g = Guest("demo-hot-tcg", ARTIFACTS["qemu"], ARTIFACTS["kernel"], ARTIFACTS["initrd"], smp=4,
              accel="mixed,tcg-cpus=0-3,policy=hot-tcg",
              cmd="spinrate --cpu 1 --iterations 6000000000 & sysloop --cpu 2 --seconds 14 & wait")
    g.start()
    g.wait_for(r"MIXEDVM-READY", timeout=180)
    say()
    say("     t   vCPU0  vCPU1  vCPU2  vCPU3   (placement; * = executing on KVM right now)")
    last = None
    for _ in range(12):
        if "MIXEDVM-END" in g.serial():
            break
        try:
            last = g.qmp.execute("query-vcpu-accel")
        except (VmError, OSError):
            break   # the guest finished and QEMU quit between two looks
        cells = [f"{e['accel']}{'*' if e['running-on'] == 'kvm' else ' '}" for e in last["vcpus"]]
        say(f"  {time.monotonic() - t0:4.0f}s   " + "   ".join(cells))
        time.sleep(1)
    if last:
        say()
        say(vcpu_table(last))
    g.wait_end(timeout=300)
    for line in g.serial().splitlines():
        if line.startswith(("spinrate", "sysloop")):
            say("  " + line)
    g.check_kernel_healthy()
    g.stop()


def cmd_demo(args=None):
    if args and args != ["hot-tcg"]:
        raise Fail(f"unknown demo '{' '.join(args)}' (tools/mixedvm demo [hot-tcg])")
    cmd_build()
    cmd_image(built=True)
    from mixedvm_vm import Guest, VmError, kvm_unavailable
    version = quiet([ARTIFACTS["qemu"], "-version"]).stdout.splitlines()
    kernel_version = open(os.path.join(BUILD, "image", "kernel-version")).read().strip()
    no_kvm = kvm_unavailable()
    accel = "tcg" if no_kvm else "mixed"
    say()
    say("mixedvm demo")
    say(f"  QEMU     {version[0] if version else '?'}; {version[-1] if version else ''}")
    say(f"  guest    {kernel_version}, busybox initramfs, 4 vCPUs, 512 MiB")
    if accel == "tcg":
        say(f"  accel    tcg: {no_kvm}, so -accel mixed cannot run here")
    say("  workload selfcheck: Fibonacci mod p, zeta(2) and a prime sieve, one thread per vCPU")
    say()
    t0 = time.monotonic()
    if args == ["hot-tcg"]:
        if accel != "mixed":
            raise Fail("the hot-tcg demo needs -accel mixed, so /dev/kvm")
        try:
            return demo_hot_tcg(Guest, VmError, t0)
        except VmError as e:
            raise Fail(f"demo guest failed: {e}")
    g = Guest("demo", ARTIFACTS["qemu"], ARTIFACTS["kernel"], ARTIFACTS["initrd"], smp=4,
              accel=accel, cmd="selfcheck --expect-cpus 4 --rounds 60")
    try:
        g.start()
        m = g.wait_for(r"MIXEDVM-READY cpus=(\d+)", timeout=180)
        say(f"  guest up in {time.monotonic() - t0:.1f} s; it sees {m.group(1)} CPUs")
        if accel == "mixed":
            info = g.qmp.execute("query-vcpu-accel")
            say(f"  accel    -accel mixed; KVM probe: {info['kvm-probe']}")
            say()
            g.wait_for(r"selfcheck: 4 CPUs online", timeout=120)
            say("  moving vCPUs between KVM and TCG while the workload runs (QMP vcpu-set-accel):")
            plan = [(c, "kvm") for c in range(4)] + [(0, "tcg"), (2, "tcg"), (0, "kvm"), (1, "tcg")]
            for cpu, to in plan:
                if "MIXEDVM-END" in g.serial():
                    break
                t = time.monotonic()
                r = g.qmp.execute("vcpu-set-accel", **{"cpu-index": cpu, "accel": to})
                say(f"    t={t - t0:5.1f} s  vCPU {cpu} -> {to:<3}  {r['status']:<9} "
                    f"(running on {r['running-on']}, {1e3 * (time.monotonic() - t):.1f} ms)")
                time.sleep(0.6)
            say()
            say(vcpu_table(g.qmp.execute("query-vcpu-accel")))
        else:
            cpus = g.qmp.execute("query-cpus-fast")
            say("  vCPU  backend  host thread")
            for c in cpus:
                say(f"  {c['cpu-index']:>4}  {accel:<7}  {c['thread-id']}")
        rc = g.wait_end(timeout=600)
        say()
        for line in g.serial().splitlines():
            if line.startswith("selfcheck:"):
                say("  " + line)
        passed = "SELFCHECK PASS" in g.serial() and rc == 0
        g.check_kernel_healthy()
        g.wait_exit()
    except VmError as e:
        g.stop()
        keep = os.path.join(LOGS, "demo")
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(g.dir, keep, ignore=shutil.ignore_patterns("*.sock"))
        raise Fail(f"demo guest failed: {e}", log=os.path.join(keep, "serial.log"))
    g.stop()
    say()
    if passed:
        say(f"  result   SELFCHECK PASS: every vCPU's results verified; total {time.monotonic() - t0:.1f} s")
    else:
        raise Fail(f"the workload's self-check failed (guest exit code {rc})",
                   log=os.path.join(g.dir, "serial.log"))


# --------------------------------------------------------------------------- test

def cmd_test(args):
    cmd_build()
    cmd_image(built=True)
    env = dict(os.environ, MIXEDVM_QEMU=ARTIFACTS["qemu"], MIXEDVM_KERNEL=ARTIFACTS["kernel"],
               MIXEDVM_INITRD=ARTIFACTS["initrd"], MIXEDVM_PLUGIN=ARTIFACTS["plugin"])
    say("▸ running the tests (meson test)")
    t0 = time.monotonic()
    argv = ["meson", "test", "-C", BUILD, "--print-errorlogs", "--no-rebuild"] + list(args)
    rc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL).returncode
    results = {}
    testlog = os.path.join(BUILD, "meson-logs", "testlog.json")
    if os.path.exists(testlog):
        with open(testlog) as f:
            for line in f:
                if line.strip():   # a meson test run beside this one may leave it torn
                    entry = json.loads(line)
                    results[entry["name"]] = entry["result"]
    # EXPECTEDFAIL is a negative control doing its job (meson's should_fail).
    passed = sum(1 for r in results.values() if r in ("OK", "EXPECTEDFAIL"))
    skipped = sum(1 for r in results.values() if r == "SKIP")
    failed = len(results) - passed - skipped
    for name, result in results.items():
        if result == "SKIP":
            say(f"  skipped: {name} (reason in build/meson-logs/testlog.txt)")
    say(f"  tests took {time.monotonic() - t0:.0f} s; logs of failed guests: build/test-logs/")
    say(f"{passed} passed, {failed} failed, {skipped} skipped")
    if rc != 0 or failed or not results:
        raise Fail("tests failed" if results else "no test ran")


# --------------------------------------------------------------------------- report

def cmd_report(args):
    if any(a in ("-h", "--help", "--compare", "--update-spec") for a in args):
        import host_report       # reads reports: nothing to build
        rc = host_report.main(args)
        if rc:
            raise Fail(f"report: exit code {rc}")
        return
    cmd_build()
    cmd_image(built=True)
    os.environ.update(MIXEDVM_QEMU=ARTIFACTS["qemu"], MIXEDVM_KERNEL=ARTIFACTS["kernel"],
                      MIXEDVM_INITRD=ARTIFACTS["initrd"], MIXEDVM_PLUGIN=ARTIFACTS["plugin"])
    import host_report
    rc = host_report.main(args)
    if rc:
        raise Fail(f"the report could not run (exit code {rc})")


# --------------------------------------------------------------------------- main

COMMANDS = {
    "setup": cmd_setup,
    "build": cmd_build,
    "image": cmd_image,
    "demo": cmd_demo,
    "test": cmd_test,
    "report": cmd_report,
    "path": cmd_path,
}


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        say(__doc__.strip())
        return 0
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        print(f"mixedvm: error: unknown command '{argv[0]}' (see tools/mixedvm --help)", file=sys.stderr)
        return 2
    try:
        cmd(argv[1:])
    except Fail as e:
        if TTY:
            sys.stdout.write("\n")
        print(f"mixedvm: error: {e}", file=sys.stderr)
        if e.log and os.path.exists(e.log):
            with open(e.log, errors="replace") as f:
                tail = f.readlines()[-15:]
            print("  last lines of " + e.log + ":", file=sys.stderr)
            for line in tail:
                print("  | " + line.rstrip(), file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmixedvm: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
