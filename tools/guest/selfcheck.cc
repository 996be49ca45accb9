// selfcheck: a self-verifying, user-mode compute workload for the guest.
//
// One thread per vCPU (or --threads N), each pinned to its vCPU. Every thread
// runs three checks whose answers are known independently of the code that
// computes them, so a wrong register, a lost FPU/SSE state or a corrupted
// page during a backend move shows up as a failure:
//   1. Fibonacci mod p by plain iteration (the hot loop), compared with the
//      fast-doubling formula, a different algorithm.
//   2. zeta(2) partial sums forwards and backwards in double precision: both
//      must agree and lie inside the analytic tail bound
//      1/(K+1) < pi^2/6 - S_K < 1/K.
//   3. A segmented sieve over this thread's share of [0, 10^7); the shares
//      must add up to pi(10^7) = 664579, the published prime count.
// Prints one line per thread and a final "SELFCHECK PASS" / "SELFCHECK FAIL";
// exits 0 only on PASS. --inject-fault T flips a bit in thread T's result, the
// negative control that shows the checks (and the tests reading them) can fail.
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "pin.h"

namespace {

constexpr uint64_t kPrime = 1000000007ULL;
constexpr uint64_t kSieveLimit = 10000000ULL;
constexpr uint64_t kPrimesBelowLimit = 664579ULL;  // pi(10^7)

struct Options {
  int threads = 0;        // 0: one per online CPU
  int rounds = 1;
  double scale = 1.0;
  int expect_cpus = 0;    // 0: no expectation
  int inject_fault = -1;  // thread whose Fibonacci result gets one bit flipped
};

uint64_t FibIterative(uint64_t n) {
  uint64_t a = 0, b = 1;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t c = a + b;
    if (c >= kPrime) c -= kPrime;
    a = b;
    b = c;
  }
  return a;
}

// F(2k) = F(k) * (2F(k+1) - F(k)), F(2k+1) = F(k)^2 + F(k+1)^2 (mod p).
uint64_t FibDoubling(uint64_t n) {
  uint64_t a = 0, b = 1;  // F(k), F(k+1) for k = prefix of n's bits
  for (int bit = 63; bit >= 0; --bit) {
    uint64_t c = a * ((2 * b + kPrime - a) % kPrime) % kPrime;
    uint64_t d = (a * a + b * b) % kPrime;
    if ((n >> bit) & 1) {
      a = d;
      b = (c + d) % kPrime;
    } else {
      a = c;
      b = d;
    }
  }
  return a;
}

bool CheckZeta2(uint64_t k_max, std::string& why) {
  volatile double forward = 0.0;  // volatile: keep the FPU/SSE work real
  for (uint64_t k = 1; k <= k_max; ++k) forward = forward + 1.0 / (double(k) * double(k));
  volatile double backward = 0.0;
  for (uint64_t k = k_max; k >= 1; --k) backward = backward + 1.0 / (double(k) * double(k));
  const double pi2_6 = M_PI * M_PI / 6.0;
  const double tail = pi2_6 - backward;
  const double lo = 1.0 / double(k_max + 1), hi = 1.0 / double(k_max);
  if (std::fabs(forward - backward) > 1e-12 || tail <= lo * (1 - 1e-6) || tail >= hi * (1 + 1e-6)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "zeta(2) sums %.15g/%.15g outside bound (%.3g,%.3g)",
                  double(forward), double(backward), lo, hi);
    why = buf;
    return false;
  }
  return true;
}

std::vector<uint32_t> BasePrimes(uint64_t limit) {
  const uint64_t root = uint64_t(std::sqrt(double(limit))) + 1;
  std::vector<bool> composite(root + 1, false);
  std::vector<uint32_t> primes;
  for (uint64_t i = 2; i <= root; ++i) {
    if (composite[i]) continue;
    primes.push_back(uint32_t(i));
    for (uint64_t j = i * i; j <= root; j += i) composite[j] = true;
  }
  return primes;
}

uint64_t CountPrimes(uint64_t lo, uint64_t hi, const std::vector<uint32_t>& base) {
  constexpr uint64_t kSegment = 1 << 16;
  std::vector<uint8_t> composite(kSegment);
  uint64_t count = 0;
  for (uint64_t start = lo; start < hi; start += kSegment) {
    const uint64_t end = std::min(hi, start + kSegment);
    std::fill(composite.begin(), composite.end(), 0);
    for (uint32_t p : base) {
      const uint64_t pp = uint64_t(p) * p;
      if (pp >= end) break;
      uint64_t first = std::max(pp, (start + p - 1) / p * p);
      for (uint64_t j = first; j < end; j += p) composite[j - start] = 1;
    }
    for (uint64_t n = std::max<uint64_t>(start, 2); n < end; ++n) count += !composite[n - start];
  }
  return count;
}

struct ThreadResult {
  int cpu_start = -1, cpu_end = -1;
  uint64_t primes = 0;
  double seconds = 0;
  bool ok = true;
  std::string why;
};

void Worker(int index, int cpu, const Options& opt, int nthreads,
            const std::vector<uint32_t>& base, ThreadResult& r) {
  r.why = PinToCpu(cpu);
  if (!r.why.empty()) {
    r.ok = false;
    return;
  }
  r.cpu_start = sched_getcpu();
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t fib_n = uint64_t(20000000 * opt.scale) + uint64_t(index);
  const uint64_t zeta_k = uint64_t(2000000 * opt.scale) + 1;
  for (int round = 0; round < opt.rounds && r.ok; ++round) {
    const uint64_t n = fib_n + uint64_t(round);
    uint64_t it = FibIterative(n);
    const uint64_t fd = FibDoubling(n);
    // Negative control: the same corruption a lost register would cause.
    if (index == opt.inject_fault) it ^= 1ULL << 7;
    if (it != fd) {
      r.ok = false;
      r.why = "fib(" + std::to_string(n) + ") mod p: iteration " + std::to_string(it) +
              " != doubling " + std::to_string(fd);
      break;
    }
    if (!CheckZeta2(zeta_k, r.why)) {
      r.ok = false;
      break;
    }
  }
  const uint64_t share = (kSieveLimit + nthreads - 1) / nthreads;
  const uint64_t lo = std::min(kSieveLimit, share * index);
  const uint64_t hi = std::min(kSieveLimit, lo + share);
  r.primes = CountPrimes(lo, hi, base);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_end = sched_getcpu();
  if (r.cpu_start != cpu || r.cpu_end != cpu) {
    r.ok = false;
    r.why = "ran on cpu " + std::to_string(r.cpu_start) + "/" + std::to_string(r.cpu_end) +
            " instead of " + std::to_string(cpu);
  }
}

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "selfcheck: %s\n"
               "usage: selfcheck [--threads N] [--rounds R] [--scale S] [--expect-cpus N]\n"
               "                 [--inject-fault THREAD]   (negative control)\n",
               msg);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) Usage(("missing value after " + a).c_str());
    char* end = nullptr;
    const char* v = argv[++i];
    if (a == "--threads") o.threads = int(std::strtol(v, &end, 10));
    else if (a == "--rounds") o.rounds = int(std::strtol(v, &end, 10));
    else if (a == "--scale") o.scale = std::strtod(v, &end);
    else if (a == "--expect-cpus") o.expect_cpus = int(std::strtol(v, &end, 10));
    else if (a == "--inject-fault") o.inject_fault = int(std::strtol(v, &end, 10));
    else Usage(("unknown option " + a).c_str());
    if (end == v || *end != '\0') Usage(("bad value for " + a + ": " + v).c_str());
  }
  if (o.threads < 0 || o.rounds < 1 || !(o.scale > 0) || o.expect_cpus < 0 || o.inject_fault < -1)
    Usage("values out of range");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = Parse(argc, argv);
  const int online = int(sysconf(_SC_NPROCESSORS_ONLN));
  const int nthreads = opt.threads ? opt.threads : online;
  std::printf("selfcheck: %d CPUs online, %d threads, %d rounds, scale %g\n", online, nthreads,
              opt.rounds, opt.scale);
  std::fflush(stdout);
  bool ok = true;
  if (opt.expect_cpus && online != opt.expect_cpus) {
    std::printf("selfcheck: expected %d CPUs online, found %d\n", opt.expect_cpus, online);
    ok = false;
  }
  const std::vector<uint32_t> base = BasePrimes(kSieveLimit);
  std::vector<ThreadResult> results(nthreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < nthreads; ++i) {
    threads.emplace_back(Worker, i, i % online, std::cref(opt), nthreads, std::cref(base),
                         std::ref(results[i]));
  }
  uint64_t primes = 0;
  for (int i = 0; i < nthreads; ++i) {
    threads[i].join();
    const ThreadResult& r = results[i];
    primes += r.primes;
    std::printf("selfcheck: thread %d cpu %d: %s %.2f s%s%s\n", i, r.cpu_end,
                r.ok ? "ok" : "FAIL", r.seconds, r.ok ? "" : ": ", r.why.c_str());
    ok = ok && r.ok;
  }
  const bool primes_ok = primes == kPrimesBelowLimit;
  std::printf("selfcheck: primes below %llu: %llu (expected %llu) %s\n",
              (unsigned long long)kSieveLimit, (unsigned long long)primes,
              (unsigned long long)kPrimesBelowLimit, primes_ok ? "ok" : "FAIL");
  ok = ok && primes_ok;
  std::printf("SELFCHECK %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
