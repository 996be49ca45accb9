// spinrate: how fast this vCPU runs a tight user-mode loop.
//
//   spinrate --cpu N [--iterations M] [--integer]
//
// Pins itself to vCPU N, runs M iterations of a dependent double-precision
// multiply-add chain (no memory traffic, no system calls), and prints
//   spinrate cpu=N iterations=M seconds=S rate=R
// A vCPU on KVM runs this natively; on TCG every SSE arithmetic instruction
// calls a softfloat helper. (An integer chain would not do: TCG translates it
// to nearly the same host code.) The ratio of the two rates is the evidence,
// in the integration tests, that KVM really ran it.
//
// --integer runs a dependent integer multiply-add chain instead: close to native
// speed on TCG too, and a fixed instruction count per iteration, for tests that
// count what TCG ran rather than time it.
#include <sched.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pin.h"

int main(int argc, char** argv) {
  int cpu = -1;
  uint64_t iterations = 100000000ULL;
  bool integer = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--integer")) integer = true;
    else if (i + 1 < argc && !std::strcmp(argv[i], "--cpu")) cpu = std::atoi(argv[++i]);
    else if (i + 1 < argc && !std::strcmp(argv[i], "--iterations"))
      iterations = std::strtoull(argv[++i], nullptr, 10);
    else { std::fprintf(stderr, "spinrate: unknown option %s\n", argv[i]); return 2; }
  }
  if (cpu < 0 || iterations == 0) {
    std::fprintf(stderr, "usage: spinrate --cpu N [--iterations M] [--integer]\n");
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
  uint64_t n = 1;
  if (integer) {
    for (uint64_t i = 0; i < iterations; ++i) {
      n = n * 6364136223846793005ULL + 1442695040888963407ULL;
      asm volatile("" : "+r"(n));  // one dependent chain, kept in a register
    }
    x = double(n >> 11) / double(1ULL << 53);
  } else {
    for (uint64_t i = 0; i < iterations; ++i) {
      x = x * 0.999999999 + 1e-9;
      asm volatile("" : "+x"(x));  // keep the chain in an SSE register
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double s = double(t1.tv_sec - t0.tv_sec) + double(t1.tv_nsec - t0.tv_nsec) / 1e9;
  std::printf("spinrate cpu=%d iterations=%llu seconds=%.3f rate=%.4g result=%.9f\n", cpu,
              (unsigned long long)iterations, s, double(iterations) / s, x);
  return 0;
}
