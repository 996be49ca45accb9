// torture ptchurn: one test of the guest coherence torture suite; harness.h has the
// command line, the output and what every test shares.
//
// ptchurn -- page-table churn, one thread per CPU in LIST. Each iteration: mmap 1-8 pages,
//   fill with a pattern unique to (thread, iteration, page, word) and verify; mprotect
//   PROT_READ, then a write to every page must fault; mprotect back, rewrite, verify;
//   mremap to grow by 1-4 pages (MREMAP_MAYMOVE, or MREMAP_FIXED onto a new address):
//   contents must have moved, grown pages be zero, and the old address fault; munmap, and
//   every page must fault. On odd iterations the mprotect/mremap/munmap is done after the
//   thread moves to another vCPU (rotating through all of them), and the probe after it
//   moves back, so the TLB entry the probe could hit is on a vCPU that did not run the
//   syscall. Every 4th iteration a fork/copy-on-write round: the parent fills 16 pages with
//   generation g and forks (every other time from another vCPU), then writes g' while the
//   child runs, and then tells the child through a MAP_SHARED word; the child must still
//   see g, writes its own pattern and verifies it, and exits with a status; the parent then
//   must still see g'.
//   Broken looks like: "writes to read-only pages succeeded" (a stale writable TLB entry);
//   "stale reads after munmap/move" (the thread's own old data through a translation that
//   should be gone; a successful read of someone else's data is counted as "reused", not
//   an error); pattern mismatches; a child seeing the parent's post-fork data, or the
//   parent seeing the child's (copy-on-write broken by a stale writable translation).
//
// Caveat -- where a correct machine could still fail, or a broken one pass: a successful
//   read after munmap that returns another thread's data counts as "reused" (the kernel
//   may hand the range to another thread at once), so a stale entry pointing at a freed
//   page that was already reused would be missed there; shootdown keeps the old page alive
//   (memfd) and catches that case exactly.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

#include "harness.h"

namespace torture::ptchurn {
namespace {

constexpr size_t kMaxPages = 8;
constexpr size_t kMaxGrow = 4;
constexpr size_t kCowPages = 16;
constexpr int kChildSawForeign = 1, kChildLostOwn = 2;
constexpr uint64_t kRewritten = 1ULL << 44, kGrown = 2ULL << 44;
constexpr uint64_t kCowBefore = 3ULL << 44, kCowAfter = 4ULL << 44, kCowChild = 5ULL << 44;

uint64_t Pattern(uint64_t tag, size_t page, size_t word) {
  return (tag * 0x9E3779B97F4A7C15ULL) ^ (uint64_t(page) << 32) ^ word;
}

// Plain loops only: these also run in forked children of a multi-threaded process.
void Fill(uint64_t* mem, size_t pages, uint64_t tag) {
  for (size_t p = 0; p < pages; ++p)
    for (size_t w = 0; w < kWordsPerPage; ++w) mem[p * kWordsPerPage + w] = Pattern(tag, p, w);
}

// volatile: the checks must read memory, not what the compiler remembers storing.
size_t Mismatches(const volatile uint64_t* mem, size_t pages, uint64_t tag) {
  size_t bad = 0;
  for (size_t p = 0; p < pages; ++p)
    for (size_t w = 0; w < kWordsPerPage; ++w)
      bad += mem[p * kWordsPerPage + w] != Pattern(tag, p, w);
  return bad;
}

size_t NonZero(const volatile uint64_t* mem, size_t pages) {
  size_t bad = 0;
  for (size_t w = 0; w < pages * kWordsPerPage; ++w) bad += mem[w] != 0;
  return bad;
}

struct Shared {
  std::atomic<uint64_t> iterations{0}, hops{0}, ro_faults{0}, gone_faults{0}, reused{0};
  std::atomic<uint64_t> moves{0}, fixed_moves{0}, forks{0};
  std::atomic<uint64_t> mismatches{0}, ro_writes{0}, stale_after_gone{0}, wrong_signal{0};
  std::atomic<uint64_t> cow_child{0}, cow_parent{0}, syscall_failures{0};
  std::atomic<uint64_t>* handshakes = nullptr;  // MAP_SHARED, one per thread, 64 bytes apart
};

class Churner {
 public:
  Churner(Shared& s, Errors& errors, int index, int home, std::vector<int> others)
      : s_(s), errors_(errors), index_(index), home_(home), others_(std::move(others)) {}

  void Run(uint64_t end_ns) {
    errors_.Pin(home_);
    cow_ = static_cast<uint64_t*>(mmap(nullptr, kCowPages * kPage, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (cow_ == MAP_FAILED) {
      errors_.Add(s_.syscall_failures, "mmap: %s", std::strerror(errno));
      return;
    }
    for (uint64_t it = 0; NowNs() < end_ns; ++it) {
      Iteration(it);
      s_.iterations.fetch_add(1, std::memory_order_relaxed);
      if (index_ == 0) g_rounds.store(it + 1, std::memory_order_relaxed);
    }
    munmap(cow_, kCowPages * kPage);
  }

 private:
  // Runs a page-table syscall on another vCPU on hopping iterations, then comes back, so
  // that the TLB entries the following probe could hit are on a vCPU that did not run it.
  template <class Op>
  void Elsewhere(Op&& op) {
    if (hop_) errors_.Pin(other_);
    op();
    if (hop_) errors_.Pin(home_);
  }

  void Iteration(uint64_t it) {
    const uint64_t tag = (uint64_t(index_ + 1) << 48) | (it & 0xfffffffffffULL);
    hop_ = !others_.empty() && (it & 1);
    other_ = others_.empty() ? home_ : others_[(it >> 1) % others_.size()];
    if (hop_) s_.hops.fetch_add(1, std::memory_order_relaxed);
    const size_t pages = 1 + it % kMaxPages;
    const size_t len = pages * kPage;
    auto* mem = static_cast<uint64_t*>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mem == MAP_FAILED) {
      errors_.Add(s_.syscall_failures, "mmap %zu pages: %s", pages, std::strerror(errno));
      return;
    }
    Fill(mem, pages, tag);
    Verify(mem, pages, tag, "a fresh mapping");

    // Read-only: every write must fault. The write stores the value already there, so a
    // write that wrongly succeeds does not disturb the later checks.
    int rc = 0;
    Elsewhere([&] { rc = mprotect(mem, len, PROT_READ); });
    if (rc != 0) errors_.Add(s_.syscall_failures, "mprotect: %s", std::strerror(errno));
    for (size_t p = 0; p < pages; ++p) {
      const size_t w = (p * 37 + it) % kWordsPerPage;
      const int sig = TryStore(mem + p * kWordsPerPage + w, Pattern(tag, p, w));
      if (sig == SIGSEGV) {
        s_.ro_faults.fetch_add(1, std::memory_order_relaxed);
      } else if (sig == 0) {
        errors_.Add(s_.ro_writes,
                    "cpu %d: write to page %zu of %p succeeded after mprotect(PROT_READ)%s "
                    "(stale writable translation)",
                    home_, p, static_cast<void*>(mem), hop_ ? " run on another vCPU" : "");
      } else {
        errors_.Add(s_.wrong_signal, "cpu %d: write to a read-only page raised %s", home_,
                    SignalName(sig));
      }
    }
    Verify(mem, pages, tag, "the read-only mapping");
    if (mprotect(mem, len, PROT_READ | PROT_WRITE) != 0)
      errors_.Add(s_.syscall_failures, "mprotect: %s", std::strerror(errno));
    const uint64_t rewritten = tag ^ kRewritten;
    Fill(mem, pages, rewritten);
    Verify(mem, pages, rewritten, "the mapping made writable again");

    // Grow by moving: MAYMOVE lets the kernel choose; FIXED moves onto a placeholder we
    // mapped (and so own) first.
    const size_t new_pages = pages + 1 + (it >> 1) % kMaxGrow;
    const size_t new_len = new_pages * kPage;
    void* target = nullptr;
    int flags = MREMAP_MAYMOVE;
    if ((it >> 2) & 1) {
      target = mmap(nullptr, new_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (target == MAP_FAILED) {
        errors_.Add(s_.syscall_failures, "mmap: %s", std::strerror(errno));
        munmap(mem, len);
        return;
      }
      flags |= MREMAP_FIXED;
    }
    void* moved_to = MAP_FAILED;
    Elsewhere([&] { moved_to = mremap(mem, len, new_len, flags, target); });
    if (moved_to == MAP_FAILED) {
      errors_.Add(s_.syscall_failures, "mremap: %s", std::strerror(errno));
      munmap(mem, len);
      if (target) munmap(target, new_len);
      return;
    }
    auto* moved = static_cast<uint64_t*>(moved_to);
    Verify(moved, pages, rewritten, "the mremapped mapping");
    if (const size_t bad = NonZero(moved + pages * kWordsPerPage, new_pages - pages))
      errors_.Add(s_.mismatches, "cpu %d: %zu non-zero words in pages grown by mremap", home_,
                  bad);
    if (moved != mem) {
      s_.moves.fetch_add(1, std::memory_order_relaxed);
      if (target) s_.fixed_moves.fetch_add(1, std::memory_order_relaxed);
      CheckGone(mem, pages, rewritten, "mremap moved it");
    }
    const uint64_t grown = tag ^ kGrown;
    Fill(moved, new_pages, grown);
    Verify(moved, new_pages, grown, "the grown mapping");
    Elsewhere([&] { rc = munmap(moved, new_len); });
    if (rc != 0) errors_.Add(s_.syscall_failures, "munmap: %s", std::strerror(errno));
    CheckGone(moved, new_pages, grown, "munmap");

    if (it % 4 == 3) {
      // Every 4th iteration is odd, so alternate the hop here: half the forks run on home.
      hop_ = !others_.empty() && ((it >> 2) & 1);
      CopyOnWrite(tag);
    }
  }

  void Verify(const uint64_t* mem, size_t pages, uint64_t tag, const char* what) {
    if (const size_t bad = Mismatches(mem, pages, tag))
      errors_.Add(s_.mismatches, "cpu %d: %zu of %zu words wrong in %s", home_, bad,
                  pages * kWordsPerPage, what);
  }

  // The range must fault now. A successful read is an error only if it returns this
  // thread's own old data: another thread's new mapping may have been placed there since.
  void CheckGone(const uint64_t* base, size_t pages, uint64_t tag, const char* after) {
    for (size_t p = 0; p < pages; ++p) {
      const size_t w = (p * 13 + 5) % kWordsPerPage;
      uint64_t v = 0;
      const int sig = TryLoad(base + p * kWordsPerPage + w, v);
      if (sig == SIGSEGV) {
        s_.gone_faults.fetch_add(1, std::memory_order_relaxed);
      } else if (sig != 0) {
        errors_.Add(s_.wrong_signal, "cpu %d: reading an unmapped page raised %s", home_,
                    SignalName(sig));
      } else if (v == Pattern(tag, p, w)) {
        errors_.Add(s_.stale_after_gone,
                    "cpu %d: page %zu of %p still readable with its old data after %s%s "
                    "(stale translation)",
                    home_, p, static_cast<const void*>(base), after,
                    hop_ ? " on another vCPU" : "");
      } else {
        s_.reused.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  void CopyOnWrite(uint64_t tag) {
    std::atomic<uint64_t>& handshake = s_.handshakes[index_ * 8];
    const uint64_t before = tag ^ kCowBefore, after = tag ^ kCowAfter, child = tag ^ kCowChild;
    Fill(cow_, kCowPages, before);
    if (hop_) errors_.Pin(other_);
    const pid_t pid = fork();
    if (pid == 0) {
      // The child of a multi-threaded process: plain memory accesses, sched_yield, _exit.
      // It waits until the parent has written `after`, so a leak of it is certain to show.
      for (unsigned spins = 0; handshake.load(std::memory_order_acquire) != tag;) {
        if (++spins > kSpinsBeforeYield) syscall(SYS_sched_yield);
        else _mm_pause();
      }
      int status = 0;
      if (Mismatches(cow_, kCowPages, before)) status |= kChildSawForeign;
      Fill(cow_, kCowPages, child);
      if (Mismatches(cow_, kCowPages, child)) status |= kChildLostOwn;
      _exit(status);
    }
    if (hop_) errors_.Pin(home_);
    if (pid < 0) {
      errors_.Add(s_.syscall_failures, "fork: %s", std::strerror(errno));
      return;
    }
    s_.forks.fetch_add(1, std::memory_order_relaxed);
    Fill(cow_, kCowPages, after);  // the parent keeps writing while the child runs
    handshake.store(tag, std::memory_order_release);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      errors_.Add(s_.cow_child, "cpu %d: fork child (forked on cpu %d) %s (status 0x%x)", home_,
                  hop_ ? other_ : home_,
                  code == kChildSawForeign ? "saw the parent's post-fork writes"
                  : code == kChildLostOwn  ? "lost its own writes"
                  : code == kChildFaulted  ? "took a fault"
                  : code > 0               ? "saw foreign data and lost its own writes"
                                           : "died",
                  status);
    }
    if (const size_t bad = Mismatches(cow_, kCowPages, after))
      errors_.Add(s_.cow_parent, "cpu %d: parent lost %zu words to its fork child", home_, bad);
  }

  Shared& s_;
  Errors& errors_;
  const int index_, home_;
  const std::vector<int> others_;
  uint64_t* cow_ = nullptr;
  bool hop_ = false;
  int other_ = 0;
};

}  // namespace

Outcome Run(const Config& cfg) {
  Errors errors("ptchurn");
  Shared s;
  const size_t n = cfg.cpus.size();
  const size_t handshake_len = (n * 64 + kPage - 1) / kPage * kPage;
  void* hs = mmap(nullptr, handshake_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                  -1, 0);
  if (hs == MAP_FAILED) return {false, std::string("mmap MAP_SHARED: ") + std::strerror(errno)};
  s.handshakes = static_cast<std::atomic<uint64_t>*>(hs);
  for (size_t i = 0; i < n * 8; ++i) new (&s.handshakes[i]) std::atomic<uint64_t>(0);

  const uint64_t end = DeadlineAfter(cfg.seconds);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    std::vector<int> others;
    for (size_t d = 1; d < n; ++d) {
      const int c = cfg.cpus[(i + d) % n];
      if (c != cfg.cpus[i] && std::find(others.begin(), others.end(), c) == others.end())
        others.push_back(c);
    }
    threads.emplace_back([&s, &errors, &cfg, i, end, others] {
      Churner(s, errors, int(i), cfg.cpus[i], others).Run(end);
    });
  }
  for (std::thread& t : threads) t.join();
  munmap(hs, handshake_len);

  Report rep;
  rep.Check(s.ro_writes, "writes to read-only pages succeeded")
      .Check(s.stale_after_gone, "stale reads after munmap/move")
      .Check(s.mismatches, "pattern mismatches")
      .Check(s.cow_child, "fork children saw wrong data")
      .Check(s.cow_parent, "fork parents saw wrong data")
      .Check(s.wrong_signal, "wrong signals")
      .Check(s.syscall_failures, "failed syscalls")
      .Require(s.iterations > 0, "no iteration completed");
  rep.Stat("threads", uint64_t(n)).Stat("iterations", s.iterations).Stat("hops", s.hops)
      .Stat("ro_faults", s.ro_faults).Stat("moves", s.moves).Stat("fixed_moves", s.fixed_moves)
      .Stat("gone_faults", s.gone_faults).Stat("reused", s.reused).Stat("forks", s.forks)
      .Stat("ro_writes", s.ro_writes).Stat("stale", s.stale_after_gone)
      .Stat("mismatches", s.mismatches).Stat("cow_errors", s.cow_child + s.cow_parent);
  return rep.Finish(errors);
}

}  // namespace torture::ptchurn
