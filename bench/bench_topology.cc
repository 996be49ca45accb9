// What QEMU pays at start-up to learn the host topology before pinning
// vCPU threads (issue 5). Run: build/bench/bench_topology
#include <benchmark/benchmark.h>

#include "mixedvm/cpu_list.h"
#include "mixedvm/pinning.h"

static void BM_TopologyDiscoverHost(benchmark::State& state) {
  MixedvmTopology topo;
  char err[256];
  for (auto _ : state) {
    if (!mixedvm_topology_discover(nullptr, &topo, err, sizeof err)) {
      state.SkipWithError(err);
      break;
    }
    benchmark::DoNotOptimize(topo);
  }
}
BENCHMARK(BM_TopologyDiscoverHost)->Unit(benchmark::kMicrosecond);

static void BM_ParseCpuList(benchmark::State& state) {
  bool selected[64];
  char err[256];
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        mixedvm_parse_cpu_list("0-3,8,10-15,63", selected, 64, err, sizeof err));
  }
}
BENCHMARK(BM_ParseCpuList);

BENCHMARK_MAIN();
