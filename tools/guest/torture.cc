// torture: memory and CPU coherence across vCPUs and backends, checked from the guest.
//
//   torture [--seconds S] [--cpus LIST] [--verbose] TEST...
//
//   TEST       xmc ptchurn atomics splitlock clock ipi shootdown, or all (each in turn)
//   --seconds  how long each test runs (default 10; fractions allowed)
//   --cpus     the vCPUs to use, e.g. 0,1,2,3 or 0-3 (default: every CPU this process
//              may run on). A CPU may be named twice (0,1,0,1) to put two threads on it.
//              A CPU that is offline or not allowed is a usage error.
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
// <signal> ..." and exits 1. Memory stays small: under 200 KiB per thread.
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
// atomics -- one thread per CPU in LIST, all on the same variables: (a) lock xadd (its
//   result must grow in each thread) and lock add, (b) a lock cmpxchg CAS loop, (c) an
//   xchg spinlock around two plain volatile counters incremented with a gap between them
//   (inside the lock they must be equal and the owner word stay ours), (d) a 16-byte
//   {lo, hi} pair that lock cmpxchg16b increments as a whole (inline asm, so no -mcx16 is
//   needed; objdump -d shows the cmpxchg16b) and reads with cmpxchg16b: every read must
//   show lo == hi. At the end every counter must equal the sum of all threads' operations.
//   Broken looks like: lost or duplicated increments (an atomic RMW that is not atomic
//   between backends), a torn 16-byte pair, two threads inside the spinlock.
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
// clock -- one thread per CPU in LIST; every 20 ms every thread moves to the next vCPU.
//   Each iteration reads the shared "latest TSC anyone saw" (acquire), then LFENCE;RDTSC,
//   which must be neither smaller than that nor than the thread's own previous reading,
//   and CAS-publishes the maximum; the same for clock_gettime(CLOCK_MONOTONIC).
//   Broken looks like: "TSC reads behind another vCPU" (vCPUs, or one vCPU before and after
//   a backend move, disagree on the TSC; or RDTSC executed before the preceding load),
//   "TSC went backwards", and the same for CLOCK_MONOTONIC. The worst gaps are reported.
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
// Caveats -- where a correct machine could still fail, or a broken one pass:
// - ipi: a lost wakeup is counted only when a 1 s FUTEX_WAIT times out with the word
//   already changed. A peer stalled for about a second (host overcommit, a paused VM) that
//   answers exactly at the timeout would be miscounted; healthy answers take microseconds.
// - clock: zero tolerance. It assumes the guest's TSCs are synchronized
//   (one timeline, as mixedvm provides); a guest kernel that marks its TSC unstable still
//   passes CLOCK_MONOTONIC through its fallback clocksource.
// - xmc: the SDM leaves unsynchronized cross-modifying code implementation-specific; the
//   "torn" check (polling variant only) assumes instruction fetch sees one aligned 4-byte
//   store whole, true of x86 hardware and of TCG's code loads. A stale execution is also
//   seen on the slot's next modification (stale_before), so one fault can count twice.
// - ptchurn: a successful read after munmap that returns another thread's data counts as
//   "reused" (the kernel may hand the range to another thread at once), so a stale entry
//   pointing at a freed page that was already reused would be missed there; shootdown
//   keeps the old page alive (memfd) and catches that case exactly.
// - splitlock: speed depends on the host's split-lock handling; under TCG split locks run
//   in QEMU's exclusive (stop-the-world) mode, so expect few operations there.
// - shootdown needs at least two entries in --cpus; with one it FAILs for lack of readers.
//   With only one distinct CPU the other tests' roles share it: a degenerate run.
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pin.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace {

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
  bool verbose = false;
};

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * kNsPerSec + uint64_t(ts.tv_nsec);
}

uint64_t DeadlineAfter(double seconds) { return NowNs() + uint64_t(seconds * 1e9); }

// What the watchdog and the fault handler report about the running test.
std::atomic<const char*> g_test{"-"};
std::atomic<uint64_t> g_hang_deadline_ns{0};  // 0 while no test runs
std::atomic<uint64_t> g_test_start_ns{0};
std::atomic<uint64_t> g_rounds{0};
std::atomic<uint64_t> g_errors{0};
std::atomic<const char*> g_phase{"-"};
pid_t g_main_pid = 0;
bool g_verbose = false;

// Formatting for the paths that end in _exit, where stdio may be locked or inconsistent.
class RawLine {
 public:
  RawLine& Str(const char* s) {
    while (*s && len_ + 1 < sizeof buf_) buf_[len_++] = *s++;
    return *this;
  }
  RawLine& Dec(uint64_t v) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = char('0' + v % 10); while (v /= 10);
    while (n > 0) Put(tmp[--n]);
    return *this;
  }
  RawLine& Hex(uint64_t v) {
    Str("0x");
    char tmp[16];
    int n = 0;
    do tmp[n++] = "0123456789abcdef"[v & 15]; while (v >>= 4);
    while (n > 0) Put(tmp[--n]);
    return *this;
  }
  void Write() const {
    const ssize_t r = write(STDOUT_FILENO, buf_, len_);
    (void)r;
  }

 private:
  void Put(char c) {
    if (len_ + 1 < sizeof buf_) buf_[len_++] = c;
  }
  char buf_[512];
  size_t len_ = 0;
};

const char* SignalName(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGFPE: return "SIGFPE";
    default: return "signal";
  }
}

// ---- Catching faults per access ----------------------------------------------------------

struct FaultTrap {
  sigjmp_buf jmp;
  volatile sig_atomic_t armed = 0;
  volatile int signal = 0;
};
thread_local FaultTrap t_trap;

void OnFault(int sig, siginfo_t* info, void* context) {
  if (t_trap.armed) {
    t_trap.armed = 0;
    t_trap.signal = sig;
    siglongjmp(t_trap.jmp, 1);
  }
  // A forked child (ptchurn) reports through its exit status instead.
  if (getpid() != g_main_pid) _exit(kChildFaulted);
  const auto* uc = static_cast<const ucontext_t*>(context);
  RawLine()
      .Str("TORTURE ").Str(g_test.load()).Str(" FAIL unexpected ").Str(SignalName(sig))
      .Str(" at address ").Hex(uint64_t(info->si_addr))
      .Str(" pc ").Hex(uint64_t(uc->uc_mcontext.gregs[REG_RIP]))
      .Str(" rounds=").Dec(g_rounds.load()).Str(" errors=").Dec(g_errors.load())
      .Str(" phase=").Str(g_phase.load()).Str("\nTORTURE FAIL\n")
      .Write();
  _exit(1);
}

void InstallFaultHandlers() {
  struct sigaction sa {};
  sa.sa_sigaction = OnFault;
  // SA_NODEFER: the handler leaves by siglongjmp without restoring a signal mask (restoring
  // one would cost a syscall per probe, and the readers must stay in user mode), so the
  // signal must not be blocked while it runs.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE}) sigaction(sig, &sa, nullptr);
}

// Each probe returns 0 when the access completed, else the signal it raised. The trap is
// armed only around the one access, so a fault anywhere else is still unexpected.
__attribute__((noinline)) int TryLoad(const volatile uint64_t* p, uint64_t& out) {
  if (sigsetjmp(t_trap.jmp, 0) != 0) return t_trap.signal;
  t_trap.armed = 1;
  const uint64_t v = *p;
  t_trap.armed = 0;
  out = v;
  return 0;
}

__attribute__((noinline)) int TryStore(volatile uint64_t* p, uint64_t v) {
  if (sigsetjmp(t_trap.jmp, 0) != 0) return t_trap.signal;
  t_trap.armed = 1;
  *p = v;
  t_trap.armed = 0;
  return 0;
}

using SlotFn = uint32_t (*)();

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

// ---- Errors, reports, helpers ------------------------------------------------------------

// Counts errors by category and keeps the description of the first one.
class Errors {
 public:
  explicit Errors(const char* test) : test_(test) {}

  __attribute__((format(printf, 3, 4))) void Add(std::atomic<uint64_t>& counter,
                                                  const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    AddV(counter, fmt, ap);
    va_end(ap);
  }
  __attribute__((format(printf, 2, 3))) void Other(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    AddV(other_, fmt, ap);
    va_end(ap);
  }
  bool Pin(int cpu) {
    const std::string why = PinToCpu(cpu);
    if (why.empty()) return true;
    Add(pin_failures_, "%s", why.c_str());
    return false;
  }

  uint64_t total() const { return total_.load(); }
  uint64_t other() const { return other_.load(); }
  uint64_t pin_failures() const { return pin_failures_.load(); }
  std::string first() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }

 private:
  static constexpr uint64_t kPrinted = 10;

  void AddV(std::atomic<uint64_t>& counter, const char* fmt, va_list ap) {
    counter.fetch_add(1, std::memory_order_relaxed);
    g_errors.fetch_add(1, std::memory_order_relaxed);
    const uint64_t n = total_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n > kPrinted) return;
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    std::lock_guard<std::mutex> lock(mu_);
    if (n < first_n_) {
      first_n_ = n;
      first_ = buf;
    }
    if (g_verbose) std::printf("torture: %s: error %llu: %s\n", test_, u64(n), buf);
  }

  const char* test_;
  std::atomic<uint64_t> total_{0}, other_{0}, pin_failures_{0};
  mutable std::mutex mu_;
  uint64_t first_n_ = UINT64_MAX;
  std::string first_;
};

struct Outcome {
  bool pass;
  std::string text;
};

// Builds a test's result line: failures with their counts, the first error, then stats.
class Report {
 public:
  Report& Stat(const char* key, uint64_t value) { return Add(key, std::to_string(value)); }
  Report& Stat(const char* key, double value, int precision) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", precision, value);
    return Add(key, buf);
  }
  Report& Stat(const char* key, const std::string& value) { return Add(key, value); }
  Report& Check(uint64_t count, const char* what) {
    if (count) failures_.push_back(std::to_string(count) + " " + what);
    return *this;
  }
  Report& Require(bool ok, const std::string& what) {
    if (!ok) failures_.push_back(what);
    return *this;
  }
  Outcome Finish(const Errors& errors) {
    Check(errors.pin_failures(), "pin failures");
    Check(errors.other(), "other errors");
    if (failures_.empty() && errors.total() == 0) return {true, stats_.empty() ? "" : stats_.substr(1)};
    std::string text;
    for (const std::string& f : failures_) text += (text.empty() ? "" : ", ") + f;
    if (text.empty()) text = std::to_string(errors.total()) + " errors";
    const std::string first = errors.first();
    if (!first.empty()) text += " (first: " + first + ")";
    return {false, text + stats_};
  }

 private:
  Report& Add(const char* key, const std::string& value) {
    stats_ += std::string(" ") + key + "=" + value;
    return *this;
  }
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

void Delay(uint32_t pauses) {
  for (uint32_t i = 0; i < pauses; ++i) _mm_pause();
}

// CPUID is the SDM's serializing instruction for user code. "memory": nothing moves over it.
inline void SerializeCpuid() {
  uint32_t a = 0, b, c = 0, d;
  asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "memory");
}

uint64_t XorShift(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// Every ordered pair of distinct CPUs in the list: neighbours first ((c[i], c[i+1]) for
// every i), then further apart, so that a short run still rotates through every vCPU.
std::vector<std::pair<int, int>> RolePairs(const std::vector<int>& cpus) {
  std::vector<std::pair<int, int>> pairs;
  const size_t n = cpus.size();
  for (size_t d = 1; d < n; ++d) {
    for (size_t i = 0; i < n; ++i) {
      const std::pair<int, int> p{cpus[i], cpus[(i + d) % n]};
      if (p.first != p.second && std::find(pairs.begin(), pairs.end(), p) == pairs.end())
        pairs.push_back(p);
    }
  }
  // Only one distinct CPU: the roles share it (and waits yield), a degenerate run.
  if (pairs.empty()) pairs.push_back({cpus[0], cpus[0]});
  return pairs;
}

bool SharesCpu(const std::vector<int>& cpus, int cpu) {
  return std::count(cpus.begin(), cpus.end(), cpu) > 1;
}

unsigned SpinsBeforeYield(bool shares_cpu) {
  return shares_cpu ? kSharedSpinsBeforeYield : kSpinsBeforeYield;
}

std::string CpuListText(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

// ==== xmc ================================================================================

namespace xmc {

constexpr size_t kPages = 8;
constexpr size_t kSlotOffsetsInPage[] = {0x043, 0x053, 0x7f3, 0x83f};
constexpr size_t kStraddleOffset = kPage - 1;  // opcode on this page, imm32 and ret on the next
constexpr uint8_t kMovEaxImm32 = 0xB8, kRet = 0xC3, kInt3 = 0xCC;

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

}  // namespace xmc

// ==== ptchurn ============================================================================

namespace ptchurn {

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

}  // namespace ptchurn

// ==== atomics ============================================================================

namespace atomics {

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

}  // namespace atomics

// ==== splitlock ==========================================================================

namespace splitlock {

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

}  // namespace splitlock

// ==== clock ==============================================================================

namespace clocks {

constexpr uint64_t kHopNs = 20'000'000;  // every thread moves to the next vCPU this often

struct Shared {
  alignas(64) std::atomic<uint64_t> latest_tsc{0};
  alignas(64) std::atomic<uint64_t> latest_ns{0};
  std::atomic<uint64_t> reads{0}, hops{0};
  std::atomic<uint64_t> tsc_behind{0}, tsc_backwards{0}, ns_behind{0}, ns_backwards{0};
  std::atomic<uint64_t> worst_tsc{0}, worst_ns{0};
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
    const uint64_t seen_tsc = s.latest_tsc.load(std::memory_order_acquire);
    const uint64_t tsc = ReadTsc();
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

Outcome Run(const Config& cfg) {
  Errors errors("clock");
  Shared s;
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
      .Stat("worst_tsc_cycles", s.worst_tsc).Stat("ns_behind", s.ns_behind)
      .Stat("ns_backwards", s.ns_backwards).Stat("worst_ns", s.worst_ns);
  return rep.Finish(errors);
}

}  // namespace clocks

// ==== ipi ================================================================================

namespace ipi {

constexpr uint64_t kRoundsPerPair = 512;
constexpr uint64_t kTripsPerPair = 512;
constexpr uint32_t kStop = 0xffffffffu;  // odd, like every ping; never a real one
// Long enough that a healthy peer always answers first (answers take microseconds, a
// descheduled vCPU milliseconds); a timeout with the word changed is a lost wakeup.
constexpr int kFutexTimeoutSec = 1;
enum Phase : int { kDekker, kFutex, kDone };

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

}  // namespace ipi

// ==== shootdown ==========================================================================

namespace shootdown {

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

}  // namespace shootdown

// ==== driver =============================================================================

struct TestEntry {
  const char* name;
  Outcome (*run)(const Config&);
};

const TestEntry kTests[] = {
    {"xmc", xmc::Run},       {"ptchurn", ptchurn::Run}, {"atomics", atomics::Run},
    {"splitlock", splitlock::Run}, {"clock", clocks::Run}, {"ipi", ipi::Run},
    {"shootdown", shootdown::Run},
};

// Prints the hang verdict if the running test overruns 3*S+30 s, and in verbose mode a
// progress line every second. _exit, because the stuck threads cannot be joined.
void Watchdog() {
  uint64_t reported_start = 0, reported_second = 0;
  for (;;) {
    const timespec tick{0, 100'000'000};
    nanosleep(&tick, nullptr);
    const uint64_t deadline = g_hang_deadline_ns.load();
    if (!deadline) continue;
    const uint64_t now = NowNs();
    const uint64_t started = g_test_start_ns.load();
    if (now > deadline) {
      RawLine()
          .Str("TORTURE ").Str(g_test.load()).Str(" FAIL hang: not finished after ")
          .Dec((now - started) / kNsPerSec).Str(" s rounds=").Dec(g_rounds.load())
          .Str(" errors=").Dec(g_errors.load()).Str(" phase=").Str(g_phase.load())
          .Str("\nTORTURE FAIL\n")
          .Write();
      _exit(1);
    }
    const uint64_t second = (now - started) / kNsPerSec;
    if (started != reported_start) {
      reported_start = started;
      reported_second = 0;
    }
    if (g_verbose && second > reported_second) {
      reported_second = second;
      RawLine()
          .Str("torture: ").Str(g_test.load()).Str(" t=").Dec(second).Str("s rounds=")
          .Dec(g_rounds.load()).Str(" errors=").Dec(g_errors.load()).Str(" phase=")
          .Str(g_phase.load()).Str("\n")
          .Write();
    }
  }
}

constexpr char kUsage[] =
    "usage: torture [--seconds S] [--cpus LIST] [--verbose] TEST...\n"
    "  TEST: xmc ptchurn atomics splitlock clock ipi shootdown all\n"
    "  LIST: CPUs such as 0,1,2,3 or 0-3 (default: every CPU we may run on)\n";

[[noreturn]] void Usage(const std::string& msg) {
  std::fprintf(stderr, "torture: %s\n%s", msg.c_str(), kUsage);
  std::exit(2);
}

std::vector<int> UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

std::vector<int> ParseCpuList(const std::string& text) {
  std::vector<int> cpus;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const long lo = std::strtol(item.c_str(), &end, 10);
    long hi = lo;
    if (end != item.c_str() && *end == '-') {
      const char* rest = end + 1;
      hi = std::strtol(rest, &end, 10);
      if (end == rest) end = nullptr;
    }
    if (item.empty() || !end || *end != '\0' || lo < 0 || hi < lo || hi >= CPU_SETSIZE)
      Usage("bad --cpus item '" + item + "' in '" + text + "'");
    for (long c = lo; c <= hi; ++c) cpus.push_back(int(c));
    pos = comma + 1;
  }
  return cpus;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Config cfg;
  std::vector<const TestEntry*> tests;
  bool cpus_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" || a == "--cpus") {
      if (i + 1 >= argc) Usage("missing value after " + a);
      const std::string v = argv[++i];
      if (a == "--cpus") {
        cfg.cpus = ParseCpuList(v);
        cpus_given = true;
        continue;
      }
      char* end = nullptr;
      cfg.seconds = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !std::isfinite(cfg.seconds) || cfg.seconds <= 0 ||
          cfg.seconds > 1e6)
        Usage("bad --seconds value '" + v + "'");
    } else if (a == "--verbose") {
      cfg.verbose = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      Usage("unknown option " + a);
    } else if (a == "all") {
      for (const TestEntry& t : kTests) tests.push_back(&t);
    } else {
      const TestEntry* found = nullptr;
      for (const TestEntry& t : kTests)
        if (a == t.name) found = &t;
      if (!found) Usage("unknown test '" + a + "'");
      tests.push_back(found);
    }
  }
  if (tests.empty()) Usage("no test given");

  const std::vector<int> usable = UsableCpus();
  if (usable.empty()) Usage(std::string("sched_getaffinity: ") + std::strerror(errno));
  if (!cpus_given) cfg.cpus = usable;
  for (int c : cfg.cpus) {
    if (std::find(usable.begin(), usable.end(), c) == usable.end())
      Usage("cpu " + std::to_string(c) + " is not available (online and allowed here: " +
            CpuListText(usable) + ")");
  }
  if (cfg.cpus.size() > kMaxThreads)
    Usage("at most " + std::to_string(kMaxThreads) + " CPUs in --cpus");

  g_verbose = cfg.verbose;
  g_main_pid = getpid();
  InstallFaultHandlers();
  std::thread(Watchdog).detach();

  std::printf("torture: cpus %s, %g s per test\n", CpuListText(cfg.cpus).c_str(), cfg.seconds);
  bool all_passed = true;
  for (const TestEntry* t : tests) {
    g_test = t->name;
    g_rounds = 0;
    g_errors = 0;
    g_phase = "-";
    g_test_start_ns = NowNs();
    g_hang_deadline_ns = NowNs() + uint64_t((3 * cfg.seconds + 30) * 1e9);
    const Outcome o = t->run(cfg);
    g_hang_deadline_ns = 0;
    std::printf("TORTURE %s %s%s%s\n", t->name, o.pass ? "PASS" : "FAIL", o.text.empty() ? "" : " ",
                o.text.c_str());
    all_passed = all_passed && o.pass;
  }
  std::printf("TORTURE %s\n", all_passed ? "PASS" : "FAIL");
  return all_passed ? 0 : 1;
}
