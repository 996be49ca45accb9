#!/usr/bin/env python3
"""hot-tcg against every fixed placement, scenario by scenario.

    bench/scenarios.py [--scenarios LIST|all] [--reps 3] [--scale 1.0] [--timeout 600]
                       [--results build/scenarios.jsonl] [--report docs/scenarios.md]
    bench/scenarios.py --no-run --report docs/scenarios.md --results FILE[#NAME+NAME][,FILE...]
                                                                     (tables only, no runs)

A scenario is a guest with a fixed amount of work on each vCPU. Its figure is the
makespan: the seconds until the last vCPU finished its work, as the guest programs
measure it themselves (CLOCK_MONOTONIC in the guest), or NPB's own "Time in seconds",
counted only when NPB verified its result. Lower is better.

Each scenario runs under every configuration of its size, in the same run: `tcg-only`,
every fixed placement (`kvm=LIST`: those vCPUs on KVM, the others on TCG), `kvm-only`
and `hot-tcg`. With -smp 2 the fixed placements are all four subsets. With more vCPUs
they are the prefixes 0..k-1, which covers every placement up to symmetry for the NPB
kernels, whose OpenMP threads are alike. Within a repetition the configurations run one
after the other, in an order rotated from one repetition to the next, so that drift of
this shared host falls on all of them alike; the spread of the repetitions is reported.

Each scenario has a kind, which decides the targets it is held to (docs/SPEC.md):
  same     the vCPUs do the same kind of work: hot-tcg within 10% of the best fixed placement
  differ   the vCPUs differ: also strictly better than every fixed placement that is not
           the per-vCPU right one (see "right placement" below)
  phases   the work changes kind over time: strictly better than every fixed placement
and every -smp 2 scenario also: hot-tcg never slower than kvm-only (median within
kvm-only's own spread). A scenario with more vCPUs than host cores is overcommitted and
is labelled so: the guest cannot see that its vCPUs share cores.

Right placement: where vCPUs differ, one fixed placement puts each vCPU on the backend
that suits its whole run (compute on KVM, system calls on TCG). That placement is an
oracle: hot-tcg can only match it, because it has to find it first. The page reports
hot-tcg against it, and "strictly better" is asked only against the other fixed
placements, the ones a user who does not know the workload would pick.

Results are JSON lines, appended as each run ends, so an interrupted run resumes.
Needs /dev/kvm and a built tree (tools/mixedvm build image).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from mixedvm_vm import VmError, built_guest, kvm_unavailable  # noqa: E402
import npb_runner  # noqa: E402
from spec import check_spec  # noqa: E402  (bench/ is the script's own folder)

HOST_CORES = os.cpu_count() or 1


# ---------------------------------------------------------------------------
# Scenarios: per vCPU, a list of work items run one after the other

def spin(iterations):
    """User-mode floating-point compute: ~11x faster on KVM than on TCG here."""
    return ("spinrate", f"--iterations {int(iterations)}")


def syscalls(calls):
    """getppid() calls: each one a kernel entry, so a move pair on PVM when on KVM."""
    return ("sysloop", f"--calls {int(calls)}")


def sleeps(calls, us):
    """nanosleep(us) calls: a timer-heavy vCPU, halted most of its time."""
    return ("sysloop", f"--calls {int(calls)} --sleep-us {us}")


class Scenario:
    def __init__(self, name, kind, smp, work=None, npb=None, right=None, what=""):
        self.name, self.kind, self.smp = name, kind, smp
        self.work = work or {}        # {vcpu: [items]}
        self.npb = npb                # an NPB kernel, class A, instead of work
        self.right = right            # the oracle placement's configuration name
        self.what = what

    @property
    def overcommitted(self):
        return self.smp > HOST_CORES

    def guest_cmd(self):
        if self.npb:
            return None
        parts = []
        for cpu, items in sorted(self.work.items()):
            seq = "; ".join(f"{prog} --cpu {cpu} {args}" for prog, args in items)
            parts.append(f"( {seq} )" if len(items) > 1 else seq)
        return " & ".join(parts) + " & wait"

    def makespan(self, serial):
        """The seconds the slowest vCPU took for its work, or None with the reason."""
        took = {cpu: [] for cpu in self.work}
        for prog, cpu, secs in re.findall(
                r"^(spinrate|sysloop) cpu=(\d+) \S+ seconds=([0-9.]+)", serial, re.M):
            if int(cpu) in took:
                took[int(cpu)].append(float(secs))
        short = [cpu for cpu, items in self.work.items() if len(took[cpu]) != len(items)]
        if short:
            return None, f"no result from vCPU(s) {short}"
        return max(sum(t) for t in took.values()), None


def scenarios(scale):
    n, m = 2e9 * scale, 1e5 * scale
    out = [
        Scenario("compute-syscalls", "differ", 2, {0: [spin(n)], 1: [syscalls(m)]},
                 right="kvm=0", what="vCPU 0 computes, vCPU 1 makes system calls"),
        Scenario("phases", "phases", 2, {1: [spin(n / 2), syscalls(m), spin(n / 2)]},
                 what="vCPU 1 computes, then makes system calls, then computes; vCPU 0 idles"),
        Scenario("timer-compute", "differ", 2, {0: [sleeps(1e4 * scale, 100)], 1: [spin(n)]},
                 right="kvm=1",
                 what="vCPU 0 sleeps 100 µs 10,000 times (its APIC timer), vCPU 1 computes"),
        Scenario("idle", "same", 2, {0: [spin(n)]},
                 what="vCPU 0 computes, vCPU 1 idles: its placement should cost nothing"),
    ]
    for k in npb_runner.KERNELS:
        out.append(Scenario(f"npb-{k}-smp2", "same", 2, npb=k,
                            what=f"NPB {k.upper()} class A, 2 OpenMP threads"))
    for k in npb_runner.KERNELS:
        out.append(Scenario(f"npb-{k}-smp4", "same", 4, npb=k,
                            what=f"NPB {k.upper()} class A, 4 OpenMP threads"))
    return out


def configurations(smp):
    """[(name, -accel value)]; every one but hot-tcg is a fixed placement."""
    if smp == 2:
        subsets = [[0], [1]]
    else:
        subsets = [list(range(k)) for k in range(1, smp)]
    # The policies' -accel strings are the NPB runner's, under the names of this page.
    (_, tcg_only), (_, kvm_only), (_, hot) = npb_runner.configs_for(
        smp, "mixed-tcg,kvm-only,hot-tcg")
    configs = [("tcg-only", tcg_only)]
    for s in subsets:
        cpus = str(s[0]) if len(s) == 1 else f"{s[0]}-{s[-1]}"
        configs.append((f"kvm={cpus}", f"mixed,kvm-cpus={cpus}"))
    # hot-tcg's parameters for an experiment's variant (bench/experiments.toml): the
    # fixed placements take none.
    params = os.environ.get("SCENARIOS_HOT_TCG_PARAMS")
    if params:
        hot += f",policy-params={params}"
    return configs + [("kvm-only", kvm_only), ("hot-tcg", hot)]


# ---------------------------------------------------------------------------
# Running

def run_one(sc, accel, timeout):
    """One run: {"status", "seconds", telemetry...}."""
    if sc.npb:
        rec = npb_runner.run_guest(sc.npb, "A", sc.smp, accel, timeout)
        rec["seconds"] = rec.get("seconds") if rec["status"] == "verified" else None
        return rec
    g = built_guest(f"scenario-{sc.name}", smp=sc.smp, memory="1G", accel=accel,
                    cmd=sc.guest_cmd())
    rec, telemetry = {}, None
    try:
        g.start()
        info = npb_runner.watch_to_end(g, accel, timeout)
        if info:
            telemetry, rec["kvm_runs_kernel"] = info["vcpus"], info["kvm-runs-kernel"]
        seconds, why = sc.makespan(g.serial())
        rec["seconds"] = seconds
        rec["status"] = "ok" if seconds is not None else f"failed: {why}"
    except VmError as e:
        rec["seconds"], rec["status"] = None, f"failed: {e}"
    finally:
        g.stop()
        shutil.rmtree(g.dir, ignore_errors=True)
    if telemetry:
        rec["vcpus_telemetry"] = [{k: v.get(k) for k in ("cpu-index", "accel", "kvm-ns",
                                                          "tcg-ns", "moves", "kernel-entries")}
                                  for v in telemetry]
    return rec


def load_pages(spec):
    """Recorded runs from a --results value for --no-run: paths separated by commas, each
    optionally PATH#NAME+NAME to take only those scenarios from it (two hosts' or two
    settings' runs on one page, each scenario from one of them)."""
    out = []
    for part in spec.split(","):
        path, _, names = part.partition("#")
        if not os.path.exists(path):
            sys.exit(f"scenarios: no results file {path}")
        keep = set(names.split("+")) if names else None
        out += [r for r in load(path) if keep is None or r["scenario"] in keep]
    return out


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_matrix(chosen, reps, timeout, results_path, only_configs=None, scale=1.0):
    done = {(r["scenario"], r["config"], r["rep"]) for r in load(results_path)}
    todo = []
    for rep in range(reps):
        for sc in chosen:
            configs = [c for c in configurations(sc.smp)
                       if not only_configs or c[0] in only_configs]
            shift = rep % len(configs) if configs else 0
            for name, accel in configs[shift:] + configs[:shift]:
                if (sc.name, name, rep) not in done:
                    todo.append((rep, sc, name, accel))
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
    # Each run's per-period telemetry (trace-file=), for the simulator to replay
    # (tools/mixedvm-sim --trace): what the policy saw and decided, period by period.
    traces = os.path.splitext(os.path.abspath(results_path))[0] + "-traces"
    os.makedirs(traces, exist_ok=True)
    t0 = time.monotonic()
    for i, (rep, sc, name, accel) in enumerate(todo):
        npb_runner.progress(i, len(todo), t0, f"{sc.name} {name} rep {rep}")
        trace = os.path.join(traces, f"{sc.name}-{name.replace('=', '')}-{rep}.csv")
        rec = run_one(sc, f"{accel},trace-file={trace}", timeout)
        rec.update(scenario=sc.name, config=name, rep=rep, smp=sc.smp, accel=accel, scale=scale,
                   host=f"{HOST_CORES} cores, Linux {platform.release()}",
                   trace_file=trace if os.path.exists(trace) else None,
                   when=datetime.datetime.now().isoformat(timespec="seconds"))
        with open(results_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"  {sc.name:<18} {name:<9} rep {rep}: "
              + (f"{rec['seconds']:.3f} s" if rec["seconds"] is not None else rec["status"]),
              flush=True)


# ---------------------------------------------------------------------------
# Verdicts: what the page and the SPEC lines say

def summarise(sc, results):
    """The scenario's figures per configuration and its verdicts, from recorded runs."""
    rows = {}
    for name, _ in configurations(sc.smp):
        runs = [r for r in results if r["scenario"] == sc.name and r["config"] == name]
        ok = sorted(r["seconds"] for r in runs if r["seconds"] is not None)
        rows[name] = {"runs": len(runs), "ok": ok, "failed": len(runs) - len(ok),
                      "median": statistics.median(ok) if ok else None}
    hot = rows["hot-tcg"]
    fixed = {n: r for n, r in rows.items() if n != "hot-tcg"}
    complete = hot["runs"] > 0 and all(r["runs"] > 0 for r in fixed.values())
    s = {"scenario": sc.name, "kind": sc.kind, "smp": sc.smp, "rows": rows,
         "complete": complete, "overcommitted": sc.overcommitted, "verdicts": {}}
    if not complete:
        return s
    # A configuration that failed a run has no claim to be best; one that only
    # failed is the worst there is.
    usable = {n: r for n, r in fixed.items() if r["median"] is not None and not r["failed"]}
    s["best"] = min(usable, key=lambda n: usable[n]["median"]) if usable else None
    s["worst"] = max(fixed, key=lambda n: fixed[n]["median"] or float("inf"))
    hot_ok = hot["median"] is not None and not hot["failed"]
    if hot_ok and s["best"]:
        s["hot_over_best"] = hot["median"] / usable[s["best"]]["median"]
        s["verdicts"]["within 10% of the best fixed placement"] = s["hot_over_best"] <= 1.10
    else:
        s["verdicts"]["within 10% of the best fixed placement"] = False
    worst = fixed[s["worst"]]["median"]
    if hot_ok and worst:
        s["hot_over_worst"] = hot["median"] / worst
    if sc.kind in ("differ", "phases"):
        others = {n: r for n, r in fixed.items() if n != sc.right}
        s["verdicts"]["strictly better than every fixed placement" +
                      (f" but the right one ({sc.right})" if sc.right else "")] = hot_ok and all(
            r["median"] is None or r["failed"] or hot["median"] < r["median"]
            for r in others.values())
    if sc.smp == 2:
        kvm = fixed["kvm-only"]
        s["verdicts"]["never slower than kvm-only"] = hot_ok and (
            kvm["median"] is None or hot["median"] <= max(kvm["ok"]))
    return s


def host_of(results):
    """The runs' host as they recorded it; runs before 2026-12-05 did not record it."""
    seen = {r["host"] for r in results if r.get("host")}
    if len(seen) == 1:
        return seen.pop()
    if seen:
        return "runs from several hosts: " + "; ".join(sorted(seen))
    if results:
        return "not recorded by the runs"
    return f"{HOST_CORES} cores, Linux {platform.release()}"


def kvm_kind(results):
    """What the runs' KVM was, as mixed's start-up probe told query-vcpu-accel."""
    seen = {r["kvm_runs_kernel"] for r in results if "kvm_runs_kernel" in r}
    if not seen:
        return "KVM kind not recorded"
    if len(seen) > 1:
        return "runs from both kinds of KVM host mixed up"
    return ("KVM runs guest kernel code (VT-x/AMD-V)" if seen.pop() else
            "KVM runs guest user mode only (PVM)")


def fmt_runs(row):
    if not row["runs"]:
        return "not run"
    if not row["ok"]:
        return f"failed ({row['failed']})"
    spread = (f" [{row['ok'][0]:.2f}–{row['ok'][-1]:.2f}]" if len(row["ok"]) > 1 else "")
    failed = f", {row['failed']} failed" if row["failed"] else ""
    return f"{row['median']:.2f}{spread} (n={len(row['ok'])}{failed})"


def report(chosen, results, args, path):
    summaries = [summarise(sc, results) for sc in chosen]
    lines = ["# hot-tcg against every fixed placement",
             "",
             "Written by `bench/scenarios.py` from its recorded runs; do not edit by hand. "
             "Each figure is the scenario's makespan in seconds: median [min–max] over the "
             "repetitions, lower is better. What each scenario and target means is in the "
             "bench's opening comment.",
             "",
             f"Command: `bench/scenarios.py {' '.join(shlex.quote(a) for a in args)}`  ",
             f"Host: {host_of(results)}, "
             f"{kvm_kind(results)}; "
             f"runs from {min((r['when'] for r in results), default='-')} "
             f"to {max((r['when'] for r in results), default='-')}.",
             ""] + (["**No runs recorded yet**: every row below says `not run`. The bench "
                     "needs `/dev/kvm`; run it as above on a host that has it.", ""]
                    if not results else []) + [
             "## Verdicts", "",
             "| scenario | kind | vCPUs | best fixed | worst fixed | hot-tcg / best | "
             "hot-tcg / worst | targets |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        if not s["complete"]:
            lines.append(f"| {s['scenario']} | {s['kind']} | {s['smp']} | not run | | | | |")
            continue
        smp = f"{s['smp']}" + (" (overcommitted)" if s["overcommitted"] else "")
        targets = "; ".join(f"{k}: {'MET' if v else 'MISSED'}" for k, v in s["verdicts"].items())
        lines.append(f"| {s['scenario']} | {s['kind']} | {smp} | {s.get('best') or '-'} | "
                     f"{s['worst']} | {s.get('hot_over_best', float('nan')):.2f}x | "
                     f"{s.get('hot_over_worst', float('nan')):.2f}x | {targets} |")
    lines += ["", "## Figures", ""]
    for sc, s in zip(chosen, summaries):
        if not s["complete"]:
            continue
        label = " (overcommitted: more vCPUs than host cores)" if s["overcommitted"] else ""
        lines += [f"### {sc.name}{label}", "", sc.what + ".", "",
                  "| configuration | seconds |", "|---|---|"]
        for name, row in s["rows"].items():
            mark = " (right placement)" if name == sc.right else ""
            lines.append(f"| {name}{mark} | {fmt_runs(row)} |")
        lines.append("")
    over = overcommit(results)
    if over:
        lines += ["## Overcommit", "",
                  f"The same NPB work with more vCPUs than the host's {HOST_CORES} cores, against "
                  "-smp 2 (target: no configuration above 2x).", "",
                  "| kernel | configuration | -smp 2 s | overcommitted s | ratio |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {c} | {a:.2f} | {b:.2f} | {x:.2f}x |" for k, c, a, b, x in over]
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return summaries


def overcommit(results):
    """[(kernel, config, smp2 median, larger-smp median, ratio)] for every NPB kernel run
    at -smp 2 and at more vCPUs, per configuration both ran (overcommitted where the
    host has fewer cores than that: the experiment's case)."""
    med = {}
    for r in results:
        if r.get("seconds") is not None and r["scenario"].startswith("npb-"):
            med.setdefault((r["scenario"], r["config"]), []).append(r["seconds"])
    med = {k: statistics.median(v) for k, v in med.items()}
    rows = []
    for (name, config), big in sorted(med.items()):
        kernel, smp = name.rsplit("-smp", 1)
        small = med.get((f"{kernel}-smp2", config))
        if int(smp) > 2 and small:
            rows.append((kernel, config, small, big, big / small))
    return rows


def spec_figures(summaries):
    """docs/SPEC.md's scenario rows, over the scenarios that ran."""
    done = [s for s in summaries if s["complete"]]
    if not done:
        return {}
    ratios = [s.get("hot_over_best", float("inf")) for s in done]
    strict = [v for s in done for k, v in s["verdicts"].items() if k.startswith("strictly")]
    slower = [s for s in done if not s["verdicts"].get("never slower than kvm-only", True)]
    return {"scenarios.hot_tcg_over_best_fixed": max(ratios),
            "scenarios.strictly_better_share": (sum(strict) / len(strict)) if strict else 1.0,
            "scenarios.smp2_slower_than_kvm_only": float(len(slower))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", default="all", help="comma-separated names, or all")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every vCPU's work")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run")
    ap.add_argument("--results", default=os.path.join(ROOT, "build", "scenarios.jsonl"))
    ap.add_argument("--report", help="write the results page (markdown) here")
    ap.add_argument("--no-run", action="store_true", help="only write the report")
    ap.add_argument("--configs", help="run only these configurations (comma-separated: "
                    "tcg-only, kvm=0, kvm-only, hot-tcg...); bench/host_costs.py measure "
                    "runs its fit set so")
    args = ap.parse_args()
    everything = scenarios(args.scale)
    names = [s.name for s in everything]
    chosen = everything if args.scenarios == "all" else []
    for n in ([] if args.scenarios == "all" else args.scenarios.split(",")):
        if n not in names:
            sys.exit(f"scenarios: unknown scenario {n!r}; known: {', '.join(names)}")
        chosen.append(everything[names.index(n)])
    only_configs = set(args.configs.split(",")) if args.configs else None
    known = {n for sc in chosen for n, _ in configurations(sc.smp)}
    if only_configs and not only_configs <= known:
        sys.exit(f"scenarios: unknown configuration(s) {', '.join(sorted(only_configs - known))}; "
                 f"known: {', '.join(sorted(known))}")
    if args.reps < 1 or args.scale <= 0 or args.timeout <= 0:
        sys.exit("scenarios: --reps, --scale and --timeout must be positive")
    if not args.no_run:
        why = kvm_unavailable()
        if why:
            print(f"scenarios: needs KVM: {why}", file=sys.stderr)
            return 77
        run_matrix(chosen, args.reps, args.timeout, args.results, only_configs, args.scale)
    results = load_pages(args.results) if args.no_run else load(args.results)
    summaries = report(chosen, results, sys.argv[1:], args.report or os.devnull)
    for s in summaries:
        if s["complete"]:
            print(f"{s['scenario']:<18} " + "; ".join(
                f"{k}: {'MET' if v else 'MISSED'}" for k, v in s["verdicts"].items()))
    figures = spec_figures(summaries)
    over = overcommit([r for r in results if r["scenario"] in {s.name for s in chosen}])
    for kernel, config, small, big, ratio in over:
        print(f"overcommit {kernel:<7} {config:<9} smp2 {small:.2f} s, overcommitted "
              f"{big:.2f} s: {ratio:.2f}x")
    if over:
        figures["scenarios.overcommit_worst_ratio"] = max(x[-1] for x in over)
    return 1 if figures and check_spec(figures) else 0


if __name__ == "__main__":
    sys.exit(main())
