// torture: memory and CPU coherence across vCPUs and backends, checked from the guest.
//
//   torture [--seconds S] [--cpus LIST] [--tsc-slack CYCLES] [--verbose] TEST...
//
//   TEST       xmc ptchurn atomics splitlock clock ipi shootdown, or all (each in turn)
//   --seconds  how long each test runs (default 10; fractions allowed)
//   --cpus     the vCPUs to use, e.g. 0,1,2,3 or 0-3 (default: every CPU this process
//              may run on). A CPU may be named twice (0,1,0,1) to put two threads on it.
//              A CPU that is offline or not allowed is a usage error.
//   --tsc-slack  clock: a TSC read behind another vCPU's by at most CYCLES is counted
//              (tsc_behind_in_slack), not failed; for a host whose CPUs' TSCs are known
//              not to agree that closely (the emulated AMD-V host). Default 0
//   --verbose  progress every second, and each of the first errors as it happens
//
// Output: one line per test, "TORTURE <test> PASS key=value..." or "TORTURE <test> FAIL
// <what failed, with numbers> (first: <details>) key=value...", then "TORTURE PASS" or
// "TORTURE FAIL". Exit 0 only if every test passed, 1 on a failure, 2 on a usage error.
// A test that has not finished after 3*S+30 s prints "TORTURE <test> FAIL hang" with its
// progress counters, and the program _exits 1 at once: a stuck thread cannot be joined,
// and a hang is itself how several broken mechanisms show (a lost IPI leaves membarrier()
// or a TLB shootdown waiting forever).
//
// Roles that must be on different vCPUs (writer and executor, the two sides of a Dekker
// test or a ping-pong) rotate through every ordered pair of distinct CPUs in LIST; the
// shootdown mapper rotates through every CPU with all the others reading. So every
// direction between every two vCPUs -- and, while mixedvm moves vCPUs, between every two
// backends -- gets exercised. Faults a test provokes, or that a broken mechanism may cause
// (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE), are caught around the one access with
// sigsetjmp/siglongjmp and counted. Any other fault prints "TORTURE <test> FAIL unexpected
// <signal> ..." and exits 1. Memory stays small: under 200 KiB per thread. With only one
// distinct CPU in LIST the roles share it: a degenerate run.
//
// Layout: this header and harness.cc are what the tests share (the fault trap, error
// counting, the result line, waiting, role rotation) and the driver: main() and kTests,
// the table of tests. Each test is one file, xmc.cc ... shootdown.cc, whose opening
// comment says what it does, what "broken" looks like, and any caveats; it exposes one
// entry function, declared at the end of this header. A new test is a new file, its
// declaration here, a row in kTests, and a source in tools/meson.build.
#pragma once

#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace torture {

constexpr size_t kPage = 4096;
constexpr size_t kWordsPerPage = kPage / sizeof(uint64_t);
constexpr size_t kMaxThreads = 64;  // reader slots in a shootdown page, among others
constexpr unsigned kSpinsBeforeYield = 1u << 14;
// For a thread that shares its CPU with another thread of the same test: staying in user
// mode is moot then, and the thread it waits for may need this very CPU.
constexpr unsigned kSharedSpinsBeforeYield = 256;
constexpr unsigned kNeverYield = ~0u;
constexpr uint64_t kNsPerSec = 1000000000ULL;
constexpr int kChildFaulted = 64;  // exit status of a forked child that took a fault

using u64 = unsigned long long;  // for printf

struct Config {
  double seconds = 10;
  std::vector<int> cpus;
  uint64_t tsc_slack = 0;  // clock: cycles a TSC read may trail another vCPU's
  bool verbose = false;
};

struct Outcome {
  bool pass;
  std::string text;
};

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * kNsPerSec + uint64_t(ts.tv_nsec);
}

inline uint64_t DeadlineAfter(double seconds) { return NowNs() + uint64_t(seconds * 1e9); }

// Progress of the running test, for the watchdog's hang verdict and the verbose lines.
extern std::atomic<uint64_t> g_rounds;
extern std::atomic<const char*> g_phase;

const char* SignalName(int sig);

// ---- Catching faults per access ----------------------------------------------------------

struct FaultTrap {
  sigjmp_buf jmp;
  volatile sig_atomic_t armed = 0;
  volatile int signal = 0;
};
// constinit: no dynamic initialization, so the tests' own trapped operations (xmc's
// TryCall, splitlock's TryBatch) reach it directly, without a TLS wrapper call.
extern thread_local constinit FaultTrap t_trap;

// Each probe returns 0 when the access completed, else the signal it raised. The trap is
// armed only around the one access, so a fault anywhere else is still unexpected. A test's
// own trapped operation follows the same pattern: sigsetjmp(t_trap.jmp, 0), arm, the
// access, disarm.
__attribute__((noinline)) int TryLoad(const volatile uint64_t* p, uint64_t& out);
__attribute__((noinline)) int TryStore(volatile uint64_t* p, uint64_t v);

// ---- Errors, reports, helpers ------------------------------------------------------------

// Counts errors by category and keeps the description of the first one.
class Errors {
 public:
  explicit Errors(const char* test) : test_(test) {}

  __attribute__((format(printf, 3, 4))) void Add(std::atomic<uint64_t>& counter,
                                                  const char* fmt, ...);
  __attribute__((format(printf, 2, 3))) void Other(const char* fmt, ...);
  bool Pin(int cpu);

  uint64_t total() const { return total_.load(); }
  uint64_t other() const { return other_.load(); }
  uint64_t pin_failures() const { return pin_failures_.load(); }
  std::string first() const;

 private:
  static constexpr uint64_t kPrinted = 10;

  void AddV(std::atomic<uint64_t>& counter, const char* fmt, va_list ap);

  const char* test_;
  std::atomic<uint64_t> total_{0}, other_{0}, pin_failures_{0};
  mutable std::mutex mu_;
  uint64_t first_n_ = UINT64_MAX;
  std::string first_;
};

// Builds a test's result line: failures with their counts, the first error, then stats.
class Report {
 public:
  Report& Stat(const char* key, uint64_t value) { return Add(key, std::to_string(value)); }
  Report& Stat(const char* key, double value, int precision);
  Report& Stat(const char* key, const std::string& value) { return Add(key, value); }
  Report& Check(uint64_t count, const char* what);
  Report& Require(bool ok, const std::string& what);
  Outcome Finish(const Errors& errors);

 private:
  Report& Add(const char* key, const std::string& value);
  std::vector<std::string> failures_;
  std::string stats_;
};

// Waits in user mode until done(); after `spins_before_yield` spins it yields. kNeverYield
// is for a caller that must stay in user mode (a vCPU busy in user code is what the test
// needs).
template <class Done>
void SpinUntil(Done&& done, unsigned spins_before_yield = kSpinsBeforeYield) {
  unsigned spins = 0;
  while (!done()) {
    if (spins >= spins_before_yield) {
      sched_yield();
    } else {
      _mm_pause();
      ++spins;
    }
  }
}

// Every ordered pair of distinct CPUs in the list: neighbours first ((c[i], c[i+1]) for
// every i), then further apart, so that a short run still rotates through every vCPU.
std::vector<std::pair<int, int>> RolePairs(const std::vector<int>& cpus);

inline bool SharesCpu(const std::vector<int>& cpus, int cpu) {
  return std::count(cpus.begin(), cpus.end(), cpu) > 1;
}

inline unsigned SpinsBeforeYield(bool shares_cpu) {
  return shares_cpu ? kSharedSpinsBeforeYield : kSpinsBeforeYield;
}

// ---- The tests: one file each, one entry in kTests (harness.cc) --------------------------

namespace xmc { Outcome Run(const Config& cfg); }
namespace ptchurn { Outcome Run(const Config& cfg); }
namespace atomics { Outcome Run(const Config& cfg); }
namespace splitlock { Outcome Run(const Config& cfg); }
namespace clocks { Outcome Run(const Config& cfg); }  // "clock" is taken by ::clock()
namespace ipi { Outcome Run(const Config& cfg); }
namespace shootdown { Outcome Run(const Config& cfg); }

}  // namespace torture
