#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "kvm/probe.h"
#include "mixedvm/kvm_probe.h"

namespace mixedvm {
namespace {

constexpr const char* kKvm = "/dev/kvm";

// Skips (rather than fails) on machines without usable KVM, e.g. CI
// containers, where the probe's "false" answer is correct but untestable.
#define SKIP_WITHOUT_KVM()                                                  \
  do {                                                                      \
    if (access(kKvm, F_OK) != 0) GTEST_SKIP() << kKvm << " does not exist"; \
    if (access(kKvm, R_OK | W_OK) != 0)                                     \
      GTEST_SKIP() << kKvm << " is not readable and writable by this user"; \
  } while (0)

bool CpuHasFlag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string word;
    while (words >> word) {
      if (word == flag) return true;
    }
  }
  return false;
}

bool IsPvmHost() {
  return !CpuHasFlag("vmx") && !CpuHasFlag("svm") &&
         std::filesystem::exists("/sys/module/kvm_pvm");
}

TEST(KvmProbeRule, NativeNeedsHltAndAComparableRate) {
  EXPECT_TRUE(KernelCodeNative(4e9, 4e9, KVM_EXIT_HLT));
  EXPECT_TRUE(KernelCodeNative(4e9, 4e8, KVM_EXIT_HLT));
  EXPECT_FALSE(KernelCodeNative(4e9, 3.9e8, KVM_EXIT_HLT));
  EXPECT_FALSE(KernelCodeNative(4.1e9, 8e5, KVM_EXIT_HLT));
  EXPECT_FALSE(KernelCodeNative(4e9, 4e9, KVM_EXIT_INTERNAL_ERROR));
  EXPECT_FALSE(KernelCodeNative(4e9, 4e9, KVM_EXIT_INTR));
  EXPECT_FALSE(KernelCodeNative(4e9, 0, -1));
}

TEST(KvmProbe, HostKvmGivesAConsistentAnswer) {
  SKIP_WITHOUT_KVM();
  MixedvmKvmProbe p{};
  char err[256] = "";
  ASSERT_TRUE(mixedvm_kvm_probe(nullptr, &p, err, sizeof err)) << err;
  std::printf("[ probe    ] cpl3 %.3g loops/s, cpl0 %.3g loops/s, exit %d\n"
              "[ probe    ] %s\n",
              p.cpl3_loops_per_sec, p.cpl0_loops_per_sec, p.cpl0_exit_reason,
              p.summary);
  EXPECT_TRUE(p.kvm_usable);
  EXPECT_GT(p.cpl3_loops_per_sec, 1e8);
  EXPECT_GE(p.cpl0_loops_per_sec, 0.0);
  EXPECT_GT(std::string(p.summary).size(), 0u);
  EXPECT_EQ(p.kernel_code_native,
            p.cpl0_exit_reason == KVM_EXIT_HLT &&
                p.cpl0_loops_per_sec >= p.cpl3_loops_per_sec / 10)
      << p.summary;
}

TEST(KvmProbe, PvmHostCannotRunKernelCodeNatively) {
  SKIP_WITHOUT_KVM();
  if (!IsPvmHost()) {
    GTEST_SKIP() << "not a PVM host (vmx/svm flag present or no "
                    "/sys/module/kvm_pvm)";
  }
  MixedvmKvmProbe p{};
  char err[256] = "";
  ASSERT_TRUE(mixedvm_kvm_probe(kKvm, &p, err, sizeof err)) << err;
  EXPECT_FALSE(p.kernel_code_native) << p.summary;
  // PVM emulates kernel mode about 5000x slower; the loop still finishes.
  EXPECT_EQ(p.cpl0_exit_reason, KVM_EXIT_HLT) << p.summary;
  EXPECT_LT(p.cpl0_loops_per_sec, p.cpl3_loops_per_sec / 100) << p.summary;
}

TEST(KvmProbe, MissingDeviceIsAClearError) {
  MixedvmKvmProbe p{};
  p.kvm_usable = true;
  char err[256] = "";
  EXPECT_FALSE(mixedvm_kvm_probe("/nonexistent/kvm", &p, err, sizeof err));
  EXPECT_NE(std::string(err).find("/nonexistent/kvm"), std::string::npos)
      << err;
  EXPECT_NE(std::string(err).find("No such file"), std::string::npos) << err;
  EXPECT_FALSE(p.kvm_usable);
}

TEST(KvmProbe, NonKvmDeviceIsAClearError) {
  MixedvmKvmProbe p{};
  char err[256] = "";
  EXPECT_FALSE(mixedvm_kvm_probe("/dev/null", &p, err, sizeof err));
  EXPECT_NE(std::string(err).find("/dev/null"), std::string::npos) << err;
}

TEST(KvmProbe, NullOutputIsAnErrorNotACrash) {
  char err[256] = "";
  EXPECT_FALSE(mixedvm_kvm_probe(nullptr, nullptr, err, sizeof err));
  EXPECT_STRNE(err, "");
  MixedvmKvmProbe p{};
  EXPECT_FALSE(mixedvm_kvm_probe("/nonexistent/kvm", &p, nullptr, 0));
}

// QEMU runs the probe on its start-up path, so it must be quick everywhere.
TEST(KvmProbe, FinishesWithinTwoSeconds) {
  SKIP_WITHOUT_KVM();
  MixedvmKvmProbe p{};
  char err[256] = "";
  auto start = std::chrono::steady_clock::now();
  bool ok = mixedvm_kvm_probe(nullptr, &p, err, sizeof err);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(ok) << err;
  std::printf("[ probe    ] took %.1f ms\n",
              std::chrono::duration<double, std::milli>(elapsed).count());
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

// The probe blocks its timer signal while it runs; QEMU's threads rely on
// their masks, so it must leave this thread exactly as it found it.
TEST(KvmProbe, LeavesSignalMaskAndPendingSignalsAlone) {
  SKIP_WITHOUT_KVM();
  sigset_t before, after, pending;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &before), 0);
  MixedvmKvmProbe p{};
  char err[256] = "";
  ASSERT_TRUE(mixedvm_kvm_probe(nullptr, &p, err, sizeof err)) << err;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &after), 0);
  ASSERT_EQ(sigpending(&pending), 0);
  for (int s = 1; s <= SIGRTMAX; ++s) {
    EXPECT_EQ(sigismember(&before, s), sigismember(&after, s))
        << "signal " << s;
    EXPECT_EQ(sigismember(&pending, s), 0) << "signal " << s;
  }
}

// A bound far below one run must still end the run, with the progress made
// reported as a rate, and the thread must come out unharmed.
TEST(KvmProbe, TinyBudgetStillAnswers) {
  SKIP_WITHOUT_KVM();
  KvmProbeLimits limits;
  limits.run_target = std::chrono::microseconds(50);
  limits.level_budget = std::chrono::microseconds(200);
  auto start = std::chrono::steady_clock::now();
  KvmProbeResult r = ProbeKvm("", limits);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.probe) << r.error;
  EXPECT_GT(std::string(r.probe->summary).size(), 0u);
  EXPECT_EQ(r.probe->kernel_code_native,
            KernelCodeNative(r.probe->cpl3_loops_per_sec,
                             r.probe->cpl0_loops_per_sec,
                             r.probe->cpl0_exit_reason));
  std::printf("[ probe    ] tiny budget: %s (%.1f ms)\n", r.probe->summary,
              std::chrono::duration<double, std::milli>(elapsed).count());
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

}  // namespace
}  // namespace mixedvm
