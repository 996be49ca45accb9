// The cost of the clocks mixed could read at every privilege change on TCG
// (the user/kernel split of TCG time reads CLOCK_MONOTONIC twice per kernel
// round trip; see docs/scheduler.md).
#include <benchmark/benchmark.h>
#include <time.h>
#include <x86intrin.h>

static void BM_ClockMonotonic(benchmark::State& state) {
  struct timespec ts;
  for (auto _ : state) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_ClockMonotonic);

static void BM_Rdtsc(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(__rdtsc());
}
BENCHMARK(BM_Rdtsc);

BENCHMARK_MAIN();
