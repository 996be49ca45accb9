#!/usr/bin/env python3
"""Run the NPB experiment matrix under every mixedvm configuration.

    tools/npb_runner.py [--kernels ep,is,cg,mg,ft] [--classes A] [--vcpus 4] [--reps 1]
                        [--configs LIST] [--results FILE] [--report docs/experiments.md]
                        [--program 'NAME=PATH [ARGS...]' ...] [--from-snapshot]

Each run is one kernel, at one class, with one vCPU count, in one configuration:

    native     the same static binary on the host, with as many threads
    tcg        stock -accel tcg (the reference for all-TCG)
    mixed-tcg  -accel mixed,policy=tcg-only (every vCPU on TCG)
    static-K   -accel mixed with vCPUs 0..K-1 placed on KVM (K = 1 .. vcpus)
    kvm-only   -accel mixed,policy=kvm-only
    hot-tcg    -accel mixed,policy=hot-tcg
    hot-tcg-self  the same with policy-params=zap-us=0: blind to what its moves cost others
    sample     -accel mixed,policy=sample

--program adds a program of your own to the matrix, beside the kernels: a static x86-64
binary that prints NPB's summary (" XX Benchmark Completed.", "Time in seconds =",
"Total threads =", "Mop/s total =", "Verification = SUCCESSFUL"), such as a kernel of
the official NPB 3.4 OpenMP suite built with -static. It goes into the guest image as
/bin/NAME, and runs there and natively with OMP_NUM_THREADS set to the vCPU count and
ARGS, where {threads} becomes that count. Its class is whatever it was built for
(recorded as "-"). Example: --program 'cgA=/opt/NPB3.4-OMP/bin/cg.A.x'.

A run records the NPB summary (time, Mop/s, verification), its wall time and, for guest
runs, the per-vCPU telemetry from query-vcpu-accel (time on each backend, moves). Each
result is one JSON line, appended as it finishes, so an interrupted matrix resumes where it
stopped. A failed or unverified run is recorded with its status, and shown as such in the
tables; it is never dropped. --report writes the results page (tables and plots) from the
recorded runs only, so no number is copied by hand.

--from-snapshot boots each guest configuration once and runs every repetition from a
snapshot taken once the guest waits for commands (docs/mixed.md, "Snapshots and
migration"): the repetitions start from one state and skip the boot. Each run records
its mode ("boot" or "snapshot"), and the results page says which were used.
"""
import argparse
import collections
import csv
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
from guest_image import Cpio  # noqa: E402
from mixedvm_vm import (SERVE_COMMANDS, Guest, VmError, artifact, built_guest,  # noqa: E402
                        npb_report)

KERNELS = ["ep", "is", "cg", "mg", "ft"]


class Program:
    """A user's program in the matrix (--program 'NAME=PATH [ARGS...]')."""

    def __init__(self, spec):
        words = shlex.split(spec)
        if not words or "=" not in words[0]:
            sys.exit(f"npb_runner: --program {spec!r}: want 'NAME=PATH [ARGS...]'")
        self.name, path = words[0].split("=", 1)
        self.args = words[1:]
        if not self.name.replace("_", "").replace("-", "").isalnum() or self.name in KERNELS:
            sys.exit(f"npb_runner: --program {spec!r}: NAME must be letters, digits, - or _ "
                     f"and not one of the built-in kernels {KERNELS}")
        self.path = os.path.abspath(path)
        why = self.why_not_runnable()
        if why:
            sys.exit(f"npb_runner: --program {self.name}: {self.path} {why}")

    def why_not_runnable(self):
        """The guest has no C library, so the program must be a static x86-64 ELF."""
        try:
            with open(self.path, "rb") as f:
                elf = f.read(1 << 20)
        except OSError as e:
            return f"cannot be read: {e.strerror}"
        if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
            return "is not a 64-bit little-endian ELF program"
        machine, = struct.unpack_from("<H", elf, 18)
        if machine != 62:
            return f"is not an x86-64 program (ELF machine {machine})"
        phoff, = struct.unpack_from("<Q", elf, 32)
        phentsize, phnum = struct.unpack_from("<HH", elf, 54)
        for i in range(phnum):
            p_type, = struct.unpack_from("<I", elf, phoff + i * phentsize)
            if p_type == 3:     # PT_INTERP: it wants a dynamic loader the guest lacks
                return "is dynamically linked; the guest has no C library: link it with -static"
        return None

    def argv(self, threads):
        return [a.replace("{threads}", str(threads)) for a in self.args]

    def guest_cmd(self, threads):
        return " ".join(["OMP_NUM_THREADS=" + str(threads), self.name] +
                        [shlex.quote(a) for a in self.argv(threads)])


def initrd_with(programs):
    """The guest image's initrd with the programs appended as /bin/NAME (the kernel
    unpacks concatenated archives in order), cached by content in build/experiments/."""
    base = artifact("initrd")
    digest = hashlib.sha256(open(base, "rb").read())
    for p in programs:
        digest.update(p.name.encode() + open(p.path, "rb").read())
    path = os.path.join(ROOT, "build", "experiments", f"initrd-{digest.hexdigest()[:16]}.img")
    if not os.path.exists(path):
        cpio = Cpio()
        for p in programs:
            cpio.file("bin/" + p.name, open(p.path, "rb").read())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as out:
            out.write(open(base, "rb").read())
            out.write(gzip.compress(cpio.finish(), compresslevel=1))
        os.replace(path + ".tmp", path)
    return path


def configs_for(vcpus, names):
    table = {"native": None, "tcg": "tcg", "mixed-tcg": "mixed,policy=tcg-only",
             "kvm-only": "mixed,policy=kvm-only", "hot-tcg": "mixed,policy=hot-tcg",
             "hot-tcg-self": "mixed,policy=hot-tcg,policy-params=zap-us=0",
             "sample": "mixed,policy=sample"}
    for k in range(1, vcpus + 1):
        table[f"static-{k}"] = f"mixed,kvm-cpus=0-{k - 1}" if k > 1 else "mixed,kvm-cpus=0"
    if names == "all":
        order = (["native", "tcg", "mixed-tcg"] + [f"static-{k}" for k in range(1, vcpus)]
                 + ["kvm-only", "hot-tcg", "hot-tcg-self", "sample"])
    else:
        order = names.split(",")
    unknown = [n for n in order if n not in table]
    if unknown:
        sys.exit(f"npb_runner: unknown configuration(s) {unknown}; known: {sorted(table)}")
    return [(n, table[n]) for n in order]


def parse_report(text):
    """What a run records of the NPB summary in text, or None if there is none."""
    rep = npb_report(text)
    return rep and {k: rep[k] for k in ("seconds", "mops", "verified")}


def run_native(kernel, cls, vcpus, program=None):
    if program:
        argv = [program.path] + program.argv(vcpus)
    else:
        argv = [os.path.join(ROOT, "build", "tools", f"npb_{kernel}"), "--class", cls,
                "--threads", str(vcpus)]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS=str(vcpus)))
    rec = {"wall_s": time.monotonic() - t0}
    rep = parse_report(p.stdout)
    rec.update(rep or {})
    rec["status"] = ("verified" if rep and rep["verified"] else
                     "unverified" if rep else f"failed: exit {p.returncode}, no NPB report")
    return rec


def watch_to_end(g, accel, timeout, marker="MIXEDVM-END"):
    """Waits for the started guest's end marker, looking at query-vcpu-accel twice a
    second under -accel mixed; returns the last answer (None under another accelerator).
    Raises VmError if QEMU exits first or the guest does not end within timeout."""
    deadline, info = time.monotonic() + timeout, None
    # At a line's start: the kernel's command line, printed at boot, names the markers.
    ended = re.compile(rf"^{marker} rc=", re.M)
    while not ended.search(g.serial()):
        if time.monotonic() > deadline:
            raise VmError(f"no result within {timeout} s")
        if g.proc.poll() is not None and not ended.search(g.serial()):
            raise VmError(f"QEMU exited with {g.proc.returncode} before the guest ended")
        if accel.startswith("mixed"):
            try:
                info = g.qmp.execute("query-vcpu-accel")
            except (VmError, OSError):
                pass   # the guest ended between two looks
        time.sleep(0.5)
    return info


class Snapshots:
    """--from-snapshot: one post-boot snapshot per guest configuration (accelerator,
    vCPUs, image), taken the first time a run needs it. The guest boots with
    SERVE_COMMANDS, which waits for command lines on its second serial port; once it
    waits, the VM is migrated to a file and that QEMU ends. Each run then starts a new
    QEMU from the file (-incoming file:) and sends it the run's command, so every
    repetition starts from the same state, and none pays for a boot."""

    def __init__(self, folder):
        self.folder = folder
        self.files = {}     # (accel, vcpus, initrd) -> (path, seconds to boot and save)

    def guest(self, accel, vcpus, initrd, incoming=None):
        return Guest("npb-snapshot", artifact("qemu"), artifact("kernel"),
                     initrd or artifact("initrd"), smp=vcpus, memory="2G", accel=accel,
                     cmd=SERVE_COMMANDS, command_port=True, incoming=incoming)

    def take(self, accel, vcpus, initrd, timeout):
        key = (accel, vcpus, initrd)
        if key in self.files:
            return self.files[key][0]
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, hashlib.sha256(repr(key).encode()).hexdigest()[:16]
                            + ".state")
        g = self.guest(accel, vcpus, initrd)
        t0 = time.monotonic()
        try:
            g.start()
            g.wait_for(r"(?m)^MIXEDVM-SERVING$", timeout)
            g.qmp.execute("migrate", uri=f"file:{path}")
            while (st := g.qmp.execute("query-migrate"))["status"] not in (
                    "completed", "failed", "cancelled"):
                time.sleep(0.2)
            if st["status"] != "completed":
                raise VmError(f"snapshot of {accel}, {vcpus} vCPUs: migration {st['status']}: "
                              f"{st.get('error-desc', '')}")
        finally:
            g.stop()
            shutil.rmtree(g.dir, ignore_errors=True)
        self.files[key] = (path, time.monotonic() - t0)
        return path

    def remove(self):
        for path, _ in self.files.values():
            if os.path.exists(path):
                os.remove(path)


def run_guest(kernel, cls, vcpus, accel, timeout, program=None, initrd=None, snapshots=None):
    cmd = (program.guest_cmd(vcpus) if program else
           f"npb_{kernel} --class {cls} --threads {vcpus}")
    rec = {"mode": "snapshot" if snapshots else "boot"}
    if snapshots:
        try:
            path = snapshots.take(accel, vcpus, initrd, timeout)
        except VmError as e:
            rec["status"] = f"failed: {e}"
            return rec
        g = snapshots.guest(accel, vcpus, initrd, incoming=f"file:{path}")
    elif program:
        g = Guest(f"npb-{kernel}", artifact("qemu"), artifact("kernel"), initrd, smp=vcpus,
                  memory="2G", accel=accel, cmd=cmd)
    else:
        g = built_guest(f"npb-{kernel}", smp=vcpus, memory="2G", accel=accel, cmd=cmd)
    t0 = time.monotonic()
    telemetry = None
    try:
        g.start()
        if snapshots:
            while g.qmp.execute("query-status")["status"] != "running":
                if time.monotonic() - t0 > timeout:
                    raise VmError("the snapshot did not load")
                time.sleep(0.05)
            rec["restore_s"] = time.monotonic() - t0
            g.send_command(cmd)
        info = watch_to_end(g, accel, timeout,
                            "MIXEDVM-RUN-END" if snapshots else "MIXEDVM-END")
        telemetry = info and info["vcpus"]
        rec["wall_s"] = time.monotonic() - t0
        # Did this QEMU boot the guest? From a snapshot it must not have.
        rec["console_booted"] = "Run /init as init process" in g.serial()
        rep = parse_report(g.serial())
        rec.update(rep or {})
        rec["status"] = ("verified" if rep and rep["verified"] else
                         "unverified" if rep else "failed: no NPB report on the console")
    except VmError as e:
        rec["status"] = f"failed: {e}"
    finally:
        g.stop()
        shutil.rmtree(g.dir, ignore_errors=True)
    if telemetry:
        rec["kvm_s"] = sum(v["kvm-ns"] for v in telemetry) / 1e9
        rec["tcg_s"] = sum(v["tcg-ns"] for v in telemetry) / 1e9
        rec["moves"] = sum(v["moves"] for v in telemetry)
        rec["kernel_entries"] = sum(v["kernel-entries"] for v in telemetry)
        # moves off KVM by cause: ticks apart from other interrupts and kernel entries
        leaves = collections.Counter()
        for v in telemetry:
            for k in v.get("kvm-leaves", []):
                leaves[k["cause"]] += k["count"]
        rec["kvm_leaves"] = dict(leaves)
        rec["code_syncs"] = sum(v.get("code-syncs", 0) for v in telemetry)
        rec["code_sync_s"] = sum(v.get("code-sync-ns", 0) for v in telemetry) / 1e9
        rec["vcpus_telemetry"] = [{k: v[k] for k in ("cpu-index", "accel", "kvm-ns", "tcg-ns", "moves")}
                                  for v in telemetry]
    return rec


def load(path):
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                done[(r["config"], r["kernel"], r["class"], r["vcpus"], r["rep"])] = r
    return done


def progress(i, total, t0, label):
    width = 30
    filled = width * i // total
    eta = (time.monotonic() - t0) / i * (total - i) if i else 0
    line = f"[{'#' * filled}{'.' * (width - filled)}] {i}/{total}  eta {eta / 60:4.1f} min  {label}"
    if sys.stdout.isatty():
        sys.stdout.write("\r" + line[:100].ljust(100))
        sys.stdout.flush()
    else:
        print(line, flush=True)


def write_csv(results, path):
    fields = ["config", "kernel", "class", "vcpus", "rep", "status", "seconds", "mops", "wall_s",
              "kvm_s", "tcg_s", "moves"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in results:
            w.writerow(r)


def verified_times(results, config, kernel):
    return sorted(r["seconds"] for r in results if r["config"] == config and
                  r["kernel"] == kernel and r["status"] == "verified")


def mean_time(results, config, kernel):
    ts = verified_times(results, config, kernel)
    return sum(ts) / len(ts) if ts else None


def require_matplotlib():
    """--report draws its plots with matplotlib, which tools/mixedvm setup installs."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        other = os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3")
        sys.exit("npb_runner: --report needs matplotlib for its plots: the Debian package "
                 "python3-matplotlib, which tools/mixedvm setup installs (as root)"
                 + (f"; {sys.executable} is not Debian's python3, so run this script with "
                    "/usr/bin/python3" if other else ""))


def plots(results, configs, kernels, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(outdir, exist_ok=True)
    names = [c for c, _ in configs]
    files = []

    def grouped(values_of, ylabel, title, fname, log=False, spread_of=None):
        """spread_of(c, k) gives (low, high) around the bar: drawn as an error bar."""
        fig, ax = plt.subplots(figsize=(10, 4.5))
        width = 0.8 / len(names)
        for j, c in enumerate(names):
            vals = [values_of(c, k) for k in kernels]
            xs = [i + j * width for i in range(len(kernels))]
            heights = [v if v is not None else 0 for v in vals]
            yerr = None
            if spread_of:
                lows, highs = [], []
                for k, h in zip(kernels, heights):
                    lo, hi = spread_of(c, k) or (h, h)
                    lows.append(max(h - lo, 0))
                    highs.append(max(hi - h, 0))
                yerr = [lows, highs]
            ax.bar(xs, heights, width, label=c, yerr=yerr, capsize=2 if yerr else 0,
                   error_kw={"elinewidth": 0.8})
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(kernels))])
        ax.set_xticklabels([k.upper() for k in kernels])
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, fname), dpi=110)
        plt.close(fig)
        files.append(fname)

    spread = lambda c, k: (lambda ts: (ts[0], ts[-1]) if ts else None)(  # noqa: E731
        verified_times(results, c, k))
    grouped(lambda c, k: mean_time(results, c, k), "seconds (NPB timer)",
            "Time per kernel (bar: mean; whiskers: fastest to slowest repetition)", "time.png",
            log=True, spread_of=spread)
    base = "mixed-tcg" if "mixed-tcg" in names else "tcg"
    grouped(lambda c, k: (mean_time(results, base, k) / mean_time(results, c, k))
            if mean_time(results, base, k) and mean_time(results, c, k) else None,
            f"speed-up over {base}", f"Speed-up over all-TCG ({base})", "speedup.png")
    if "native" in names:
        grouped(lambda c, k: (mean_time(results, c, k) / mean_time(results, "native", k))
                if mean_time(results, "native", k) and mean_time(results, c, k) else None,
                "slowdown vs native", "Slowdown relative to native", "slowdown.png", log=True)
    # time on each backend, summed over vCPUs
    fig, ax = plt.subplots(figsize=(10, 4.5))
    labels, kvm, tcg = [], [], []
    for k in kernels:
        for c in names:
            rs = [r for r in results if r["config"] == c and r["kernel"] == k and "kvm_s" in r]
            if rs:
                labels.append(f"{k.upper()}\n{c}")
                kvm.append(sum(r["kvm_s"] for r in rs) / len(rs))
                tcg.append(sum(r["tcg_s"] for r in rs) / len(rs))
    if labels:
        ax.bar(range(len(labels)), kvm, label="on KVM")
        ax.bar(range(len(labels)), tcg, bottom=kvm, label="on TCG")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_ylabel("vCPU-seconds")
        ax.set_title("Time on each backend (sum over vCPUs)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "backends.png"), dpi=110)
        files.append("backends.png")
    plt.close(fig)
    return files


def questions(results, configs, kernels):
    """The three questions of the experiment, answered from the recorded runs."""
    names = [c for c, _ in configs]
    statics = [c for c in names if c.startswith("static-")]
    mixed = [c for c in names if c not in ("native", "tcg")]
    # None for a configuration the matrix did not run (kvm-only, native, ...).
    t = collections.defaultdict(lambda: None,
                                {(c, k): mean_time(results, c, k) for c in names for k in kernels})
    runs = {(r["config"], r["kernel"]): r for r in results if r["status"] == "verified"}
    lines = ["## What the numbers say", "",
             "Every figure in this section is computed from the table above.", "",
             "### How close does mixed placement get to native?", "",
             "| kernel | native s | best mixed configuration | its time s | × native | speed-up over all-TCG (mixed-tcg) |",
             "|---|---|---|---|---|---|"]
    for k in kernels:
        cands = [(t[c, k], c) for c in mixed if t[c, k] is not None]
        if not cands or t.get(("native", k)) is None:
            continue
        best, bc = min(cands)
        base = t.get(("mixed-tcg", k))
        lines.append(f"| {k.upper()} | {t['native', k]:.2f} | {bc} | {best:.2f} | "
                     f"{best / t['native', k]:.1f}× | " + (f"{base / best:.1f}×" if base else "—") + " |")
    lines += ["", "On this host KVM runs only guest user mode (PVM), so every system call, page "
              "fault, interrupt and futex wait of a vCPU on KVM is a move to TCG and back. "
              "Kernels that compute for long stretches between synchronisations (EP, FT) get "
              "closest to native; kernels that synchronise often pay the moves.", "",
              "### How much does one TCG vCPU slow a barrier-synchronised OpenMP kernel?", "",
              "The last static configuration leaves exactly one vCPU on TCG; kvm-only puts "
              "all of them on KVM. OpenMP threads meet at barriers, so every step waits for "
              "the thread on the slow vCPU.", "",
              "| kernel | kvm-only s | one vCPU on TCG s | slow-down | moves/s (kvm-only) | kernel entries/s (kvm-only) | ticks/s (kvm-only) |",
              "|---|---|---|---|---|---|---|"]
    one_tcg = statics[-1] if statics else None
    for k in kernels:
        a, b = t.get(("kvm-only", k)), t.get((one_tcg, k))
        r = runs.get(("kvm-only", k))
        if a is None or b is None:
            continue
        rate = lambda key: (f"{r[key] / r['wall_s']:.0f}" if r and key in r else "—")  # noqa: E731
        ticks = r.get("kvm_leaves", {}).get("timer") if r and "wall_s" in r else None
        tick_rate = f"{ticks / r['wall_s']:.0f}" if ticks else "—"
        lines.append(f"| {k.upper()} | {a:.2f} | {b:.2f} | {b / a:.1f}× | {rate('moves')} | "
                     f"{rate('kernel_entries')} | {tick_rate} |")
    lines += ["", "Where kvm-only is slower than all-TCG (the moves/s column shows why), "
              "the vCPUs enter the guest kernel so often (futex waits at barriers, "
              "page faults) that the ~50 µs per move each way costs more than TCG's "
              "slower execution of the computation. On a VT-x/AMD-V host those kernel "
              "entries stay on KVM and this effect disappears.", "",
              "### What does hot-tcg buy over static placements?", "",
              "| kernel | hot-tcg s | hot-tcg blind to others s | best static | its time s | worst static | its time s | kvm-only s | sample s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for k in kernels:
        h = t.get(("hot-tcg", k))
        st = [(t[c, k], c) for c in statics + ["kvm-only"] if t[c, k] is not None]
        if h is None or not st:
            continue
        (bt, bc), (wt, wc) = min(st), max(st)
        fmt = lambda v: f"{v:.2f}" if v is not None else "—"  # noqa: E731
        lines.append(f"| {k.upper()} | {h:.2f} | {fmt(t.get(('hot-tcg-self', k)))} | {bc} | "
                     f"{bt:.2f} | {wc} | {wt:.2f} | "
                     f"{fmt(t.get(('kvm-only', k)))} | {fmt(t.get(('sample', k)))} |")
    beats = lambda pick: sum(1 for k in kernels  # noqa: E731
                             if t.get(("hot-tcg", k)) is not None and
                             any(t[c, k] is not None for c in statics + ["kvm-only"]) and
                             t["hot-tcg", k] < pick(t[c, k] for c in statics + ["kvm-only"]
                                                    if t[c, k] is not None))
    lines += ["", f"hot-tcg was faster than the best static placement in {beats(min)} of "
              f"{len(kernels)} kernels, and faster than the worst in {beats(max)}.", ""]
    lines += ["hot-tcg places each vCPU where its cost model predicts less wall time for "
              "its work: user code at TCG's slowdown against kernel stints that each cost a "
              "round trip of moves and, on PVM, zaps that cost the other KVM vCPUs "
              "(docs/scheduler.md). All vCPUs of an NPB kernel do "
              "the same work, so one static placement is right for all of them and "
              "hot-tcg can at best find it: it pays for the periods it "
              "needs to decide. A policy earns its keep where the best placement differs "
              "per vCPU or over time, as in the `mixed-policy` test and the demo.", ""]
    return lines


def report(results, configs, kernels, args, path):
    rel = os.path.relpath(os.path.join(os.path.dirname(path), "experiments"), os.path.dirname(path))
    lines = ["# NPB experiments", "",
             "Generated by `tools/npb_runner.py` from the runs it recorded "
             f"(`{os.path.relpath(args.results, ROOT)}`); no number here is typed by hand.", "",
             "Command: `" + shlex.join(["tools/npb_runner.py"] + sys.argv[1:]) + "`", ""]
    host = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo; uname -r"],
                          capture_output=True, text=True).stdout.split("\n")
    lines += [f"Host: {host[0]} CPUs, {host[1].split(':')[-1].strip()}, Linux {host[2]}; "
              "KVM: see docs/mixed.md (PVM on this project's machines).", ""]
    when = sorted(r["when"] for r in results if "when" in r)
    if when:
        lines += [f"Runs recorded from {when[0]} to {when[-1]}, one guest at a time; the "
                  "runner resumes an interrupted matrix and re-runs only what is missing.", ""]
    modes = collections.Counter(r.get("mode", "boot") for r in results if r["accel"] != "native")
    lines += ["Guest runs: " + ", ".join(
        f"{n} {'from one post-boot snapshot per configuration (--from-snapshot)' if m == 'snapshot' else 'each from a fresh boot'}"
        for m, n in sorted(modes.items())) + ". From a snapshot, the wall time and the "
        "telemetry cover the restore and the run, not the boot.", ""]
    names = [c for c, _ in configs]
    lines += ["## NPB time in seconds (mean of verified runs, with the range when there are "
              "several; status shown otherwise)", "",
              "| kernel | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in kernels:
        cells = []
        for c in names:
            rs = [r for r in results if r["config"] == c and r["kernel"] == k]
            t = mean_time(results, c, k)
            bad = [r["status"] for r in rs if r["status"] != "verified"]
            ts = sorted(r["seconds"] for r in rs if r["status"] == "verified")
            cell = f"{t:.2f}" if t is not None else "—"
            if len(ts) > 1:
                cell += f" ({ts[0]:.2f}–{ts[-1]:.2f})"
            cells.append(cell + (f" ({'; '.join(bad)})" if bad else ""))
        lines.append(f"| {k.upper()} | " + " | ".join(cells) + " |")
    lines += [""] + questions(results, configs, kernels)
    lines += ["", "## Every run", "", "| config | kernel | class | vCPUs | rep | mode | status | NPB s | Mop/s | wall s | KVM vCPU-s | TCG vCPU-s | moves |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f = lambda key, fmt: (fmt % r[key]) if key in r else "—"  # noqa: E731
        mode = r.get("mode", "boot") if r["accel"] != "native" else "—"
        lines.append(f"| {r['config']} | {r['kernel'].upper()} | {r['class']} | {r['vcpus']} | {r['rep']} | {mode} | "
                     f"{r['status']} | {f('seconds', '%.2f')} | {f('mops', '%.1f')} | {f('wall_s', '%.1f')} | "
                     f"{f('kvm_s', '%.1f')} | {f('tcg_s', '%.1f')} | {f('moves', '%d')} |")
    files = plots(results, configs, kernels, os.path.join(os.path.dirname(path), "experiments"))
    lines += ["", "## Plots", ""] + [f"![{f}]({rel}/{f})" for f in files]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    print(f"npb_runner: wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=",".join(KERNELS))
    ap.add_argument("--classes", default="A")
    ap.add_argument("--vcpus", default="4")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--configs", default="all")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per guest run")
    ap.add_argument("--results", default=os.path.join(ROOT, "build", "experiments", "results.jsonl"))
    ap.add_argument("--report", help="write the results page (e.g. docs/experiments.md); its plots "
                    "need python3-matplotlib, which tools/mixedvm setup installs")
    ap.add_argument("--from-snapshot", action="store_true",
                    help="boot each guest configuration once, snapshot it once it waits for "
                    "commands, and run every repetition from that snapshot (-incoming file:) "
                    "instead of booting; the results record the mode")
    ap.add_argument("--program", action="append", default=[], metavar="'NAME=PATH [ARGS...]'",
                    help="a static program of your own that prints NPB's summary (see above); "
                    "repeatable; --kernels '' runs only these")
    args = ap.parse_args()
    kernels = [k for k in args.kernels.split(",") if k]
    if any(k not in KERNELS for k in kernels):
        sys.exit(f"npb_runner: kernels are {KERNELS}")
    programs = {p.name: p for p in (Program(spec) for spec in args.program)}
    if len(programs) < len(args.program):
        sys.exit("npb_runner: two --program share a NAME")
    if not kernels and not programs:
        sys.exit("npb_runner: nothing to run: no kernel and no --program")
    initrd = initrd_with(list(programs.values())) if programs else None
    if args.report:
        require_matplotlib()   # before the runs, which can take hours
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    done = load(args.results)
    # Interleaved: each repetition runs every configuration of a kernel back to back, so
    # drift on a shared host hits them alike and the spread of repetitions shows it.
    runs = []
    for v in (int(x) for x in args.vcpus.split(",")):
        for cls in args.classes.split(","):
            for rep in range(1, args.reps + 1):
                for k in kernels:
                    for name, accel in configs_for(v, args.configs):
                        runs.append((name, accel, k, cls, v, rep))
        for rep in range(1, args.reps + 1):
            for k in programs:
                for name, accel in configs_for(v, args.configs):
                    runs.append((name, accel, k, "-", v, rep))
    todo = [r for r in runs if (r[0], r[2], r[3], r[4], r[5]) not in done]
    print(f"npb_runner: {len(runs)} runs, {len(runs) - len(todo)} already recorded, {len(todo)} to do")
    t0 = time.monotonic()
    snapshots = Snapshots(os.path.join(os.path.dirname(args.results), "snapshots")) \
        if args.from_snapshot else None
    with open(args.results, "a") as out:
        for i, (name, accel, k, cls, v, rep) in enumerate(todo):
            progress(i, len(todo), t0, f"{k.upper()} class {cls}, {v} vCPUs, {name}, rep {rep}")
            program = programs.get(k)
            rec = (run_native(k, cls, v, program) if accel is None else
                   run_guest(k, cls, v, accel, args.timeout, program, initrd, snapshots))
            rec.update({"config": name, "accel": accel or "native", "kernel": k, "class": cls,
                        "vcpus": v, "rep": rep, "when": time.strftime("%Y-%m-%dT%H:%M:%S")})
            out.write(json.dumps(rec) + "\n")
            out.flush()
        if todo:
            progress(len(todo), len(todo), t0, "done")
            print()
    if snapshots:
        snapshots.remove()
    results = [r for r in load(args.results).values()
               if (r["config"], r["kernel"], r["class"], r["vcpus"], r["rep"]) in
               {(a, c, d, e, f) for a, _, c, d, e, f in runs}]
    write_csv(results, os.path.splitext(args.results)[0] + ".csv")
    bad = [r for r in results if r["status"] != "verified"]
    print(f"npb_runner: {len(results) - len(bad)} verified, {len(bad)} not: "
          + ", ".join(f"{r['config']}/{r['kernel']}: {r['status']}" for r in bad))
    if args.report:
        report(results, configs_for(int(args.vcpus.split(",")[0]), args.configs),
               kernels + list(programs), args, args.report)
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
