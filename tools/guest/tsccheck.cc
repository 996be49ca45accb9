// tsccheck: RDTSC is one monotonic timeline across vCPUs and backend moves.
//
//   tsccheck [--seconds S]
//
// One thread per vCPU, each pinned. Every iteration a thread reads the shared
// "latest TSC anyone has seen" (acquire), then its own TSC (LFENCE; RDTSC),
// and publishes the larger. Because the shared value was written before this
// thread read it, the TSC read after it must not be smaller: a smaller value
// means two vCPUs (or one vCPU before and after a move) disagree on time.
// Also checks each thread's own reads never go backwards. Prints
// TSCCHECK PASS / TSCCHECK FAIL; exit 0 on PASS.
#include <sched.h>
#include <unistd.h>
#include <x86intrin.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "pin.h"

namespace {

std::atomic<uint64_t> latest{0};
std::atomic<bool> stop{false};

struct Result {
  uint64_t reads = 0, backwards = 0, behind_others = 0, worst = 0;
};

uint64_t ReadTsc() {
  _mm_lfence();  // RDTSC must not run before the load of `latest`
  return __rdtsc();
}

void Worker(int cpu, Result& r) {
  if (!PinToCpu(cpu).empty()) return;  // r.reads stays 0: reported as a failure
  uint64_t last = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const uint64_t seen = latest.load(std::memory_order_acquire);
    const uint64_t t = ReadTsc();
    ++r.reads;
    if (t < last) ++r.backwards;
    if (t < seen) {
      ++r.behind_others;
      if (seen - t > r.worst) r.worst = seen - t;
    }
    last = t;
    uint64_t cur = seen;
    while (cur < t && !latest.compare_exchange_weak(cur, t, std::memory_order_release)) {
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  if (argc == 3 && !std::strcmp(argv[1], "--seconds")) seconds = std::atof(argv[2]);
  const int n = int(sysconf(_SC_NPROCESSORS_ONLN));
  std::vector<Result> results(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(Worker, i, std::ref(results[i]));
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    threads[i].join();
    const Result& r = results[i];
    std::printf("tsccheck: cpu %d: %llu reads, %llu backwards, %llu behind another vCPU (worst %llu)\n",
                i, (unsigned long long)r.reads, (unsigned long long)r.backwards,
                (unsigned long long)r.behind_others, (unsigned long long)r.worst);
    ok = ok && r.reads > 0 && r.backwards == 0 && r.behind_others == 0;
  }
  std::printf("TSCCHECK %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
