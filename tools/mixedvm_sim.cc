// mixedvm-sim: compare placement policies offline, without a guest.
//
//   mixedvm-sim --trace FILE [options]     replay a recorded telemetry trace
//   mixedvm-sim --scenario NAME [options]  a synthetic one: mixed, phases, all-hot
//
// options: --policies a,b,...   (default: every policy)
//          --tcg-slowdown S     user code on TCG runs S times slower (default 10)
//          --move-latency-us L  one move (default 60, measured: docs/mixed.md)
//          --kvm-runs-kernel    model a VT-x/AMD-V host instead of PVM
//          --native-ips R       give policies instruction counts: native code runs
//                               R instructions/s, TCG R / slowdown (default 0: none)
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

}  // namespace

int main(int argc, char** argv) {
  std::string trace, scenario, policies_arg;
  double slowdown = 10, latency_us = 60, period_s = 0.1, native_ips = 0;
  bool kvm_runs_kernel = false;
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
    else Die("unknown option " + a + " (see the comment at the top of tools/mixedvm_sim.cc)");
  }
  if (trace.empty() == scenario.empty()) Die("give --trace FILE or --scenario NAME");
  if (!(slowdown >= 1) || !(latency_us > 0) || !(native_ips >= 0))
    Die("--tcg-slowdown must be >= 1, --move-latency-us > 0 and --native-ips >= 0");

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
