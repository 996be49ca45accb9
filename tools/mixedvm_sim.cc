// mixedvm-sim: compare placement policies offline, without a guest.
//
//   mixedvm-sim --trace FILE [options]     replay a recorded telemetry trace
//   mixedvm-sim --scenario NAME [options]  a synthetic one: mixed, phases, all-hot
//   mixedvm-sim --work SPEC [costs] [--placements LIST] [--params P]
//                                          fixed work to its end: makespans
//
// options: --policies a,b,...   (default: every policy)
//          --tcg-slowdown S     user code on TCG runs S times slower (default 10)
//          --move-latency-us L  one move (default 60, measured: docs/mixed.md)
//          --kvm-runs-kernel    model a VT-x/AMD-V host instead of PVM
//          --native-ips R       give policies instruction counts: native code runs
//                               R instructions/s, TCG R / slowdown (default 0: none)
//
// Fixed work (what bench/scenarios.py runs, so that its recorded makespans can
// be predicted; bench/host_costs.py drives this mode):
//   SPEC       VCPU:SEG[,SEG...][;VCPU:...], SEG one of user=NATIVE_SECONDS,
//              calls=N (system calls), sleeps=NxHALT_US (a sleep: a stint halted
//              HALT_US), mark (the timed part starts here: the makespan runs
//              from the last vCPU's mark); e.g. "0:user=1.7;1:calls=50000"
//   costs      the host's, from its cost file: --entry-tcg-us, --entry-kvm-us,
//              --round-trip-us, --zap-wait-us, --zaps-per-stint, --tcg-slowdown,
//              --native-ips (1e9); --vcpus N (default: the work's)
//   LIST       tcg-only, kvm-only, kvm=A[,B..] (those vCPUs on KVM, fixed), or a
//              policy, which starts every vCPU on TCG (default:
//              tcg-only,kvm-only,hot-tcg); separated by '/'
//   P          hot-tcg's parameters, key=value:key=value
// It prints one line per placement: "PLACEMENT makespan=S moves=N changes=N".
//
// A trace comes from -accel mixed,trace-file=FILE: cumulative counters per vCPU
// per period. For each period in which a vCPU was placed on KVM, the trace says
// how its time split between KVM (user code), TCG (kernel code) and moves, which
// gives its behaviour: kernel share and kernel-entry rate. A period spent on TCG
// reuses the vCPU's last behaviour seen on KVM. Every policy then runs that
// behaviour through the same model (sched/simulator.h), in parallel (TBB), and
// the table shows moves, placement changes, time per backend and the work done.
#include <tbb/parallel_for.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "simulator.h"
#include "trace_record.h"

namespace {

using mixedvm::Behavior;
using mixedvm::Phase;
using mixedvm::TraceReader;
using mixedvm::TraceRecord;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "mixedvm-sim: %s\n", message.c_str());
  std::exit(2);
}

struct Row {
  uint64_t now_ns = 0, kvm_ns = 0, tcg_ns = 0, moves = 0, move_ns = 0, entries = 0;
  bool placed_kvm = false;
};

// One Phase per recorded period.
std::vector<Phase> PhasesFromTrace(const std::string& path, double tcg_slowdown, double* period_s) {
  std::ifstream in(path);
  if (!in) Die("cannot read trace " + path);
  std::string line;
  std::getline(in, line);
  const TraceReader reader(line);
  if (!reader.ok()) Die(path + " is not a mixedvm trace: " + reader.error());
  std::map<uint64_t, std::map<int, Row>> periods;  // now -> vcpu -> row
  int max_vcpu = -1;
  std::string error;
  while (std::getline(in, line)) {
    const std::optional<TraceRecord> rec = reader.Parse(line, &error);
    if (!rec) Die("bad trace line (" + error + "): " + line);
    const MixedvmVcpuSample& smp = rec->sample;
    Row r;
    r.now_ns = smp.now_ns;
    r.placed_kvm = rec->placed == MIXEDVM_BACKEND_KVM;
    r.kvm_ns = smp.kvm_ns;
    r.tcg_ns = smp.tcg_ns;
    r.moves = smp.moves;
    r.move_ns = smp.move_ns;
    r.entries = smp.kernel_entries;
    const int vcpu = int(rec->vcpu);
    periods[r.now_ns][vcpu] = r;
    max_vcpu = std::max(max_vcpu, vcpu);
  }
  if (periods.size() < 2 || max_vcpu < 0) Die(path + " has fewer than two periods");
  const size_t n = size_t(max_vcpu + 1);
  std::vector<Behavior> last(n, Behavior{0.0, 0.0, tcg_slowdown, true});
  std::vector<Phase> phases;
  const std::map<int, Row>* prev = nullptr;
  uint64_t prev_now = 0;
  double total_s = 0;
  for (const auto& [now, rows] : periods) {
    if (prev) {
      const double dt = double(now - prev_now) / 1e9;
      Phase phase{dt, last};
      for (const auto& [v, r] : rows) {
        auto p = prev->find(v);
        if (p == prev->end() || !p->second.placed_kvm) continue;
        const double kvm = double(r.kvm_ns - p->second.kvm_ns) / 1e9;
        const double tcg = double(r.tcg_ns - p->second.tcg_ns) / 1e9;
        const double moves = double(r.moves - p->second.moves);
        Behavior b{0, 0, tcg_slowdown, false};
        if (kvm < 1e-4 && moves < 2) {
          b.idle = true;  // on TCG all period, no user code: halted or kernel-bound
        } else {
          b.kernel_share = kvm + tcg > 0 ? std::min(0.99, tcg / (kvm + tcg)) : 0;
          b.entries_per_s = kvm > 0 ? moves / 2 / kvm : 0;
        }
        phase.vcpus[size_t(v)] = b;
        last[size_t(v)] = b;
      }
      phases.push_back(phase);
      total_s += dt;
    }
    prev = &rows;
    prev_now = now;
  }
  *period_s = total_s / double(phases.size());
  return phases;
}

std::vector<Phase> Scenario(const std::string& name, double slowdown) {
  const Behavior compute{0.02, 50, slowdown}, syscalls{0.6, 20000, 3};
  if (name == "mixed") return {Phase{30, {compute, syscalls, compute, syscalls}}};
  if (name == "phases") {
    return {Phase{10, {compute, compute}}, Phase{10, {syscalls, compute}}, Phase{10, {compute, syscalls}}};
  }
  if (name == "all-hot") return {Phase{10, std::vector<Behavior>(4, syscalls)}};
  Die("unknown scenario '" + name + "' (mixed, phases, all-hot)");
}

double Number(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0)) Die("bad " + what + " '" + text + "'");
  return v;
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, sep);) out.push_back(part);
  return out;
}

std::vector<std::vector<mixedvm::Segment>> ParseWork(const std::string& spec, double slowdown) {
  std::vector<std::vector<mixedvm::Segment>> work;
  for (const std::string& vcpu : Split(spec, ';')) {
    const size_t colon = vcpu.find(':');
    if (colon == std::string::npos) Die("--work: '" + vcpu + "' is not VCPU:SEGMENTS");
    const size_t v = size_t(Number(vcpu.substr(0, colon), "vCPU index"));
    if (v >= 256) Die("--work: vCPU index " + std::to_string(v) + " is too large");
    if (work.size() <= v) work.resize(v + 1);
    for (const std::string& item : Split(vcpu.substr(colon + 1), ',')) {
      const size_t eq = item.find('=');
      const std::string kind = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
      mixedvm::Segment g;
      g.tcg_slowdown = slowdown;
      if (kind == "user") {
        g.user_s = Number(value, "user seconds");
      } else if (kind == "calls") {
        g.stints = Number(value, "call count");
      } else if (kind == "mark" && value.empty()) {
        g.mark = true;
      } else if (kind == "sleeps") {
        const size_t x = value.find('x');
        if (x == std::string::npos) Die("--work: sleeps=NxHALT_US, not '" + value + "'");
        g.stints = Number(value.substr(0, x), "sleep count");
        g.halt_s = Number(value.substr(x + 1), "sleep microseconds") * 1e-6;
      } else {
        Die("--work: unknown segment '" + item + "' (user=, calls=, sleeps=, mark)");
      }
      work[v].push_back(g);
    }
  }
  if (work.empty()) Die("--work: no vCPU");
  return work;
}

// Fixed placements and policies, each run to the end of `work`.
int RunWork(const mixedvm::HostCosts& host, const std::vector<std::vector<mixedvm::Segment>>& work,
            const std::string& placements, const std::string& params, size_t nvcpus) {
  using mixedvm::Backend;
  struct Run {
    std::string name;
    std::unique_ptr<mixedvm::Policy> policy;
    std::vector<Backend> initial;
    mixedvm::WorkResult result;
  };
  std::vector<Run> runs;
  for (const std::string& name : Split(placements, '/')) {
    Run run{name, nullptr, std::vector<Backend>(nvcpus, Backend::kTcg), {}};
    if (name == "tcg-only" || name == "kvm-only") {
      run.policy = mixedvm::MakePolicy(name);
      if (name == "kvm-only") run.initial.assign(nvcpus, Backend::kKvm);
    } else if (name.rfind("kvm=", 0) == 0) {
      run.policy = mixedvm::MakePolicy("static");
      for (const std::string& v : Split(name.substr(4), ',')) {
        const size_t i = size_t(Number(v, "vCPU in " + name));
        if (i >= nvcpus) Die(name + ": no vCPU " + v + " (the work has " + std::to_string(nvcpus) + ")");
        run.initial[i] = Backend::kKvm;
      }
    } else {
      run.policy = mixedvm::MakePolicy(name);
      if (!run.policy) Die("unknown placement or policy '" + name + "'");
      std::string error;
      if (name == "hot-tcg" && !params.empty() && !run.policy->SetParams(params, &error))
        Die("--params: " + error);
    }
    runs.push_back(std::move(run));
  }
  tbb::parallel_for(size_t(0), runs.size(), [&](size_t k) {
    runs[k].result = mixedvm::SimulateWork(host, work, std::move(runs[k].policy), runs[k].initial);
  });
  for (const Run& run : runs) {
    uint64_t moves = 0;
    for (uint64_t m : run.result.sim.moves) moves += m;
    std::printf("%s makespan=%.4f moves=%llu changes=%llu\n", run.name.c_str(),
                run.result.makespan_s, (unsigned long long)moves,
                (unsigned long long)run.result.sim.placement_changes);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace, scenario, policies_arg, work_spec, placements = "tcg-only/kvm-only/hot-tcg", params;
  double slowdown = 10, latency_us = 60, period_s = 0.1, native_ips = 0;
  bool kvm_runs_kernel = false;
  mixedvm::HostCosts costs;
  size_t nvcpus = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--trace") trace = value();
    else if (a == "--scenario") scenario = value();
    else if (a == "--policies") policies_arg = value();
    else if (a == "--tcg-slowdown") slowdown = std::atof(value().c_str());
    else if (a == "--move-latency-us") latency_us = std::atof(value().c_str());
    else if (a == "--kvm-runs-kernel") kvm_runs_kernel = true;
    else if (a == "--native-ips") native_ips = std::atof(value().c_str());
    else if (a == "--work") work_spec = value();
    else if (a == "--placements") placements = value();
    else if (a == "--params") params = value();
    else if (a == "--vcpus") nvcpus = size_t(Number(value(), a));
    else if (a == "--round-trip-us") costs.round_trip_s = Number(value(), a) * 1e-6;
    else if (a == "--entry-tcg-us") costs.entry_tcg_s = Number(value(), a) * 1e-6;
    else if (a == "--entry-kvm-us") costs.entry_kvm_s = Number(value(), a) * 1e-6;
    else if (a == "--zap-wait-us") costs.zap_wait_s = Number(value(), a) * 1e-6;
    else if (a == "--zaps-per-stint") costs.zaps_per_stint = Number(value(), a);
    else Die("unknown option " + a + " (see the comment at the top of tools/mixedvm_sim.cc)");
  }
  if (!(slowdown >= 1) || !(latency_us > 0) || !(native_ips >= 0))
    Die("--tcg-slowdown must be >= 1, --move-latency-us > 0 and --native-ips >= 0");
  if (!work_spec.empty()) {
    if (!trace.empty() || !scenario.empty()) Die("--work goes without --trace and --scenario");
    costs.kvm_runs_kernel = kvm_runs_kernel;
    costs.native_ips = native_ips > 0 ? native_ips : 1e9;
    const auto work = ParseWork(work_spec, slowdown);
    if (nvcpus && nvcpus < work.size()) Die("--vcpus is less than the work's vCPUs");
    return RunWork(costs, work, placements, params, std::max(nvcpus, work.size()));
  }
  if (trace.empty() == scenario.empty()) Die("give --trace FILE, --scenario NAME or --work SPEC");

  const std::vector<Phase> phases =
      trace.empty() ? Scenario(scenario, slowdown) : PhasesFromTrace(trace, slowdown, &period_s);
  std::vector<std::string> names;
  if (policies_arg.empty()) {
    for (const auto& e : mixedvm::PolicyTable()) names.push_back(e.name);
  } else {
    std::stringstream ss(policies_arg);
    for (std::string p; std::getline(ss, p, ',');) {
      if (!mixedvm::MakePolicy(p)) Die("unknown policy '" + p + "'");
      names.push_back(p);
    }
  }
  const size_t n = phases.front().vcpus.size();
  const mixedvm::HostModel host{kvm_runs_kernel, latency_us * 1e-6, native_ips};
  std::vector<mixedvm::SimResult> results(names.size());
  // Policies are independent: one task each.
  tbb::parallel_for(size_t(0), names.size(), [&](size_t k) {
    const auto initial = std::vector<mixedvm::Backend>(
        n, names[k] == "kvm-only" ? mixedvm::Backend::kKvm : mixedvm::Backend::kTcg);
    results[k] = mixedvm::Simulate(host, phases, mixedvm::MakePolicy(names[k]), initial, period_s);
  });

  double seconds = 0;
  for (const Phase& p : phases) seconds += p.seconds;
  std::printf("%zu vCPUs, %.1f s in periods of %.3f s, %s host, move %.0f us, TCG slowdown %.1fx\n",
              n, seconds, period_s, kvm_runs_kernel ? "VT-x/AMD-V" : "PVM", latency_us, slowdown);
  std::printf("%-9s %10s %8s %9s %9s %9s %11s %10s\n", "policy", "work (s)", "vs best", "on KVM",
              "on TCG", "moving", "placements", "moves");
  double best = 0;
  for (const auto& r : results) {
    double w = 0;
    for (double x : r.work_s) w += x;
    best = std::max(best, w);
  }
  for (const auto& r : results) {
    double w = 0, kvm = 0, tcg = 0, mv = 0;
    uint64_t moves = 0;
    for (size_t i = 0; i < n; ++i) {
      w += r.work_s[i], kvm += r.kvm_s[i], tcg += r.tcg_s[i], mv += r.move_s[i], moves += r.moves[i];
    }
    std::printf("%-9s %10.2f %7.0f%% %8.1fs %8.1fs %8.2fs %11llu %10llu\n", r.policy.c_str(), w,
                100 * w / best, kvm, tcg, mv, (unsigned long long)r.placement_changes,
                (unsigned long long)moves);
  }
  return 0;
}
