// torture ipi: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// ipi -- first half: a membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) Dekker test. Per
//   round, A: x=1; membarrier(); r1=y. B (another vCPU, spinning in user mode for the
//   round to start): y=1; compiler barrier only; r2=x. Random short delays on both sides.
//   membarrier guarantees r1 == r2 == 0 never happens; the pair rotates every 512 rounds.
//   Second half: a futex ping-pong between two vCPUs (the pair rotating every 512 round
//   trips): each side stores the next value, FUTEX_WAKEs, and FUTEX_WAITs (1 s timeout)
//   for the answer, alternate rounds first spinning on sched_yield. Meanwhile a nice-19
//   thread on every CPU in LIST spins in pure user mode (in the second half alternating
//   with sched_yield storms), so the IPIs must reach vCPUs that are busy in user mode.
//   Broken looks like: a hang (membarrier waits for an IPI that never arrives), forbidden
//   Dekker outcomes (the IPI did not make B's CPU execute a barrier), "lost wakeups" (a
//   FUTEX_WAIT timed out although the word had changed: the wakeup never arrived).
//
// Caveat -- where a correct machine could still fail, or a broken one pass: a lost wakeup
//   is counted only when a 1 s FUTEX_WAIT times out with the word already changed. A peer
//   stalled for about a second (host overcommit, a paused VM) that answers exactly at the
//   timeout would be miscounted; healthy answers take microseconds.
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "harness.h"

namespace torture::ipi {
namespace {

constexpr uint64_t kRoundsPerPair = 512;
constexpr uint64_t kTripsPerPair = 512;
constexpr uint32_t kStop = 0xffffffffu;  // odd, like every ping; never a real one
// Long enough that a healthy peer always answers first (answers take microseconds, a
// descheduled vCPU milliseconds); a timeout with the word changed is a lost wakeup.
constexpr int kFutexTimeoutSec = 1;
enum Phase : int { kDekker, kFutex, kDone };

void Delay(uint32_t pauses) {
  for (uint32_t i = 0; i < pauses; ++i) _mm_pause();
}

uint64_t XorShift(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

struct Round {
  uint32_t delay_b = 0;
  int b_cpu = 0;
  bool repin = false;
  bool stop = false;
};

struct Shared {
  alignas(64) std::atomic<uint64_t> go{0};
  Round round;  // written by A before go is released
  alignas(64) std::atomic<uint64_t> done{0};
  uint32_t r2 = 0;  // written by B before done is released
  alignas(64) std::atomic<uint32_t> x{0};
  alignas(64) std::atomic<uint32_t> y{0};
  alignas(64) std::atomic<uint32_t> word{0};  // the futex
  alignas(64) std::atomic<int> phase{kDekker};
  std::vector<std::pair<int, int>> pairs;
  bool roles_share_cpu = false;
  std::atomic<uint64_t> dekker_rounds{0}, outcome[4]{}, forbidden{0}, membarrier_failures{0};
  std::atomic<uint64_t> trips{0}, waits{0}, timeouts{0}, lost_wakeups{0}, yields{0};
  std::atomic<uint64_t> unexpected_words{0}, spin_bursts{0}, yield_bursts{0};
};

long Membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

long Futex(std::atomic<uint32_t>& w, int op, uint32_t val, const timespec* timeout) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(&w), op, val, timeout, nullptr, 0);
}

void DekkerA(Shared& s, Errors& errors, uint64_t end_ns) {
  uint64_t rng = 0x9E3779B97F4A7C15ULL;
  for (uint64_t r = 1;; ++r) {
    const uint64_t i = r - 1;
    const auto [a_cpu, b_cpu] = s.pairs[(i / kRoundsPerPair) % s.pairs.size()];
    Round& d = s.round;
    d.stop = NowNs() >= end_ns;
    d.repin = i % kRoundsPerPair == 0;
    d.b_cpu = b_cpu;
    const uint64_t rand = XorShift(rng);
    const uint32_t delay_a = rand & 63;
    d.delay_b = (rand >> 8) & 63;
    if (d.repin && !d.stop) errors.Pin(a_cpu);
    const bool stop = d.stop, repin = d.repin;
    s.x.store(0, std::memory_order_relaxed);
    s.y.store(0, std::memory_order_relaxed);
    g_phase = "ipi: dekker A waits for B";
    s.go.store(r, std::memory_order_release);
    if (stop) return;
    if (!repin) {
      Delay(delay_a);
      s.x.store(1, std::memory_order_relaxed);
      g_phase = "ipi: dekker A in membarrier()";
      if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
        errors.Add(s.membarrier_failures, "membarrier: %s", std::strerror(errno));
      g_phase = "ipi: dekker A waits for B";
    }
    const uint32_t r1 = s.y.load(std::memory_order_relaxed);
    SpinUntil([&] { return s.done.load(std::memory_order_acquire) == r; },
              SpinsBeforeYield(s.roles_share_cpu));
    if (repin) continue;
    const uint32_t r2 = s.r2;
    s.outcome[r1 * 2 + r2].fetch_add(1, std::memory_order_relaxed);
    if (r1 == 0 && r2 == 0)
      errors.Add(s.forbidden,
                 "round %llu: A on cpu %d, B on cpu %d: r1 == r2 == 0 although A ran "
                 "membarrier() between x=1 and reading y",
                 u64(r), a_cpu, b_cpu);
    s.dekker_rounds.fetch_add(1, std::memory_order_relaxed);
    g_rounds.fetch_add(1, std::memory_order_relaxed);
  }
}

void DekkerB(Shared& s, Errors& errors) {
  for (uint64_t r = 1;; ++r) {
    // Pure user-mode spinning, so A's membarrier IPI has to interrupt user code.
    SpinUntil([&] { return s.go.load(std::memory_order_acquire) == r; },
              s.roles_share_cpu ? kSharedSpinsBeforeYield : kNeverYield);
    const Round d = s.round;
    if (d.stop) return;
    if (d.repin) {
      errors.Pin(d.b_cpu);
    } else {
      Delay(d.delay_b);
      s.y.store(1, std::memory_order_relaxed);
      asm volatile("" ::: "memory");  // compiler barrier only: B relies on A's membarrier
      s.r2 = s.x.load(std::memory_order_relaxed);
    }
    s.done.store(r, std::memory_order_release);
  }
}

struct FutexCounts {
  uint64_t waits = 0, timeouts = 0, yields = 0;
};

void Wake(Shared& s, uint32_t value) {
  s.word.store(value, std::memory_order_release);
  Futex(s.word, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

// Waits until the word is no longer `cur`: on alternate rounds spinning on sched_yield
// first, then in FUTEX_WAIT with a timeout.
void WaitWhile(Shared& s, Errors& errors, uint32_t cur, bool yield_first, const char* who, int cpu,
               FutexCounts& n) {
  if (yield_first) {
    for (int i = 0; i < 64 && s.word.load(std::memory_order_acquire) == cur; ++i) {
      sched_yield();
      ++n.yields;
    }
  }
  while (s.word.load(std::memory_order_acquire) == cur) {
    const timespec timeout{kFutexTimeoutSec, 0};
    ++n.waits;
    if (Futex(s.word, FUTEX_WAIT_PRIVATE, cur, &timeout) != 0 && errno == ETIMEDOUT) {
      ++n.timeouts;
      const uint32_t now = s.word.load(std::memory_order_acquire);
      if (now != cur)
        errors.Add(s.lost_wakeups,
                   "%s on cpu %d: FUTEX_WAIT timed out after %d s although the word had "
                   "changed from %u to %u (lost wakeup)",
                   who, cpu, kFutexTimeoutSec, cur, now);
    }
  }
}

void Pinger(Shared& s, Errors& errors, uint64_t end_ns) {
  FutexCounts n;
  int cpu = -1;
  for (uint64_t k = 0;; ++k) {
    if (k % kTripsPerPair == 0) {
      cpu = s.pairs[(k / kTripsPerPair) % s.pairs.size()].first;
      errors.Pin(cpu);
    }
    if (NowNs() >= end_ns) {
      Wake(s, kStop);
      break;
    }
    const uint32_t ping = uint32_t(2 * k + 1);
    g_phase = "ipi: futex pinger waits for the answer";
    Wake(s, ping);
    WaitWhile(s, errors, ping, k & 1, "pinger", cpu, n);
    const uint32_t got = s.word.load(std::memory_order_acquire);
    if (got != ping + 1)
      errors.Add(s.unexpected_words, "pinger: word %u after ping %u", got, ping);
    s.trips.fetch_add(1, std::memory_order_relaxed);
    g_rounds.fetch_add(1, std::memory_order_relaxed);
  }
  s.waits += n.waits;
  s.timeouts += n.timeouts;
  s.yields += n.yields;
}

void Ponger(Shared& s, Errors& errors) {
  FutexCounts n;
  int cpu = -1;
  for (uint64_t k = 0;; ++k) {
    if (k % kTripsPerPair == 0) {
      cpu = s.pairs[(k / kTripsPerPair) % s.pairs.size()].second;
      errors.Pin(cpu);
    }
    const uint32_t before = uint32_t(2 * k);
    WaitWhile(s, errors, before, k & 1, "ponger", cpu, n);
    const uint32_t got = s.word.load(std::memory_order_acquire);
    if (got == kStop) break;
    if (got != before + 1)
      errors.Add(s.unexpected_words, "ponger: word %u, expected ping %u", got, before + 1);
    Wake(s, before + 2);
  }
  s.waits += n.waits;
  s.timeouts += n.timeouts;
  s.yields += n.yields;
}

// Keeps a vCPU busy in user mode at nice 19, so that the test threads still get the CPU but
// the IPIs meant for it arrive while user code runs. In the futex half it alternates with
// sched_yield storms.
void Spinner(Shared& s, Errors& errors, int cpu) {
  errors.Pin(cpu);
  setpriority(PRIO_PROCESS, id_t(syscall(SYS_gettid)), 19);
  uint64_t bursts = 0, yield_bursts = 0;
  for (;;) {
    const int phase = s.phase.load(std::memory_order_relaxed);
    if (phase == kDone) break;
    if (phase == kFutex && (bursts & 1)) {
      for (int i = 0; i < 64; ++i) sched_yield();
      ++yield_bursts;
    } else {
      Delay(4096);
    }
    ++bursts;
  }
  s.spin_bursts += bursts - yield_bursts;
  s.yield_bursts += yield_bursts;
}

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("ipi");
  Shared s;
  s.pairs = RolePairs(cfg.cpus);
  s.roles_share_cpu = s.pairs[0].first == s.pairs[0].second;
  const uint64_t start = NowNs();
  const uint64_t half = start + uint64_t(cfg.seconds * 0.5e9);
  const uint64_t end = DeadlineAfter(cfg.seconds);

  std::vector<std::thread> spinners;
  for (int cpu : cfg.cpus) spinners.emplace_back([&, cpu] { Spinner(s, errors, cpu); });

  bool registered = Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  if (!registered) {
    errors.Other("membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED): %s",
                 std::strerror(errno));
  } else {
    std::thread b([&] { DekkerB(s, errors); });
    std::thread a([&] { DekkerA(s, errors, half); });
    a.join();
    b.join();
  }
  s.phase = kFutex;
  {
    std::thread q([&] { Ponger(s, errors); });
    std::thread p([&] { Pinger(s, errors, end); });
    p.join();
    q.join();
  }
  s.phase = kDone;
  for (std::thread& t : spinners) t.join();

  Report rep;
  rep.Check(s.forbidden, "forbidden Dekker outcomes (r1 == r2 == 0)")
      .Check(s.membarrier_failures, "failed membarrier calls")
      .Check(s.lost_wakeups, "lost futex wakeups")
      .Check(s.unexpected_words, "unexpected futex words")
      .Require(!registered || s.dekker_rounds > 0, "no Dekker round completed")
      .Require(s.trips > 0, "no futex round trip completed");
  rep.Stat("dekker_rounds", s.dekker_rounds)
      .Stat("outcomes_00_01_10_11", std::to_string(s.outcome[0]) + "/" +
                                        std::to_string(s.outcome[1]) + "/" +
                                        std::to_string(s.outcome[2]) + "/" +
                                        std::to_string(s.outcome[3]))
      .Stat("forbidden", s.forbidden).Stat("pairs", uint64_t(s.pairs.size()))
      .Stat("futex_trips", s.trips).Stat("futex_waits", s.waits)
      .Stat("timeouts", s.timeouts).Stat("lost_wakeups", s.lost_wakeups)
      .Stat("yields", s.yields).Stat("spinner_bursts", s.spin_bursts)
      .Stat("spinner_yield_storms", s.yield_bursts);
  return rep.Finish(errors);
}

}  // namespace torture::ipi
