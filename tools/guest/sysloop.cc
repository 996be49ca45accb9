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
  int cpu;
  double seconds = 5;
  if (const int rc = ParseCpuLoopArgs("sysloop", argc, argv, &cpu, &seconds)) return rc;
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
