// clockread: read the time the way programs do, and check it.
//
//   clockread --cpu N [--seconds S]
//
// Pinned to vCPU N, prints the kernel's clocksource, then
//   clockread: reading
// and for S seconds calls clock_gettime(CLOCK_MONOTONIC), clock_gettime(
// CLOCK_REALTIME) and gettimeofday() in turn, checking that CLOCK_MONOTONIC
// never goes back. Then it prints
//   clockread cpu=N reads=R rate=X clocksource=NAME backwards=B PASS|FAIL
//
// With the tsc clocksource all three are served by the vDSO in user mode:
// a vCPU placed on KVM reads the time without a single guest kernel entry,
// which the test reads from query-vcpu-accel's kernel-entries while this
// runs (tests/integration/test_mixed_guest_cpu.py). With hpet each read is a
// system call. Nothing between the two lines enters the kernel on purpose.
#include <sys/time.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pin.h"

static std::string CurrentClocksource() {
  FILE* f = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (!f) return "unknown";
  char name[64] = "unknown";
  if (std::fscanf(f, "%63s", name) != 1) std::strcpy(name, "unknown");
  std::fclose(f);
  return name;
}

static double Seconds(const timespec& a, const timespec& b) {
  return double(b.tv_sec - a.tv_sec) + double(b.tv_nsec - a.tv_nsec) / 1e9;
}

int main(int argc, char** argv) {
  int cpu;
  double seconds = 5;
  if (const int rc = ParseCpuLoopArgs("clockread", argc, argv, &cpu, &seconds)) return rc;
  const std::string source = CurrentClocksource();
  std::printf("clockread: clocksource %s\nclockread: reading\n", source.c_str());
  std::fflush(stdout);

  timespec start, last, now, wall;
  timeval tv;
  clock_gettime(CLOCK_MONOTONIC, &start);
  last = start;
  unsigned long reads = 0, backwards = 0;
  do {
    for (int i = 0; i < 256; ++i) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      clock_gettime(CLOCK_REALTIME, &wall);
      gettimeofday(&tv, nullptr);
      if (now.tv_sec < last.tv_sec || (now.tv_sec == last.tv_sec && now.tv_nsec < last.tv_nsec))
        ++backwards;
      last = now;
    }
    reads += 3 * 256;
  } while (Seconds(start, now) < seconds);

  const double elapsed = Seconds(start, now);
  std::printf("clockread cpu=%d reads=%lu rate=%.4g clocksource=%s backwards=%lu %s\n", cpu,
              reads, double(reads) / elapsed, source.c_str(), backwards,
              backwards ? "FAIL" : "PASS");
  return backwards ? 1 : 0;
}
