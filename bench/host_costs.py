#!/usr/bin/env python3
"""A host's costs for the simulator, taken from its own runs, and the simulator checked on them.

    bench/host_costs.py derive  --results SCEN.jsonl --scale S --out bench/hosts/NAME.toml
    bench/host_costs.py measure --out FILE [--reps 1]     (runs the fit set; needs /dev/kvm)
    bench/host_costs.py check   --costs FILE --results SCEN.jsonl [--scale S] [--sim PATH]
                                [--tolerance 0.15] [--npb NPB.jsonl]

The simulator (sched/simulator.h, SimulateWork) turns each vCPU's fixed work into a
makespan from five costs of the host, which every host has and no guest hint changes:

  spinrate_native_ns  one iteration of `spinrate` (the scenarios' compute) on KVM
  tcg_slowdown        how much slower TCG runs that user code
  entry_tcg_us        one kernel stint (getppid: entry, kernel, return) on TCG
  entry_kvm_us        the same stint for a vCPU placed on KVM, alone there: on PVM
                      its two moves, the kernel code on TCG, and the shadow pages its
                      zap makes KVM rebuild
  zap_wait_us         what each zap costs beyond that per other vCPU placed on KVM
                      (the zapper waits for it; one running guest code loses as much)
and two that are read off the same runs' telemetry:
  round_trip_us       the moves' part of entry_kvm_us
  rebuild_us          the rest (less entry_tcg_us): hot-tcg's `zap-us`

`derive` reads them off five fixed-placement runs of bench/scenarios.py, the fit set:
idle under tcg-only and kvm-only, phases under tcg-only and kvm=1, and compute-syscalls
under kvm-only. `measure` makes those runs (bench/scenarios.py --configs) and derives.
`check` predicts every recorded fixed placement of the synthetic scenarios from the cost
file and compares; the runs outside the fit set are the test. It also runs hot-tcg in
the simulator against the scenarios' targets (docs/SPEC.md: phases better than every
fixed placement; the others within 10% of the best fixed one). With --npb, it replays
the NPB runs too: each vCPU has the same user work, the kernel's kvm-only makespan,
and TCG's slowdown is its tcg-only over kvm-only makespan (fitted on those two
placements; the mixed placements are the test). Exit status 1 when a test run or a target misses.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import scenarios as scen  # noqa: E402
from spec import check_spec, targets  # noqa: E402

SIM = os.path.join(ROOT, "build", "tools", "mixedvm-sim")
FIT_SET = {("idle", "tcg-only"), ("idle", "kvm-only"), ("phases", "tcg-only"),
           ("phases", "kvm=1"), ("compute-syscalls", "kvm-only")}
NPB_INIT_S = 0.5
SLACK_US = 50   # Linux's default timer slack: a 100 us nanosleep waits about 150 us


def medians(results):
    """{(scenario, config): median seconds} over the runs that produced a figure."""
    by = {}
    for r in results:
        if r.get("seconds") is not None:
            by.setdefault((r["scenario"], r["config"]), []).append(r)
    return {k: statistics.median(x["seconds"] for x in v) for k, v in by.items()}, by


def work_items(scale):
    return {s.name: s for s in scen.scenarios(scale) if not s.npb}


def count(sc, prog):
    """Total iterations (spinrate) or calls (sysloop) in the scenario's work."""
    total = 0
    for items in sc.work.values():
        for p, args in items:
            if p == prog and "--sleep-us" not in args:
                total += float(args.split()[1])
    return total


def derive(results, scale):
    med, runs = medians(results)
    missing = sorted(f"{s} {c}" for s, c in FIT_SET if (s, c) not in med)
    if missing:
        sys.exit(f"host_costs: the results lack the fit set's {', '.join(missing)}")
    sc = work_items(scale)
    spins = count(sc["idle"], "spinrate")
    calls = count(sc["phases"], "sysloop")
    native = med[("idle", "kvm-only")]
    c = {"spinrate_native_ns": native / spins * 1e9,
         "tcg_slowdown": med[("idle", "tcg-only")] / native,
         "entry_tcg_us": (med[("phases", "tcg-only")] - med[("idle", "tcg-only")]) / calls * 1e6,
         "entry_kvm_us": (med[("phases", "kvm=1")] - native) / calls * 1e6}
    c["zap_wait_us"] = max(0.0, med[("compute-syscalls", "kvm-only")] /
                           count(sc["compute-syscalls"], "sysloop") * 1e6 - c["entry_kvm_us"])
    # The KVM time per kernel entry of phases' syscall vCPU on KVM, less its compute:
    # the rebuild. The rest of a stint on KVM is its moves.
    rebuild = []
    for r in runs[("phases", "kvm=1")]:
        v = next((t for t in r.get("vcpus_telemetry") or [] if t["cpu-index"] == 1), None)
        if v and v.get("kernel-entries"):
            rebuild.append((v["kvm-ns"] / 1e9 - native) / v["kernel-entries"] * 1e6)
    c["rebuild_us"] = statistics.median(rebuild) if rebuild else 0.0
    c["round_trip_us"] = max(0.0, c["entry_kvm_us"] - c["entry_tcg_us"] - c["rebuild_us"])
    return c


def write_costs(path, costs, results, scale, source):
    kinds = {r.get("kvm_runs_kernel") for r in results if "kvm_runs_kernel" in r}
    when = min((r["when"] for r in results), default="-")
    lines = ["# A host's costs for the simulator: written by bench/host_costs.py derive; do not",
             "# edit by hand. Every figure is read off fixed-placement runs of bench/scenarios.py",
             "# (the fit set: idle tcg-only and kvm-only, phases tcg-only and kvm=1,",
             "# compute-syscalls kvm-only), medians over their repetitions.",
             f"# Source: {source}, runs from {when}, --scale {scale}.",
             "[host]",
             f"kvm_runs_kernel = {'true' if kinds == {True} else 'false'}",
             f"runs_from = \"{when}\"",
             f"scale = {scale}",
             "", "[costs]"]
    for k, v in costs.items():
        lines.append(f"{k} = {v:.4g}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def load_costs(path):
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        sys.exit(f"host_costs: cannot read the cost file {path}: {e}")
    need = {"spinrate_native_ns", "tcg_slowdown", "entry_tcg_us", "entry_kvm_us",
            "zap_wait_us", "round_trip_us", "rebuild_us"}
    missing = need - set(data.get("costs", {}))
    if missing:
        sys.exit(f"host_costs: {path} lacks {', '.join(sorted(missing))}")
    return data


def work_spec(sc, costs):
    """The simulator's --work for a scenario's items."""
    parts = []
    for cpu, items in sorted(sc.work.items()):
        segs = []
        for prog, args in items:
            a = args.split()
            if prog == "spinrate":
                segs.append(f"user={float(a[1]) * costs['spinrate_native_ns'] * 1e-9:.6g}")
            elif "--sleep-us" in a:
                us = float(a[a.index("--sleep-us") + 1]) + SLACK_US
                segs.append(f"sleeps={float(a[1]):.0f}x{us:g}")
            else:
                segs.append(f"calls={float(a[1]):.0f}")
        parts.append(f"{cpu}:" + ",".join(segs))
    return ";".join(parts)


def simulate(sim, spec, costs, smp, placements, slowdown, kvm_runs_kernel, params=None):
    argv = [sim, "--work", spec, "--vcpus", str(smp), "--placements", "/".join(placements),
            "--tcg-slowdown", f"{slowdown:g}",
            "--entry-tcg-us", f"{costs['entry_tcg_us']:g}",
            "--entry-kvm-us", f"{costs['entry_kvm_us']:g}",
            "--round-trip-us", f"{costs['round_trip_us']:g}",
            "--zap-wait-us", f"{costs['zap_wait_us']:g}"]
    if kvm_runs_kernel:
        argv.append("--kvm-runs-kernel")
    if params:
        argv += ["--params", params]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    got = {}
    for line in out.splitlines():
        name, *fields = line.split()
        got[name] = {k: float(v) for k, v in (f.split("=") for f in fields)}
    return got


def fixed_configs(smp):
    return [n for n, _ in scen.configurations(smp) if n != "hot-tcg"]


def check(args):
    data = load_costs(args.costs)
    costs, kvk = data["costs"], data["host"].get("kvm_runs_kernel", False)
    scale = args.scale or data["host"].get("scale", 1.0)
    if not os.path.exists(args.results):
        sys.exit(f"host_costs: no results file {args.results}")
    med, _ = medians(scen.load(args.results))
    params = args.hot_tcg_params or f"zap-us={costs['rebuild_us']:.0f}"
    rows, misses = [], []
    for name, sc in work_items(scale).items():
        configs = fixed_configs(sc.smp)
        if not any((name, c) in med for c in configs):
            continue
        got = simulate(args.sim, work_spec(sc, costs), costs, sc.smp, configs + ["hot-tcg"],
                       costs["tcg_slowdown"], kvk, params)
        misses += judge(name, sc.kind, configs, got, med, args.tolerance, rows, FIT_SET)
    if args.npb:
        npb, _ = medians(scen.load(args.npb))
        for name in sorted({s for s, _ in npb if s.startswith("npb-")}):
            misses += check_npb(args, name, npb, costs, kvk, params, rows)
    print(f"{'scenario':<17} {'placement':<9} {'measured':>9} {'predicted':>10} {'error':>7}  role")
    for r in rows:
        meas = f"{r['measured']:.2f}" if r["measured"] is not None else "-"
        err = f"{r['error']:+.0%}" if r["error"] is not None else ""
        print(f"{r['scenario']:<17} {r['config']:<9} {meas:>9} {r['predicted']:>10.2f} {err:>7}  "
              f"{r['role']}")
    for m in misses:
        print("MISSED " + m)
    figures = {}
    for label, pick in (("calibration_error", lambda r: not r["scenario"].startswith("npb-")),
                        ("npb_calibration_error", lambda r: r["scenario"].startswith("npb-"))):
        tested = [r for r in rows if r["role"] == "test" and r["error"] is not None and pick(r)]
        if tested:
            figures[f"sim.{label}"] = max(abs(r["error"]) for r in tested)
    check_spec(figures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "misses": misses, "costs": costs, "params": params}, f,
                      indent=1)
    return 1 if misses else 0


def judge(name, kind, configs, got, med, tolerance, rows, fit_set):
    """Rows for one scenario, and what it missed: a test run off by more than the
    tolerance, or simulated hot-tcg short of the scenario's target."""
    misses = []
    for c in configs:
        m = med.get((name, c))
        err = (got[c]["makespan"] - m) / m if m else None
        role = "fit" if (name, c) in fit_set else "test"
        rows.append({"scenario": name, "config": c, "measured": m,
                     "predicted": got[c]["makespan"], "error": err, "role": role})
        if role == "test" and err is not None and abs(err) > tolerance:
            misses.append(f"{name} {c}: predicted {got[c]['makespan']:.2f} s, measured {m:.2f} s")
    hot = got["hot-tcg"]["makespan"]
    rows.append({"scenario": name, "config": "hot-tcg", "measured": med.get((name, "hot-tcg")),
                 "predicted": hot, "error": None, "role": "simulated policy"})
    fixed = {c: got[c]["makespan"] for c in configs}
    best = min(fixed.values())
    if kind == "phases":
        if not hot < best:
            misses.append(f"{name}: simulated hot-tcg {hot:.2f} s is not better than every "
                          f"fixed placement (best {best:.2f} s)")
    elif hot > 1.10 * best:
        misses.append(f"{name}: simulated hot-tcg {hot:.2f} s is not within 10% of the best "
                      f"fixed placement ({best:.2f} s)")
    return misses


def check_npb(args, name, med, costs, kvk, params, rows):
    smp = int(name.rsplit("smp", 1)[1])
    kvm, tcg = med.get((name, "kvm-only")), med.get((name, "tcg-only"))
    if not kvm or not tcg:
        return [f"{name}: no kvm-only or tcg-only run to fit its work on"]
    # OpenMP threads of alike work, one per vCPU, meeting at barriers: the slowest
    # sets the makespan. NPB times its kernel, not the initialisation before it
    # (NPB_INIT_S of user code, an assumption: it is not recorded).
    spec = ";".join(f"{i}:user={NPB_INIT_S},mark,user={kvm:.6g}" for i in range(smp))
    configs = fixed_configs(smp)
    got = simulate(args.sim, spec, costs, smp, configs + ["hot-tcg"], tcg / kvm, kvk, params)
    fit = {(name, "kvm-only"), (name, "tcg-only")}
    misses = judge(name, "same", configs, got, med, args.tolerance, rows, fit)
    hot = got["hot-tcg"]["makespan"]
    if hot > kvm * (1 + args.npb_spread):
        misses.append(f"{name}: simulated hot-tcg {hot:.2f} s is slower than kvm-only "
                      f"({kvm:.2f} s) by more than {args.npb_spread:.0%}")
    return misses


def measure(args):
    results = args.out + ".runs.jsonl"
    rc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "scenarios.py"),
                         "--scenarios", "idle,phases,compute-syscalls", "--configs",
                         "tcg-only,kvm=1,kvm-only", "--reps", str(args.reps), "--scale",
                         str(args.scale), "--results", results]).returncode
    if rc != 0:   # 77: no /dev/kvm, said by the bench
        print(f"host_costs: the fit runs did not complete (bench/scenarios.py: {rc})",
              file=sys.stderr)
        return rc
    write_costs(args.out, derive(scen.load(results), args.scale), scen.load(results),
                args.scale, results)
    print(open(args.out).read())
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("derive")
    d.add_argument("--results", required=True)
    d.add_argument("--scale", type=float, required=True)
    d.add_argument("--out", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--reps", type=int, default=1)
    m.add_argument("--scale", type=float, default=0.5)
    c = sub.add_parser("check")
    c.add_argument("--costs", required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--scale", type=float, help="the runs' --scale (default: the cost file's)")
    c.add_argument("--npb", help="NPB scenario runs to replay as well")
    c.add_argument("--npb-spread", type=float, default=0.05,
                   help="how much slower than kvm-only simulated hot-tcg may be on NPB")
    c.add_argument("--sim", default=SIM)
    c.add_argument("--hot-tcg-params", help="hot-tcg's policy-params in the simulator "
                   "(default: zap-us from the cost file's rebuild_us)")
    c.add_argument("--json", help="write the rows and misses here")
    c.add_argument("--tolerance", type=float, default=targets()["sim.calibration_error"][1],
                   help="a test run's largest relative error (default: docs/SPEC.md's)")
    args = ap.parse_args()
    if args.cmd == "derive":
        results = scen.load(args.results)
        write_costs(args.out, derive(results, args.scale), results, args.scale,
                    os.path.basename(args.results))
        print(open(args.out).read())
        return 0
    if args.cmd == "measure":
        return measure(args)
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
