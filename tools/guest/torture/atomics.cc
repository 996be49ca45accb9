// torture atomics: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// atomics -- one thread per CPU in LIST, all on the same variables: (a) lock xadd (its
//   result must grow in each thread) and lock add, (b) a lock cmpxchg CAS loop, (c) an
//   xchg spinlock around two plain volatile counters incremented with a gap between them
//   (inside the lock they must be equal and the owner word stay ours), (d) a 16-byte
//   {lo, hi} pair that lock cmpxchg16b increments as a whole (inline asm, so no -mcx16 is
//   needed; objdump -d shows the cmpxchg16b) and reads with cmpxchg16b: every read must
//   show lo == hi. At the end every counter must equal the sum of all threads' operations.
//   Broken looks like: lost or duplicated increments (an atomic RMW that is not atomic
//   between backends), a torn 16-byte pair, two threads inside the spinlock.
#include <memory>
#include <thread>

#include "harness.h"

namespace torture::atomics {
namespace {

constexpr uint64_t kBatch = 256;

struct alignas(64) Counters {
  std::atomic<uint64_t> xadd{0};
  alignas(64) std::atomic<uint64_t> add{0};
  alignas(64) std::atomic<uint64_t> cas{0};
  alignas(64) std::atomic<uint32_t> lock{0};
  volatile uint64_t locked_a = 0, locked_b = 0;  // plain, protected only by `lock`
  volatile int owner = -1;
  alignas(64) unsigned __int128 pair = 0;  // lo and hi halves always equal
};

// lock cmpxchg16b, written out so that no -mcx16 is needed and the instruction is certainly
// the one executed (objdump -d torture | grep cmpxchg16b). On failure lo/hi get the value
// found; with new == expected it is an atomic 16-byte read.
inline bool Cas16(unsigned __int128* p, uint64_t& lo, uint64_t& hi, uint64_t new_lo,
                  uint64_t new_hi) {
  bool ok;
  asm volatile("lock cmpxchg16b %1"
               : "=@ccz"(ok), "+m"(*p), "+a"(lo), "+d"(hi)
               : "b"(new_lo), "c"(new_hi)
               : "memory");
  return ok;
}

struct Totals {
  std::atomic<uint64_t> xadd{0}, add{0}, cas{0}, cas_retries{0}, locked{0}, pair{0},
      pair_retries{0};
  std::atomic<uint64_t> xadd_backwards{0}, exclusion{0}, torn_pair{0};
};

void Worker(int index, int cpu, bool shares_cpu, Counters& c, Totals& t, Errors& errors,
            uint64_t end_ns) {
  errors.Pin(cpu);
  // A holder preempted by a spinner on its own CPU would otherwise wait out a time slice.
  const unsigned patience = shares_cpu ? kSharedSpinsBeforeYield : kNeverYield;
  uint64_t n = 0, cas_retries = 0, pair_retries = 0, last_xadd = 0;
  bool have_xadd = false;
  while (NowNs() < end_ns) {
    for (uint64_t i = 0; i < kBatch; ++i) {
      // (a) lock xadd: the value returned grows, since the counter only grows.
      const uint64_t before = c.xadd.fetch_add(1, std::memory_order_relaxed);
      if (have_xadd && before <= last_xadd)
        errors.Add(t.xadd_backwards, "cpu %d: lock xadd returned %llu after %llu", cpu,
                   u64(before), u64(last_xadd));
      last_xadd = before;
      have_xadd = true;
      c.add.fetch_add(1, std::memory_order_relaxed);  // result unused: lock add

      // (b) a CAS loop: lock cmpxchg.
      uint64_t cur = c.cas.load(std::memory_order_relaxed);
      while (!c.cas.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) ++cas_retries;

      // (c) xchg spinlock around a non-atomic pair of counters.
      unsigned spins = 0;
      while (c.lock.exchange(1, std::memory_order_acquire)) {
        while (c.lock.load(std::memory_order_relaxed)) {
          if (spins >= patience) {
            sched_yield();
          } else {
            _mm_pause();
            ++spins;
          }
        }
      }
      c.owner = index;
      const uint64_t a = c.locked_a, b = c.locked_b;
      c.locked_a = a + 1;
      _mm_pause();  // widen the window in which a second holder would show
      c.locked_b = b + 1;
      if (a != b || c.owner != index)
        errors.Add(t.exclusion, "cpu %d: inside the spinlock a=%llu b=%llu owner=%d", cpu, u64(a),
                   u64(b), c.owner);
      c.lock.store(0, std::memory_order_release);

      // (d) cmpxchg16b on both halves at once.
      uint64_t lo = 0, hi = 0;
      Cas16(&c.pair, lo, hi, 0, 0);  // atomic read
      for (;;) {
        if (lo != hi)
          errors.Add(t.torn_pair, "cpu %d: cmpxchg16b read lo=%llu hi=%llu", cpu, u64(lo),
                     u64(hi));
        if (Cas16(&c.pair, lo, hi, lo + 1, hi + 1)) break;
        ++pair_retries;
      }
    }
    n += kBatch;
    if (index == 0) g_rounds.store(n, std::memory_order_relaxed);
  }
  t.xadd += n;
  t.add += n;
  t.cas += n;
  t.locked += n;
  t.pair += n;
  t.cas_retries += cas_retries;
  t.pair_retries += pair_retries;
}

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("atomics");
  auto counters = std::make_unique<Counters>();
  Counters& c = *counters;
  Totals t;
  const uint64_t end = DeadlineAfter(cfg.seconds);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cfg.cpus.size(); ++i) {
    const int cpu = cfg.cpus[i];
    const bool shares_cpu = SharesCpu(cfg.cpus, cpu);
    threads.emplace_back([&, i, cpu, shares_cpu] {
      Worker(int(i), cpu, shares_cpu, c, t, errors, end);
    });
  }
  for (std::thread& th : threads) th.join();
  uint64_t lo = 0, hi = 0;
  Cas16(&c.pair, lo, hi, 0, 0);
  const uint64_t ops = t.xadd;
  Report rep;
  auto exact = [&](uint64_t got, const char* what) {
    rep.Require(got == ops, std::string(what) + " " + std::to_string(got) + " != " +
                                std::to_string(ops) + " operations");
  };
  exact(c.xadd, "lock xadd counter");
  exact(c.add, "lock add counter");
  exact(c.cas, "cmpxchg counter");
  exact(c.locked_a, "spinlocked counter a");
  exact(c.locked_b, "spinlocked counter b");
  exact(lo, "cmpxchg16b lo");
  exact(hi, "cmpxchg16b hi");
  rep.Check(t.xadd_backwards, "lock xadd results not increasing")
      .Check(t.exclusion, "spinlock exclusion violations")
      .Check(t.torn_pair, "torn 16-byte reads (lo != hi)")
      .Require(ops > 0, "no operation completed");
  rep.Stat("threads", uint64_t(cfg.cpus.size())).Stat("ops_per_kind", ops)
      .Stat("cas_retries", t.cas_retries).Stat("cmpxchg16b_retries", t.pair_retries)
      .Stat("exclusion_errors", t.exclusion).Stat("torn", t.torn_pair);
  return rep.Finish(errors);
}

}  // namespace torture::atomics
