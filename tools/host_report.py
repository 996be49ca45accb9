"""tools/mixedvm report: everything only a host with /dev/kvm can show, in one run.

    tools/mixedvm report [--quick] [--out DIR] [--skip tests,benches,probes,experiments]
                         [--experiments NAME,...]
    tools/mixedvm report --compare DIR_A DIR_B     what changed between two reports
    tools/mixedvm report --update-spec [DIR]       docs/SPEC.md's "last measured" column
                                                   from a report (default: the newest
                                                   in ../shared/pvm/ with KVM figures)

It runs this tree's test suite (a subset under --quick), the benches that need KVM, the
probes in tools/probes/ and the experiments of bench/experiments.toml (variants
interleaved, repeated), and writes one folder: report.md (read it in two minutes),
report.json (every figure) and logs/ (the raw output of every command, kept for what
failed). It keeps going past failures and records them, shows its progress and the time
left, and says what it skipped and why. --quick fits in 30 minutes on a 2-core machine,
the full run in 90. Without /dev/kvm it says so, runs what it can and still writes the
report. It reuses the test runner and the benches as they are; an experiment's variant
reaches the guests a bench boots through MIXEDVM_EXTRA_ACCEL and MIXEDVM_EXTRA_ARGS
(tools/mixedvm_vm.py). docs/testing.md, "The host report", says how to read it.
"""
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from mixedvm_vm import kvm_unavailable  # noqa: E402

EXPERIMENTS = os.path.join(ROOT, "bench", "experiments.toml")
PROBES = os.path.join(ROOT, "tools", "probes")
PHASES = ("probes", "tests", "benches", "experiments")
BUDGET_S = {"quick": 30 * 60, "full": 90 * 60}
# --quick's tests: the KVM paths a user meets first, the guest ISA and clock, the
# torture test that runs fastest. The full run runs every test.
QUICK_TESTS = ["unit", "kvm-available", "qemu-version", "guest-isa", "mixed-boot",
               "mixed-moves", "mixed-kvm-speed", "mixed-options", "mixed-guest-isa",
               "mixed-guest-cpu", "torture-clock"]
SPEC_LINE = re.compile(r"^SPEC (?P<id>[a-z0-9_.]+): (?P<verdict>MET|MISSED) "
                       r"\((?P<value>[^,]+), target (?P<target>[^)]+)\)", re.M)
VARIANT_KEYS = {"accel", "args", "env"}
EXPERIMENT_KEYS = {"question", "command", "reps", "quick", "metrics", "variants"}


# --------------------------------------------------------------------------- experiments

def load_experiments(path=EXPERIMENTS):
    """The experiments of `path`, checked: a mistake names the experiment and the key."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    out = []
    for name, e in data.get("experiments", {}).items():
        where = f"{os.path.basename(path)}: experiment {name}"
        unknown = set(e) - EXPERIMENT_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("question", "command", "metrics", "variants"):
            if not e.get(key):
                raise ValueError(f"{where}: '{key}' is missing or empty")
        if not isinstance(e["command"], list) or not all(isinstance(a, str) for a in e["command"]):
            raise ValueError(f"{where}: 'command' must be a list of strings")
        if not os.path.exists(os.path.join(ROOT, e["command"][0])):
            raise ValueError(f"{where}: its bench {e['command'][0]} does not exist")
        reps = e.get("reps", 1)
        if not isinstance(reps, int) or reps < 1:
            raise ValueError(f"{where}: 'reps' must be a positive integer")
        metrics = {}
        for metric, rx in e["metrics"].items():
            try:
                compiled = re.compile(rx, re.M)
            except re.error as err:
                raise ValueError(f"{where}: metric {metric}: bad regex: {err}") from None
            if "value" not in compiled.groupindex:
                raise ValueError(f"{where}: metric {metric}: the regex has no group 'value'")
            metrics[metric] = compiled
        for variant, v in e["variants"].items():
            unknown = set(v) - VARIANT_KEYS
            if unknown:
                raise ValueError(f"{where}: variant {variant}: unknown keys {sorted(unknown)}")
        out.append({"name": name, "question": e["question"], "command": e["command"],
                    "reps": reps, "quick": bool(e.get("quick", False)), "metrics": metrics,
                    "variants": e["variants"]})
    return out


def interleaved(variants, rep):
    """The order of the variants in repetition `rep`: rotated, so that none always runs
    first (a warm cache) or last (a tired host)."""
    names = list(variants)
    k = rep % len(names) if names else 0
    return names[k:] + names[:k]


def spread(values):
    """Median and spread of one metric's values."""
    if not values:
        return None
    return {"n": len(values), "median": statistics.median(values), "min": min(values),
            "max": max(values)}


def variant_env(variant):
    env = dict(os.environ)
    env.pop("MIXEDVM_EXTRA_ACCEL", None)
    env.pop("MIXEDVM_EXTRA_ARGS", None)
    if variant.get("accel"):
        env["MIXEDVM_EXTRA_ACCEL"] = variant["accel"]
    if variant.get("args"):
        env["MIXEDVM_EXTRA_ARGS"] = variant["args"]
    env.update({k: str(v) for k, v in variant.get("env", {}).items()})
    return env


# --------------------------------------------------------------------------- the host

def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def host_facts():
    cpuinfo = read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
    modules = read("/proc/modules")
    kinds = [k for k in ("kvm_pvm", "kvm_intel", "kvm_amd") if re.search(rf"^{k} ", modules, re.M)]
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    why = kvm_unavailable()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hostname": platform.node(),
        "cpu_model": model.group(1) if model else "unknown",
        "cpu_flags": flags.group(1).split() if flags else [],
        "kernel": platform.release(),
        "kvm": "absent: " + why if why else "present",
        "kvm_modules": kinds,
        "kvm_kind": ("PVM" if "kvm_pvm" in kinds else "VT-x/AMD-V" if kinds else
                     "unknown (no kvm module listed)") if not why else "none",
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


# --------------------------------------------------------------------------- running

class Run:
    """One report run: its folder, clock, budget, and every command it ran."""

    def __init__(self, out, quick, skip):
        self.out, self.quick, self.skip = out, quick, set(skip)
        self.logs = os.path.join(out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.t0 = time.monotonic()
        self.budget = BUDGET_S["quick" if quick else "full"]
        self.commands, self.skipped = [], []

    def left(self):
        return self.budget - (time.monotonic() - self.t0)

    def say(self, text):
        elapsed = time.monotonic() - self.t0
        print(f"[{elapsed / 60:5.1f} min, {max(0, self.left()) / 60:4.1f} left] {text}",
              flush=True)

    def note_skip(self, what, why):
        self.skipped.append({"what": what, "why": why})
        self.say(f"skipped {what}: {why}")

    def command(self, name, argv, timeout, env=None):
        """Runs argv from the tree's root, output to logs/NAME.log; never raises."""
        timeout = max(30, min(timeout, self.left()))
        log = os.path.join(self.logs, f"{name}.log")
        t = time.monotonic()
        with open(log, "w") as f:
            f.write("$ " + " ".join(argv) + "\n")
            f.flush()
            try:
                rc = subprocess.run(argv, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            except OSError as e:
                f.write(f"\n{e}\n")
                rc = "error"
        entry = {"name": name, "argv": argv, "rc": rc, "seconds": round(time.monotonic() - t, 1),
                 "log": os.path.relpath(log, self.out)}
        if env is not None:
            entry["variant_env"] = {k: env[k] for k in ("MIXEDVM_EXTRA_ACCEL", "MIXEDVM_EXTRA_ARGS")
                                    if k in env}
        self.commands.append(entry)
        return entry, read(log)


def run_probes(run):
    results = []
    cc = shutil.which("cc") or shutil.which("gcc")
    bindir = os.path.join(run.out, "probes")
    os.makedirs(bindir, exist_ok=True)
    for src in sorted(f for f in os.listdir(PROBES) if f.endswith(".c")):
        name = src[:-2]
        exe = os.path.join(bindir, name)
        build, out = run.command(f"probe-build-{name}", [cc, "-O2", "-o", exe,
                                                          os.path.join(PROBES, src)], 120)
        if build["rc"] != 0:
            results.append({"probe": name, "rc": "build failed", "output": out[-2000:]})
            continue
        entry, out = run.command(f"probe-{name}", [exe], 120)
        results.append({"probe": name, "rc": entry["rc"], "output": out[-4000:]})
        run.say(f"probe {name}: rc={entry['rc']}")
    return results


def run_tests(run):
    names = QUICK_TESTS if run.quick else []
    entry, _ = run.command("tests", [os.path.join(ROOT, "tools", "mixedvm"), "test", *names],
                           run.left() - 60)
    results = []
    testlog = os.path.join(ROOT, "build", "meson-logs", "testlog.json")
    if os.path.exists(testlog) and os.path.getmtime(testlog) >= run.t0 - 5:
        with open(testlog) as f:
            for line in f:
                t = json.loads(line)
                r = {"name": t["name"], "result": t["result"],
                     "seconds": round(t.get("duration", 0), 1)}
                out = (t.get("stdout") or "") + (t.get("stderr") or "")
                if t["result"] == "SKIP":
                    reason = re.search(r"^SKIP: (.*)$", out, re.M)
                    r["reason"] = reason.group(1) if reason else "(see the log)"
                if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP"):
                    with open(os.path.join(run.logs, f"test-{t['name']}.log"), "w") as f:
                        f.write(out)
                    r["log"] = f"logs/test-{t['name']}.log"
                results.append(r)
    if not results:
        run.note_skip("test results", f"the test run left no results (rc={entry['rc']}); "
                      f"see {entry['log']}")
    return results


def bench_list(quick, out):
    seconds = "5" if quick else "15"
    benches = [("move_latency", ["bench/move_latency.py", "--seconds", seconds], 600),
               ("round_trip", ["bench/round_trip.py", "--seconds", seconds,
                               "--reps", "1" if quick else "3"], 1200),
               ("policy_cost", ["bench/spec.py", "policy", "build/bench/bench_policy"], 300)]
    benches.append(("kvm_stats", ["bench/kvm_stats.py", "--cmd",
                                  f"npb_ep --class {'W' if quick else 'A'}"], 900))
    if not quick:
        benches.append(("coherence_cost", ["bench/coherence_cost.py", "--reps", "1"], 1200))
        # The host's cost file for the simulator (bench/hosts/ keeps one per host).
        benches.append(("host_costs", ["bench/host_costs.py", "measure", "--out",
                                       os.path.join(out, "costs.toml")], 1800))
    return benches


def run_benches(run):
    results = []
    for name, argv, timeout in bench_list(run.quick, run.out):
        if run.left() < 120:
            run.note_skip(f"bench {name}", "out of time")
            continue
        entry, out = run.command(f"bench-{name}", argv, timeout)
        results.append({"bench": name, "rc": entry["rc"], "seconds": entry["seconds"],
                        "spec": [m.groupdict() for m in SPEC_LINE.finditer(out)],
                        "tail": out[-1500:]})
        run.say(f"bench {name}: rc={entry['rc']} in {entry['seconds']} s")
    return results


def run_experiments(run, only):
    results = []
    for e in load_experiments():
        if only and e["name"] not in only:
            continue
        if run.quick and not e["quick"]:
            run.note_skip(f"experiment {e['name']}", "not a quick experiment (full run only)")
            continue
        values = {v: {m: [] for m in e["metrics"]} for v in e["variants"]}
        failures = []
        reps = min(e["reps"], 2) if run.quick else e["reps"]
        for rep in range(reps):
            for v in interleaved(e["variants"], rep):
                if run.left() < 120:
                    failures.append(f"rep {rep} {v}: out of time")
                    continue
                json_path = os.path.join(run.logs, f"exp-{e['name']}-{v}-{rep}.json")
                argv = [a.replace("{json}", json_path) for a in e["command"]]
                entry, out = run.command(f"exp-{e['name']}-{v}-{rep}", argv, 1800,
                                         env=variant_env(e["variants"][v]))
                if entry["rc"] != 0:
                    failures.append(f"rep {rep} {v}: rc={entry['rc']} ({entry['log']})")
                for m, rx in e["metrics"].items():
                    hit = rx.search(out)
                    if hit:
                        values[v][m].append(float(hit.group("value")))
                    elif entry["rc"] == 0:
                        failures.append(f"rep {rep} {v}: no {m} in the output ({entry['log']})")
                run.say(f"experiment {e['name']}, rep {rep + 1}/{reps}, {v}: "
                        f"rc={entry['rc']}")
        results.append({"experiment": e["name"], "question": e["question"],
                        "command": " ".join(e["command"]), "reps": reps,
                        "variants": {v: {"settings": e["variants"][v],
                                         "metrics": {m: spread(x) for m, x in ms.items()},
                                         "values": ms}
                                     for v, ms in values.items()},
                        "failures": failures})
    return results


# --------------------------------------------------------------------------- reading reports

SPEC_MD = os.path.join(ROOT, "docs", "SPEC.md")
SHARED_REPORTS = os.path.join(os.path.dirname(ROOT), "shared", "pvm")


def load_report(folder):
    path = os.path.join(folder, "report.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a report ({e})") from None


def spec_figures(data):
    """{id: SPEC line} of every SPEC figure a report measured, the last one winning."""
    lines = [s for b in data.get("benches", []) for s in b["spec"]]
    lines += [s for e in data.get("experiment_spec", []) for s in e]
    return {s["id"]: s for s in lines}


def compare(a, b):
    """What changed from report a to report b, as markdown lines."""
    ha, hb = a["host"], b["host"]
    out = [f"# {ha['date']} `{ha['commit'][:7]}` → {hb['date']} `{hb['commit'][:7]}`", "",
           f"hosts: {ha['cpu_model']} ({ha['kvm_kind']}) → {hb['cpu_model']} ({hb['kvm_kind']})",
           "", "## Tests", ""]
    ta = {t["name"]: t["result"] for t in a.get("tests", [])}
    tb = {t["name"]: t["result"] for t in b.get("tests", [])}
    changed = [f"- {n}: {ta.get(n, 'absent')} → {tb.get(n, 'absent')}"
               for n in sorted(set(ta) | set(tb)) if ta.get(n) != tb.get(n)]
    out += changed or ["- no test changed its result"]
    out += ["", "## SPEC figures", ""]
    sa, sb = spec_figures(a), spec_figures(b)
    for fid in sorted(set(sa) | set(sb)):
        x, y = sa.get(fid), sb.get(fid)
        fmt_one = lambda s: f"{s['value']} {s['verdict']}" if s else "not measured"  # noqa: E731
        out.append(f"- {fid}: {fmt_one(x)} → {fmt_one(y)}")
    if not (sa or sb):
        out.append("- neither report measured a SPEC figure")
    out += ["", "## Experiments", ""]
    ea = {e["experiment"]: e for e in a.get("experiments", [])}
    eb = {e["experiment"]: e for e in b.get("experiments", [])}
    for name in sorted(set(ea) | set(eb)):
        if name not in ea or name not in eb:
            out.append(f"- {name}: only in report {'b' if name in eb else 'a'}")
            continue
        for v in sorted(set(ea[name]["variants"]) | set(eb[name]["variants"])):
            ma = ea[name]["variants"].get(v, {}).get("metrics", {})
            mb = eb[name]["variants"].get(v, {}).get("metrics", {})
            for m in sorted(set(ma) | set(mb)):
                x, y = ma.get(m), mb.get(m)
                ratio = (f" ({y['median'] / x['median']:.2f}x)" if x and y and x["median"]
                         else "")
                out.append(f"- {name} / {v} / {m}: "
                           f"{fmt(x) if x else 'none'} → {fmt(y) if y else 'none'}{ratio}")
    if not (ea or eb):
        out.append("- neither report ran an experiment")
    return out


def newest_kvm_report(root=SHARED_REPORTS):
    """The newest report folder under root whose host had /dev/kvm."""
    found = []
    for name in os.listdir(root) if os.path.isdir(root) else []:
        folder = os.path.join(root, name)
        try:
            data = load_report(folder)
        except ValueError:
            continue
        if data["host"]["kvm"] == "present":
            found.append((data["host"]["date"], folder))
    return max(found)[1] if found else None


def update_spec(data, folder, spec_path=SPEC_MD):
    """Fills docs/SPEC.md's "last measured" and "date, command" columns of every figure
    the report measured; returns the ids updated. A report without KVM is refused."""
    h = data["host"]
    if h["kvm"] != "present":
        raise ValueError(f"{folder}: its host had no /dev/kvm ({h['kvm']}): no figure to take")
    figures = spec_figures(data)
    where = (f"{h['date'][:10]}, `tools/mixedvm report{' --quick' if data.get('quick') else ''}` "
             f"on a {h['kvm_kind']} host ({h['cpu_model']}), commit {h['commit'][:7]}"
             f"{' (dirty)' if h['dirty'] else ''}, report `{os.path.basename(folder)}`")
    with open(spec_path) as f:
        lines = f.read().split("\n")
    done = []
    for i, line in enumerate(lines):
        cells = line.split("|")
        if len(cells) < 8:
            continue
        fid = cells[1].strip()
        if fid in figures:
            cells[5] = f" {figures[fid]['value']} ({figures[fid]['verdict']}) "
            cells[6] = f" {where} "
            lines[i] = "|".join(cells)
            done.append(fid)
    with open(spec_path, "w") as f:
        f.write("\n".join(lines))
    return done


# --------------------------------------------------------------------------- the report

def fmt(s):
    if not s:
        return "no value"
    return (f"{s['median']:.4g} ({s['min']:.4g}-{s['max']:.4g}, n={s['n']})" if s["n"] > 1
            else f"{s['median']:.4g} (n=1)")


def render(data):
    h = data["host"]
    lines = [f"# Host report: {h['date']}, commit `{h['commit'][:7]}`"
             f"{' (dirty tree)' if h['dirty'] else ''}", "",
             f"`tools/mixedvm report{' --quick' if data['quick'] else ''}`, "
             f"{data['seconds'] / 60:.1f} minutes.", "", "## Host", "",
             "| what | value |", "|---|---|"]
    for key in ("hostname", "cpu_model", "kernel", "kvm", "kvm_kind", "kvm_modules", "cores",
                "memory_gib"):
        lines.append(f"| {key} | {h[key]} |")
    wanted = {"avx2", "avx512f", "amx_tile", "rtm", "hle", "cpuid_fault", "constant_tsc",
              "nonstop_tsc", "vmx", "svm", "pti"}
    lines.append(f"| CPU flags that matter here | {' '.join(sorted(wanted & set(h['cpu_flags'])))} |")
    tests = data.get("tests", [])
    bad = [t for t in tests if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP")]
    skipped = [t for t in tests if t["result"] == "SKIP"]
    spec = list(spec_figures(data).values())
    lines += ["", "## Summary", "",
              f"- tests: {len(tests) - len(bad) - len(skipped)} passed, {len(bad)} failed, "
              f"{len(skipped)} skipped" + (f"; failed: {', '.join(t['name'] for t in bad)}"
                                           if bad else ""),
              f"- SPEC figures: " + (", ".join(f"{s['id']} **{s['verdict']}** ({s['value']})"
                                               for s in spec) or "none measured"),
              f"- experiments: {len(data.get('experiments', []))} run"]
    for s in data["skipped"]:
        lines.append(f"- skipped {s['what']}: {s['why']}")
    if tests:
        lines += ["", "## Tests", "", "| test | result | seconds | note |", "|---|---|---|---|"]
        for t in sorted(tests, key=lambda t: (t in skipped, t not in bad, t["name"])):
            lines.append(f"| {t['name']} | {t['result']} | {t['seconds']} | "
                         f"{t.get('reason') or t.get('log') or ''} |")
    if data.get("benches"):
        lines += ["", "## Benches", ""]
        for b in data["benches"]:
            lines += [f"### {b['bench']} (rc={b['rc']}, {b['seconds']} s)", "", "```",
                      b["tail"].strip()[-1200:], "```"]
    for e in data.get("experiments", []):
        metrics = sorted({m for v in e["variants"].values() for m in v["metrics"]})
        lines += ["", f"## Experiment {e['experiment']}", "", e["question"], "",
                  f"`{e['command']}`, {e['reps']} repetition(s), variants interleaved.", "",
                  "| variant | settings | " + " | ".join(metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for v, r in e["variants"].items():
            settings = ", ".join(f"{k}={val}" for k, val in r["settings"].items()) or "as is"
            lines.append(f"| {v} | {settings} | " +
                         " | ".join(fmt(r["metrics"].get(m)) for m in metrics) + " |")
        for f in e["failures"]:
            lines.append(f"- {f}")
    if data.get("probes"):
        lines += ["", "## Probes", ""]
        for p in data["probes"]:
            lines += [f"### {p['probe']} (rc={p['rc']})", "", "```",
                      p["output"].strip()[-1500:], "```"]
    lines += ["", "## Commands", "", "| command | rc | seconds | log |", "|---|---|---|---|"]
    for c in data["commands"]:
        var = c.get("variant_env")
        lines.append(f"| `{' '.join(c['argv'])}`{' with ' + str(var) if var else ''} | "
                     f"{c['rc']} | {c['seconds']} | {c['log']} |")
    return "\n".join(lines) + "\n"


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="tools/mixedvm report",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fit in 30 minutes")
    ap.add_argument("--out", help="the report's folder (default build/report-DATE-COMMIT)")
    ap.add_argument("--skip", default="", help=f"comma-separated phases: {', '.join(PHASES)}")
    ap.add_argument("--experiments", default="", help="run only these experiments")
    ap.add_argument("--compare", nargs=2, metavar=("DIR_A", "DIR_B"),
                    help="print what changed between two reports, and run nothing")
    ap.add_argument("--update-spec", nargs="?", const="", metavar="DIR",
                    help="fill docs/SPEC.md's last-measured figures from a report")
    args = ap.parse_args(argv)
    try:
        if args.compare:
            print("\n".join(compare(load_report(args.compare[0]), load_report(args.compare[1]))))
            return 0
        if args.update_spec is not None:
            folder = args.update_spec or newest_kvm_report()
            if not folder:
                print(f"report: no report with KVM figures in {SHARED_REPORTS}", file=sys.stderr)
                return 2
            done = update_spec(load_report(folder), folder)
            print(f"docs/SPEC.md: {len(done)} figure(s) from {folder}: {', '.join(done) or 'none'}")
            return 0
    except ValueError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    skip = [s for s in args.skip.split(",") if s]
    unknown = set(skip) - set(PHASES)
    if unknown:
        print(f"report: unknown phase(s) {sorted(unknown)}; phases: {', '.join(PHASES)}",
              file=sys.stderr)
        return 2
    only = [e for e in args.experiments.split(",") if e]
    try:
        names = {e["name"] for e in load_experiments()}
    except (OSError, ValueError) as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    if set(only) - names:
        print(f"report: unknown experiment(s) {sorted(set(only) - names)}; "
              f"bench/experiments.toml has {', '.join(sorted(names))}", file=sys.stderr)
        return 2
    host = host_facts()
    stamp = datetime.date.today().isoformat() + "-" + (host["commit"][:7] or "nocommit")
    out = os.path.abspath(args.out or os.path.join(ROOT, "build", f"report-{stamp}"))
    os.makedirs(out, exist_ok=True)
    run = Run(out, args.quick, skip)
    run.say(f"report to {out}: {host['cpu_model']}, KVM {host['kvm']} ({host['kvm_kind']})")
    data = {"host": host, "quick": args.quick}
    no_kvm = host["kvm"] != "present"
    for phase in PHASES:
        if phase in run.skip:
            run.note_skip(phase, "--skip")
        elif no_kvm and phase in ("probes", "benches", "experiments"):
            run.note_skip(phase, f"they need /dev/kvm ({host['kvm']})")
        elif run.left() < 120:
            run.note_skip(phase, "out of time")
        else:
            run.say(f"{phase}...")
            data[phase] = {"probes": run_probes, "tests": run_tests, "benches": run_benches,
                           "experiments": lambda r: run_experiments(r, only)}[phase](run)
    data["experiment_spec"] = [[m.groupdict() for m in SPEC_LINE.finditer(read(
        os.path.join(out, c["log"])))] for c in run.commands if c["name"].startswith("exp-")]
    data.update(seconds=round(time.monotonic() - run.t0), commands=run.commands,
                skipped=run.skipped)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(render(data))
    # Logs are kept for what failed; the rest would only bury them.
    keep = {c["log"] for c in run.commands if c["rc"] != 0}
    keep |= {t["log"] for t in data.get("tests", []) if t.get("log")}
    for name in os.listdir(run.logs):
        rel = f"logs/{name}"
        path = os.path.join(run.logs, name)
        # Data the benches wrote (results, per-period traces) stays.
        if rel not in keep and os.path.isfile(path) and not name.endswith(".json"):
            os.unlink(path)
    run.say(f"wrote {os.path.join(out, 'report.md')}")
    return 0
