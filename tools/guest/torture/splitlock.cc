// torture splitlock: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// splitlock -- locked RMW on misaligned integers: a 4- and an 8-byte counter straddling a
//   64-byte cache line, and a 4- and an 8-byte one straddling a 4 KiB page (lock xaddl,
//   lock addq, lock addl, lock xaddq, written in asm so nothing splits them). They start
//   just below a carry into the second line or page. All threads increment all four; the
//   finals must be exact, xadd results must grow per thread, and the bytes around them
//   must be untouched. A host whose split-lock detection raises SIGBUS gives "FAIL host
//   raises SIGBUS on split locks"; one that throttles them shows a low ops_per_s.
//   Broken looks like: a wrong final value (the halves of a split RMW not done as one
//   atomic operation), or changed neighbour bytes.
//
// Caveat -- where a correct machine could still fail, or a broken one pass: speed depends
//   on the host's split-lock handling; under TCG split locks run in QEMU's exclusive
//   (stop-the-world) mode, so expect few operations there.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "harness.h"

namespace torture::splitlock {
namespace {

constexpr size_t kLen = 3 * kPage;
constexpr uint8_t kGuard = 0xA5;
constexpr uint64_t kBatch = 16;
// Each counter starts just below a carry from its first cache line or page into the next.
constexpr size_t kLine32 = 64 - 2;       // bytes 62..65: straddles a cache line
constexpr size_t kLine64 = 128 - 4;      // bytes 124..131: straddles a cache line
constexpr size_t kPage32 = kPage - 2;    // straddles the first page boundary
constexpr size_t kPage64 = 2 * kPage - 4;  // straddles the second page boundary
constexpr uint32_t kStart32 = 0x0000fff0u;
constexpr uint64_t kStart64 = 0x00000000fffffff0ULL;

inline uint32_t LockXadd32(uint8_t* p) {
  uint32_t v = 1;
  asm volatile("lock xaddl %0, (%1)" : "+r"(v) : "r"(p) : "memory", "cc");
  return v;
}
inline uint64_t LockXadd64(uint8_t* p) {
  uint64_t v = 1;
  asm volatile("lock xaddq %0, (%1)" : "+r"(v) : "r"(p) : "memory", "cc");
  return v;
}
inline void LockAdd32(uint8_t* p) { asm volatile("lock addl $1, (%0)" : : "r"(p) : "memory", "cc"); }
inline void LockAdd64(uint8_t* p) { asm volatile("lock addq $1, (%0)" : : "r"(p) : "memory", "cc"); }

struct Progress {
  uint32_t last32 = 0;
  uint64_t last64 = 0;
  uint64_t backwards = 0;
  bool have_last = false;
};

// kBatch rounds of the four locked operations, trapped: a host that turns split locks into
// SIGBUS must give a report, not a crash. After a trap the batch's count is unknown.
__attribute__((noinline)) int TryBatch(uint8_t* base, uint64_t rounds, Progress& pr) {
  if (sigsetjmp(t_trap.jmp, 0) != 0) return t_trap.signal;
  t_trap.armed = 1;
  asm volatile("" ::: "memory");
  for (uint64_t i = 0; i < rounds; ++i) {
    const uint32_t a = LockXadd32(base + kLine32);
    LockAdd64(base + kLine64);
    LockAdd32(base + kPage32);
    const uint64_t b = LockXadd64(base + kPage64);
    if (pr.have_last && (a <= pr.last32 || b <= pr.last64)) ++pr.backwards;
    pr.last32 = a;
    pr.last64 = b;
    pr.have_last = true;
  }
  asm volatile("" ::: "memory");
  t_trap.armed = 0;
  return 0;
}

uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("splitlock");
  auto* base = static_cast<uint8_t*>(
      mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) return {false, std::string("mmap: ") + std::strerror(errno)};
  std::memset(base, kGuard, kLen);
  std::memcpy(base + kLine32, &kStart32, 4);
  std::memcpy(base + kLine64, &kStart64, 8);
  std::memcpy(base + kPage32, &kStart32, 4);
  std::memcpy(base + kPage64, &kStart64, 8);

  // One round first, in this thread, to tell a host that refuses split locks apart.
  Progress first;
  const int sig = TryBatch(base, 1, first);
  if (sig == SIGBUS) {
    munmap(base, kLen);
    return {false, "host raises SIGBUS on split locks"};
  }
  if (sig) {
    munmap(base, kLen);
    return {false, std::string("split lock raised ") + SignalName(sig)};
  }

  std::atomic<uint64_t> rounds{1}, backwards{0}, trapped{0};
  const uint64_t start = NowNs();
  const uint64_t end = DeadlineAfter(cfg.seconds);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cfg.cpus.size(); ++i) {
    const int cpu = cfg.cpus[i];
    threads.emplace_back([&, i, cpu] {
      errors.Pin(cpu);
      Progress pr;
      uint64_t done = 0;
      while (NowNs() < end) {
        if (const int s = TryBatch(base, kBatch, pr)) {
          errors.Add(trapped, "cpu %d: split lock raised %s after %llu rounds", cpu,
                     SignalName(s), u64(done));
          break;
        }
        done += kBatch;
        if (i == 0) g_rounds.store(done, std::memory_order_relaxed);
      }
      rounds += done;
      if (pr.backwards)
        errors.Add(backwards, "cpu %d: %llu lock xadd results on split counters did not grow",
                   cpu, u64(pr.backwards));
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = double(NowNs() - start) / 1e9;

  Report rep;
  if (trapped == 0) {
    const uint64_t n = rounds;
    auto exact = [&](uint64_t got, uint64_t start_value, const char* what) {
      rep.Require(got == start_value + n, std::string(what) + " counter " + std::to_string(got) +
                                              " != " + std::to_string(start_value + n));
    };
    exact(Load32(base + kLine32), kStart32, "line-split 32-bit");
    exact(Load64(base + kLine64), kStart64, "line-split 64-bit");
    exact(Load32(base + kPage32), kStart32, "page-split 32-bit");
    exact(Load64(base + kPage64), kStart64, "page-split 64-bit");
  }
  size_t clobbered = 0;
  for (size_t i = 0; i < kLen; ++i) {
    const bool counter = (i >= kLine32 && i < kLine32 + 4) || (i >= kLine64 && i < kLine64 + 8) ||
                         (i >= kPage32 && i < kPage32 + 4) || (i >= kPage64 && i < kPage64 + 8);
    clobbered += !counter && base[i] != kGuard;
  }
  munmap(base, kLen);
  rep.Check(trapped, "threads stopped by a signal on a split lock")
      .Check(backwards, "threads saw xadd results not grow")
      .Check(clobbered, "bytes next to the counters changed");
  rep.Stat("threads", uint64_t(cfg.cpus.size())).Stat("rounds", rounds.load())
      .Stat("split_ops", 4 * rounds.load())
      .Stat("ops_per_s", double(4 * rounds.load()) / seconds, 0);
  return rep.Finish(errors);
}

}  // namespace torture::splitlock
