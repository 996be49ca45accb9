// spinrate: how fast this vCPU runs a tight user-mode loop.
//
//   spinrate --cpu N [--iterations M]
//
// Pins itself to vCPU N, runs M iterations of a dependent double-precision
// multiply-add chain (no memory traffic, no system calls), and prints
//   spinrate cpu=N iterations=M seconds=S rate=R
// A vCPU on KVM runs this natively; on TCG every SSE arithmetic instruction
// calls a softfloat helper. (An integer chain would not do: TCG translates it
// to nearly the same host code.) The ratio of the two rates is the evidence,
// in the integration tests, that KVM really ran it.
#include <sched.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pin.h"
#include <string>

int main(int argc, char** argv) {
  int cpu = -1;
  uint64_t iterations = 100000000ULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cpu")) cpu = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iterations")) iterations = std::strtoull(argv[i + 1], nullptr, 10);
    else { std::fprintf(stderr, "spinrate: unknown option %s\n", argv[i]); return 2; }
  }
  if (cpu < 0 || iterations == 0) {
    std::fprintf(stderr, "usage: spinrate --cpu N [--iterations M]\n");
    return 2;
  }
  const std::string error = PinToCpu(cpu);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  double x = 1.0;
  for (uint64_t i = 0; i < iterations; ++i) {
    x = x * 0.999999999 + 1e-9;
    asm volatile("" : "+x"(x));  // keep the chain in an SSE register
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double s = double(t1.tv_sec - t0.tv_sec) + double(t1.tv_nsec - t0.tv_nsec) / 1e9;
  std::printf("spinrate cpu=%d iterations=%llu seconds=%.3f rate=%.4g result=%.9f\n", cpu,
              (unsigned long long)iterations, s, double(iterations) / s, x);
  return 0;
}
