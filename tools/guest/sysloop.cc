// sysloop: a syscall-heavy program, the opposite of spinrate.
//
//   sysloop --cpu N [--seconds S] [--calls C] [--sleep-us U]
//
// Pinned to vCPU N, calls getppid() in a loop for S seconds, or C times with --calls,
// and prints
//   sysloop cpu=N calls=C seconds=S rate=R
// Every call enters the guest kernel: on a PVM host each one takes a vCPU
// placed on KVM to TCG and back, which hot-tcg should notice.
//
// --sleep-us U makes each call a nanosleep of U microseconds instead: a timer-heavy
// vCPU, halted most of the time and woken by its APIC timer after every call.
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pin.h"

namespace {

// Not inlined, so that its loop line is one place the loop always passes: the gdb test
// (mixed-nested-gdb) breaks on it and must stop there once per batch.
__attribute__((noinline)) void GetppidCalls(unsigned long n) {
  for (unsigned long i = 0; i < n; ++i) syscall(SYS_getppid);
}

double SecondsSince(const timespec& t0) {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec - t0.tv_sec) + double(t.tv_nsec - t0.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int cpu;
  double seconds = 5, calls_wanted = 0, sleep_us = 0;
  if (const int rc = ParseCpuLoopArgs("sysloop", argc, argv, &cpu, &seconds,
                                      {{"--calls", &calls_wanted}, {"--sleep-us", &sleep_us}}))
    return rc;
  const unsigned long limit = static_cast<unsigned long>(calls_wanted);
  // A batch between clock reads: the reads stay a small share of the loop's time.
  const unsigned long batch = sleep_us > 0 ? 1 : 1000;
  const timespec nap = {0, static_cast<long>(sleep_us * 1000)};
  timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned long calls = 0;
  double elapsed = 0;
  do {
    const unsigned long n = limit ? std::min(batch, limit - calls) : batch;
    if (sleep_us > 0) {
      for (unsigned long i = 0; i < n; ++i) nanosleep(&nap, nullptr);
    } else {
      GetppidCalls(n);
    }
    calls += n;
    elapsed = SecondsSince(t0);
  } while (limit ? calls < limit : elapsed < seconds);
  std::printf("sysloop cpu=%d calls=%lu seconds=%.6f rate=%.4g\n", cpu, calls, elapsed,
              double(calls) / elapsed);
  return 0;
}
