// torture xmc: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// xmc -- cross-modifying code, by the Intel SDM protocol (Vol. 3A, "Handling Self- and
//   Cross-Modifying Code"). 8 RWX pages hold 39 slots of "mov eax, imm32; ret"
//   (B8 imm32 C3): 4 per page (two in one cache line, one ordinary, one whose imm32 starts
//   the next cache line) and 7 whose opcode byte ends one page while imm32 and ret begin
//   the next. Per modification: the writer (cpu A) names a slot; the executor (cpu B) calls
//   it, so a translation of the current code exists, checks it returns the value last
//   published for the slot, and says so; the writer stores the new imm32 (one 4-byte store,
//   or four byte stores) and release-stores the value to the slot's flag; the executor
//   acquire-waits for the flag -- on alternate modifications by spinning on the flag, or
//   by calling the slot in a loop until the flag changes -- executes CPUID (serializing),
//   calls the slot and checks it returns the new value; then acks. Each round of 78
//   modifications moves to the next (A, B) pair.
//   Broken looks like: "stale executions after CPUID" -- B ran the code as it was before a
//   write A had completed and published (a translation or instruction cache not
//   invalidated by a write from another vCPU, e.g. code written on KVM and run by TCG).
//   "torn" counts loop calls that returned neither the old nor the new value of an
//   imm32 written by one aligned store.
//
// Caveat -- where a correct machine could still fail, or a broken one pass: the SDM leaves
//   unsynchronized cross-modifying code implementation-specific; the "torn" check (polling
//   variant only) assumes instruction fetch sees one aligned 4-byte store whole, true of
//   x86 hardware and of TCG's code loads. A stale execution is also seen on the slot's
//   next modification (stale_before), so one fault can count twice.
#include <sched.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "harness.h"

namespace torture::xmc {
namespace {

constexpr size_t kPages = 8;
constexpr size_t kSlotOffsetsInPage[] = {0x043, 0x053, 0x7f3, 0x83f};
constexpr size_t kStraddleOffset = kPage - 1;  // opcode on this page, imm32 and ret on the next
constexpr uint8_t kMovEaxImm32 = 0xB8, kRet = 0xC3, kInt3 = 0xCC;

using SlotFn = uint32_t (*)();

// Calls a slot with the fault trap armed (see TryLoad in harness.h): 0, or the signal.
__attribute__((noinline)) int TryCall(const uint8_t* code, uint32_t& out) {
  if (sigsetjmp(t_trap.jmp, 0) != 0) return t_trap.signal;
  t_trap.armed = 1;
  asm volatile("" ::: "memory");
  const uint32_t v = reinterpret_cast<SlotFn>(const_cast<uint8_t*>(code))();
  asm volatile("" ::: "memory");
  t_trap.armed = 0;
  out = v;
  return 0;
}

// CPUID is the SDM's serializing instruction for user code. "memory": nothing moves over it.
inline void SerializeCpuid() {
  uint32_t a = 0, b, c = 0, d;
  asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "memory");
}

// Consecutive generations differ in every byte of the imm32 (0x01010101 is odd, so the
// product never repeats), which makes a partially applied write visible.
uint32_t SlotValue(size_t slot, uint32_t gen) {
  return (gen * 0x01010101u) ^ (uint32_t(slot) << 24) ^ 0x5a000000u;
}

void WriteImm32(uint8_t* slot, uint32_t value, bool one_store, bool high_byte_first) {
  // Every slot's imm32 is 4-byte aligned (the slot starts at 3 mod 4).
  if (one_store) {
    *reinterpret_cast<volatile uint32_t*>(slot + 1) = value;
    return;
  }
  volatile uint8_t* bytes = slot + 1;
  for (int i = 0; i < 4; ++i) {
    const int k = high_byte_first ? 3 - i : i;
    bytes[k] = uint8_t(value >> (8 * k));
  }
}

struct Request {
  uint32_t round = 0;
  uint32_t slot = 0;
  bool one_store = false;  // imm32 written by one 4-byte store, else byte by byte
  bool poll = false;       // executor calls the slot in a loop until the flag changes
  bool stop = false;
};

struct Shared {
  explicit Shared(size_t nslots) : flag(nslots) {}
  alignas(64) std::atomic<uint64_t> request_seq{0};
  Request request;  // written before request_seq is released
  alignas(64) std::atomic<uint64_t> primed_seq{0};
  alignas(64) std::atomic<uint64_t> ack_seq{0};
  alignas(64) std::vector<std::atomic<uint32_t>> flag;  // per slot: the value published last
  std::vector<uint8_t*> slots;
  uint8_t* code = nullptr;
  std::vector<std::pair<int, int>> pairs;
  std::atomic<uint64_t> rounds{0}, mods{0}, polled_mods{0}, poll_calls{0}, early_new{0};
  std::atomic<uint64_t> stale{0}, stale_before{0}, torn{0}, faults{0};
};

void Writer(Shared& s, Errors& errors, uint64_t end_ns) {
  const size_t nslots = s.slots.size();
  const size_t mods_per_round = 2 * nslots;
  std::vector<uint32_t> gen(nslots, 0);
  uint64_t seq = 0;
  for (uint32_t round = 0;; ++round) {
    const bool stop = NowNs() >= end_ns;
    const auto [writer_cpu, executor_cpu] = s.pairs[round % s.pairs.size()];
    const unsigned patience = SpinsBeforeYield(writer_cpu == executor_cpu);
    if (!stop) errors.Pin(writer_cpu);
    for (size_t k = 0; k < (stop ? 1 : mods_per_round); ++k) {
      ++seq;
      Request& r = s.request;
      r.round = round;
      r.slot = uint32_t((k + size_t(round) * 7) % nslots);
      r.poll = seq & 1;
      r.one_store = (seq & 2) == 0;  // all four (poll, store kind) combinations
      r.stop = stop;
      const uint32_t slot = r.slot;
      const bool one_store = r.one_store;
      g_phase = "xmc: writer waits for the executor to run the old code";
      s.request_seq.store(seq, std::memory_order_release);
      if (stop) return;
      SpinUntil([&] { return s.primed_seq.load(std::memory_order_acquire) == seq; }, patience);
      const uint32_t value = SlotValue(slot, ++gen[slot]);
      WriteImm32(s.slots[slot], value, one_store, seq & 4);
      s.flag[slot].store(value, std::memory_order_release);
      g_phase = "xmc: writer waits for the executor's check";
      SpinUntil([&] { return s.ack_seq.load(std::memory_order_acquire) == seq; }, patience);
      s.mods.fetch_add(1, std::memory_order_relaxed);
    }
    s.rounds.store(round + 1);
    g_rounds.store(round + 1, std::memory_order_relaxed);
  }
}

void Executor(Shared& s, Errors& errors) {
  uint64_t seen = 0;
  int64_t pinned_round = -1;
  uint64_t poll_calls = 0, polled_mods = 0, early_new = 0;
  // Only with a single distinct CPU do writer and executor share one.
  const bool shared = s.pairs[0].first == s.pairs[0].second;
  const unsigned patience = SpinsBeforeYield(shared);
  for (;;) {
    uint64_t seq = 0;
    SpinUntil([&] { return (seq = s.request_seq.load(std::memory_order_acquire)) != seen; },
              patience);
    seen = seq;
    const Request r = s.request;
    if (r.stop) break;
    const auto [writer_cpu, executor_cpu] = s.pairs[r.round % s.pairs.size()];
    if (int64_t(r.round) != pinned_round) {
      errors.Pin(executor_cpu);
      pinned_round = r.round;
    }
    const uint8_t* code = s.slots[r.slot];
    const size_t offset = size_t(code - s.code);
    const char* store_kind = r.one_store ? "one 4-byte store" : "byte stores";
    const uint32_t old_value = s.flag[r.slot].load(std::memory_order_acquire);
    uint32_t got = 0;
    // Run the current code first, so that a translation of it exists when it changes.
    int sig = TryCall(code, got);
    if (sig) {
      errors.Add(s.faults, "%s calling slot %u (code+0x%zx) on cpu %d", SignalName(sig),
                 r.slot, offset, executor_cpu);
    } else if (got != old_value) {
      errors.Add(s.stale_before,
                 "slot %u (code+0x%zx) on cpu %d returned 0x%08x before the modification, "
                 "expected 0x%08x (its last published value)",
                 r.slot, offset, executor_cpu, got, old_value);
    }
    s.primed_seq.store(seq, std::memory_order_release);

    uint32_t new_value = old_value;
    if (r.poll) {
      ++polled_mods;
      bool changed = false, torn = false;
      uint32_t first_change = 0;
      do {
        sig = TryCall(code, got);
        ++poll_calls;
        if (sig) {
          errors.Add(s.faults, "%s calling slot %u (code+0x%zx) on cpu %d while it was written",
                     SignalName(sig), r.slot, offset, executor_cpu);
        } else if (got != old_value) {
          if (!changed) {
            changed = true;
            first_change = got;
          } else if (got != first_change) {
            torn = true;
          }
        }
        new_value = s.flag[r.slot].load(std::memory_order_acquire);
        if (shared && poll_calls % kSharedSpinsBeforeYield == 0) sched_yield();
      } while (new_value == old_value);
      if (changed) {
        ++early_new;
        torn = torn || first_change != new_value;
      }
      // Byte stores legitimately pass through mixed values; one aligned store must not.
      if (torn && r.one_store) {
        errors.Add(s.torn,
                   "slot %u (code+0x%zx) on cpu %d returned 0x%08x while one 4-byte store "
                   "changed it from 0x%08x to 0x%08x",
                   r.slot, offset, executor_cpu, first_change, old_value, new_value);
      }
    } else {
      SpinUntil([&] {
        return (new_value = s.flag[r.slot].load(std::memory_order_acquire)) != old_value;
      }, patience);
    }
    SerializeCpuid();
    sig = TryCall(code, got);
    if (sig) {
      errors.Add(s.faults, "%s calling slot %u (code+0x%zx) on cpu %d after CPUID",
                 SignalName(sig), r.slot, offset, executor_cpu);
    } else if (got != new_value) {
      errors.Add(s.stale,
                 "slot %u (code+0x%zx%s): writer cpu %d, executor cpu %d, %s, %s: expected "
                 "0x%08x after flag+CPUID, got 0x%08x%s",
                 r.slot, offset, offset % kPage == kStraddleOffset ? ", straddles pages" : "",
                 writer_cpu, executor_cpu, store_kind,
                 r.poll ? "executor polled the slot" : "executor spun on the flag", new_value,
                 got, got == old_value ? " (the old code)" : "");
    }
    s.ack_seq.store(seq, std::memory_order_release);
  }
  s.poll_calls += poll_calls;
  s.polled_mods += polled_mods;
  s.early_new += early_new;
}

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("xmc");
  const size_t len = kPages * kPage;
  auto* code = static_cast<uint8_t*>(mmap(nullptr, len, PROT_READ | PROT_WRITE | PROT_EXEC,
                                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (code == MAP_FAILED) return {false, std::string("mmap RWX: ") + std::strerror(errno)};
  std::memset(code, kInt3, len);  // a jump anywhere but a slot start traps
  std::vector<size_t> offsets;
  for (size_t p = 0; p < kPages; ++p) {
    for (size_t off : kSlotOffsetsInPage) offsets.push_back(p * kPage + off);
    if (p + 1 < kPages) offsets.push_back(p * kPage + kStraddleOffset);
  }
  Shared s(offsets.size());
  s.code = code;
  for (size_t i = 0; i < offsets.size(); ++i) {
    uint8_t* slot = code + offsets[i];
    slot[0] = kMovEaxImm32;
    WriteImm32(slot, SlotValue(i, 0), true, false);
    slot[5] = kRet;
    s.flag[i].store(SlotValue(i, 0));
    s.slots.push_back(slot);
  }
  s.pairs = RolePairs(cfg.cpus);
  const uint64_t end = DeadlineAfter(cfg.seconds);
  std::thread executor([&] { Executor(s, errors); });
  std::thread writer([&] { Writer(s, errors, end); });
  writer.join();
  executor.join();
  munmap(code, len);

  Report rep;
  rep.Check(s.stale, "stale executions after flag+CPUID")
      .Check(s.stale_before, "stale executions before the modification")
      .Check(s.torn, "torn imm32 reads of one 4-byte store")
      .Check(s.faults, "faults executing slots")
      .Require(s.mods > 0, "no modification completed");
  rep.Stat("rounds", s.rounds).Stat("mods", s.mods).Stat("slots", uint64_t(s.slots.size()))
      .Stat("pairs", uint64_t(s.pairs.size())).Stat("polled_mods", s.polled_mods)
      .Stat("poll_calls", s.poll_calls).Stat("new_before_flag", s.early_new)
      .Stat("stale", s.stale).Stat("stale_before", s.stale_before).Stat("torn", s.torn)
      .Stat("faults", s.faults);
  return rep.Finish(errors);
}

}  // namespace torture::xmc
