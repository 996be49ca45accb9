// torture clock: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// clock -- one thread per CPU in LIST; every 20 ms every thread moves to the next vCPU.
//   Each iteration reads the shared "latest TSC anyone saw" (acquire), then LFENCE;RDTSC,
//   which must be neither smaller than that nor than the thread's own previous reading,
//   and CAS-publishes the maximum; the same for clock_gettime(CLOCK_MONOTONIC).
//   Broken looks like: "TSC reads behind another vCPU" (vCPUs, or one vCPU before and after
//   a backend move, disagree on the TSC; or RDTSC executed before the preceding load),
//   "TSC went backwards", and the same for CLOCK_MONOTONIC. The worst gaps are reported.
//
// Caveat -- where a correct machine could still fail, or a broken one pass: zero
//   tolerance, unless --tsc-slack allows a known host skew (the reads are counted). It assumes the guest's TSCs are synchronized (one timeline, as mixedvm
//   provides); a guest kernel that marks its TSC unstable still passes CLOCK_MONOTONIC
//   through its fallback clocksource.
#include <thread>

#include "harness.h"

namespace torture::clocks {
namespace {

constexpr uint64_t kHopNs = 20'000'000;  // every thread moves to the next vCPU this often

struct Shared {
  alignas(64) std::atomic<uint64_t> latest_tsc{0};
  alignas(64) std::atomic<uint64_t> latest_ns{0};
  std::atomic<uint64_t> reads{0}, hops{0};
  std::atomic<uint64_t> tsc_behind{0}, tsc_backwards{0}, ns_behind{0}, ns_backwards{0};
  std::atomic<uint64_t> worst_tsc{0}, worst_ns{0};
  std::atomic<uint64_t> tsc_behind_in_slack{0};
  uint64_t tsc_slack = 0;
};

inline uint64_t ReadTsc() {
  _mm_lfence();  // RDTSC must not execute before the load of the shared latest value
  return __rdtsc();
}

inline uint64_t ReadMonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * kNsPerSec + uint64_t(ts.tv_nsec);
}

void RaiseMax(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_release)) {
  }
}

// Checks one reading against the shared latest one and this thread's previous one, then
// publishes it. `seen` must have been loaded (acquire) before `now` was read.
void Check(Errors& errors, std::atomic<uint64_t>& latest, uint64_t seen, uint64_t now,
           uint64_t& last, std::atomic<uint64_t>& behind, std::atomic<uint64_t>& backwards,
           std::atomic<uint64_t>& worst, const char* what, const char* unit, int cpu) {
  if (now < seen) {
    RaiseMax(worst, seen - now);
    errors.Add(behind, "cpu %d: %s %llu %s behind the latest another vCPU saw (%llu < %llu)",
               cpu, what, u64(seen - now), unit, u64(now), u64(seen));
  }
  if (now < last) {
    RaiseMax(worst, last - now);
    errors.Add(backwards, "cpu %d: %s went back %llu %s since this thread's last reading", cpu,
               what, u64(last - now), unit);
  }
  last = now;
  RaiseMax(latest, now);
}

void Worker(Shared& s, Errors& errors, const std::vector<int>& cpus, size_t index,
            uint64_t start_ns, uint64_t end_ns) {
  uint64_t last_tsc = 0, last_ns = 0, reads = 0, hops = 0;
  int64_t epoch = -1;
  int cpu = -1;
  for (uint64_t i = 0;; ++i) {
    if ((i & 1023) == 0) {
      const uint64_t now = NowNs();
      if (now >= end_ns) break;
      const int64_t e = int64_t((now - start_ns) / kHopNs);
      if (e != epoch) {
        epoch = e;
        cpu = cpus[(index + size_t(e)) % cpus.size()];
        errors.Pin(cpu);
        ++hops;
      }
      if (index == 0) g_rounds.store(reads, std::memory_order_relaxed);
    }
    uint64_t seen_tsc = s.latest_tsc.load(std::memory_order_acquire);
    const uint64_t tsc = ReadTsc();
    // Within --tsc-slack of another vCPU's latest or of this thread's last reading (on
    // the vCPU it just left): the host's CPUs disagree this much; counted, not failed.
    for (uint64_t* other : {&seen_tsc, &last_tsc}) {
      if (tsc < *other && *other - tsc <= s.tsc_slack) {
        s.tsc_behind_in_slack.fetch_add(1, std::memory_order_relaxed);
        RaiseMax(s.worst_tsc, *other - tsc);
        *other = tsc;
      }
    }
    Check(errors, s.latest_tsc, seen_tsc, tsc, last_tsc, s.tsc_behind, s.tsc_backwards,
          s.worst_tsc, "TSC", "cycles", cpu);
    // vDSO clock_gettime orders its own RDTSC after the acquire load.
    const uint64_t seen_ns = s.latest_ns.load(std::memory_order_acquire);
    const uint64_t ns = ReadMonotonicNs();
    Check(errors, s.latest_ns, seen_ns, ns, last_ns, s.ns_behind, s.ns_backwards, s.worst_ns,
          "CLOCK_MONOTONIC", "ns", cpu);
    ++reads;
  }
  s.reads += reads;
  s.hops += hops;
}

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("clock");
  Shared s;
  s.tsc_slack = cfg.tsc_slack;
  const uint64_t start = NowNs();
  const uint64_t end = DeadlineAfter(cfg.seconds);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cfg.cpus.size(); ++i)
    threads.emplace_back([&, i] { Worker(s, errors, cfg.cpus, i, start, end); });
  for (std::thread& t : threads) t.join();
  Report rep;
  rep.Check(s.tsc_behind, "TSC reads behind another vCPU")
      .Check(s.tsc_backwards, "TSC reads went backwards")
      .Check(s.ns_behind, "CLOCK_MONOTONIC reads behind another vCPU")
      .Check(s.ns_backwards, "CLOCK_MONOTONIC reads went backwards")
      .Require(s.reads > 0, "no reads");
  rep.Stat("threads", uint64_t(cfg.cpus.size())).Stat("reads", s.reads).Stat("hops", s.hops)
      .Stat("tsc_behind", s.tsc_behind).Stat("tsc_backwards", s.tsc_backwards)
      .Stat("tsc_behind_in_slack", s.tsc_behind_in_slack)
      .Stat("worst_tsc_cycles", s.worst_tsc).Stat("ns_behind", s.ns_behind)
      .Stat("ns_backwards", s.ns_backwards).Stat("worst_ns", s.worst_ns);
  return rep.Finish(errors);
}

}  // namespace torture::clocks
