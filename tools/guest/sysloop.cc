// sysloop: a syscall-heavy program, the opposite of spinrate.
//
//   sysloop --cpu N [--seconds S]
//
// Pinned to vCPU N, calls getppid() in a loop for S seconds and prints
//   sysloop cpu=N calls=C rate=R
// Every call enters the guest kernel: on a PVM host each one takes a vCPU
// placed on KVM to TCG and back, which hot-tcg should notice.
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pin.h"

int main(int argc, char** argv) {
  int cpu = -1;
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cpu")) cpu = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else { std::fprintf(stderr, "sysloop: unknown option %s\n", argv[i]); return 2; }
  }
  if (cpu < 0) {
    std::fprintf(stderr, "usage: sysloop --cpu N [--seconds S]\n");
    return 2;
  }
  const std::string error = PinToCpu(cpu);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned long calls = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 1000; ++i) syscall(SYS_getppid);
    calls += 1000;
    clock_gettime(CLOCK_MONOTONIC, &t);
    elapsed = double(t.tv_sec - t0.tv_sec) + double(t.tv_nsec - t0.tv_nsec) / 1e9;
  } while (elapsed < seconds);
  std::printf("sysloop cpu=%d calls=%lu rate=%.4g\n", cpu, calls, double(calls) / elapsed);
  return 0;
}
