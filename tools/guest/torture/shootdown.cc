// torture shootdown: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// shootdown -- a TLB-shootdown storm. One thread per CPU in LIST; one is the mapper (the
//   role rotates every 64 generations), the others readers. The mapper maps 4 pages of a
//   memfd at one fixed address (MAP_FIXED; two alternating banks, which it also sees
//   through a second "alias" mapping), writes generation g into them and publishes g
//   (release). Readers must then read g and write their slot; they ack, and spin in user
//   mode reading the pages and writing their slots (so their TLBs hold the translations)
//   until the next state. Then, by g mod 3, the mapper (i) munmaps and publishes "gone":
//   every reader read must now fault (SIGSEGV); (ii) mprotects PROT_READ and publishes
//   "read-only": reads still see g, every reader write must fault; or (iii) maps the other
//   bank directly over the old one (the next generation's MAP_FIXED): readers must then
//   read g+1, never g. After each of these the mapper snapshots the old bank's reader
//   slots through the alias once the syscall has returned, and again once all readers
//   acked: a change is a write through a translation that should be gone.
//   Broken looks like: "stale reads" (g read after g+1 was published, or a page still
//   readable after munmap), "stale writes" (a write succeeded after PROT_READ), "late
//   writes" (the old page changed after the shootdown returned), or a hang (a shootdown
//   IPI that never completes).
//
// Caveat -- where a correct machine could still fail, or a broken one pass: shootdown needs
//   at least two entries in --cpus; with one it FAILs for lack of readers.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "harness.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace torture::shootdown {
namespace {

constexpr size_t kPages = 4;
constexpr size_t kLen = kPages * kPage;
constexpr size_t kSlotWord = 8;  // reader i writes word kSlotWord + i of every page
constexpr uint64_t kGensPerChunk = 64;
enum Kind : uint32_t { kMapped, kGone, kReadOnly, kHandoff, kStop };

struct State {
  uint64_t gen = 0;
  Kind kind = kHandoff;
  int mapper = 0;
};

struct alignas(64) Ack {
  std::atomic<uint64_t> seq{0};
};

uint64_t Tag(uint64_t gen, size_t page) {
  return 0x5348000000000000ULL | (uint64_t(page) << 40) | (gen & 0xffffffffffULL);
}

using Snapshot = uint64_t[kPages][kMaxThreads];

struct Shared {
  alignas(64) std::atomic<uint64_t> seq{0};
  State state;  // written by the mapper before seq is released
  std::vector<Ack> acks;
  volatile uint64_t* fixed = nullptr;  // where every generation is mapped
  uint64_t* alias = nullptr;           // both banks of the memfd, for the mapper
  int fd = -1;
  std::vector<int> cpus;
  uint64_t end_ns = 0;
  // The mapper's state, handed on with the role (release/acquire through seq).
  uint64_t gen = 0;
  bool hole = false;              // the fixed range is unmapped
  int pending_replace_bank = -1;  // mapped over by the next generation's MAP_FIXED
  Snapshot replaced_slots{};
  // Counters.
  std::atomic<uint64_t> gens{0}, unmaps{0}, protects{0}, replaces{0}, handoffs{0}, checks{0};
  std::atomic<uint64_t> expected_faults{0}, window_faults{0};
  std::atomic<uint64_t> stale_reads{0}, gone_reads{0}, stale_writes{0}, late_writes{0};
  std::atomic<uint64_t> fresh_errors{0}, wrong_signal{0}, syscall_failures{0};
};

volatile uint64_t* BankPage(Shared& s, int bank, size_t page) {
  return s.alias + (size_t(bank) * kPages + page) * kWordsPerPage;
}

void TakeSnapshot(Shared& s, int bank, Snapshot& out) {
  for (size_t p = 0; p < kPages; ++p)
    for (size_t i = 0; i < s.cpus.size(); ++i) out[p][i] = BankPage(s, bank, p)[kSlotWord + i];
}

// Reader slots of the old bank that changed after the syscall that removed the mapping had
// returned: writes through a TLB entry the shootdown should have removed.
void CompareSnapshot(Shared& s, Errors& errors, int bank, const Snapshot& before, const char* op,
                     uint64_t gen, int mapper_cpu) {
  for (size_t p = 0; p < kPages; ++p) {
    for (size_t i = 0; i < s.cpus.size(); ++i) {
      const uint64_t now = BankPage(s, bank, p)[kSlotWord + i];
      if (now != before[p][i])
        errors.Add(s.late_writes,
                   "reader on cpu %d wrote page %zu of generation %llu after %s on cpu %d had "
                   "returned (0x%llx -> 0x%llx): stale writable TLB entry",
                   s.cpus[i], p, u64(gen), op, mapper_cpu, u64(before[p][i]), u64(now));
    }
  }
}

uint64_t Publish(Shared& s, Kind kind, uint64_t gen, int mapper) {
  s.state = State{gen, kind, mapper};
  const uint64_t seq = s.seq.load(std::memory_order_relaxed) + 1;
  s.seq.store(seq, std::memory_order_release);
  return seq;
}

void WaitAcks(Shared& s, uint64_t seq, int me) {
  const unsigned patience = SpinsBeforeYield(SharesCpu(s.cpus, s.cpus[me]));
  for (size_t i = 0; i < s.cpus.size(); ++i) {
    if (int(i) == me) continue;
    SpinUntil([&] { return s.acks[i].seq.load(std::memory_order_acquire) >= seq; }, patience);
  }
}

// Runs kGensPerChunk generations as the mapper; returns the seq of the handoff or stop it
// published last, and whether it was a stop.
std::pair<uint64_t, bool> RunMapper(Shared& s, Errors& errors, int me) {
  const int cpu = s.cpus[me];
  const size_t nthreads = s.cpus.size();
  for (uint64_t k = 0; k < kGensPerChunk; ++k) {
    if (NowNs() >= s.end_ns) return {Publish(s, kStop, s.gen, me), true};
    const uint64_t g = ++s.gen;
    const int bank = int(g & 1);
    for (size_t p = 0; p < kPages; ++p) {
      volatile uint64_t* page = BankPage(s, bank, p);
      page[0] = Tag(g, p);
      for (size_t i = 0; i < nthreads; ++i) page[kSlotWord + i] = 0;
    }
    // Into the hole munmap left, NOREPLACE proves nothing else took the address meanwhile;
    // otherwise MAP_FIXED replaces the previous generation while the readers still use it.
    const int flags = MAP_SHARED | (s.hole ? MAP_FIXED_NOREPLACE : MAP_FIXED);
    void* m = mmap(const_cast<uint64_t*>(s.fixed), kLen, PROT_READ | PROT_WRITE, flags, s.fd,
                   off_t(bank) * off_t(kLen));
    if (m != static_cast<void*>(const_cast<uint64_t*>(s.fixed))) {
      errors.Add(s.syscall_failures, "mmap generation %llu at %p: %s", u64(g),
                 static_cast<void*>(const_cast<uint64_t*>(s.fixed)),
                 m == MAP_FAILED ? std::strerror(errno) : "placed elsewhere");
      if (m != MAP_FAILED) munmap(m, kLen);
      return {Publish(s, kStop, g, me), true};
    }
    s.hole = false;
    const int replaced = s.pending_replace_bank;
    if (replaced >= 0) TakeSnapshot(s, replaced, s.replaced_slots);
    g_phase = "shootdown: mapper waits for readers to see a new generation";
    WaitAcks(s, Publish(s, kMapped, g, me), me);
    if (replaced >= 0) {
      CompareSnapshot(s, errors, replaced, s.replaced_slots, "the replacing mmap(MAP_FIXED)",
                      g - 1, cpu);
      s.pending_replace_bank = -1;
    }
    Snapshot slots;
    switch (g % 3) {
      case 0:
        g_phase = "shootdown: mapper in munmap";
        if (munmap(const_cast<uint64_t*>(s.fixed), kLen) != 0)
          errors.Add(s.syscall_failures, "munmap: %s", std::strerror(errno));
        s.hole = true;
        TakeSnapshot(s, bank, slots);
        g_phase = "shootdown: mapper waits for readers to see the unmap";
        WaitAcks(s, Publish(s, kGone, g, me), me);
        CompareSnapshot(s, errors, bank, slots, "munmap", g, cpu);
        s.unmaps.fetch_add(1, std::memory_order_relaxed);
        break;
      case 1:
        g_phase = "shootdown: mapper in mprotect";
        if (mprotect(const_cast<uint64_t*>(s.fixed), kLen, PROT_READ) != 0)
          errors.Add(s.syscall_failures, "mprotect: %s", std::strerror(errno));
        TakeSnapshot(s, bank, slots);
        g_phase = "shootdown: mapper waits for readers to see the read-only mapping";
        WaitAcks(s, Publish(s, kReadOnly, g, me), me);
        CompareSnapshot(s, errors, bank, slots, "mprotect(PROT_READ)", g, cpu);
        s.protects.fetch_add(1, std::memory_order_relaxed);
        break;
      default:
        s.pending_replace_bank = bank;
        s.replaces.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    s.gens.fetch_add(1, std::memory_order_relaxed);
    g_rounds.fetch_add(1, std::memory_order_relaxed);
  }
  s.handoffs.fetch_add(1, std::memory_order_relaxed);
  return {Publish(s, kHandoff, s.gen, int((size_t(me) + 1) % nthreads)), false};
}

class Reader {
 public:
  Reader(Shared& s, Errors& errors, int me)
      : s_(s), errors_(errors), me_(me), cpu_(s.cpus[me]), may_yield_(SharesCpu(s.cpus, cpu_)) {}

  void Run() {
    errors_.Pin(cpu_);
    uint64_t seen = 0;
    State st;  // the last state seen; a handoff needs no page accesses
    for (;;) {
      uint64_t seq;
      unsigned spins = 0;
      while ((seq = s_.seq.load(std::memory_order_acquire)) == seen) {
        Touch(st);
        if (may_yield_ && ++spins > kSharedSpinsBeforeYield) sched_yield();
      }
      seen = seq;
      st = s_.state;
      if (st.kind == kStop) break;
      if (st.kind == kHandoff) {
        s_.acks[me_].seq.store(seq, std::memory_order_release);
        if (st.mapper == me_) {
          WaitAcks(s_, seq, me_);
          const auto [last, stopped] = RunMapper(s_, errors_, me_);
          if (stopped) break;
          seen = last - 1;  // see our own handoff as a reader, and ack it
          st = State{};
        }
        continue;
      }
      CheckState(st);
      s_.acks[me_].seq.store(seq, std::memory_order_release);
    }
    s_.checks += checks_;
    s_.expected_faults += expected_faults_;
    s_.window_faults += window_faults_;
  }

 private:
  volatile uint64_t* Page(size_t p) const { return s_.fixed + p * kWordsPerPage; }

  // While waiting for the next state: keep the translations hot, in user mode. The mapper
  // may already have changed the mapping, so a fault or the next generation is allowed
  // here; an older generation is not.
  void Touch(const State& st) {
    if (st.kind != kMapped && st.kind != kReadOnly) return;
    const size_t p = touch_++ % kPages;
    uint64_t v = 0;
    int sig = TryLoad(Page(p), v);
    if (sig == SIGSEGV) {
      ++window_faults_;
    } else if (sig) {
      errors_.Add(s_.wrong_signal, "cpu %d: reading the fixed page raised %s", cpu_,
                  SignalName(sig));
    } else if (v != Tag(st.gen, p) && v != Tag(st.gen + 1, p)) {
      errors_.Add(s_.stale_reads,
                  "reader on cpu %d: page %zu read 0x%llx while generation %llu was current "
                  "(expected it or the next)",
                  cpu_, p, u64(v), u64(st.gen));
    }
    if (st.kind == kMapped) {
      sig = TryStore(Page(p) + kSlotWord + size_t(me_), (uint64_t(me_ + 1) << 48) | ++counter_);
      if (sig == SIGSEGV) ++window_faults_;
    }
  }

  // Right after seeing a new state (acquire): what every access must do now.
  void CheckState(const State& st) {
    ++checks_;
    for (size_t p = 0; p < kPages; ++p) {
      uint64_t v = 0;
      const int rsig = TryLoad(Page(p), v);
      if (st.kind == kGone) {
        if (rsig == SIGSEGV) {
          ++expected_faults_;
        } else if (rsig) {
          errors_.Add(s_.wrong_signal, "cpu %d: reading an unmapped page raised %s", cpu_,
                      SignalName(rsig));
        } else {
          errors_.Add(s_.gone_reads,
                      "reader on cpu %d: page %zu still readable after munmap of generation "
                      "%llu was published (read 0x%llx): stale TLB entry",
                      cpu_, p, u64(st.gen), u64(v));
        }
        continue;
      }
      if (rsig) {
        errors_.Add(s_.fresh_errors, "reader on cpu %d: %s reading page %zu of generation %llu",
                    cpu_, SignalName(rsig), p, u64(st.gen));
      } else if (v != Tag(st.gen, p)) {
        errors_.Add(s_.stale_reads,
                    "reader on cpu %d: page %zu read 0x%llx after generation %llu was published "
                    "(expected 0x%llx)%s",
                    cpu_, p, u64(v), u64(st.gen), u64(Tag(st.gen, p)),
                    v == Tag(st.gen - 1, p) ? ": the replaced page, a stale TLB entry" : "");
      }
      volatile uint64_t* slot = Page(p) + kSlotWord + size_t(me_);
      const int wsig = TryStore(slot, (uint64_t(me_ + 1) << 48) | ++counter_);
      if (st.kind == kMapped && wsig) {
        errors_.Add(s_.fresh_errors, "reader on cpu %d: %s writing page %zu of generation %llu",
                    cpu_, SignalName(wsig), p, u64(st.gen));
      } else if (st.kind == kReadOnly) {
        if (wsig == SIGSEGV) {
          ++expected_faults_;
        } else if (wsig == 0) {
          errors_.Add(s_.stale_writes,
                      "reader on cpu %d: write to page %zu succeeded after mprotect(PROT_READ) "
                      "of generation %llu was published: stale writable TLB entry",
                      cpu_, p, u64(st.gen));
        } else {
          errors_.Add(s_.wrong_signal, "cpu %d: writing a read-only page raised %s", cpu_,
                      SignalName(wsig));
        }
      }
    }
  }

  Shared& s_;
  Errors& errors_;
  const int me_, cpu_;
  const bool may_yield_;
  size_t touch_ = 0;
  uint64_t counter_ = 0, checks_ = 0, expected_faults_ = 0, window_faults_ = 0;
};

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("shootdown");
  auto s = std::make_unique<Shared>();
  s->cpus = cfg.cpus;
  s->acks = std::vector<Ack>(cfg.cpus.size());
  s->fd = memfd_create("torture-shootdown", MFD_CLOEXEC);
  if (s->fd < 0) return {false, std::string("memfd_create: ") + std::strerror(errno)};
  if (ftruncate(s->fd, off_t(2 * kLen)) != 0) {
    close(s->fd);
    return {false, std::string("ftruncate: ") + std::strerror(errno)};
  }
  void* alias = mmap(nullptr, 2 * kLen, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
  // A placeholder that reserves the fixed address; the first generation replaces it.
  void* fixed = mmap(nullptr, kLen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alias == MAP_FAILED || fixed == MAP_FAILED) {
    close(s->fd);
    return {false, std::string("mmap: ") + std::strerror(errno)};
  }
  s->alias = static_cast<uint64_t*>(alias);
  s->fixed = static_cast<volatile uint64_t*>(fixed);
  s->end_ns = DeadlineAfter(cfg.seconds);
  Publish(*s, kHandoff, 0, 0);  // thread 0 maps first
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cfg.cpus.size(); ++i)
    threads.emplace_back([&, i] { Reader(*s, errors, int(i)).Run(); });
  for (std::thread& t : threads) t.join();
  munmap(const_cast<uint64_t*>(s->fixed), kLen);
  munmap(alias, 2 * kLen);
  close(s->fd);

  Report rep;
  rep.Check(s->stale_reads, "stale reads after a new generation")
      .Check(s->gone_reads, "reads that succeeded after munmap")
      .Check(s->stale_writes, "writes that succeeded after mprotect(PROT_READ)")
      .Check(s->late_writes, "late writes to a removed page")
      .Check(s->fresh_errors, "faults on a freshly mapped page")
      .Check(s->wrong_signal, "wrong signals")
      .Check(s->syscall_failures, "failed syscalls")
      .Require(cfg.cpus.size() >= 2, "no readers: --cpus needs at least two entries")
      .Require(s->gens > 0, "no generation completed");
  rep.Stat("threads", uint64_t(cfg.cpus.size())).Stat("generations", s->gens)
      .Stat("unmaps", s->unmaps).Stat("protects", s->protects).Stat("replaces", s->replaces)
      .Stat("handoffs", s->handoffs).Stat("reader_checks", s->checks)
      .Stat("expected_faults", s->expected_faults).Stat("window_faults", s->window_faults)
      .Stat("stale", s->stale_reads + s->gone_reads + s->stale_writes)
      .Stat("late_writes", s->late_writes);
  return rep.Finish(errors);
}

}  // namespace torture::shootdown
