// torture's harness: what the tests share (harness.h) and the driver -- the table of
// tests, the watchdog, the command line and main(). harness.h describes the suite.
#include "harness.h"

#include <sys/types.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "../pin.h"

namespace torture {

std::atomic<uint64_t> g_rounds{0};
std::atomic<const char*> g_phase{"-"};
thread_local constinit FaultTrap t_trap{};

namespace {

// What the watchdog and the fault handler report about the running test, besides
// g_rounds and g_phase.
std::atomic<const char*> g_test{"-"};
std::atomic<uint64_t> g_hang_deadline_ns{0};  // 0 while no test runs
std::atomic<uint64_t> g_test_start_ns{0};
std::atomic<uint64_t> g_errors{0};
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

}  // namespace

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

namespace {

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

}  // namespace

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

// ---- Errors, reports, helpers ------------------------------------------------------------

void Errors::Add(std::atomic<uint64_t>& counter, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  AddV(counter, fmt, ap);
  va_end(ap);
}

void Errors::Other(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  AddV(other_, fmt, ap);
  va_end(ap);
}

bool Errors::Pin(int cpu) {
  const std::string why = PinToCpu(cpu);
  if (why.empty()) return true;
  Add(pin_failures_, "%s", why.c_str());
  return false;
}

std::string Errors::first() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_;
}

void Errors::AddV(std::atomic<uint64_t>& counter, const char* fmt, va_list ap) {
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

Report& Report::Stat(const char* key, double value, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, value);
  return Add(key, buf);
}

Report& Report::Check(uint64_t count, const char* what) {
  if (count) failures_.push_back(std::to_string(count) + " " + what);
  return *this;
}

Report& Report::Require(bool ok, const std::string& what) {
  if (!ok) failures_.push_back(what);
  return *this;
}

Outcome Report::Finish(const Errors& errors) {
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

Report& Report::Add(const char* key, const std::string& value) {
  stats_ += std::string(" ") + key + "=" + value;
  return *this;
}

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

// ==== driver =============================================================================

namespace {

struct TestEntry {
  const char* name;
  Outcome (*run)(const Config&);
};

// The tests, in the order "all" runs them; each is one file of this folder.
const TestEntry kTests[] = {
    {"xmc", xmc::Run},       {"ptchurn", ptchurn::Run}, {"atomics", atomics::Run},
    {"splitlock", splitlock::Run}, {"clock", clocks::Run}, {"ipi", ipi::Run},
    {"shootdown", shootdown::Run},
};

std::string CpuListText(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

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
    "usage: torture [--seconds S] [--cpus LIST] [--tsc-slack CYCLES] [--verbose] TEST...\n"
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

int Main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Config cfg;
  std::vector<const TestEntry*> tests;
  bool cpus_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" || a == "--cpus" || a == "--tsc-slack") {
      if (i + 1 >= argc) Usage("missing value after " + a);
      const std::string v = argv[++i];
      if (a == "--cpus") {
        cfg.cpus = ParseCpuList(v);
        cpus_given = true;
        continue;
      }
      char* end = nullptr;
      if (a == "--tsc-slack") {
        cfg.tsc_slack = std::strtoull(v.c_str(), &end, 10);
        if (end == v.c_str() || *end != '\0' || v[0] == '-')
          Usage("bad --tsc-slack value '" + v + "'");
        continue;
      }
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

}  // namespace
}  // namespace torture

int main(int argc, char** argv) { return torture::Main(argc, argv); }
