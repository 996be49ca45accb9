// Decision cost of the placement policies, per vCPU per period (target: <= 1 us,
// docs/mixed.md). Run: build/bench/bench_policy
#include <benchmark/benchmark.h>

#include <vector>

#include "mixedvm/sched.h"
#include "scheduler.h"

namespace {

using mixedvm::Backend;

// Counters that make hot-tcg and sample do real work: half the vCPUs hot.
void Advance(std::vector<MixedvmVcpuSample>& s, int period) {
  for (size_t i = 0; i < s.size(); ++i) {
    s[i].now_ns += 100000000;
    const bool hot = (i + size_t(period / 20)) % 2;
    s[i].kvm_ns += hot ? 10000000 : 95000000;
    s[i].tcg_ns += hot ? 60000000 : 3000000;
    s[i].move_ns += hot ? 30000000 : 2000000;
    s[i].moves += hot ? 500 : 30;
  }
}

void BM_Decide(benchmark::State& state, const char* policy) {
  const unsigned n = unsigned(state.range(0));
  mixedvm_sched_register_thread();
  mixedvm::Scheduler sched(mixedvm::MakePolicy(policy), std::vector<Backend>(n, Backend::kKvm), false);
  std::vector<MixedvmVcpuSample> samples(n);
  std::vector<Backend> out(n);
  int period = 0;
  for (auto _ : state) {
    Advance(samples, period++);
    benchmark::DoNotOptimize(sched.Decide(samples, out));
  }
  state.counters["ns_per_vcpu"] = benchmark::Counter(
      double(state.iterations()) * n, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  mixedvm_sched_unregister_thread();
}

BENCHMARK_CAPTURE(BM_Decide, static, "static")->Arg(4)->Arg(64)->Arg(256);
BENCHMARK_CAPTURE(BM_Decide, kvm_only, "kvm-only")->Arg(4)->Arg(64)->Arg(256);
BENCHMARK_CAPTURE(BM_Decide, hot_tcg, "hot-tcg")->Arg(4)->Arg(64)->Arg(256);
BENCHMARK_CAPTURE(BM_Decide, sample, "sample")->Arg(4)->Arg(64)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
