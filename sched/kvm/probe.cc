// Tells whether KVM runs guest kernel code natively by timing the same
// countdown loop at CPL3 and at CPL0 in throw-away VMs.
//
// Rates are the only reliable signal: PVM speaks the ordinary KVM API and
// advertises nothing that says "kernel mode is emulated", and the cpuid flags
// of the host do not say which KVM module is behind /dev/kvm.
#include "kvm/probe.h"

#include "c_boundary.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <thread>

namespace mixedvm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

// Guest physical layout, identity-mapped with 2 MiB pages. The memslot covers
// only the first 2 MiB; the host allocates just the few pages we touch.
constexpr std::uint64_t kMemSize = 0x200000;
constexpr std::uint64_t kPml4 = 0x2000;
constexpr std::uint64_t kPdpt = 0x3000;
constexpr std::uint64_t kPd = 0x4000;
constexpr std::uint64_t kCode = 0x10000;
// Mapped by the second 2 MiB page but outside every memslot, so a store
// there leaves KVM with KVM_EXIT_MMIO.
constexpr std::uint64_t kMmio = 0x200000;

// L: dec ecx; jnz L; hlt
constexpr std::uint8_t kKernelLoop[] = {0xFF, 0xC9, 0x75, 0xFC, 0xF4};
// L: dec ecx; jnz L; mov [rdi], al; jmp $
// HLT cannot end the user loop: it faults at CPL3, the vCPU triple-faults,
// and AMD's KVM then resets the vCPU, losing RCX and the state we re-run
// from. The MMIO store is an ordinary exit that is safe to re-enter after.
constexpr std::uint8_t kUserLoop[] = {0xFF, 0xC9, 0x75, 0xFC,
                                      0x88, 0x07, 0xEB, 0xFE};

// The loop counter is ECX, so counts must fit in 32 bits.
constexpr std::uint64_t kFirstLoops = 1024;
constexpr std::uint64_t kMaxLoops = std::uint64_t{1} << 31;

// Rule from mixedvm/kvm_probe.h: native kernel mode runs at about the user
// rate, PVM's emulator three orders of magnitude below it.
constexpr double kNativeFactor = 10.0;
constexpr int kProbeRounds = 3;  // interleaved runs per privilege level; the fastest counts
// Rounds that only a "cannot run kernel code" verdict gets, spread over about half a
// second: the emulated AMD-V host was once slow at CPL0 for all of the first three
// (763x, 2026-12-05), and mixed then kept a kernel-capable host's guest kernel on TCG.
constexpr int kConfirmRounds = 4;
constexpr std::chrono::milliseconds kConfirmPause{120};

enum class Cpl { k0, k3 };

const char* CplName(Cpl cpl) { return cpl == Cpl::k0 ? "CPL0" : "CPL3"; }

std::string ErrnoText(int e) { return std::generic_category().message(e); }

std::string ExitReasonName(int reason) {
  switch (reason) {
    case KVM_EXIT_IO: return "KVM_EXIT_IO";
    case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
    case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    default: return "KVM exit reason " + std::to_string(reason);
  }
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(-1); }

  void Reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr_ != MAP_FAILED) munmap(addr_, size_);
  }

  bool Map(std::size_t size, int flags, int fd) {
    addr_ = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
    size_ = size;
    return addr_ != MAP_FAILED;
  }
  std::uint8_t* bytes() const { return static_cast<std::uint8_t*>(addr_); }

 private:
  void* addr_ = MAP_FAILED;
  std::size_t size_ = 0;
};

// Bounds KVM_RUN without installing a signal handler. The timer signal is
// blocked in this thread and only the vCPU's KVM_SET_SIGNAL_MASK unblocks it,
// so it can do nothing but make KVM_RUN return -EINTR; if it fires before
// KVM_RUN starts it stays pending and KVM_RUN returns at once, so there is no
// window in which an expiry is lost (the race immediate_exit exists for).
// Kernel-side, a blocked signal is never fatal or ignored while in KVM_RUN
// (the kernel checks the pre-KVM_RUN mask), whatever its disposition.
class RunTimer {
 public:
  // struct kvm_signal_mask with its sigset filled in. Not the header's
  // struct: in C++ __DECLARE_FLEX_ARRAY adds an empty struct of size 1, so
  // sizeof grows from 4 to 8 and KVM_SET_SIGNAL_MASK, which encodes that
  // size, becomes an ioctl number KVM rejects with EINVAL.
  struct SignalMaskArg {
    std::uint32_t len;
    std::uint8_t sigset[8];
  };
  static constexpr unsigned long kSetSignalMask =
      _IOW(KVMIO, 0x8b, std::uint32_t);

  RunTimer() = default;
  RunTimer(const RunTimer&) = delete;
  RunTimer& operator=(const RunTimer&) = delete;
  ~RunTimer() {
    if (timer_created_) {
      timer_delete(timer_);
      // A deleted timer's queued signal stays queued; it must go before the
      // old mask is restored or its default action would kill the process.
      Drain();
    }
    if (mask_saved_) pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

  bool Init(std::string* error) {
    // Prefer a signal that is not already pending, so the probe neither
    // trips over nor swallows someone else's signal.
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    signo_ = 0;
    for (int s = SIGRTMAX; s > SIGRTMAX - 8 && s >= SIGRTMIN; --s) {
      if (sigismember(&pending, s) != 1) {
        signo_ = s;
        break;
      }
    }
    if (signo_ == 0) {
      *error = "no free real-time signal to bound KVM_RUN";
      return false;
    }
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, signo_);
    int rc = pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
    if (rc != 0) {
      *error = "pthread_sigmask: " + ErrnoText(rc);
      return false;
    }
    mask_saved_ = true;

    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = signo_;
    ev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer_) != 0) {
      *error = "timer_create: " + ErrnoText(errno);
      return false;
    }
    timer_created_ = true;
    return true;
  }

  // Everything blocked but the timer signal: other signals wait until
  // KVM_RUN returns (bounded by the timer), so -EINTR always means "timer".
  bool ApplyToVcpu(int vcpu_fd, std::string* error) const {
    // The kernel's sigset is one 64-bit word, bit (signo - 1) per signal.
    std::uint64_t mask = ~(std::uint64_t{1} << (signo_ - 1));
    SignalMaskArg arg{};
    arg.len = sizeof mask;
    std::memcpy(arg.sigset, &mask, sizeof mask);
    if (ioctl(vcpu_fd, kSetSignalMask, &arg) != 0) {
      *error = "KVM_SET_SIGNAL_MASK: " + ErrnoText(errno);
      return false;
    }
    return true;
  }

  bool Arm(nanoseconds delay) {
    itimerspec spec{};
    auto ns = std::max<std::int64_t>(delay.count(), 1);
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
    return timer_settime(timer_, 0, &spec, nullptr) == 0;
  }

  // Called after every KVM_RUN: an expiry that raced with a normal exit must
  // not cut the next run short.
  void Disarm() {
    itimerspec spec{};
    timer_settime(timer_, 0, &spec, nullptr);
    Drain();
  }

 private:
  void Drain() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo_);
    timespec zero{};
    for (;;) {
      int s = sigtimedwait(&set, nullptr, &zero);
      if (s == signo_ || (s < 0 && errno == EINTR)) continue;
      break;
    }
  }

  int signo_ = 0;
  sigset_t old_mask_{};
  bool mask_saved_ = false;
  timer_t timer_{};
  bool timer_created_ = false;
};

// One privilege level's measurement.
struct LevelResult {
  bool ran = false;         // KVM_RUN entered the guest at least once
  std::string error;        // VM setup or an ioctl failed
  int exit_reason = -1;     // of the run the figures come from
  std::string exit_detail;  // e.g. the internal-error suberror
  double loops_per_sec = 0;
  std::uint64_t loops = 0;  // loops asked for in that run
};

// Member order is teardown order reversed: the kvm_run mapping and the vCPU
// go before the VM, and the guest memory outlives the VM that maps it.
struct ScratchVm {
  Mapping memory;
  Fd vm;
  Fd vcpu;
  Mapping run_area;
};

bool SetUpVm(int kvm_fd, int run_size, Cpl cpl, const RunTimer& timer,
             ScratchVm* s, std::string* error) {
  if (!s->memory.Map(kMemSize, MAP_SHARED | MAP_ANONYMOUS, -1)) {
    *error = "mmap of guest memory: " + ErrnoText(errno);
    return false;
  }
  s->vm.Reset(ioctl(kvm_fd, KVM_CREATE_VM, 0));
  if (!s->vm.valid()) {
    *error = "KVM_CREATE_VM: " + ErrnoText(errno);
    return false;
  }
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kMemSize;
  region.userspace_addr = reinterpret_cast<std::uint64_t>(s->memory.bytes());
  if (ioctl(s->vm.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    *error = "KVM_SET_USER_MEMORY_REGION: " + ErrnoText(errno);
    return false;
  }

  // The user bit only where CPL3 needs it, so the CPL0 run uses exactly the
  // page tables a kernel would (and the ones measured on PVM).
  std::uint64_t user = cpl == Cpl::k3 ? 0x4 : 0;
  std::uint8_t* mem = s->memory.bytes();
  auto put64 = [mem](std::uint64_t addr, std::uint64_t value) {
    std::memcpy(mem + addr, &value, sizeof value);
  };
  put64(kPml4, kPdpt | 0x3 | user);
  put64(kPdpt, kPd | 0x3 | user);
  put64(kPd, 0x0 | 0x83 | user);          // 2 MiB page: the memslot
  put64(kPd + 8, kMmio | 0x83 | user);    // 2 MiB page: no memslot
  if (cpl == Cpl::k0) {
    std::memcpy(mem + kCode, kKernelLoop, sizeof kKernelLoop);
  } else {
    std::memcpy(mem + kCode, kUserLoop, sizeof kUserLoop);
  }

  s->vcpu.Reset(ioctl(s->vm.get(), KVM_CREATE_VCPU, 0));
  if (!s->vcpu.valid()) {
    *error = "KVM_CREATE_VCPU: " + ErrnoText(errno);
    return false;
  }
  if (!s->run_area.Map(run_size, MAP_SHARED, s->vcpu.get())) {
    *error = "mmap of kvm_run: " + ErrnoText(errno);
    return false;
  }
  if (!timer.ApplyToVcpu(s->vcpu.get(), error)) return false;

  kvm_sregs sregs{};
  if (ioctl(s->vcpu.get(), KVM_GET_SREGS, &sregs) != 0) {
    *error = "KVM_GET_SREGS: " + ErrnoText(errno);
    return false;
  }
  sregs.cr3 = kPml4;
  sregs.cr4 = 0x20;            // PAE
  sregs.cr0 = 0x80050033;      // PG WP AM NE ET MP PE
  sregs.efer = 0x500;          // LMA LME
  // Any fault escalates straight to a triple fault instead of reading
  // descriptors out of zeroed memory.
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
  kvm_segment seg{};
  seg.limit = 0xffffffff;
  seg.present = 1;
  seg.s = 1;
  seg.g = 1;
  seg.type = 11;  // code, execute/read, accessed
  seg.l = 1;
  seg.dpl = cpl == Cpl::k3 ? 3 : 0;
  seg.selector = cpl == Cpl::k3 ? 0x1b : 0x08;
  sregs.cs = seg;
  seg.type = 3;  // data, read/write, accessed
  seg.l = 0;
  seg.db = 1;
  seg.selector = cpl == Cpl::k3 ? 0x23 : 0x10;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
  if (ioctl(s->vcpu.get(), KVM_SET_SREGS, &sregs) != 0) {
    *error = "KVM_SET_SREGS: " + ErrnoText(errno);
    return false;
  }
  return true;
}

// Times the loop at one privilege level in a VM of its own. Starts small and
// grows the count until a run lasts run_target, because a fixed count is
// either dominated by KVM entry cost on native hosts or far too slow under
// emulation.
LevelResult MeasureLevel(int kvm_fd, int run_size, Cpl cpl,
                         const KvmProbeLimits& limits, RunTimer& timer) {
  LevelResult result;
  ScratchVm vm;
  if (!SetUpVm(kvm_fd, run_size, cpl, timer, &vm, &result.error)) {
    return result;
  }
  auto* run = reinterpret_cast<kvm_run*>(vm.run_area.bytes());
  const int expected_exit = cpl == Cpl::k0 ? KVM_EXIT_HLT : KVM_EXIT_MMIO;
  const Clock::time_point deadline = Clock::now() + limits.level_budget;
  bool have_completed_run = false;
  std::uint64_t loops = kFirstLoops;

  for (;;) {
    nanoseconds remaining = deadline - Clock::now();
    if (remaining <= nanoseconds::zero()) break;

    kvm_regs regs{};
    regs.rip = kCode;
    regs.rcx = loops;
    regs.rdi = kMmio;
    regs.rsp = kMemSize;
    regs.rflags = 0x2;
    if (ioctl(vm.vcpu.get(), KVM_SET_REGS, &regs) != 0) {
      result.error = "KVM_SET_REGS: " + ErrnoText(errno);
      return result;
    }
    if (!timer.Arm(remaining)) {
      result.error = "timer_settime: " + ErrnoText(errno);
      return result;
    }
    Clock::time_point start = Clock::now();
    int rc = ioctl(vm.vcpu.get(), KVM_RUN, 0);
    int run_errno = errno;
    nanoseconds elapsed = Clock::now() - start;
    timer.Disarm();

    if (rc != 0 && run_errno != EINTR) {
      result.error = "KVM_RUN: " + ErrnoText(run_errno);
      return result;
    }
    result.ran = true;
    int exit_reason =
        rc != 0 ? KVM_EXIT_INTR : static_cast<int>(run->exit_reason);
    if (ioctl(vm.vcpu.get(), KVM_GET_REGS, &regs) != 0) {
      result.error = "KVM_GET_REGS: " + ErrnoText(errno);
      return result;
    }
    std::uint64_t left = regs.rcx & 0xffffffff;
    std::uint64_t done = loops - std::min(left, loops);
    double seconds =
        std::max(std::chrono::duration<double>(elapsed).count(), 1e-9);

    if (exit_reason == expected_exit && left == 0) {
      have_completed_run = true;
      result.exit_reason = exit_reason;
      result.exit_detail.clear();
      result.loops = loops;
      result.loops_per_sec = static_cast<double>(loops) / seconds;
      if (elapsed >= limits.run_target || loops >= kMaxLoops) break;
      // Aim a little past the target so one more run usually suffices; the
      // cap keeps an entry-cost-dominated first run from overshooting.
      double factor = 1.25 * std::chrono::duration<double>(limits.run_target)
                                 .count() / seconds;
      factor = std::clamp(factor, 2.0, 16.0);
      std::uint64_t next = std::min<std::uint64_t>(
          kMaxLoops, static_cast<std::uint64_t>(loops * factor));
      // Do not start a run the timer would cut short: the completed run
      // already answers the question.
      if (elapsed * (static_cast<double>(next) / loops) >
          deadline - Clock::now()) {
        break;
      }
      loops = next;
      continue;
    }
    // A longer confirmation run that the bound cut short (a preempted
    // host) does not undo the completed run before it.
    if (exit_reason == KVM_EXIT_INTR && have_completed_run) break;

    result.exit_reason = exit_reason;
    result.loops = loops;
    if (exit_reason == KVM_EXIT_INTR) {
      // Too slow to finish even once within the bound: the progress made
      // is still a rate.
      result.loops_per_sec = static_cast<double>(done) / seconds;
    } else {
      // The code did not run as written (emulation failure, fault).
      result.loops_per_sec = 0;
      if (exit_reason == KVM_EXIT_INTERNAL_ERROR) {
        result.exit_detail =
            "suberror " + std::to_string(run->internal.suberror);
      } else if (exit_reason == KVM_EXIT_FAIL_ENTRY) {
        result.exit_detail =
            "hardware reason " +
            std::to_string(run->fail_entry.hardware_entry_failure_reason);
      }
    }
    break;
  }
  return result;
}

std::string DescribeExit(const LevelResult& r) {
  std::string text = ExitReasonName(r.exit_reason);
  if (!r.exit_detail.empty()) text += ", " + r.exit_detail;
  return text;
}

std::string Summarize(const MixedvmKvmProbe& p, const LevelResult& user,
                      const LevelResult& kernel, const KvmProbeLimits& limits) {
  char buf[sizeof p.summary];
  std::string cpl3;
  if (user.loops_per_sec > 0) {
    std::snprintf(buf, sizeof buf, "KVM runs CPL3 at %.1e loops/s",
                  user.loops_per_sec);
    cpl3 = buf;
  } else {
    cpl3 = "KVM CPL3 code failed (" + DescribeExit(user) + ")";
  }

  if (p.kernel_code_native) {
    std::snprintf(buf, sizeof buf,
                  "%s and CPL0 at %.1e loops/s: guest kernel code can run "
                  "natively on KVM",
                  cpl3.c_str(), kernel.loops_per_sec);
    return buf;
  }
  const char* verdict = "guest kernel code must run on TCG";
  if (!kernel.ran) {
    std::snprintf(buf, sizeof buf, "%s; CPL0 probe failed (%s): %s",
                  cpl3.c_str(), kernel.error.c_str(), verdict);
  } else if (kernel.exit_reason == KVM_EXIT_HLT && kernel.loops_per_sec > 0) {
    std::snprintf(buf, sizeof buf,
                  "%s; CPL0 is %.0fx slower (%.1e loops/s, emulated): %s",
                  cpl3.c_str(), user.loops_per_sec / kernel.loops_per_sec,
                  kernel.loops_per_sec, verdict);
  } else if (kernel.exit_reason == KVM_EXIT_INTR) {
    std::snprintf(buf, sizeof buf,
                  "%s; CPL0 did not finish %llu loops in %.1f ms (%.1e "
                  "loops/s): %s",
                  cpl3.c_str(), static_cast<unsigned long long>(kernel.loops),
                  std::chrono::duration<double, std::milli>(
                      limits.level_budget)
                      .count(),
                  kernel.loops_per_sec, verdict);
  } else {
    std::snprintf(buf, sizeof buf, "%s; CPL0 code failed (%s): %s",
                  cpl3.c_str(), DescribeExit(kernel).c_str(), verdict);
  }
  return buf;
}

}  // namespace

bool KernelCodeNative(double cpl3_loops_per_sec, double cpl0_loops_per_sec,
                      int cpl0_exit_reason) {
  return cpl0_exit_reason == KVM_EXIT_HLT &&
         cpl0_loops_per_sec >= cpl3_loops_per_sec / kNativeFactor;
}

KvmProbeResult ProbeKvm(const std::string& dev_path,
                        const KvmProbeLimits& limits) {
  KvmProbeResult result;
  const std::string path = dev_path.empty() ? "/dev/kvm" : dev_path;
  Fd kvm(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm.valid()) {
    result.error = "cannot open " + path + ": " + ErrnoText(errno);
    return result;
  }
  int api = ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (api < 0) {
    result.error = path + " is not a KVM device (KVM_GET_API_VERSION: " +
                   ErrnoText(errno) + ")";
    return result;
  }
  if (api != KVM_API_VERSION) {
    result.error = path + ": unsupported KVM API version " +
                   std::to_string(api);
    return result;
  }
  int run_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < static_cast<int>(sizeof(kvm_run))) {
    result.error = path + ": bad KVM_GET_VCPU_MMAP_SIZE " +
                   std::to_string(run_size);
    return result;
  }
  RunTimer timer;
  std::string timer_error;
  if (!timer.Init(&timer_error)) {
    result.error = "cannot bound the KVM probe's run time: " + timer_error;
    return result;
  }

  LevelResult user = MeasureLevel(kvm.get(), run_size, Cpl::k3, limits, timer);
  if (!user.ran) {
    result.error = path + ": " + CplName(Cpl::k3) + " probe: " + user.error;
    return result;
  }
  LevelResult kernel =
      MeasureLevel(kvm.get(), run_size, Cpl::k0, limits, timer);
  // The verdict is a ratio of two short runs, and a host busy elsewhere slows one of
  // them and not the other: a loaded emulated AMD-V host was once judged unable to run
  // kernel code (2026-12-05), which would send a PVM host the other way. Load only
  // ever makes a run slower, so the fastest of a few interleaved runs per level is the
  // host's own rate.
  auto native = [&] {
    return KernelCodeNative(user.loops_per_sec, kernel.loops_per_sec, kernel.exit_reason);
  };
  for (int round = 1; round < kProbeRounds + kConfirmRounds; ++round) {
    if (round >= kProbeRounds) {
      // Only a host that seemed unable to run kernel code is asked again, after a
      // pause, and only while its CPL0 code runs at all (PVM's does, slowly).
      if (native() || kernel.exit_reason != KVM_EXIT_HLT) break;
      std::this_thread::sleep_for(kConfirmPause);
    }
    LevelResult u = MeasureLevel(kvm.get(), run_size, Cpl::k3, limits, timer);
    if (u.ran && u.loops_per_sec > user.loops_per_sec) user = u;
    LevelResult k = MeasureLevel(kvm.get(), run_size, Cpl::k0, limits, timer);
    // A run that finished (HLT) says more than one the timer cut off
    if (k.exit_reason == KVM_EXIT_HLT &&
        (kernel.exit_reason != KVM_EXIT_HLT || k.loops_per_sec > kernel.loops_per_sec))
      kernel = k;
  }

  MixedvmKvmProbe p{};
  p.kvm_usable = true;
  p.cpl3_loops_per_sec = user.loops_per_sec;
  p.cpl0_loops_per_sec = kernel.loops_per_sec;
  p.cpl0_exit_reason = kernel.exit_reason;
  p.kernel_code_native = KernelCodeNative(
      p.cpl3_loops_per_sec, p.cpl0_loops_per_sec, p.cpl0_exit_reason);
  std::snprintf(p.summary, sizeof p.summary, "%s",
                Summarize(p, user, kernel, limits).c_str());
  result.probe = p;
  return result;
}

}  // namespace mixedvm

// The C entry point (include/mixedvm/kvm_probe.h).
extern "C" bool mixedvm_kvm_probe(const char* dev_path, MixedvmKvmProbe* out, char* err,
                                  size_t errlen) noexcept {
  return mixedvm::Guarded(err, errlen, [&] {
    if (out == nullptr) {
      mixedvm::WriteError(err, errlen, "mixedvm_kvm_probe: out is NULL");
      return false;
    }
    *out = MixedvmKvmProbe{};
    auto r = mixedvm::ProbeKvm(dev_path ? dev_path : "");
    if (!r.probe) {
      mixedvm::WriteError(err, errlen, r.error);
      return false;
    }
    *out = *r.probe;
    return true;
  });
}
