#!/usr/bin/env python3
"""tools/host_report.py without a KVM host: the experiments file, the interleaving, the
figures it reads from bench output, and the page it writes.

The report's runs need /dev/kvm; what it makes of them does not. The bench output below
is the PVM host's of 2026-12-04 (../shared/pvm/2026-12-04-daa7463/logs/move_latency.log).
Each reader is checked both ways: a line it must read, and one it must not.
"""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import host_report  # noqa: E402

MOVE_LATENCY_OUTPUT = """\
direction     moves   p50 us   p99 us  get p50  put p50 flush p50 flush p99
TCG -> KVM    13822    213.2   4309.0      0.2     63.3     145.6    4230.5
KVM -> TCG    13821     76.5    112.8     65.0      0.4      10.6      23.1
SPEC move.tcg_to_kvm.p50_us: MISSED (213.2, target <= 10)
SPEC move.tcg_to_kvm.p99_us: MISSED (4309, target <= 50)
SPEC move.kvm_to_tcg.p50_us: MET (7.5, target <= 10)
"""
# The counts table the bench prints since 2026-12-05 (made-up figures).
COUNTS_OUTPUT = """
direction    ioctls p50 ioctls mean syncs/move  memslot changes/move
TCG -> KVM          9.0        9.10      0.020                 1.002
KVM -> TCG          3.0        3.00      0.000                     -
"""
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def refused(toml_text):
    """The error load_experiments gives for this file, or None if it accepts it."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml_text)
    try:
        host_report.load_experiments(f.name)
        return None
    except ValueError as e:
        return str(e)
    finally:
        os.unlink(f.name)


GOOD = """
[experiments.x]
question = "q"
command = ["bench/move_latency.py"]
[experiments.x.metrics]
p50 = 'TCG -> KVM\\s+\\d+\\s+(?P<value>[0-9.]+)'
[experiments.x.variants.a]
accel = "pin=split"
"""

# The tree's own file: every experiment loads, names a bench that exists, has variants.
experiments = host_report.load_experiments()
check(len(experiments) >= 3, f"bench/experiments.toml has {len(experiments)} experiments")
check(all(e["variants"] and e["metrics"] for e in experiments),
      "every experiment has variants and metrics")
check(any(e["quick"] for e in experiments), "some experiment runs under --quick")

# Its move-latency metrics read the real bench output, and the right column.
cpu_model = next(e for e in experiments if e["name"] == "cpu-model")
got = {m: float(rx.search(MOVE_LATENCY_OUTPUT).group("value"))
       for m, rx in cpu_model["metrics"].items()}
check(got == {"tcg_to_kvm_p50_us": 213.2, "tcg_to_kvm_p99_us": 4309.0,
              "kvm_to_tcg_p50_us": 76.5}, f"cpu-model's metrics read {got}")
check(not cpu_model["metrics"]["tcg_to_kvm_p50_us"].search("KVM -> TCG    13821     76.5"),
      "the TCG -> KVM metric does not read the other direction's row")

# The memslot-change metric reads the counts table, not the latency table before it.
arch = next(e for e in experiments if e["name"] == "arch-capabilities")
rx = arch["metrics"]["memslot_changes_per_move"]
hit = rx.search(MOVE_LATENCY_OUTPUT + COUNTS_OUTPUT)
check(hit and hit.group("value") == "1.002", f"memslot changes read {hit and hit.group(0)}")
check(not rx.search(MOVE_LATENCY_OUTPUT), "no memslot figure is read from the latency table")

# The scenario bench's lines (the PVM host's log of 2026-12-04), read per configuration.
zap = next(e for e in experiments if e["name"] == "hot-tcg-zap-cost")
scen = ("  phases             tcg-only  rep 0: 9.961 s\n"
        "  phases             kvm=0     rep 0: 9.967 s\n"
        "  phases             hot-tcg   rep 0: 21.633 s\n")
got = {m: rx.search(scen).group("value") for m, rx in zap["metrics"].items()}
check(got == {"phases_hot_tcg_s": "21.633", "phases_tcg_only_s": "9.961"},
      f"hot-tcg-zap-cost reads {got}")

npb = next(e for e in experiments if e["name"] == "user-cpuid-npb")
hit = npb["metrics"]["ep_w_seconds"].search("npb_ep --class W: 3.25 s under -accel mixed,policy=kvm-only")
check(hit and hit.group("value") == "3.25", "user-cpuid-npb reads kvm_stats.py's time")

# A file with a mistake is refused, naming it.
check(refused(GOOD) is None, "a good experiment loads")
for broken, what in ((GOOD.replace('question = "q"\n', ""), "question"),
                     (GOOD.replace("(?P<value>", "("), "group 'value'"),
                     (GOOD.replace("[0-9.]+)'", "[0-9.+'"), "bad regex"),
                     (GOOD.replace('accel = "pin=split"', 'acel = "pin=split"'), "unknown keys"),
                     (GOOD.replace("bench/move_latency.py", "bench/nope.py"), "does not exist"),
                     (GOOD.replace("[experiments.x.metrics]", "reps = 0\n[experiments.x.metrics]"),
                      "positive integer")):
    err = refused(broken)
    check(err is not None and what in err and "experiment x" in err,
          f"a file with a mistake is refused naming it ({what}): {err}")

# Interleaving: over as many repetitions as variants, each variant runs first once.
variants = {"a": {}, "b": {}, "c": {}}
firsts = [host_report.interleaved(variants, rep)[0] for rep in range(3)]
check(sorted(firsts) == ["a", "b", "c"], f"each variant runs first once: {firsts}")
check(all(sorted(host_report.interleaved(variants, r)) == ["a", "b", "c"] for r in range(5)),
      "every repetition runs every variant once")

# bench/kvm_stats.py's rates: only what changed, per second, largest first.
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import kvm_stats  # noqa: E402
before = {0: {"kvm-stats": [{"name": "exits", "value": 10}, {"name": "pf_taken", "value": 5},
                            {"name": "tlb_flush", "value": 3}]}}
after = {0: {"kvm-stats": [{"name": "exits", "value": 30}, {"name": "pf_taken", "value": 105},
                           {"name": "tlb_flush", "value": 3}]}}
got = kvm_stats.deltas(before, after, 2.0)
check(got == {0: [("pf_taken", 50.0), ("exits", 10.0)]}, f"kvm_stats rates {got}")

# Spread.
s = host_report.spread([5.0, 1.0, 3.0, 2.0])
check(s == {"n": 4, "median": 2.5, "min": 1.0, "max": 5.0}, f"spread {s}")
check(host_report.spread([]) is None, "no values, no figure")

# A variant's environment reaches the bench, and one variant's does not leak into the next.
os.environ["MIXEDVM_EXTRA_ACCEL"] = "stale"
env = host_report.variant_env({"args": "-cpu max", "env": {"X": 1}})
check(env.get("MIXEDVM_EXTRA_ARGS") == "-cpu max" and env.get("X") == "1" and
      "MIXEDVM_EXTRA_ACCEL" not in env, "variant environment")

# SPEC lines: both verdicts, with their values.
spec = [m.groupdict() for m in host_report.SPEC_LINE.finditer(MOVE_LATENCY_OUTPUT)]
check([(x["id"], x["verdict"]) for x in spec] ==
      [("move.tcg_to_kvm.p50_us", "MISSED"), ("move.tcg_to_kvm.p99_us", "MISSED"),
       ("move.kvm_to_tcg.p50_us", "MET")], f"SPEC lines {spec}")

# The page: failures first and named in the summary, skips with their reasons, the
# experiment's table with median and spread per variant.
data = {
    "host": {"date": "2026-12-05 00:00 UTC", "commit": "0123456789", "dirty": False,
             "hostname": "h", "cpu_model": "cpu", "kernel": "6.18", "kvm": "present",
             "kvm_kind": "PVM", "kvm_modules": ["kvm_pvm"], "cores": 2, "memory_gib": 23.5,
             "cpu_flags": ["rtm", "cpuid_fault", "fpu"]},
    "quick": True, "seconds": 600,
    "tests": [{"name": "mixed-boot", "result": "OK", "seconds": 10},
              {"name": "torture-ipi", "result": "FAIL", "seconds": 20,
               "log": "logs/test-torture-ipi.log"},
              {"name": "mixed-nested-amdv", "result": "SKIP", "seconds": 0,
               "reason": "the host is not PVM"}],
    "benches": [{"bench": "move_latency", "rc": 0, "seconds": 30, "spec": spec,
                 "tail": MOVE_LATENCY_OUTPUT}],
    "experiments": [{"experiment": "user-cpuid", "question": "Q?", "command": "bench/x",
                     "reps": 2, "failures": ["rep 1 host: rc=1 (logs/x.log)"],
                     "variants": {"trap": {"settings": {"accel": "user-cpuid=trap"},
                                           "metrics": {"p50": host_report.spread([2.0, 4.0])}},
                                  "host": {"settings": {"accel": "user-cpuid=host"},
                                           "metrics": {"p50": host_report.spread([3.0])}}}}],
    "experiment_spec": [], "skipped": [{"what": "experiment pinning", "why": "full run only"}],
    "commands": [{"argv": ["bench/x"], "rc": 0, "seconds": 1.0, "log": "logs/x.log"}],
}
page = host_report.render(data)
check("1 passed, 1 failed, 1 skipped; failed: torture-ipi" in page, "summary counts tests")
check(page.index("| torture-ipi | FAIL") < page.index("| mixed-boot | OK"),
      "failed tests come first")
check("the host is not PVM" in page, "a skipped test says why")
check("move.tcg_to_kvm.p50_us **MISSED**" in page and "**MET**" in page, "SPEC verdicts")
check("| trap | accel=user-cpuid=trap | 3 (2-4, n=2) |" in page, "experiment medians and spread")
check("rep 1 host: rc=1" in page, "an experiment's failure is on the page")
check("skipped experiment pinning: full run only" in page, "skips are on the page")
check("cpuid_fault rtm" in page, "the CPU flags that matter")

# --compare: two recorded reports (the summary's data above, and a later one).
later = json.loads(json.dumps(data))
later["host"].update(commit="abcdef0123", date="2026-12-06 00:00 UTC")
later["tests"][1]["result"] = "OK"
later["benches"][0]["spec"] = [dict(spec[0], value="9.5", verdict="MET")]
later["experiments"][0]["variants"]["trap"]["metrics"]["p50"] = host_report.spread([1.0, 1.0])
diff = "\n".join(host_report.compare(data, later))
check("- torture-ipi: FAIL → OK" in diff and "mixed-boot" not in diff,
      "compare names the test that changed, and only it")
check("- move.tcg_to_kvm.p50_us: 213.2 MISSED → 9.5 MET" in diff, "compare: a SPEC figure")
check("- move.kvm_to_tcg.p50_us: 7.5 MET → not measured" in diff, "compare: a figure gone")
check("- user-cpuid / trap / p50: 3 (2-4, n=2) → 1 (1-1, n=2) (0.33x)" in diff,
      "compare: an experiment's median and ratio")

# --update-spec: docs/SPEC.md's rows of the measured ids change, and nothing else.
spec_copy = tempfile.NamedTemporaryFile("w", suffix=".md", delete=False).name
shutil.copy(host_report.SPEC_MD, spec_copy)
before = open(spec_copy).read()
done = host_report.update_spec(later, "/reports/2026-12-06-abcdef0", spec_copy)
after = open(spec_copy).read()
check(done == ["move.tcg_to_kvm.p50_us"], f"update_spec updated {done}")
row = next(l for l in after.splitlines() if l.startswith("| move.tcg_to_kvm.p50_us "))
check("| 9.5 (MET) |" in row and "commit abcdef0" in row and "2026-12-06-abcdef0" in row,
      f"the row names value, verdict, commit and report: {row}")
changed = [(x, y) for x, y in zip(before.splitlines(), after.splitlines()) if x != y]
check(len(changed) == 1 and len(before.splitlines()) == len(after.splitlines()),
      "update_spec changed only that row")
no_kvm = json.loads(json.dumps(later))
no_kvm["host"]["kvm"] = "absent: /dev/kvm is absent"
try:
    host_report.update_spec(no_kvm, "/reports/x", spec_copy)
    check(False, "a report without KVM was taken for SPEC figures")
except ValueError as e:
    check("no /dev/kvm" in str(e), f"a report without KVM is refused: {e}")
os.unlink(spec_copy)

# A recorded report: `tools/mixedvm report --quick` on this project's machine without
# /dev/kvm, 2026-12-05 (tests/data/). Its page, and its comparison with itself once a
# test has failed.
with open(os.path.join(HERE, "..", "data", "report-2026-12-05-no-kvm-quick.json")) as f:
    recorded = json.load(f)
page = host_report.render(recorded)
check("- tests: 3 passed, 0 failed, 8 skipped" in page, "recorded: the test summary")
check("- skipped probes: they need /dev/kvm (absent: /dev/kvm is absent)" in page,
      "recorded: why the probes did not run")
check("| mixedvm:integration / mixed-boot | SKIP | 0.1 | /dev/kvm is absent: -accel mixed "
      "needs KVM |" in page, "recorded: a skipped test with its reason")
worse = json.loads(json.dumps(recorded))
next(t for t in worse["tests"] if t["name"].endswith("guest-isa"))["result"] = "FAIL"
diff = host_report.compare(recorded, worse)
check("- mixedvm:integration / guest-isa: OK → FAIL" in diff and
      "- neither report measured a SPEC figure" in diff, f"recorded: compare {diff}")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
